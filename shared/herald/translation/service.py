"""Machine variants for the posts of communities that ask for them.

For each post the content table's stream shows (an original: variants have items of their own),
in a community whose settings list ``machine_translations``, each listed language that is not the
post's own and that the post lacks is translated once and stored as a ``machine`` variant:

* lacks: no human variant of that language (stored, or pending for its original), no machine
  variant made from the post's current text (``source_hash`` = its ``content_hash``), and no
  refusal recorded for that text. An edited original (a new ``content_hash``) gets its machine
  variants made again; a human variant is never replaced (the store's guard, too).
* once: what is stored is read (consistently) before each translation, so a stream record given
  again (a retried batch, a record of the post's own ``variants`` changing) makes no call for a
  (post, text, language) already done or refused. A record that changes neither the post's text
  nor takes a variant away is passed over without a read.
* one call per post and language: the title (when the editor gave one; otherwise it is derived
  from the translated text, as ingest derives it) and the text go in one text, the title first,
  then a paragraph holding only :data:`SEPARATOR`, then the text. If the answer has lost the
  separator, the title and the text are translated apart (two more calls, counted as such).

The variant is enriched as ingest enriches an upload (title, excerpt, links, hashtags, mentions,
emoji, countries, topics, counts, its own ``content_hash``), its language the target one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from herald.content import formats
from herald.content.changes import ContentChange, PostAdded, PostChanged
from herald.content.models import Post, Variant, VariantOrigin
from herald.enrichment import text as t
from herald.enrichment.pipeline import enrich
from herald.translation.languages import same_language
from herald.translation.ports import (
    AUTO,
    CommunitySettings,
    TranslationFailure,
    TranslationRefused,
    Translator,
    VariantStore,
)

log = logging.getLogger(__name__)

#: The paragraph between the title and the text in the one text sent per language (no letters:
#: a translator leaves it as it is).
SEPARATOR = "⁂"
_SPLIT = re.compile(r"\n[ \t]*" + SEPARATOR + r"[ \t]*\n")


@dataclass
class TranslationReport:
    """What one batch did."""

    #: Post versions looked at (read what is stored for), and passed over without a read.
    looked_at: int = 0
    passed_over: int = 0
    #: Translator calls asked for (a text over the translator's limit may be several requests).
    calls: int = 0
    #: (community, post id, lang) of the machine variants stored.
    stored: list[tuple[str, str, str]] = field(default_factory=list)
    #: (community, post id, lang, code) of the translations the translator refused.
    refused: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: Translations not stored: a human variant came first, or the post changed or went meanwhile.
    superseded: int = 0
    #: Answers that had lost the separator (the title and the text were then asked apart).
    separator_lost: int = 0


def compose(title: str | None, text: str) -> str:
    """The one text sent per language: the title, the separator paragraph, the text."""
    return text if title is None else f"{title}\n\n{SEPARATOR}\n\n{text}"


def split(answer: str) -> tuple[str, str] | None:
    """The title and the text of a translated :func:`compose`; None if the separator is gone."""
    parts = _SPLIT.split(answer, maxsplit=1)
    if len(parts) != 2:
        return None
    title, text = parts[0].strip(), parts[1].strip("\n")
    return (title, text) if title and text.strip() else None


def derived_title(post: Post) -> bool:
    """Whether the post's title is the one ingest derives from its text (the editor gave none)."""
    plain = t.normalise(formats.of(post.format).plain_text(post.text)) or post.text
    return t.make_title(plain, None) == post.title


def needs_look(change: ContentChange) -> Post | None:
    """The post version worth looking at, or None: a new post; an edit of its text; a change that
    took a variant away (a machine one may fill the gap). Anything else (its variants map grew, a
    release marker, a counter) changes nothing machine translation depends on."""
    if isinstance(change, PostAdded):
        return change.post if isinstance(change.post, Post) else None
    if not isinstance(change, PostChanged) or not isinstance(change.new, Post):
        return None
    new, old = change.new, change.old
    if (
        isinstance(old, Post)
        and old.content_hash == new.content_hash
        and set(old.variants) <= set(new.variants)
    ):
        return None
    return new


