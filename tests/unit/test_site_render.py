"""The public site's renderer: escaping, links, RTL, order, counts, accessibility, incremental output."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import html5lib
import pytest
from babel.numbers import format_compact_decimal

from herald.content.models import Link, Post
from herald.enrichment.pipeline import enrich
from herald.site import (
    CACHE_ASSET,
    CACHE_LIVE,
    CACHE_PAGE,
    CommunityView,
    SiteRenderer,
    markdown_html,
    text_html,
)

BASE = "https://site.example/harbour-line/"
API = "https://api.example/prod"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "'><iframe src=javascript:alert(1)>",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.cookie) and data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "<a href=\"javascript:alert(1)\">click</a> <a href='data:text/html,<script>alert(1)</script>'>x</a>",
    "\u202eevil\u202c txt.exe \u2066isolate\u2069 <b onmouseover=alert(1)>bold</b>",
    "<style>body{display:none}</style><base href=https://evil.example/>",
    "{{ 7*7 }} {% raw %} ${alert(1)} <!-- comment --> <![CDATA[x]]>",
    'https://example.org/a?b=1&c=<script>alert(1)</script> see bit.ly/x"onclick=alert(1)',
    "[md link](javascript:alert(1)) [data](data:text/html,hi) <javascript:alert(1)> ![img](https://e.example/i.png)",
    "<form action=https://evil.example><input name=x></form> <meta http-equiv=refresh content=0;url=x>",
]


def make_post(i: int, text: str = "", **changes: Any) -> Post:
    text = text or f"Post number {i}: registration opens on Monday. bit.ly/post{i}"
    fmt = changes.pop("format", "txt")
    e = enrich(text, fmt=fmt)
    at = changes.pop("at", T0 + timedelta(hours=i))
    values: dict[str, Any] = {
        "id": f"{i:020x}",
        "community": "harbour-line",
        "key": f"posts/harbour-line/{i}.txt",
        "format": fmt,
        "title": e.title,
        "text": e.text,
        "excerpt": e.excerpt,
        "links": e.links,
        "hashtags": e.hashtags,
        "language": e.language,
        "topics": e.topics,
        "content_hash": e.content_hash,
        "created_at": at,
        "updated_at": at,
    }
    values.update(changes)
    return Post(**values)


def community(**changes: Any) -> CommunityView:
    values: dict[str, Any] = {
        "id": "harbour-line",
        "name": "Harbour Line Migrant Network",
        "description": "Practical help for people on the move, in their language.",
        "verified": True,
        "members": 222_000,
        "posts": 3,
        "created_year": 2020,
        "join_url": "https://site.example/harbour-line/join",
    }
    values.update(changes)
    return CommunityView(**values)


def parse(body: bytes) -> Any:
    return html5lib.parse(body, treebuilder="etree", namespaceHTMLElements=False)


def elements(body: bytes) -> list[Any]:
    return list(parse(body).iter())


def assert_inert(body: bytes, schemes: frozenset[str] = frozenset({"http", "https"})) -> None:
    for el in elements(body):
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == "script":
            assert el.get("src") in ("join.js", "../join.js"), "only the site's own script"
            assert not (el.text or "").strip()
        assert tag not in {"iframe", "object", "embed", "form", "base", "style", "textarea", "input", "svg"}
        if tag == "meta" and el.get("http-equiv"):
            assert el.get("http-equiv") == "Content-Security-Policy"
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), f"event handler {name}={value!r}"
            if name in ("href", "src", "action", "formaction", "xlink:href"):
                scheme = urlsplit(value.strip()).scheme.lower()
                assert scheme in schemes or scheme == "", f"{name}={value!r}"


def articles(body: bytes) -> list[Any]:
    return [el for el in elements(body) if el.tag == "article"]


# ----------------------------------------------------------------------------- escaping


@pytest.mark.parametrize("payload", XSS)
@pytest.mark.parametrize("fmt", ["txt", "md"])
def test_hostile_posts_render_as_text(payload: str, fmt: str) -> None:
    post = make_post(1, f"Hello {payload} end", format=fmt)
    site = SiteRenderer(BASE, api_url=API).render_community(community(), [post])
    schemes = frozenset({"http", "https", "mailto"})
    for path, file in site.items():
        if path.endswith(".html"):
            assert_inert(file.body, schemes)
    page = site[f"posts/{post.id}/index.html"].body.decode()
    assert "<script>alert" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")


@pytest.mark.parametrize("payload", XSS)
def test_hostile_profile_renders_as_text(payload: str) -> None:
    view = community(name=f"Name {payload}", description=payload, join_url="javascript:alert(1)")
    site = SiteRenderer(BASE, api_url=API).render_community(view, [make_post(1)])
    for path, file in site.items():
        if path.endswith(".html"):
            assert_inert(file.body)
    index = parse(site["index.html"].body)
    h1 = index.find(".//h1")
    assert h1 is not None and payload in "".join(h1.itertext())
    assert not [a for a in index.iter("a") if a.get("class") == "join-link"], (
        "an unsafe join link is left out"
    )


def test_links_become_anchors_with_escaped_href_and_rel() -> None:
    text = "Shelters: bit.ly/HrbShelters. Form https://forms.example/a?x=1&y=<2> and javascript:alert(1)"
    post = make_post(1, text)
    html = str(text_html(post.text, post.links))
    tree = parse(html.encode())
    anchors = list(tree.iter("a"))
    assert [a.get("href") for a in anchors] == [
        "https://bit.ly/HrbShelters",
        "https://forms.example/a?x=1&y=",
    ]
    assert all(a.get("rel") == "nofollow noopener ugc" for a in anchors)
    assert anchors[0].text == "bit.ly/HrbShelters"
    assert "&lt;2&gt;" in html and "javascript:alert(1)" in "".join(tree.itertext())


def test_unsafe_links_in_stored_data_never_become_anchors() -> None:
    post = make_post(1, "go javascript:alert(1) or data:text/html,x now").model_copy(
        update={
            "links": [
                Link(url="javascript:alert(1)", domain="x"),
                Link(url="data:text/html,x", domain="x"),
                Link(url='https://ok.example/"onclick=x', domain="ok.example"),
            ]
        }
    )
    html = str(text_html(post.text, post.links))
    assert "<a " not in html


def test_markdown_is_safe_and_keeps_one_h1() -> None:
    html = str(
        markdown_html(
            "# Heading\n\n[ok](https://ok.example) [bad](javascript:alert(1)) <b>raw</b> "
            "[mail](mailto:a@b.example) www.example.org/x"
        )
    )
    tree = parse(html.encode())
    assert tree.find(".//h1") is None and tree.find(".//h3") is not None
    hrefs = [a.get("href") for a in tree.iter("a")]
    assert hrefs == ["https://ok.example", "mailto:a@b.example", "https://www.example.org/x"]
    assert all(a.get("rel") == "nofollow noopener ugc" for a in tree.iter("a"))
    assert "&lt;b&gt;raw&lt;/b&gt;" in html


def test_every_page_has_the_strict_csp() -> None:
    site = SiteRenderer(BASE, api_url=API + "/x").render_community(community(), [make_post(1), make_post(2)])
    expected = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
        "connect-src https://api.example; base-uri 'none'; form-action 'none'"
    )
    pages = [p for p in site if p.endswith(".html")]
    assert len(pages) == 5
    for path in pages:
        metas = [m for m in elements(site[path].body) if m.tag == "meta" and m.get("http-equiv")]
        assert [m.get("content") for m in metas] == [expected], path
    no_api = SiteRenderer(BASE).render_community(community(), [make_post(1)])
    assert b"connect-src &#39;none&#39;" in no_api["index.html"].body
    assert b"<script" not in no_api["index.html"].body and b"<button" not in no_api["index.html"].body


# ----------------------------------------------------------------------------- language and order


def test_rtl_and_lang_on_each_post() -> None:
    ar = make_post(1, "تذكير: مراكز التسجيل في عمّان مفتوحة يوم السبت من الساعة التاسعة صباحاً.")
    en = make_post(2, "Registration for school places opens on Monday at the community centre.")
    unknown = make_post(3, "🌊🌊🌊").model_copy(update={"language": None})
    fa = make_post(4, "x", language="fa")
    body = SiteRenderer(BASE).render_community(community(), [ar, en, unknown, fa])["index.html"].body
    found = {a.get("id"): (a.get("lang"), a.get("dir")) for a in articles(body)}
    assert ar.language == "ar"
    assert found[f"post-{ar.id}"] == ("ar", "rtl")
    assert found[f"post-{fa.id}"] == ("fa", "rtl")
    assert found[f"post-{en.id}"] == ("en", "auto")
    assert found[f"post-{unknown.id}"] == (None, "auto")
    root = parse(body)
    assert (root.get("lang"), root.get("dir")) == ("en", "ltr")
    ar_root = parse(SiteRenderer(BASE, locale="ar").render_community(community(), [en])["index.html"].body)
    assert (ar_root.get("lang"), ar_root.get("dir")) == ("ar", "rtl")


def test_pinned_first_then_newest_first() -> None:
    posts = [make_post(i) for i in range(6)]
    posts[1] = posts[1].model_copy(update={"pinned": True})
    posts[3] = posts[3].model_copy(update={"publish_at": T0 + timedelta(days=10)})
    shuffled = posts[:]
    random.Random(4).shuffle(shuffled)
    body = SiteRenderer(BASE).render_community(community(), shuffled)["index.html"].body
    ids = [a.get("id").removeprefix("post-") for a in articles(body)]
    assert ids == [posts[i].id for i in (1, 3, 5, 4, 2, 0)]


def test_pagination_numbers_pages_from_the_oldest() -> None:
    posts = [make_post(i) for i in range(8)]
    site = SiteRenderer(BASE, page_size=3).render_community(community(), posts)
    assert {p for p in site if p.startswith("page/")} == {f"page/{n}/index.html" for n in (1, 2, 3)}
    page1 = [a.get("id").removeprefix("post-") for a in articles(site["page/1/index.html"].body)]
    assert page1 == [posts[i].id for i in (2, 1, 0)]
    index = [a.get("id").removeprefix("post-") for a in articles(site["index.html"].body)]
    assert index == [posts[i].id for i in (7, 6, 5, 4, 3)]  # page 3 is short: page 2 is shown with it
    older = [a.get("href") for a in parse(site["index.html"].body).iter("a") if a.get("rel") == "prev"]
    assert older == ["page/1/"]


# ----------------------------------------------------------------------------- profile, a11y


@pytest.mark.parametrize("locale", ["en", "fr", "ar"])
def test_member_count_formatting(locale: str) -> None:
    body = SiteRenderer(BASE, locale=locale).render_community(community(), [])["index.html"].body
    count = next(el for el in elements(body) if el.get("data-members") is not None)
    assert count.get("data-members") == "222000"
    expected = format_compact_decimal(222_000, format_type="short", locale=locale, fraction_digits=1)
    assert count.text == expected
    assert {"en": "222K", "fr": "222\xa0k", "ar": "222\xa0ألف"}[locale] == expected
    assert count.get("title") in {"222,000", "222\u202f000", "222\xa0000", "222٬000"}
    if locale == "en":
        text = "".join(parse(body).find(".//header").itertext())
        assert "222K Members" in text and "Created In 2020" in text


def test_accessibility_basics() -> None:
    site = SiteRenderer(BASE, api_url=API).render_community(community(), [make_post(1), make_post(2)])
    tree = parse(site["index.html"].body)
    assert len(list(tree.iter("h1"))) == 1
    assert "Harbour Line Migrant Network" in "".join(tree.find(".//h1").itertext())
    for landmark in ("header", "main", "footer"):
        assert tree.find(f".//{landmark}") is not None
    assert all(a.find("h2") is not None for a in tree.iter("article"))
    qr = next(img for img in tree.iter("img") if img.get("src") == "qr.svg")
    assert qr.get("alt") == "QR code to join Harbour Line Migrant Network"
    badge = next(el for el in tree.iter("span") if el.get("class") == "verified")
    assert "Verified community" in "".join(badge.itertext())
    button = next(tree.iter("button"))
    assert button.get("data-api") == f"{API}/communities/harbour-line/members"
    assert button.get("type") == "button" and button.get("hidden") is not None
    post_page = parse(site[f"posts/{make_post(1).id}/index.html"].body)
    assert len(list(post_page.iter("h1"))) == 1
    css = site["site.css"].body.decode()
    assert ":focus-visible" in css and "Noto Color Emoji" in css


def test_unverified_has_no_badge_and_demo_subscription_is_an_attribute() -> None:
    sub = {"endpoint": 'https://push.example/x?a=1&b="2"', "keys": {"p256dh": "k", "auth": "a"}}
    renderer = SiteRenderer(BASE, api_url=API, vapid_public_key="BKey-_", demo_subscription=sub)
    body = renderer.render_community(community(verified=False), [])["join/index.html"].body
    tree = parse(body)
    assert not [el for el in tree.iter("span") if el.get("class") == "verified"]
    button = next(tree.iter("button"))
    import json

    assert json.loads(button.get("data-demo-subscription")) == sub
    assert button.get("data-vapid-key") == "BKey-_"
    assert next(tree.iter("script")).get("src") == "../join.js"


def test_post_page_meta_and_emoji() -> None:
    post = make_post(1, "🇸🇾🇱🇧 Families who crossed can register 👨‍👩‍👧 today. bit.ly/3SchoolReg")
    body = SiteRenderer(BASE).render_post(community(), post)
    tree = parse(body)
    metas = {(m.get("property") or m.get("name")): m.get("content") for m in tree.iter("meta")}
    url = f"{BASE}posts/{post.id}/"
    assert metas["og:url"] == url and metas["og:type"] == "article"
    assert metas["og:title"].startswith("🇸🇾🇱🇧 Families") and metas["twitter:card"] == "summary"
    assert metas["description"] == post.excerpt == metas["og:description"]
    assert next(el for el in tree.iter("link") if el.get("rel") == "canonical").get("href") == url
    assert "🇸🇾🇱🇧" in body.decode("utf-8") and "👨‍👩‍👧" in body.decode("utf-8")
    assert b'<meta charset="utf-8">' in body
    home = [a.get("href") for a in tree.iter("a") if a.get("class") is None and a.text == "All posts"]
    assert home == ["../../"]


# ----------------------------------------------------------------------------- files, determinism


def test_files_headers_and_render_post_agree() -> None:
    posts = [make_post(i) for i in range(3)]
    renderer = SiteRenderer(BASE, api_url=API)
    site = renderer.render_community(community(), posts)
    assert set(site) == {
        "index.html",
        "join/index.html",
        "feed.atom",
        "feed.json",
        "qr.svg",
        "site.css",
        "join.js",
        "sw.js",
        "page/1/index.html",
        *(f"posts/{p.id}/index.html" for p in posts),
    }
    assert site["index.html"].cache_control == CACHE_LIVE == site["feed.json"].cache_control
    assert site[f"posts/{posts[0].id}/index.html"].cache_control == CACHE_PAGE
    assert site["qr.svg"].cache_control == CACHE_ASSET and site["qr.svg"].content_type == "image/svg+xml"
    assert site["index.html"].content_type == "text/html; charset=utf-8"
    assert site["feed.atom"].content_type.startswith("application/atom+xml")
    assert site["feed.json"].content_type.startswith("application/feed+json")
    assert site["qr.svg"].body.startswith(b"<?xml")
    assert renderer.render_post(community(), posts[1]) == site[f"posts/{posts[1].id}/index.html"].body
    assert len(site["index.html"].md5) == 32


def test_output_is_deterministic() -> None:
    posts = [make_post(i, language="ar" if i % 3 == 0 else None) for i in range(7)]
    first = SiteRenderer(BASE, api_url=API).render_community(community(), posts)
    again = SiteRenderer(BASE, api_url=API).render_community(community(), list(reversed(posts)))
    assert {p: f.body for p, f in first.items()} == {p: f.body for p, f in again.items()}


def test_pretty_urls_off_links_to_index_files() -> None:
    site = SiteRenderer(BASE, pretty_urls=False, page_size=1).render_community(
        community(), [make_post(1), make_post(2)]
    )
    hrefs = {a.get("href") for a in parse(site["index.html"].body).iter("a")}
    assert f"posts/{make_post(2).id}/index.html" in hrefs and "page/1/index.html" in hrefs
    page_hrefs = {a.get("href") for a in parse(site["page/1/index.html"].body).iter("a")}
    assert "../../page/2/index.html" in page_hrefs and "../../index.html" in page_hrefs


# ----------------------------------------------------------------------------- incremental


def _diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[set[str], set[str]]:
    changed = {p for p, f in after.items() if p not in before or before[p].body != f.body}
    return changed, set(before) - set(after)


def _check(
    old: list[Post], new: list[Post], changed: set[str], deleted: set[str], previous: dict[str, Post] | None
) -> Any:
    renderer = SiteRenderer(BASE, api_url=API, page_size=3)
    view = community()
    before = renderer.render_community(view, old)
    after = renderer.render_community(view, new)
    must_write, must_delete = _diff(before, after)
    result = renderer.render_changes(view, new, changed, deleted, previous=previous)
    assert must_write <= set(result.paths), must_write - set(result.paths)
    assert must_delete <= set(result.deletes), must_delete - set(result.deletes)
    for file in result.writes:
        assert file.body == after[file.path].body
    assert not set(result.deletes) & set(after)
    return result


def test_a_new_post_rewrites_only_its_page_the_index_feeds_and_the_newest_archive_page() -> None:
    old = [make_post(i) for i in range(10)]
    new_post = make_post(10)
    result = _check(old, [*old, new_post], {new_post.id}, set(), None)
    assert set(result.paths) == {
        "index.html",
        "join/index.html",
        "feed.atom",
        "feed.json",
        "page/4/index.html",
        f"posts/{new_post.id}/index.html",
    }
    assert result.deletes == []


def test_a_new_post_opening_a_new_page_rewrites_the_previous_one_for_its_link() -> None:
    old = [make_post(i) for i in range(9)]
    new_post = make_post(9)
    result = _check(old, [*old, new_post], {new_post.id}, set(), None)
    assert {p for p in result.paths if p.startswith("page/")} == {"page/3/index.html", "page/4/index.html"}


def test_edit_in_place_with_previous_rewrites_one_archive_page() -> None:
    old = [make_post(i) for i in range(10)]
    edited = make_post(4, "Post number 4, corrected: opens on Tuesday.", version=2)
    new = [edited if p.id == edited.id else p for p in old]
    result = _check(old, new, {edited.id}, set(), {edited.id: old[4]})
    assert {p for p in result.paths if p.startswith("posts/")} == {f"posts/{edited.id}/index.html"}
    assert {p for p in result.paths if p.startswith("page/")} == {"page/2/index.html"}


def test_moves_deletes_and_pins_are_covered_with_and_without_previous() -> None:
    old = [make_post(i) for i in range(11)]
    moved = old[1].model_copy(update={"publish_at": T0 + timedelta(days=3), "version": 2})
    pinned = old[6].model_copy(update={"pinned": True, "version": 2})
    deleted = old[2]
    new = [p for p in old if p.id not in {moved.id, pinned.id, deleted.id}] + [moved, pinned]
    previous = {moved.id: old[1], pinned.id: old[6], deleted.id: deleted}
    for prev in (previous, None):
        result = _check(old, new, {moved.id, pinned.id}, {deleted.id}, prev)
        assert f"posts/{deleted.id}/index.html" in result.deletes
        assert "page/4/index.html" in result.deletes  # 10 unpinned posts became 8: three pages, not four


def test_unchanged_post_pages_are_not_rewritten() -> None:
    old = [make_post(i) for i in range(30)]
    new_post = make_post(30)
    result = SiteRenderer(BASE, page_size=10).render_changes(community(), [*old, new_post], {new_post.id})
    assert [p for p in result.paths if p.startswith("posts/")] == [f"posts/{new_post.id}/index.html"]
    nothing = SiteRenderer(BASE).render_changes(community(members=5), old)
    assert set(nothing.paths) == {"index.html", "join/index.html", "feed.atom", "feed.json"}
