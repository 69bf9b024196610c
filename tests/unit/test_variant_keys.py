"""The upload layout's rules for language variants and community settings (herald.ingest.layout)."""

from __future__ import annotations

import pytest

from herald.content.languages import is_known_language
from herald.core.errors import InvalidUpload
from herald.ingest.layout import UploadKind, derive_post_id, parse_key


@pytest.mark.parametrize(
    ("key", "lang", "fmt"),
    [
        ("posts/demo/clinic.fr.txt", "fr", "txt"),
        ("posts/demo/clinic.ar.md", "ar", "md"),
        ("posts/demo/clinic.pt-br.json", "pt-br", "json"),
        ("posts/demo/clinic.zh-hant.txt", "zh-hant", "txt"),
        ("posts/demo/Clinic hours 2026.es.MD", "es", "md"),
    ],
)
def test_a_language_before_the_extension_makes_a_variant(key: str, lang: str, fmt: str) -> None:
    upload = parse_key(key)
    assert (upload.kind, upload.lang, upload.fmt) == (UploadKind.VARIANT, lang, fmt)


def test_a_variant_shares_its_stem_with_every_format_of_its_original() -> None:
    variant = parse_key("posts/demo/clinic.fr.md")
    original = parse_key("posts/demo/clinic.json")
    assert variant.stem == original.stem == "posts/demo/clinic"
    assert variant.stem_id == original.stem_id
    assert variant.original_keys() == (
        "posts/demo/clinic.txt",
        "posts/demo/clinic.md",
        "posts/demo/clinic.json",
    )
    # the original's id is the one it always had (derived from its key with the extension)
    assert variant.original_ids()["posts/demo/clinic.json"] == original.post_id
    assert original.post_id == derive_post_id("demo", "posts/demo/clinic.json")
    # the stem's id is no post's id
    assert variant.stem_id not in variant.original_ids().values()


@pytest.mark.parametrize(
    "key",
    ["posts/demo/report.v2.txt", "posts/demo/notes.2024.md", "posts/demo/a.b-c.d.txt", "posts/demo/x.txt"],
)
def test_a_dotted_name_that_names_no_language_is_an_ordinary_post(key: str) -> None:
    upload = parse_key(key)
    assert (upload.kind, upload.lang) == (UploadKind.POST, None)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("posts/demo/clinic.xx.txt", "unknown language code 'xx' in 'posts/demo/clinic.xx.txt'"),
        ("posts/demo/clinic.eng.txt", "unknown language code 'eng' in 'posts/demo/clinic.eng.txt'"),
        ("posts/demo/clinic.qq-br.md", "unknown language code 'qq-br'"),
        (
            "posts/demo/clinic.FR.txt",
            "language code 'FR' in 'posts/demo/clinic.FR.txt' must be lowercase: 'fr'",
        ),
    ],
)
def test_a_code_that_looks_like_a_language_but_is_none_is_refused(key: str, message: str) -> None:
    with pytest.raises(InvalidUpload) as caught:
        parse_key(key)
    [problem] = caught.value.problems
    assert problem.loc == "key" and message in problem.message


def test_exports_have_no_variants() -> None:
    upload = parse_key("exports/demo/page.fr.txt")
    assert (upload.kind, upload.lang) == (UploadKind.EXPORT, None)


def test_community_settings_keys() -> None:
    upload = parse_key("communities/iom-lebanon.json")
    assert (upload.kind, upload.community, upload.fmt) == (UploadKind.SETTINGS, "iom-lebanon", "json")
    for bad in (
        "communities/demo.md",
        "communities/x/demo.json",
        "communities/Demo.json",
        "communities/.json",
    ):
        with pytest.raises(InvalidUpload):
            parse_key(bad)


@pytest.mark.parametrize(
    ("code", "known"), [("fr", True), ("pt-br", True), ("xx", False), ("FR", False), ("fra", False)]
)
def test_known_languages_are_iso_639_1(code: str, known: bool) -> None:
    assert is_known_language(code) is known