class MachineTranslation:
    """Machine variants for one batch of changes (``settings`` are read once per community)."""

    def __init__(
        self,
        store: VariantStore,
        translator: Translator,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.translator = translator
        self.clock = clock
        self.report = TranslationReport()
        self._settings: dict[str, CommunitySettings] = {}

    def handle(self, change: ContentChange) -> None:
        """Make the machine variants one change calls for. Raises TransientError (retry the record)."""
        post = needs_look(change)
        if post is None:
            if isinstance(change, PostAdded | PostChanged):
                self.report.passed_over += 1
            return
        wanted = self.wanted(post)
        if not wanted:
            return
        self.report.looked_at += 1
        stored = self.store.stored(post.community, post.id)
        for lang in wanted:
            previous = stored.variants.get(lang)
            if previous is not None and (
                previous.origin is VariantOrigin.HUMAN or previous.source_hash == post.content_hash
            ):
                continue
            refused = stored.failures.get(lang)
            if refused is not None and refused.source_hash == post.content_hash:
                continue
            self._fill(post, lang, previous)

    def wanted(self, post: Post) -> list[str]:
        """The community's machine languages the post may lack: not its own, not a human variant's."""
        settings = self._settings.get(post.community)
        if settings is None:
            settings = self._settings[post.community] = self.store.settings(post.community)
        return [
            lang
            for lang in settings.machine_translations
            if not same_language(lang, post.language)
            and (lang not in post.variants or post.variants[lang].origin is VariantOrigin.MACHINE)
        ]

    def _fill(self, post: Post, lang: str, previous: Variant | None) -> None:
        source = post.language or AUTO
        title = None if derived_title(post) else post.title
        try:
            answer = self._ask(compose(title, post.text), source, lang)
            if title is None:
                text = answer
            elif (parts := split(answer)) is not None:
                title, text = parts
            else:
                self.report.separator_lost += 1
                log.warning("the translation lost its separator", extra={"post_id": post.id, "lang": lang})
                title, text = self._ask(title, source, lang), self._ask(post.text, source, lang)
        except TranslationRefused as exc:
            self._refused(post, lang, exc)
            return
        variant = self.variant(post, lang, title, text, previous)
        if self.store.put_machine_variant(variant):
            self.report.stored.append((post.community, post.id, lang))
        else:
            self.report.superseded += 1

    def _ask(self, text: str, source: str, lang: str) -> str:
        self.report.calls += 1
        return self.translator.translate(text, source, lang)

    def _refused(self, post: Post, lang: str, exc: TranslationRefused) -> None:
        self.report.refused.append((post.community, post.id, lang, exc.code))
        log.warning(
            "translation refused",
            extra={"community": post.community, "post_id": post.id, "lang": lang, "code": exc.code},
        )
        self.store.record_failure(
            TranslationFailure(
                community=post.community,
                post_id=post.id,
                lang=lang,
                source_hash=post.content_hash,
                code=exc.code,
                message=str(exc),
                failed_at=self.clock(),
            )
        )

    def variant(
        self, post: Post, lang: str, title: str | None, text: str, previous: Variant | None
    ) -> Variant:
        """The machine variant of ``post`` in ``lang`` from the translated title and text."""
        now = self.clock()
        found = enrich(text, title=title, tags=post.tags, lang=lang, fmt=post.format)
        return Variant.from_enrichment(
            found,
            post_id=post.id,
            community=post.community,
            lang=lang,
            key=post.key,
            origin=VariantOrigin.MACHINE,
            format=post.format,
            language=lang,
            source_hash=post.content_hash,
            version=previous.version + 1 if previous is not None else 1,
            created_at=previous.created_at if previous is not None else now,
            updated_at=now,
            correlation_id=post.correlation_id,
        )
