"""Domain models, one per role: what an editor uploads, what Herald derives, what it stores."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from herald.content.limits import bounded_datetime


def _encodable(value: str) -> str:
    """Lone surrogates (possible in JSON as \\ud800) cannot be stored or shown: refuse them."""
    value.encode("utf-8")
    return value


Text = Annotated[str, AfterValidator(_encodable)]

Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(_encodable)
]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]
#: A date an editor gives: in UTC (none given: UTC) and within Herald's date bounds, so nothing
#: downstream (feeds' sort keys, the fan-out's delays) can overflow or compare naive with aware.
EditorDate = Annotated[datetime, AfterValidator(bounded_datetime)]


class PostInput(BaseModel):
    """One post as an editor writes it (JSON body, or Markdown front matter plus body)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    text: Annotated[Text, StringConstraints(min_length=1)]
    title: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = (
        None
    )
    tags: Annotated[list[Tag], Field(max_length=30)] = Field(default_factory=list)
    lang: LanguageCode | None = None
    pinned: bool = False
    notify: bool = True
    publish_at: EditorDate | None = None
    #: Language variants that are coming: the fan-out waits for them (see ``translation_window``).
    translations: Annotated[list[LanguageCode], Field(max_length=20)] = Field(default_factory=list)
    #: How long the fan-out waits for ``translations``: ``15m``, ``2h``, ``900s`` (at most 24 h).
    translation_window: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,5}[smh]$")] | None = None


