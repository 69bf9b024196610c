"""The upload formats' registry: each format one module, looked up by extension by the layout, the
parser, enrichment and the site; a module added to the registry is all a new format needs."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from markupsafe import Markup, escape

from herald.content import formats
from herald.content.formats.base import Format, validate_fields
from herald.content.limits import IngestLimits
from herald.content.models import Link, Post, PostInput
from herald.core.errors import InvalidUpload
from herald.enrichment.pipeline import enrich
from herald.ingest.layout import parse_key
from herald.ingest.parsing import parse_post
from herald.site.render import SiteRenderer

LIMITS = IngestLimits()


def test_the_formats_in_the_order_editors_are_told() -> None:
    assert formats.post_extensions() == ("txt", "md", "json")
    assert formats.export_extensions() == ("txt",)
    assert [f.extension for f in formats.registry().values()] == ["txt", "md", "json"]


def test_a_stored_format_no_module_claims_reads_as_plain_text() -> None:
    assert formats.find("docx") is None
    assert formats.of("docx") is formats.of("txt") is formats.find("txt")


def test_json_text_is_shown_and_enriched_as_plain_text() -> None:
    text, json = formats.of("txt"), formats.of("json")
    assert json.html is text.html and json.plain_text is text.plain_text


def test_the_markdown_format_gives_enrichment_its_words_and_the_page_its_markup() -> None:
    md = formats.of("md")
    assert (
        md.plain_text("# Title\n\n**Bold** [x](https://x.example/)") == "Title\n\nBold x (https://x.example/)"
    )
    assert str(md.html("# Title <b>x</b>", [])) == "<h3>Title &lt;b&gt;x&lt;/b&gt;</h3>\n"


def _shout_parse(text: str, limits: IngestLimits) -> PostInput:
    if text.strip() != text.strip().upper():
        raise InvalidUpload.one("text", "a shouted post is in capitals")
    return validate_fields({"text": text.strip(), "tags": ["shout"]})


def _shout_html(text: str, links: Sequence[Link]) -> Markup:
    return Markup(f"<p><strong>{escape(text)}</strong></p>")


@pytest.fixture
def shout() -> Iterator[str]:
    """A format module of the package (``.shout``) and its name in the registry, for one test."""
    name = f"{formats.__name__}.shout"
    module = types.ModuleType(name)
    module.FORMAT = Format(  # type: ignore[attr-defined]
        extension="shout", parse=_shout_parse, plain_text=str.lower, html=_shout_html
    )
    sys.modules[name] = module
    formats.registry.cache_clear()
    original = formats.MODULES
    formats.MODULES = (*original, "shout")
    try:
        yield "shout"
    finally:
        formats.MODULES = original
        del sys.modules[name]
        formats.registry.cache_clear()


def test_a_new_format_is_one_module_in_the_registry(shout: str) -> None:
    # the layout takes its extension for a post, not for an export, and lists it to editors
    assert parse_key("posts/demo/hello.SHOUT").fmt == shout
    with pytest.raises(InvalidUpload, match=r"expected one of \.txt, \.md, \.json, \.shout"):
        parse_key("posts/demo/hello.html")
    with pytest.raises(InvalidUpload, match=r"expected one of \.txt$"):
        parse_key("exports/demo/page.shout")
    # the parser reads it with the format's own parse, after the common decoding
    post_input = parse_post(b"\xef\xbb\xbfSTAY INSIDE TONIGHT\n", shout, LIMITS)
    assert post_input.text == "STAY INSIDE TONIGHT" and post_input.tags == ["shout"]
    with pytest.raises(InvalidUpload, match="in capitals"):
        parse_post(b"quiet", shout, LIMITS)
    with pytest.raises(InvalidUpload, match="the post is empty"):
        parse_post(b"  \n", shout, LIMITS)
    # enrichment reads the format's plain text; the stored text stays as uploaded
    enrichment = enrich(post_input.text, fmt=shout)
    assert enrichment.text == "STAY INSIDE TONIGHT" and enrichment.title == "stay inside tonight"
    # the site shows the format's HTML
    at = datetime(2025, 3, 1, tzinfo=UTC)
    post = Post(
        id="0" * 20,
        community="demo",
        key="posts/demo/hello.shout",
        format=shout,
        created_at=at,
        updated_at=at,
        **{**enrichment.model_dump(), "text": "<STAY> INSIDE"},
    )
    assert str(SiteRenderer("https://site.example/demo/").view(post).body) == (
        "<p><strong>&lt;STAY&gt; INSIDE</strong></p>"
    )
