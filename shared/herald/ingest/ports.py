"""The small interfaces ingest needs from the outside world: the uploads bucket and the content store.

Adapters in ``herald.ingest.adapters`` implement them on AWS; tests may implement them in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from herald.content.models import (
    Community,
    CommunityProfile,
    CommunitySettings,
    Outcome,
    Post,
    Variant,
    VariantSummary,
)

if TYPE_CHECKING:
    from herald.ingest.events import VariantCheck


class ObjectStore(Protocol):
    """The uploads bucket."""

    def read(self, bucket: str, key: str, version_id: str | None, max_bytes: int) -> bytes | None:
        """At most ``max_bytes + 1`` bytes of the object (so callers can tell it is too big);
        None if the object (or that version) no longer exists."""
        ...

    def keep_rejected(
        self, bucket: str, key: str, version_id: str | None, report: dict[str, Any]
    ) -> str | None:
        """Copy the original beside its rejection report; returns the copy's key (None if gone)."""
        ...


class Checks(Protocol):
    """Ingest's own delayed messages (its queue): the check of a variant waiting for its original."""

    def schedule(self, check: VariantCheck, delay_s: float) -> None:
        """Deliver ``check`` to ingest in ``delay_s`` seconds (at most the queue's longest delay:
        a check delivered before it is due is scheduled again)."""
        ...


@dataclass(frozen=True, slots=True)
class PostRef:
    """Enough of a stored post to delete it: where it is, the text hash it claims, the key it came from."""

    community: str
    id: str
    content_hash: str
    key: str


@dataclass(frozen=True, slots=True)
class Waiting:
    """A post held back as a duplicate, kept whole so it can take the original's place later.

    ``sequencer`` is the one of the event that recorded it (the key's outcome reflects it);
    ``since`` orders the waiting duplicates of one text, the oldest taking the place first.
    """

    post: Post
    sequencer: str | None
    since: str

    @property
    def ref(self) -> PostRef:
        return PostRef(self.post.community, self.post.id, self.post.content_hash, self.post.key)


@dataclass(frozen=True, slots=True)
class Promotion:
    """A waiting duplicate published in place of the post that held its text (``previous_owner``).

    ``waiting`` is how many duplicates the text's claim counted when it was read (the guard: the
    claim passes to the new post only if none arrived or left meanwhile).
    """

    waiting: Waiting
    previous_owner: str
    claim_waiting: int


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """How far the import of one event of an export got in the runs that stopped before the end."""

    sequencer: str | None
    runs: int = 0
    removed: int = 0


@dataclass
class KeyRecord:
    """Everything one key has in the content store, whatever its outcome says.

    ``published``: the posts the key published (post id -> ref, and the sequencer of the event
    that created each); ``waiting``: its duplicates waiting for their original to go.
    """

    published: dict[str, PostRef] = field(default_factory=dict)
    created_by: dict[str, str | None] = field(default_factory=dict)
    waiting: dict[str, PostRef] = field(default_factory=dict)
    progress: ImportProgress | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """Which post holds a text in a community, and how many duplicates wait for it."""

    owner: str
    waiting: int = 0


@dataclass
class Lookup:
    """One read before a decision: posts, text claims, and the key's waiting duplicates.

    ``revisions``: each post's variants revision (0 when it never had a variant), the guard that
    keeps a post's write from undoing a variant's written meanwhile (and the other way round).
    """

    posts: dict[str, Post] = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)
    waiting: dict[str, PostRef] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)

    def owner(self, content_hash: str) -> str | None:
        claim = self.claims.get(content_hash)
        return claim.owner if claim else None


@dataclass(frozen=True, slots=True)
class Stem:
    """What the content store knows of a stem (``posts/<community>/<name>``): the original that
    holds it (its id and key; None before one is stored) and how many variants wait for one."""

    post_id: str | None = None
    key: str | None = None
    pending: int = 0


@dataclass
class VariantContext:
    """One read before a variant's decision (see ``ContentStore.variant_context``).

    ``posts``: the stored posts among the original's candidate keys; ``stem``: the stem record;
    ``variants``: the variant items of this language, by the id they are stored under (a post's
    id, or the stem's id while pending); ``revisions``: as in :class:`Lookup`."""

    stem: Stem | None = None
    posts: dict[str, Post] = field(default_factory=dict)
    variants: dict[str, Variant] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VariantsOfPost:
    """A post's ``variants`` map rewritten, guarded by the post's version and variants revision."""

    community: str
    post_id: str
    variants: dict[str, VariantSummary]
    expected_version: int
    expected_revision: int


@dataclass(frozen=True, slots=True)
class StemChange:
    """A change to a stem record.

    ``owner``/``owner_key``: the original claims the stem (only while no other post holds it and
    exactly ``expect_pending`` variants wait; the waiting count is then reset, they are adopted);
    ``pending_delta``: a variant starts or stops waiting (only while no original holds the stem);
    ``release``: the original that holds it (``owner``) is deleted."""

    community: str
    stem_id: str
    stem: str
    owner: str | None = None
    owner_key: str | None = None
    expect_pending: int = 0
    pending_delta: int = 0
    release: bool = False


