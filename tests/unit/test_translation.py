"""Machine translation's rules without AWS: the pieces a long text is sent in, the one text per
language (title, separator, text), which records are worth a read, Translate's language codes, and
the service's decisions against an in-memory store and translator (the ports, not Herald's code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from herald.content.changes import PostAdded, PostChanged
from herald.content.models import Post, Variant, VariantOrigin, VariantSummary
from herald.translation.adapters.amazon_translate import pieces
from herald.translation.languages import amazon_code, same_language
from herald.translation.ports import CommunitySettings, StoredTranslations, TranslationFailure
from herald.translation.service import SEPARATOR, MachineTranslation, compose, needs_look, split

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

paragraph = st.text(alphabet=st.sampled_from("ab é漢🙂.\n "), max_size=120)


@settings(max_examples=300, deadline=None)
@given(st.lists(paragraph, max_size=12), st.integers(min_value=8, max_value=200))
def test_pieces_put_back_together_are_the_text_and_each_fits(parts: list[str], limit: int) -> None:
    text = "\n\n".join(parts)
    cut = pieces(text, limit)
    assert "".join(p + s for p, s in cut) == text
    assert all(len(p.encode()) <= limit for p, _ in cut)


def test_a_text_under_the_limit_is_one_piece_and_a_long_one_is_cut_at_paragraphs() -> None:
    assert pieces("one\n\ntwo", 10_000) == [("one\n\ntwo", "")]
    text = "\n\n".join(["a" * 4000, "b" * 4000, "c" * 4000])
    assert pieces(text, 10_000) == [("a" * 4000 + "\n\n" + "b" * 4000, "\n\n"), ("c" * 4000, "")]


def test_the_title_and_the_text_travel_together_and_come_apart() -> None:
    sent = compose("Title", "Body\n\nmore")
    assert sent == f"Title\n\n{SEPARATOR}\n\nBody\n\nmore"
    assert split(sent) == ("Title", "Body\n\nmore")
    assert split("Titre\n\nCorps") is None  # the separator lost: asked apart
    assert compose(None, "Body") == "Body"


def test_herald_codes_as_translate_spells_them() -> None:
    assert [amazon_code(c) for c in ("fr", "pt-br", "pt-pt", "zh-hant", "zh-hans", "de-at", "nb")] == [
        "fr",
        "pt",
        "pt-PT",
        "zh-TW",
        "zh",
        "de",
        "no",
    ]
    assert same_language("en-gb", "en") and not same_language("pt", "pt-pt") and not same_language(None, "en")


def _post(text: str = "The clinic opens at eight.", **values: object) -> Post:
    fields: dict[str, object] = {
        "id": "p1",
        "community": "c",
        "key": "posts/c/clinic.txt",
        "title": "The clinic opens at eight",
        "text": text,
        "excerpt": text,
        "language": "en",
        "content_hash": "h1",
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(values)
    return Post.model_validate(fields)


def _summary(lang: str, origin: VariantOrigin) -> VariantSummary:
    return VariantSummary(lang=lang, title="t", excerpt="e", origin=origin, updated_at=NOW)


def test_only_new_posts_edits_and_lost_variants_are_worth_a_read() -> None:
    post = _post()
    machine = {"fr": _summary("fr", VariantOrigin.MACHINE)}
    assert needs_look(PostAdded(event_id="1", community="c", post_id="p1", post=post)) == post
    grew = PostChanged(
        event_id="2", community="c", post_id="p1", old=post, new=post.model_copy(update={"variants": machine})
    )
    assert needs_look(grew) is None  # its own variant's summary, a release marker: nothing to do
    lost = PostChanged(event_id="3", community="c", post_id="p1", old=grew.new, new=post)
    assert needs_look(lost) == post
    edited = post.model_copy(update={"content_hash": "h2"})
    assert needs_look(PostChanged(event_id="4", community="c", post_id="p1", old=post, new=edited)) == edited


@dataclass
class MemoryStore:
    languages: tuple[str, ...]
    variants: dict[str, Variant] = field(default_factory=dict)
    failures: dict[str, TranslationFailure] = field(default_factory=dict)
    reads: int = 0

    def settings(self, community: str) -> CommunitySettings:
        return CommunitySettings(machine_translations=self.languages)

    def stored(self, community: str, post_id: str) -> StoredTranslations:
        self.reads += 1
        return StoredTranslations(variants=dict(self.variants), failures=dict(self.failures))

    def put_machine_variant(self, variant: Variant) -> bool:
        if (old := self.variants.get(variant.lang)) is not None and old.origin is VariantOrigin.HUMAN:
            return False
        self.variants[variant.lang] = variant
        return True

    def record_failure(self, failure: TranslationFailure) -> None:
        self.failures[failure.lang] = failure


@dataclass
class Echo:
    """A translator that keeps the text and says which language it was asked for."""

    drop_separator: bool = False
    asked: list[tuple[str, str, str]] = field(default_factory=list)

    def translate(self, text: str, source_lang: str, target_lang: str) -> str:
        self.asked.append((text, source_lang, target_lang))
        if self.drop_separator:
            text = text.replace(SEPARATOR, "***")
        return f"<{target_lang}> {text}"


def test_the_post_own_language_and_human_variants_are_not_translated() -> None:
    store, echo = MemoryStore(("en-gb", "fr", "ar")), Echo()
    post = _post(variants={"ar": _summary("ar", VariantOrigin.HUMAN)})
    MachineTranslation(store, echo, clock=lambda: NOW).handle(
        PostAdded(event_id="1", community="c", post_id="p1", post=post)
    )
    assert [(s, t) for _, s, t in echo.asked] == [("en", "fr")]
    made = store.variants["fr"]
    assert made.origin is VariantOrigin.MACHINE and made.source_hash == "h1" and made.language == "fr"
    assert made.title.startswith("<fr> The clinic")  # a derived title: from the translated text


def test_an_editors_title_lost_separator_is_asked_apart() -> None:
    store, echo = MemoryStore(("fr",)), Echo(drop_separator=True)
    post = _post(title="Clinic hours")
    service = MachineTranslation(store, echo, clock=lambda: NOW)
    service.handle(PostAdded(event_id="1", community="c", post_id="p1", post=post))
    assert [text for text, _, _ in echo.asked][1:] == ["Clinic hours", post.text]
    assert store.variants["fr"].title == "<fr> Clinic hours" and service.report.separator_lost == 1
    assert service.report.calls == 3
