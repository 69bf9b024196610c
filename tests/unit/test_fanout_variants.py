"""Delivery of language variants, the pure rules: which languages a post is pushed in, which members
it matches, the one language each member is pushed, a follow-up's members, and what a job carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from herald.content.models import Post, VariantOrigin, VariantSummary
from herald.fanout.channels import Channels, Localized
from herald.fanout.channels.web import WebPushChannel, notification
from herald.fanout.jobs import PostSummary, PushJob, Target, VariantText
from herald.fanout.rules import (
    chosen_language,
    pack,
    post_languages,
    reads,
    summary_of,
    targets,
    wants,
)
from herald.members.rules import Member, Preferences, WebPushSubscription

SITE = "https://herald.example"
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
P256DH = "BOrKq5bPmSnNNtE3MPCr-ER-bG0RADQzbzUFvwhyLQ5uOxSTvm1MB25r4P3wgmo54v0uj-y3pUw4qiWkE9M6ge4"
WEB = WebPushSubscription.model_validate(
    {"endpoint": "https://push.example/x", "keys": {"p256dh": P256DH, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}
)


def _text(lang: str) -> VariantText:
    return VariantText(f"Title {lang}", f"Excerpt {lang}", f"{SITE}/harbour/{lang}/posts/p1/")


def _post(language: str | None = "en", *variants: str, topics: tuple[str, ...] = ("health",)) -> PostSummary:
    return PostSummary(
        "harbour",
        "p1",
        "Title",
        "Excerpt",
        f"{SITE}/harbour/posts/p1/",
        language=language,
        topics=topics,
        variants={lang: _text(lang) for lang in variants},
    )


def _member(member_id: str = "m1", **prefs: object) -> Member:
    return Member(
        community="harbour",
        member_id=member_id.ljust(32, "0"),
        shard=0,
        token_hash="0" * 64,
        subscriptions=["s"],
        web_push=WEB,
        preferences=Preferences.model_validate(prefs),
        joined_at=NOW,
        updated_at=NOW,
    )


# ----------------------------------------------------------------------------- the post's languages


def test_the_post_is_pushed_in_its_original_and_its_variants() -> None:
    assert post_languages(_post("en", "fr", "ar")) == ("en", "fr", "ar")
    assert post_languages(_post("en")) == ("en",)
    assert post_languages(_post(None, "fr")) == ("fr",)  # an original of unknown language
    assert post_languages(_post(None)) == ()


def _stored(**variants: VariantOrigin) -> Post:
    at = NOW
    return Post(
        id="p1",
        community="harbour",
        key="posts/harbour/p1.txt",
        title="Title",
        text="Text",
        excerpt="Excerpt",
        language="en",
        content_hash="0" * 64,
        created_at=at,
        updated_at=at,
        variants={
            lang: VariantSummary(
                lang=lang, title=f"T {lang}", excerpt=f"E {lang}", origin=origin, updated_at=at
            )
            for lang, origin in variants.items()
        },
    )


def test_machine_variants_are_pushed_only_when_the_community_pushes_them() -> None:
    post = _stored(fr=VariantOrigin.HUMAN, ar=VariantOrigin.MACHINE)
    shown = summary_of(post, SITE)
    assert set(shown.variants) == {"fr"} and not shown.push_machine
    assert shown.variants["fr"] == VariantText("T fr", "E fr", f"{SITE}/harbour/fr/posts/p1/")
    pushed = summary_of(post, SITE, push_machine=True)
    assert set(pushed.variants) == {"ar", "fr"} and pushed.push_machine
    assert pushed.variants["ar"].url == f"{SITE}/harbour/ar/posts/p1/"
    assert summary_of(post, SITE).url == f"{SITE}/harbour/posts/p1/"


# ----------------------------------------------------------------------------- matching and choosing


@pytest.mark.parametrize(
    ("member", "post", "reads_it"),
    [
        ("pt", "pt", True),
        ("pt", "pt-br", True),  # a member's primary language reads its regions
        ("pt-br", "pt", True),  # and a region reads the primary language
        ("pt-br", "pt-pt", False),  # two regions: not matched
        ("zh", "zh-hant", True),
        ("zh-hans", "zh-hant", False),
        ("PT", "pt-BR", True),  # case does not matter
        ("pt", "en", False),
        ("p", "pt", False),
    ],
)
def test_regional_codes(member: str, post: str, reads_it: bool) -> None:
    assert reads(member, post) is reads_it


@pytest.mark.parametrize(
    ("languages", "post", "wanted", "chosen"),
    [
        ([], _post("en", "fr"), True, None),  # no list: everything, in the original
        (["fr"], _post("en", "fr"), True, "fr"),
        (["en"], _post("en", "fr"), True, None),  # the original is not written on the target
        (["ar", "fr"], _post("en", "fr"), True, "fr"),  # the first of the list the post has
        (["fr", "ar"], _post("en", "fr", "ar"), True, "fr"),
        (["ar", "fr"], _post("en", "fr", "ar"), True, "ar"),
        (["de"], _post("en", "fr"), False, None),  # none of its languages: no push
        (["de", "en"], _post("en", "fr"), True, None),
        (["fr"], _post("en"), False, None),  # a post without variants: today's rule
        (["en"], _post("en"), True, None),
        (["fr"], _post(None, "fr"), True, "fr"),  # original of unknown language
        (["en"], _post(None, "fr"), False, None),
        (["pt"], _post("en", "pt-br"), True, "pt-br"),
        (["pt"], _post("en", "pt", "pt-br"), True, "pt"),  # the same code before a region of it
        (["pt"], _post("pt-br", "en"), True, None),  # the original is pt-br: the original
        (["es", "pt"], _post("en", "pt-br", "es"), True, "es"),
    ],
)
def test_the_member_matches_and_is_pushed_one_language(
    languages: list[str], post: PostSummary, wanted: bool, chosen: str | None
) -> None:
    member = _member(languages=languages)
    assert wants(member, post) is wanted
    if wanted:
        assert chosen_language(member.preferences.languages, post) == chosen
        [target] = targets(member, post, NOW.timestamp(), Channels([WebPushChannel(lambda: None)]))  # type: ignore[arg-type,return-value]
        assert target.lang == chosen


def test_muted_and_topics_hold_for_every_language() -> None:
    post = _post("en", "fr", topics=("health",))
    assert not wants(_member(muted=True, languages=["fr"]), post)
    assert not wants(_member(languages=["fr"], topics=["education"]), post)
    assert wants(_member(languages=["fr"], topics=["health", "education"]), post)


# ----------------------------------------------------------------------------- a variant that came late


def _follow_up(lang: str, pushed: tuple[str, ...]) -> PostSummary:
    post = _post("en", lang)
    return PostSummary(**{**post.__dict__, "follow_up": lang, "pushed": pushed})


@pytest.mark.parametrize(
    ("languages", "pushed", "late", "wanted"),
    [
        ([], ("en",), "fr", False),  # the first push matched them: pushed then
        (["fr"], ("en",), "fr", True),  # matched nothing then, reads the new one
        (["ar", "fr"], ("en",), "fr", True),
        (["de"], ("en",), "fr", False),  # does not read it
        (["en", "fr"], ("en",), "fr", False),  # read the original: pushed then
        (["ar", "fr"], ("en", "fr"), "ar", False),  # an earlier follow-up pushed them fr
        (["ar"], ("en", "fr"), "ar", True),
        (["pt"], ("en",), "pt-br", True),
        (["pt"], ("en", "pt-pt"), "pt-br", False),  # pt read pt-pt at the first push
    ],
)
def test_a_follow_up_reaches_only_members_no_push_matched(
    languages: list[str], pushed: tuple[str, ...], late: str, wanted: bool
) -> None:
    post = _follow_up(late, pushed)
    member = _member(languages=languages)
    assert wants(member, post) is wanted
    assert post_languages(post) == (late,)
    if wanted:
        assert chosen_language(member.preferences.languages, post) == late
    assert not wants(_member(languages=languages, muted=True), post)


# ----------------------------------------------------------------------------- the job on the wire


def _job(post: PostSummary, langs: list[str | None]) -> PushJob:
    found = [
        Target.trusted(
            f"m{i}".ljust(32, "0"),
            "web",
            f"s{i}",
            web_push=WEB.model_dump(mode="json"),
            lang=lang,
        )
        for i, lang in enumerate(langs)
    ]
    [job] = pack(post, found)
    return job


def test_a_target_carries_its_language_only_when_not_the_original() -> None:
    job = _job(_post("en", "fr", "ar"), [None, "fr"])
    body = json.loads(job.as_json())
    first, second = body["members"]
    assert "l" not in first and second["l"] == "fr"
    # The job carries the texts of the variants its members read, once: fr, not ar.
    assert set(body["post"]["variants"]) == {"fr"}
    assert body["post"]["variants"]["fr"] == {
        "title": "Title fr",
        "excerpt": "Excerpt fr",
        "url": f"{SITE}/harbour/fr/posts/p1/",
    }
    back = PushJob.model_validate_json(job.as_json())
    assert back == job and back.targets[1].lang == "fr"


def test_a_post_without_variants_is_the_json_it_always_was() -> None:
    body = json.loads(_job(_post("en"), [None, None]).as_json())
    assert set(body["post"]) == {
        "community",
        "post_id",
        "title",
        "excerpt",
        "url",
        "language",
        "topics",
        "publish_at",
        "started_at",
        "correlation_id",
    }
    # A job of members all in the original carries no variant text either.
    body = json.loads(_job(_post("en", "fr"), [None, None]).as_json())
    assert "variants" not in body["post"]


def test_push_job_bytes_per_member_with_and_without_variants() -> None:
    """100 members a job; with variants every fourth member reads one of three (the texts once)."""
    langs: list[str | None] = [(None, "fr", "ar", "es")[i % 4] for i in range(100)]
    without = len(_job(_post("en"), [None] * 100).as_json().encode())
    with_variants = len(_job(_post("en", "fr", "ar", "es"), langs).as_json().encode())
    per_member = (with_variants - without) / 100
    # Each member reading a variant adds ``,"l":"fr"`` (9 bytes); the three texts once per job.
    assert per_member < 12, (without, with_variants)
    assert with_variants < 256 * 1024


# ----------------------------------------------------------------------------- messages, once per language


def test_each_language_s_notification_is_made_once_per_job() -> None:
    made: list[str | None] = []

    class Counting(WebPushChannel):
        def message(self, post: PostSummary) -> bytes:
            made.append(post.language)
            return notification(post)

    channels = Channels([Counting(lambda: None)])  # type: ignore[arg-type,return-value]
    job = _job(_post("en", "fr", "ar"), [None, "fr", "fr", None, "ar", "fr"])
    messages = channels.messages(job.post, job.targets)
    assert sorted(made, key=str) == ["ar", "en", "fr"]
    localized = messages["web"]
    assert isinstance(localized, Localized)
    fr = json.loads(localized.get("fr"))
    assert fr["lang"] == "fr" and fr["title"] == "Title fr" and fr["body"] == "Excerpt fr"
    assert fr["url"] == f"{SITE}/harbour/fr/posts/p1/"
    en = json.loads(localized.get(None))
    assert en["lang"] == "en" and en["title"] == "Title" and en["url"] == f"{SITE}/harbour/posts/p1/"
    assert fr["tag"] == en["tag"] == "post-p1"  # the same notification for every language
    assert localized.post("fr").post_id == localized.post(None).post_id == "p1"


def test_the_community_setting_that_pushes_machine_translations() -> None:
    from types import SimpleNamespace

    from herald.site.publisher import _pushes_machine

    assert _pushes_machine(None) is False  # no settings: shown, not pushed
    assert _pushes_machine({}) is False
    assert _pushes_machine({"push_machine_translations": True}) is True
    assert _pushes_machine({"push_machine_translations": "yes"}) is False  # only a true boolean
    assert _pushes_machine(SimpleNamespace(push_machine_translations=True)) is True
    assert _pushes_machine(SimpleNamespace(default_language="en")) is False
