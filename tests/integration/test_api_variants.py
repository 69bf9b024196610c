"""The API answers a post in the language asked (``?lang=`` or ``Accept-Language``), from the
variant items in the content table (moto), and lists its variants with their pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from herald.content.models import Post, Variant, VariantOrigin
from tests.integration.api_events import response_json
from tests.integration.conftest import Api
from tests.integration.test_api import COMMUNITY, post, seed

T1 = datetime(2024, 2, 1, tzinfo=UTC)


def _variant(p: Post, lang: str, *, machine: bool = False) -> Variant:
    return Variant(
        post_id=p.id,
        community=COMMUNITY,
        lang=lang,
        key=p.key.replace(".txt", f".{lang}.txt"),
        origin=VariantOrigin.MACHINE if machine else VariantOrigin.HUMAN,
        title=f"{p.title} [{lang}]",
        text=f"{p.text} [{lang}] #{lang}tag",
        excerpt=f"{p.excerpt} [{lang}]",
        hashtags=[f"{lang}tag"],
        language=lang,
        content_hash="f" * 64,
        created_at=T1,
        updated_at=T1,
    )


def with_variants(api: Api, p: Post, variants: list[Variant]) -> Post:
    """The post item with its ``variants`` and each variant's own item, as the ingest writes them."""
    from herald.core.aws import to_item

    p = p.model_copy(update={"variants": {v.lang: v.summary() for v in variants}})
    seed(api, [p])
    for v in variants:
        item = {
            **v.model_dump(mode="json"),
            "pk": f"C#{COMMUNITY}",
            "sk": f"VAR#{p.id}#{v.lang}",
            "type": "variant",
        }
        api.ddb.put_item(TableName=api.content_table, Item=to_item(item))
    return p


@pytest.fixture
def notice(api: Api) -> Post:
    original = post(1)
    return with_variants(api, original, [_variant(original, "fr"), _variant(original, "ar", machine=True)])


def get(api: Api, path: str, headers: dict[str, str] | None = None, **query: str) -> dict[str, Any]:
    return api.call("GET", f"/communities/{COMMUNITY}{path}", headers=headers, query=query or None)


def test_lang_answers_the_variant_and_lists_every_variant(api: Api, notice: Post) -> None:
    answer = get(api, f"/posts/{notice.id}", lang="ar")
    assert answer["statusCode"] == 200, answer
    body = response_json(answer)
    assert body["lang"] == "ar" and body["machine"] is True
    assert body["title"] == "Post 1 [ar]" and body["text"].endswith("[ar] #artag")
    assert body["hashtags"] == ["artag"]
    assert body["language"] == "en"  # the original's
    site = api.environment.get("PUBLIC_SITE_URL", "https://herald.example").rstrip("/")
    assert body["variants"] == [
        {"lang": "ar", "machine": True, "url": f"{site}/{COMMUNITY}/ar/posts/{notice.id}/"},
        {"lang": "fr", "machine": False, "url": f"{site}/{COMMUNITY}/fr/posts/{notice.id}/"},
    ]


def test_accept_language_by_q_values(api: Api, notice: Post) -> None:
    def lang_of(header: str) -> tuple[str, str]:
        body = response_json(get(api, f"/posts/{notice.id}", headers={"Accept-Language": header}))
        return body["lang"], body["title"]

    assert lang_of("de, fr;q=0.8, ar;q=0.9") == ("ar", "Post 1 [ar]")
    assert lang_of("fr-CA, en;q=0.5") == ("fr", "Post 1 [fr]")
    assert lang_of("en, fr") == ("en", "Post 1")
    assert lang_of("de, es") == ("en", "Post 1")  # none it has: the original
    assert lang_of("fr;q=0, ar;q=0.1") == ("ar", "Post 1 [ar]")  # q=0 is "not this one"
    # ?lang wins over the header.
    body = response_json(get(api, f"/posts/{notice.id}", headers={"Accept-Language": "ar"}, lang="fr"))
    assert body["lang"] == "fr" and body["machine"] is False


def test_a_language_the_post_lacks_answers_the_original(api: Api, notice: Post) -> None:
    body = response_json(get(api, f"/posts/{notice.id}", lang="es"))
    assert body["lang"] == "en" and body["title"] == "Post 1" and body["machine"] is False


@pytest.mark.parametrize("bad", ["xx", "french", "f", "fr_", "12", "<script>", "fr-" + "x" * 40])
def test_an_unsupported_lang_is_a_clear_400(api: Api, notice: Post, bad: str) -> None:
    for path in (f"/posts/{notice.id}", "/posts"):
        answer = get(api, path, lang=bad)
        assert answer["statusCode"] == 400, answer
        error = response_json(answer)["error"]
        assert error.startswith("unsupported language") and "ISO 639-1" in error, error


def test_the_list_answers_each_post_in_the_language_asked(api: Api, notice: Post) -> None:
    plain = post(2)
    seed(api, [plain])
    answer = get(api, "/posts", lang="fr")
    assert answer["statusCode"] == 200, answer
    items = {p["id"]: p for p in response_json(answer)["items"]}
    assert items[notice.id]["lang"] == "fr" and items[notice.id]["title"] == "Post 1 [fr]"
    assert items[plain.id]["lang"] == "en" and items[plain.id]["variants"] == []
    header = response_json(get(api, "/posts", headers={"Accept-Language": "ar, fr;q=0.5"}))
    assert {p["id"]: p["lang"] for p in header["items"]} == {notice.id: "ar", plain.id: "en"}
    default = response_json(get(api, "/posts"))
    assert {p["id"]: p["lang"] for p in default["items"]} == {notice.id: "en", plain.id: "en"}


def test_the_document_describes_lang_and_variants() -> None:
    from herald.api.app import openapi
    from herald.api.settings import ApiSettings

    doc = openapi(ApiSettings(content_table="c", members_table="m", member_token_secret_arn="s"))
    for path in ("/communities/{id}/posts", "/communities/{id}/posts/{post_id}"):
        operation = doc["paths"][path]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"lang", "accept-language"} <= {n.lower() for n in names}, names
        assert "400" in operation["responses"]
    schemas = doc["components"]["schemas"]
    post_out = schemas["PostOut"]["properties"]
    assert {"lang", "machine", "variants"} <= set(post_out)
    assert set(schemas["VariantLink"]["properties"]) == {"lang", "machine", "url"}
