"""Language variants on the public site: a page per variant with its own ``lang``/``dir``,
``hreflang`` alternates and a language switcher, a community page and feeds per language, the
community's default language at the root, and only what changed rendered again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import feedparser
import html5lib
import pytest

from herald.content.models import Post, Variant, VariantOrigin
from herald.site import CommunityView, SiteRenderer
from herald.site.render import (
    RTL_LANGUAGES,
    direction,
    language_name,
    variant_pages_change,
)

BASE = "https://site.example/harbour-line/"
API = "https://api.example/prod"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
XSS = '<script>alert(1)</script>"><img src=x onerror=alert(1)> javascript:alert(1)'


def variant(
    post_id: str, lang: str, title: str, *, machine: bool = False, text: str = "", at: datetime = T0
) -> Variant:
    text = text or f"{title}. Text of the {lang} variant."
    return Variant(
        post_id=post_id,
        community="harbour-line",
        lang=lang,
        key=f"posts/harbour-line/{post_id}.{lang}.txt",
        origin=VariantOrigin.MACHINE if machine else VariantOrigin.HUMAN,
        title=title,
        text=text,
        excerpt=text[:80],
        language=lang,
        content_hash=f"{abs(hash((post_id, lang, text))):064x}"[:64],
        created_at=at,
        updated_at=at,
    )


def post(i: int, *variants: Variant, language: str | None = "en", **changes: Any) -> Post:
    at = T0 + timedelta(hours=i)
    values: dict[str, Any] = {
        "id": f"{i:020x}",
        "community": "harbour-line",
        "key": f"posts/harbour-line/{i}.txt",
        "title": f"Notice {i}",
        "text": f"Notice {i}: the office opens at nine.",
        "excerpt": f"Notice {i}: the office opens at nine.",
        "language": language,
        "content_hash": f"{i:064x}",
        "created_at": at,
        "updated_at": at,
        "variants": {v.lang: v.summary() for v in variants},
    }
    values.update(changes)
    return Post(**values)


def pid(i: int) -> str:
    return f"{i:020x}"


def view() -> CommunityView:
    return CommunityView(
        id="harbour-line", name="Harbour Line", description="Help, in your language.", posts=3
    )


def parse(body: bytes) -> Any:
    return html5lib.parse(body, treebuilder="etree", namespaceHTMLElements=False)


def find(body: bytes, tag: str, **attrs: str) -> list[Any]:
    return [
        el
        for el in parse(body).iter()
        if el.tag == tag and all(el.get(k.rstrip("_")) == v for k, v in attrs.items())
    ]


def site(*posts: Post, variants: dict[str, dict[str, Variant]], **options: Any) -> dict[str, Any]:
    return SiteRenderer(BASE, api_url=API, **options).render_community(view(), posts, variants)


def notice() -> tuple[Post, dict[str, dict[str, Variant]]]:
    fr = variant(pid(1), "fr", "Avis 1")
    ar = variant(pid(1), "ar", "إشعار 1", machine=True)
    return post(1, fr, ar), {pid(1): {"fr": fr, "ar": ar}}


# ----------------------------------------------------------------------------- languages


@pytest.mark.parametrize("lang", sorted(RTL_LANGUAGES))
def test_right_to_left_languages(lang: str) -> None:
    assert direction(lang) == "rtl"
    assert direction(lang.upper() + "-XX") == "rtl"


@pytest.mark.parametrize("lang", ["en", "fr", "pt-br", "zh-hant", "de", "", None, "arz"])
def test_other_languages_are_left_to_right(lang: str | None) -> None:
    assert direction(lang) == "ltr"
    assert direction("fa-af") == "rtl" and direction("ur_PK") == "rtl"


def test_language_names_in_their_own_language_where_shipped() -> None:
    assert language_name("fr") == "Français"
    assert language_name("ar") == "العربية"
    assert language_name("es") == "Español"
    assert language_name("en") == "English"
    # Not a locale HeraldLayer ships: the code, as the key gave it.
    assert language_name("de") == "de"
    assert language_name("pt-br") == "pt-br"


# ----------------------------------------------------------------------------- post pages


def test_each_variant_has_its_page_and_the_original_stays_at_the_root() -> None:
    p, items = notice()
    files = site(p, variants=items)
    assert f"posts/{p.id}/index.html" in files
    assert f"fr/posts/{p.id}/index.html" in files
    assert f"ar/posts/{p.id}/index.html" in files
    for path in ("fr/index.html", "fr/feed.atom", "fr/feed.json", "ar/index.html", "ar/feed.atom"):
        assert path in files, path
    assert "fr/join/index.html" not in files and "fr/page/1/index.html" not in files
    fr = files[f"fr/posts/{p.id}/index.html"].body.decode()
    assert '<h1 class="post-title">Avis 1</h1>' in fr
    assert "Text of the fr variant." in fr


def test_variant_page_lang_dir_alternates_and_switcher() -> None:
    p, items = notice()
    files = site(p, variants=items)
    page_path = f"ar/posts/{p.id}/index.html"
    body = files[page_path].body
    html = parse(body)
    assert html.get("lang") == "ar" and html.get("dir") == "rtl"
    alternates = {
        el.get("hreflang"): el.get("href") for el in find(body, "link", rel="alternate") if el.get("hreflang")
    }
    assert alternates == {
        "en": f"{BASE}posts/{p.id}/",
        "fr": f"{BASE}fr/posts/{p.id}/",
        "ar": f"{BASE}ar/posts/{p.id}/",
        "x-default": f"{BASE}posts/{p.id}/",
    }
    nav = find(body, "nav", **{"class": "languages"})[0]
    links = [(a.text, a.get("href"), a.get("aria-current")) for a in nav.iter("a")]
    assert [label for label, _, _ in links] == ["English", "العربية", "Français"]
    here = urljoin(BASE + page_path, ".")
    resolved = {label: urljoin(BASE + page_path, href) for label, href, _ in links}
    assert resolved == {
        "English": f"{BASE}posts/{p.id}/",
        "العربية": here,
        "Français": f"{BASE}fr/posts/{p.id}/",
    }
    assert [cur for _, _, cur in links] == [None, "page", None]
    # Machine variant: labelled in the page's language (Arabic is a shipped locale).
    assert "ترجمة آلية" in body.decode()
    assert "Machine translation" not in body.decode()
    # Every relative asset resolves to the community's own files.
    css = find(body, "link", rel="stylesheet")[0].get("href")
    assert urljoin(BASE + page_path, css) == f"{BASE}site.css"
    atom = next(el.get("href") for el in find(body, "link", type="application/atom+xml"))
    assert urljoin(BASE + page_path, atom) == f"{BASE}ar/feed.atom"


def test_human_variant_is_not_labelled_and_original_page_switches_too() -> None:
    p, items = notice()
    files = site(p, variants=items)
    fr = files[f"fr/posts/{p.id}/index.html"].body.decode()
    assert "Traduction automatique" in fr  # the switcher marks the Arabic one as machine
    article = fr[fr.index("<article") : fr.index("</article>")]
    assert "Traduction automatique" not in article and "machine" not in article
    original = files[f"posts/{p.id}/index.html"].body
    html = parse(original)
    assert html.get("lang") == "en" and html.get("dir") == "ltr"
    assert {el.get("hreflang") for el in find(original, "link", rel="alternate") if el.get("hreflang")} == {
        "en",
        "fr",
        "ar",
        "x-default",
    }
    assert "Machine translation" in original.decode()  # the Arabic entry, in the site's English chrome


def test_unshipped_language_page_keeps_the_site_chrome_and_names_it_by_code() -> None:
    de = variant(pid(1), "de", "Hinweis 1", machine=True)
    p = post(1, de)
    files = site(p, variants={p.id: {"de": de}}, locale="fr")
    body = files[f"de/posts/{p.id}/index.html"].body
    html = parse(body)
    assert html.get("lang") == "de" and html.get("dir") == "ltr"
    assert "Traduction automatique" in body.decode()
    footer = find(body, "footer")[0]
    assert footer.get("lang") == "fr"
    assert find(body, "header")[0].get("lang") == "fr"
    assert find(body, "p", **{"class": "back"})[0].get("lang") == "fr"
    # An Arabic original under the English chrome: the page is rtl, its English words are marked.
    arabic = post(3, language="ar", title="إعلان", text="إعلان: المكتب يفتح", excerpt="إعلان")
    page = SiteRenderer(BASE).render_post(view(), arabic)
    assert (parse(page).get("lang"), parse(page).get("dir")) == ("ar", "rtl")
    assert (find(page, "footer")[0].get("lang"), find(page, "footer")[0].get("dir")) == ("en", "ltr")
    nav = find(body, "nav", **{"class": "languages"})[0]
    assert [a.text for a in nav.iter("a")] == ["English", "de"]


def test_a_post_without_variants_has_no_switcher_nor_alternates() -> None:
    p = post(2)
    files = site(p, variants={})
    body = files[f"posts/{p.id}/index.html"].body
    assert not find(body, "nav", **{"class": "languages"})
    assert not [el for el in find(body, "link", rel="alternate") if el.get("hreflang")]
    assert not [path for path in files if path.split("/")[0] in ("fr", "ar")]


def test_variant_strings_are_escaped() -> None:
    fr = variant(pid(1), "fr", XSS, text=XSS + " " + XSS)
    ar = variant(pid(1), "ar", XSS, machine=True)
    p = post(1, fr, ar)
    files = site(p, variants={p.id: {"fr": fr, "ar": ar}})
    for path, file in files.items():
        if not path.endswith(".html"):
            continue
        for el in parse(file.body).iter():
            assert el.tag != "svg" and (el.tag != "img" or el.get("class") == "qr"), path
            assert not any(name.startswith("on") for name in el.attrib), path
            if el.tag == "script":
                assert el.get("src", "").endswith("join.js")
        assert b"<script>alert" not in file.body
    feed = json.loads(files["fr/feed.json"].body)
    assert feed["items"][0]["title"] == XSS
    assert "<script>" not in feed["items"][0]["content_html"]


# ----------------------------------------------------------------------------- per-language pages


def test_language_community_page_and_feeds_list_every_post() -> None:
    fr = variant(pid(1), "fr", "Avis 1")
    with_fr = post(1, fr)
    without = post(2)
    arabic = post(3, language="ar", title="إعلان", text="إعلان: المكتب يفتح", excerpt="إعلان")
    files = site(with_fr, without, arabic, variants={with_fr.id: {"fr": fr}})
    page = files["fr/index.html"].body
    html = parse(page)
    assert html.get("lang") == "fr" and html.get("dir") == "ltr"
    arts = find(page, "article")
    assert [a.get("id") for a in arts] == [f"post-{pid(3)}", f"post-{pid(2)}", f"post-{pid(1)}"]
    assert [a.get("lang") for a in arts] == ["ar", "en", "fr"]
    assert arts[0].get("dir") == "rtl"
    titles = {a.get("id"): a.find(".//h2/a") for a in arts}
    link = titles[f"post-{pid(1)}"]
    assert link.text == "Avis 1"
    assert urljoin(f"{BASE}fr/", link.get("href")) == f"{BASE}fr/posts/{pid(1)}/"
    assert urljoin(f"{BASE}fr/", titles[f"post-{pid(2)}"].get("href")) == f"{BASE}posts/{pid(2)}/"
    marks = [(el.text, el.get("lang")) for el in find(page, "span", **{"class": "post-lang"})]
    assert marks == [("العربية", "ar"), ("English", "en")]
    assert "Membres" in page.decode()  # the chrome in French
    qr = find(page, "img", **{"class": "qr"})[0].get("src")
    assert urljoin(f"{BASE}fr/", qr) == f"{BASE}qr.svg"

    atom = feedparser.parse(files["fr/feed.atom"].body)
    assert atom.bozo == 0
    assert atom.feed.id == f"{BASE}fr/"
    assert [e.link for e in atom.entries] == [
        f"{BASE}posts/{pid(3)}/",
        f"{BASE}posts/{pid(2)}/",
        f"{BASE}fr/posts/{pid(1)}/",
    ]
    assert atom.entries[2].title == "Avis 1"
    feed = json.loads(files["fr/feed.json"].body)
    assert feed["language"] == "fr" and feed["feed_url"] == f"{BASE}fr/feed.json"
    assert [i["language"] for i in feed["items"]] == ["ar", "en", "fr"]
    # The root, as before: every post in its original.
    root = json.loads(files["feed.json"].body)
    assert [i["title"] for i in root["items"]] == ["إعلان", "Notice 2", "Notice 1"]


def test_default_language_at_the_root() -> None:
    fr = variant(pid(1), "fr", "Avis 1")
    p1, p2 = post(1, fr), post(2)
    files = site(p1, p2, variants={p1.id: {"fr": fr}}, default_language="fr", page_size=1)
    index = files["index.html"].body
    assert parse(index).get("lang") == "fr"
    assert "Notice 2" in index.decode() and "Avis 1" not in index.decode()  # page 1 is not shown
    archive = files["page/1/index.html"].body.decode()
    assert "Avis 1" in archive
    root_feed = json.loads(files["feed.json"].body)
    assert root_feed["language"] == "fr"
    assert [i["url"] for i in root_feed["items"]] == [f"{BASE}posts/{pid(2)}/", f"{BASE}fr/posts/{pid(1)}/"]
    # The original's own page is still the original.
    assert "Notice 1" in files[f"posts/{p1.id}/index.html"].body.decode()


# ----------------------------------------------------------------------------- incremental


def _diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[set[str], set[str]]:
    changed = {p for p, f in after.items() if p not in before or before[p].body != f.body}
    return changed, set(before) - set(after)


def _check(
    old: list[Post],
    new: list[Post],
    changed: set[str],
    deleted: set[str],
    items: dict[str, dict[str, Variant]],
    old_items: dict[str, dict[str, Variant]],
) -> Any:
    renderer = SiteRenderer(BASE, api_url=API, page_size=2)
    before = renderer.render_community(view(), old, old_items)
    after = renderer.render_community(view(), new, items)
    must_write, must_delete = _diff(before, after)
    previous = {p.id: p for p in old if p.id in changed | deleted}
    needed = {
        p.id: items.get(p.id, {})
        for p in new
        if p.id in changed and variant_pages_change(previous.get(p.id), p)
    }
    result = renderer.render_changes(view(), new, changed, deleted, previous=previous, variants=needed)
    assert must_write <= set(result.paths), must_write - set(result.paths)
    assert must_delete <= set(result.deletes), must_delete - set(result.deletes)
    for file in result.writes:
        assert file.body == after[file.path].body, file.path
    assert not set(result.deletes) & set(after)
    return result


def test_a_new_variant_rewrites_the_post_its_variants_and_the_language_pages() -> None:
    posts = [post(i) for i in range(5)]
    fr = variant(pid(2), "fr", "Avis 2")
    new = [*posts[:2], posts[2].model_copy(update={"variants": {"fr": fr.summary()}}), *posts[3:]]
    result = _check(posts, new, {pid(2)}, set(), {pid(2): {"fr": fr}}, {})
    assert {f"fr/posts/{pid(2)}/index.html", "fr/index.html", "fr/feed.atom", "fr/feed.json"} <= set(
        result.paths
    )
    assert not [p for p in result.paths if p.startswith("posts/") and pid(2) not in p]


def test_an_edited_variant_and_a_second_language() -> None:
    fr = variant(pid(1), "fr", "Avis 1")
    fr2 = variant(pid(1), "fr", "Avis 1, corrigé", at=T0 + timedelta(days=1)).model_copy(
        update={"version": 2}
    )
    es = variant(pid(1), "es", "Aviso 1")
    old = [post(0), post(1, fr), post(2)]
    new = [post(0), post(1, fr2, es), post(2)]
    result = _check(old, new, {pid(1)}, set(), {pid(1): {"fr": fr2, "es": es}}, {pid(1): {"fr": fr}})
    assert f"es/posts/{pid(1)}/index.html" in result.paths


def test_a_deleted_variant_and_the_last_of_a_language_are_removed() -> None:
    fr = variant(pid(1), "fr", "Avis 1")
    ar = variant(pid(1), "ar", "إشعار 1")
    old = [post(0), post(1, fr, ar), post(2)]
    new = [post(0), post(1, ar), post(2)]
    result = _check(old, new, {pid(1)}, set(), {pid(1): {"ar": ar}}, {pid(1): {"fr": fr, "ar": ar}})
    assert f"fr/posts/{pid(1)}/index.html" in result.deletes
    assert {"fr/index.html", "fr/feed.atom", "fr/feed.json"} <= set(result.deletes)


def test_a_deleted_post_takes_its_variant_pages() -> None:
    fr = variant(pid(1), "fr", "Avis 1")
    es = variant(pid(2), "es", "Aviso 2")
    old = [post(0), post(1, fr), post(2, es)]
    new = [post(0), post(2, es)]
    result = _check(old, new, set(), {pid(1)}, {pid(2): {"es": es}}, {pid(1): {"fr": fr}, pid(2): {"es": es}})
    assert {f"posts/{pid(1)}/index.html", f"fr/posts/{pid(1)}/index.html"} <= set(result.deletes)
    assert f"es/posts/{pid(2)}/index.html" not in result.paths  # not touched


def test_an_edit_of_the_original_alone_leaves_variant_pages_alone() -> None:
    fr = variant(pid(1), "fr", "Avis 1")
    old = [post(0), post(1, fr)]
    edited = post(1, fr, text="Notice 1: the office opens at ten.", version=2, content_hash="e" * 64)
    assert not variant_pages_change(old[1], edited)
    result = _check(old, [post(0), edited], {pid(1)}, set(), {pid(1): {"fr": fr}}, {pid(1): {"fr": fr}})
    assert f"fr/posts/{pid(1)}/index.html" not in result.paths
    assert "fr/index.html" in result.paths  # rewritten with every post (its bytes unchanged here)


def test_render_changes_names_a_post_whose_variant_items_are_missing() -> None:
    fr = variant(pid(1), "fr", "Avis 1")
    with pytest.raises(ValueError, match=pid(1)):
        SiteRenderer(BASE).render_changes(view(), [post(1, fr)], {pid(1)}, previous={}, variants={})


def test_a_new_default_language_renders_the_whole_site() -> None:
    """The root's archive pages list posts in the default language: a profile whose
    ``settings.default_language`` changed is a full render (as a new name is)."""
    from herald.content.models import Community, CommunitySettings
    from herald.site.publisher import _site_wide

    old = Community(id="harbour-line", name="Harbour Line")
    french = Community(
        id="harbour-line", name="Harbour Line", settings=CommunitySettings(default_language="fr")
    )
    assert _site_wide(old, french)
    assert _site_wide(
        french, french.model_copy(update={"settings": CommunitySettings(default_language="ar")})
    )
    assert not _site_wide(french, french.model_copy(update={"members": 5}))
    assert not _site_wide(old, old.model_copy(update={"members": 5}))
    # Settings that name no default language change nothing the root shows.
    machine = CommunitySettings(machine_translations=["fr"])
    assert not _site_wide(old, old.model_copy(update={"settings": machine}))


@pytest.mark.parametrize("pretty", [True, False])
def test_every_relative_link_of_every_page_is_a_file_of_the_site(pretty: bool) -> None:
    fr = variant(pid(1), "fr", "Avis 1")
    ar = variant(pid(1), "ar", "إشعار 1", machine=True)
    es = variant(pid(4), "es", "Aviso 4")
    posts = [post(1, fr, ar), post(2), post(3, pinned=True), post(4, es), post(5), post(6)]
    files = SiteRenderer(
        BASE, api_url=API, pretty_urls=pretty, page_size=2, default_language="fr"
    ).render_community(view(), posts, {pid(1): {"fr": fr, "ar": ar}, pid(4): {"es": es}})
    checked = 0
    for path, file in files.items():
        if not path.endswith(".html"):
            continue
        for el in parse(file.body).iter():
            for name in ("href", "src"):
                ref = el.get(name)
                if not ref or ref.startswith(("http:", "https:", "mailto:", "#")):
                    continue
                target = urljoin(BASE + path, ref).removeprefix(BASE)
                if target == "" or target.endswith("/"):
                    target += "index.html"
                assert target in files, f"{path}: {name}={ref!r} -> {target}"
                checked += 1
    assert checked > 100