@dataclass
class Change:
    """One atomic change to the content store: all of it happens, or none.

    ``expect_sequencer`` guards the upload record: the change applies only if the record still
    holds that sequencer (None: only if there is no record yet). Every created post is recorded as
    published by its key (with ``since``, the sequencer of the event creating it), every deleted
    post is forgotten there, in the same write. A text claim can only be released while no
    duplicate waits for it (``release_hashes``/``delete_posts`` fail otherwise); a promotion passes
    the claim on instead.
    """

    outcome: Outcome | None = None
    expect_sequencer: str | None = None
    create_posts: list[Post] = field(default_factory=list)
    update_posts: list[tuple[Post, int]] = field(default_factory=list)  # (new post, expected version)
    delete_posts: list[Post | PostRef] = field(default_factory=list)
    release_hashes: list[tuple[str, str, str]] = field(default_factory=list)  # community, hash, owner
    profile: tuple[str, CommunityProfile] | None = None  # community, what its export says
    since: str | None = None
    #: duplicates to hold back (each counted on the claim of the text they repeat) and to let go
    wait: list[Waiting] = field(default_factory=list)
    refresh_wait: list[Waiting] = field(default_factory=list)  # already waiting: new content only
    unwait: list[PostRef] = field(default_factory=list)
    promote: list[Promotion] = field(default_factory=list)
    #: outcomes of other keys (a promoted duplicate's), each guarded by its expected sequencer
    other_outcomes: list[tuple[Outcome, str | None]] = field(default_factory=list)
    #: (community, hash) -> duplicates the text's claim counted when read: a released claim must
    #: still count no more (a stale count with nothing waiting is released as read)
    claims_seen: dict[tuple[str, str], int] = field(default_factory=dict)
    #: an export import that stops before the end records how far it got; the last step clears it
    progress: tuple[str, ImportProgress] | None = None
    clear_progress: str | None = None  # the key
    #: (community, post id) -> variants revision read: an updated or deleted post must still have it
    post_revisions: dict[tuple[str, str], int] = field(default_factory=dict)
    #: variant items to put (each with the version it replaces; None: there must be none)
    put_variants: list[tuple[Variant, int | None]] = field(default_factory=list)
    #: variant items to delete: (community, the id it is stored under, lang)
    delete_variants: list[tuple[str, str, str]] = field(default_factory=list)
    post_variants: list[VariantsOfPost] = field(default_factory=list)
    stems: list[StemChange] = field(default_factory=list)
    #: a community's settings (None in the pair: removed)
    settings: tuple[str, CommunitySettings | None] | None = None

    def is_empty(self) -> bool:
        return not any(
            (
                self.outcome,
                self.create_posts,
                self.update_posts,
                self.delete_posts,
                self.release_hashes,
                self.profile,
                self.wait,
                self.refresh_wait,
                self.unwait,
                self.promote,
                self.other_outcomes,
                self.progress,
                self.clear_progress,
                self.put_variants,
                self.delete_variants,
                self.post_variants,
                self.stems,
                self.settings,
            )
        )


class ContentStore(Protocol):
    """Posts, communities, duplicate claims, what each key published and upload outcomes."""

    def outcome(self, key: str) -> Outcome | None: ...

    def posts(self, community: str, post_ids: Sequence[str]) -> dict[str, Post]: ...

    def lookup(
        self, community: str, post_ids: Sequence[str], hashes: Sequence[str], key: str | None = None
    ) -> Lookup:
        """In one read: the posts that exist among ``post_ids``, the claims of ``hashes``, and (with
        ``key``) which of ``post_ids`` wait as duplicates of that key."""
        ...

    def claims(self, community: str, hashes: Sequence[str]) -> dict[str, Claim]:
        """The claims that exist among ``hashes`` (strongly consistent)."""
        ...

    def key_record(self, key: str) -> KeyRecord:
        """What ``key`` has in the store: published posts, waiting duplicates, import progress."""
        ...

    def waiting_for(self, community: str, content_hash: str) -> list[Waiting]:
        """The duplicates waiting for a text of the community, oldest first."""
        ...

    def variant_context(
        self, community: str, stem_id: str | None, candidate_ids: Sequence[str], lang: str
    ) -> VariantContext:
        """In one read: the stem, the posts among ``candidate_ids`` and the ``lang`` variant items
        stored under each of them and under the stem's id (no stem: ``stem_id`` None)."""
        ...

    def stem(self, community: str, stem_id: str) -> Stem | None:
        """The stem record (strongly consistent), None when there is none."""
        ...

    def pending_variants(self, community: str, stem_id: str) -> list[Variant]:
        """The variants waiting under a stem's id for their original (one Query)."""
        ...

    def variants(self, community: str, post_id: str) -> dict[str, Variant]:
        """A post's variant items, by language (one Query)."""
        ...

    def put_machine_variant(self, variant: Variant) -> bool:
        """Store a machine translation of a post (never over a human variant); whether it stored."""
        ...

    def fits(self, change: Change) -> bool:
        """Whether ``change`` can be written as one atomic write."""
        ...

    def commit(self, change: Change) -> None:
        """Apply ``change`` atomically; raise ConcurrentUpdate if a guard no longer holds."""
        ...

    # reads for reports and APIs
    def communities(self) -> Iterable[Community]: ...

    def community_posts(self, community: str) -> Iterable[Post]: ...

    def outcomes(self) -> Iterable[Outcome]: ...
