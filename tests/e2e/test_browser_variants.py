"""A right-to-left variant page and the language switcher in a real browser.

The site of a community whose notice has a French variant and a machine Arabic one is rendered by
:class:`herald.site.SiteRenderer`, uploaded by :class:`herald.site.adapters.s3_site.S3SiteStore` to a
bucket on moto, and served by the local cloud's site host (the URL rules CloudFront's function
applies, the distribution's security headers, the pages' own CSP). Debian's headless Chromium,
driven by Playwright (as ``tests/e2e/test_browser.py`` does), opens the Arabic page, checks its
direction as the browser lays it out, then follows the switcher's plain links to the French page,
the original and the French community page.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from herald.content.models import Post, Variant, VariantOrigin
from herald.site import CommunityView, SiteRenderer
from herald.site.adapters.s3_site import S3SiteStore
from herald_tools.localcloud.sitehost import SiteHost
from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
COMMUNITY = "harbour-line"
BUCKET = "site"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PID = "3f1c0000000000000001"
OTHER = "3f1c0000000000000002"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make browser)"),
]


def _variant(lang: str, title: str, text: str, *, machine: bool = False) -> Variant:
    return Variant(
        post_id=PID,
        community=COMMUNITY,
        lang=lang,
        key=f"posts/{COMMUNITY}/clinic.{lang}.txt",
        origin=VariantOrigin.MACHINE if machine else VariantOrigin.HUMAN,
        title=title,
        text=text,
        excerpt=text[:60],
        language=lang,
        content_hash=f"{lang}".ljust(64, "0"),
        created_at=T0,
        updated_at=T0,
    )


FR = _variant(
    "fr", "La clinique ouvre lundi", "La clinique ouvre lundi à 9 h. Apportez une pièce d’identité."
)
AR = _variant(
    "ar",
    "العيادة تفتح يوم الاثنين",
    "العيادة تفتح يوم الاثنين الساعة التاسعة. أحضر بطاقة هوية.",
    machine=True,
)


def _posts() -> list[Post]:
    notice = Post(
        id=PID,
        community=COMMUNITY,
        key=f"posts/{COMMUNITY}/clinic.txt",
        title="The clinic opens on Monday",
        text="The clinic opens on Monday at 9. Bring an ID.",
        excerpt="The clinic opens on Monday at 9.",
        language="en",
        content_hash="a" * 64,
        created_at=T0,
        updated_at=T0,
        variants={"fr": FR.summary(), "ar": AR.summary()},
    )
    other = Post(
        id=OTHER,
        community=COMMUNITY,
        key=f"posts/{COMMUNITY}/bus.txt",
        title="New bus line to the harbour",
        text="A new bus line runs to the harbour from Tuesday.",
        excerpt="A new bus line runs to the harbour.",
        language="en",
        content_hash="b" * 64,
        created_at=T0 + timedelta(hours=1),
        updated_at=T0 + timedelta(hours=1),
    )
    return [notice, other]


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        host = SiteHost(port=0)
        host.configure(BUCKET, s3)
        host.start()
        try:
            base = f"{host.url}/{COMMUNITY}/"
            renderer = SiteRenderer(base, locale="en")
            view = CommunityView(id=COMMUNITY, name="Harbour Line", description="Help, in your language.")
            files = renderer.render_community(view, _posts(), {PID: {"fr": FR, "ar": AR}})
            S3SiteStore(BUCKET, s3, concurrency=1).put(f"{COMMUNITY}/", list(files.values()))
            yield base
        finally:
            host.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_rtl_variant_page_and_the_language_switcher(site_url: str, browser: Any) -> None:
    page = browser.new_page()
    # The site has no favicon; the browser's own request for one is not the page's.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=b""))
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    page.goto(f"{site_url}ar/posts/{PID}/")
    root = page.locator("html")
    assert root.get_attribute("lang") == "ar" and root.get_attribute("dir") == "rtl"
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    assert page.evaluate("getComputedStyle(document.querySelector('article')).direction") == "rtl"
    assert page.locator("h1").inner_text() == AR.title
    assert page.title().startswith(AR.title)
    assert page.locator("article .machine").inner_text() == "ترجمة آلية"
    assert page.locator("article .machine").is_visible()
    # The stylesheet loaded (relative to the variant's folder, three levels down).
    assert page.evaluate("document.styleSheets.length") == 1
    assert page.evaluate("getComputedStyle(document.querySelector('.languages ul')).display") == "flex"

    switcher = page.locator("nav.languages a")
    assert switcher.all_inner_texts() == ["English", "العربية", "Français"]
    assert page.locator("nav.languages a[aria-current=page]").inner_text() == "العربية"
    # Laid out right to left: the first entry (English) is the rightmost.
    boxes = [switcher.nth(i).bounding_box() for i in range(3)]
    assert boxes[0]["x"] > boxes[1]["x"] > boxes[2]["x"], boxes
    alternates = page.eval_on_selector_all(
        "link[rel=alternate][hreflang]", "els => els.map(e => [e.hreflang, e.href])"
    )
    assert dict(alternates) == {
        "en": f"{site_url}posts/{PID}/",
        "ar": f"{site_url}ar/posts/{PID}/",
        "fr": f"{site_url}fr/posts/{PID}/",
        "x-default": f"{site_url}posts/{PID}/",
    }
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "variant-rtl.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")

    # A plain link to the French variant.
    page.locator("nav.languages a", has_text="Français").click()
    page.wait_for_url(f"{site_url}fr/posts/{PID}/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("html").get_attribute("dir") == "ltr"
    assert page.evaluate("getComputedStyle(document.body).direction") == "ltr"
    assert page.locator("h1").inner_text() == FR.title
    assert page.locator("nav.languages a[aria-current=page]").inner_text() == "Français"
    assert page.locator("article .machine").count() == 0  # an editor's translation
    assert "Traduction automatique" in page.locator("nav.languages").inner_text()  # the Arabic entry

    # Back to the original, then to the French community page through the French page's home link.
    page.locator("nav.languages a", has_text="English").click()
    page.wait_for_url(f"{site_url}posts/{PID}/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "The clinic opens on Monday"
    page.go_back()
    page.wait_for_url(f"{site_url}fr/posts/{PID}/")
    page.locator("p.back a").click()
    page.wait_for_url(f"{site_url}fr/")
    assert page.locator("html").get_attribute("lang") == "fr"
    titles = page.locator("article h2").all_inner_texts()
    assert titles == ["New bus line to the harbour", FR.title]
    assert page.locator(f"#post-{OTHER} .post-lang").inner_text() == "English"
    assert page.locator("img.qr").evaluate("img => img.complete && img.naturalWidth > 0")
    page.locator(f"#post-{PID} h2 a").click()
    page.wait_for_url(f"{site_url}fr/posts/{PID}/")
    assert not problems, problems
    page.close()


def test_chromium_is_the_one_the_project_uses() -> None:
    assert shutil.which("chromium") == CHROMIUM or Path(CHROMIUM).exists()