class Link(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str
    domain: str
    shortener: bool = False


class Enrichment(BaseModel):
    """Everything Herald derives from a post's text."""

    model_config = ConfigDict(frozen=True)

    text: str
    title: str
    excerpt: str
    links: list[Link] = Field(default_factory=list)
    hashtags: list[str] = Field(default_factory=list)
    mentions: list[str] = Field(default_factory=list)
    emoji: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    language: str | None = None
    topics: list[str] = Field(default_factory=list)
    word_count: int = 0
    reading_time_s: int = 0
    content_hash: str


class VariantOrigin(StrEnum):
    """Who wrote a language variant: an editor's upload, or Amazon Translate for the community."""

    HUMAN = "human"
    MACHINE = "machine"


class VariantSummary(BaseModel):
    """What a post's item says of one of its language variants: enough for a notification, a
    link and a language switcher without reading the variant's own item."""

    model_config = ConfigDict(frozen=True)

    lang: str
    title: str
    excerpt: str
    origin: VariantOrigin = VariantOrigin.HUMAN
    version: int = 1
    updated_at: datetime


class Variant(BaseModel):
    """One language variant of a post, as stored in its own item (``VAR#<post id>#<lang>``): the
    same post in another language, with its own text and enrichment. ``post_id`` is its original's
    id (derived from the original's key); ``pending``: stored before its original arrived."""

    model_config = ConfigDict(frozen=True)

    post_id: str
    community: str
    lang: str
    key: str
    origin: VariantOrigin = VariantOrigin.HUMAN
    format: str = "txt"
    title: str
    text: str
    excerpt: str
    links: list[Link] = Field(default_factory=list)
    hashtags: list[str] = Field(default_factory=list)
    mentions: list[str] = Field(default_factory=list)
    emoji: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    #: The language detected in the variant's text (a warning in its outcome when it is not ``lang``).
    language: str | None = None
    topics: list[str] = Field(default_factory=list)
    word_count: int = 0
    reading_time_s: int = 0
    content_hash: str
    #: A machine variant's source: the original's ``content_hash`` it was translated from (a new one
    #: on the original means the translation is stale and made again); None for a human variant.
    source_hash: str | None = None
    version: int = 1
    pending: bool = False
    created_at: datetime
    updated_at: datetime
    correlation_id: str | None = None

    @classmethod
    def from_enrichment(cls, enrichment: Enrichment, **fields: object) -> Variant:
        """The variant with ``enrichment``'s text and derived fields; ``fields`` give the rest and
        take precedence over the enrichment's (a machine variant's ``language`` is its ``lang``)."""
        derived = {name: getattr(enrichment, name) for name in Enrichment.model_fields}
        return cls.model_validate({**derived, **fields})

    def summary(self) -> VariantSummary:
        return VariantSummary(
            lang=self.lang,
            title=self.title,
            excerpt=self.excerpt,
            origin=self.origin,
            version=self.version,
            updated_at=self.updated_at,
        )


class PostSource(StrEnum):
    POST = "post"
    EXPORT = "export"


class Post(BaseModel):
    """A published post, as stored and as reported."""

    model_config = ConfigDict(frozen=True)

    id: str
    community: str
    key: str
    source: PostSource = PostSource.POST
    format: str = "txt"
    position: int | None = None
    title: str
    text: str
    excerpt: str
    links: list[Link] = Field(default_factory=list)
    hashtags: list[str] = Field(default_factory=list)
    mentions: list[str] = Field(default_factory=list)
    emoji: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    language: str | None = None
    topics: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    word_count: int = 0
    reading_time_s: int = 0
    content_hash: str
    pinned: bool = False
    notify: bool = True
    publish_at: datetime | None = None
    #: The post's language variants (not the original), by language code.
    variants: dict[str, VariantSummary] = Field(default_factory=dict)
    #: The variants the editor said are coming (``translations:``), and how long the fan-out waits
    #: for them (``translation_window:``, seconds) before it starts without those still missing.
    translations: list[str] = Field(default_factory=list)
    translation_window_s: int | None = None
    version: int = 1
    created_at: datetime
    updated_at: datetime
    #: The upload's correlation id (see ObjectEvent.correlation_id): it travels with the post to the
    #: publisher and the push fan-out, so one id finds every log line of this version.
    correlation_id: str | None = None


def post_fields(*, without: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """:class:`Post`'s field names in their order, but those in ``without``: every list of a post's
    fields is derived from the model, so a new field is where it belongs without another edit."""
    return tuple(name for name in Post.model_fields if name not in without)


#: Where an export held a post: only the import reads it.
_IMPORT_FIELDS = frozenset({"position"})
#: How Herald stores and routes a post (its upload key, format, text hash, whether it notifies,
#: the upload's correlation id): the report shows them, the public API does not.
_STORAGE_FIELDS = frozenset(
    {
        "key",
        "source",
        "format",
        "content_hash",
        "notify",
        "correlation_id",
        "translations",  # what the editor said is coming, for the fan-out's wait
        "translation_window_s",
    }
)
#: What the report (``herald report``) shows of a post.
REPORTED_POST_FIELDS = post_fields(without=_IMPORT_FIELDS)
#: What the API shows of a post (``PostOut``): what members read.
PUBLIC_POST_FIELDS = post_fields(without=_IMPORT_FIELDS | _STORAGE_FIELDS)


class CommunityProfile(BaseModel):
    """What a community page export says about its community."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str | None = None
    verified: bool = False
    members: int | None = None
    members_display: str | None = None
    created_year: int | None = None


class CommunitySettings(BaseModel):
    """A community's settings, uploaded as ``communities/<community>.json`` and stored on its
    profile item as ``settings``: its pages' default language, the languages Amazon Translate fills
    in for posts that lack them, and whether machine translations are pushed (default: shown only)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    default_language: LanguageCode | None = None
    machine_translations: Annotated[list[LanguageCode], Field(max_length=20)] = Field(default_factory=list)
    push_machine_translations: bool = False


class Community(BaseModel):
    """A community as stored: its profile plus exact counters."""

    id: str
    name: str
    description: str | None = None
    verified: bool = False
    members: int = 0
    members_baseline: int = 0
    posts: int = 0
    created_year: int | None = None
    updated_at: datetime | None = None
    #: Its ``communities/<community>.json`` upload; None: it uploaded none (the defaults apply).
    settings: CommunitySettings | None = None


class OutcomeStatus(StrEnum):
    PUBLISHED = "published"
    UPDATED = "updated"
    DUPLICATE = "duplicate"
    DELETED = "deleted"
    REJECTED = "rejected"
    #: A language variant stored before its original: it waits (see ``detail``) and is rejected
    #: if the original does not come in time.
    WAITING = "waiting"


class Outcome(BaseModel):
    """What happened to one upload. Exactly one is recorded per key, the latest event winning."""

    key: str
    status: OutcomeStatus
    post_ids: list[str] = Field(default_factory=list)
    errors: list[dict[str, str]] = Field(default_factory=list)
    community: str | None = None
    duplicate_of: str | None = None
    #: The language variant the upload changed (``posts/<c>/<name>.<lang>.<ext>``); None: the original.
    variant: str | None = None
    #: What is worth knowing but did not stop the upload (a variant's text detected as another language).
    warnings: list[str] = Field(default_factory=list)
    detail: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    sequencer: str | None = None
    version_id: str | None = None
    event_time: datetime | None = None
    processed_at: datetime
    rejected_copy: str | None = None
    correlation_id: str | None = None


ObjectEventKind = Literal["created", "removed"]
