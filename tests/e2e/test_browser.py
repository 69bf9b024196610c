"""The public site in a real browser: the local cloud publishes the sample community, headless
Chromium (Debian's, driven by Playwright) loads it from the local site host, joins through the
local API, and checks that nothing a post holds can run."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
import pytest

from herald_tools.localcloud.cloud import LocalCloud
from tests.e2e.settle import wait_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "infra" / "herald_tools" / "samples"
OUTPUT = ROOT / "test-output"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
COMMUNITY = "harbour-line"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = (
    "Beware of fake forms <script>window.__pwned = 1</script> that ask for money. "
    'Never open javascript:alert(1) or <img src=x onerror="window.__pwned=2"> links. '
    "The real one: bit.ly/HL-real"
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make browser)"),
]


@dataclass
class Published:
    cloud: LocalCloud
    site_url: str  # the community's folder: http://127.0.0.1:<port>/harbour-line/
    posts: list[Any]  # stored posts, in the page's order
    hostile_id: str


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    from herald.ingest.adapters.dynamo_content import DynamoContentStore

    logs = tmp_path_factory.mktemp("browser") / "functions.log"
    with LocalCloud(ROOT / "template.yaml", project_root=ROOT, logs=logs) as cloud:
        cloud.start(port=0, api_port=0, site_port=0)
        assert cloud.site_url is not None
        bucket = cloud.resources.uploads_bucket
        s3 = cloud.client("s3")
        uploads = {
            f"posts/{COMMUNITY}/{p.name}": p.read_bytes() for p in sorted((SAMPLES / "posts").iterdir())
        }
        uploads[f"posts/{COMMUNITY}/beware.txt"] = HOSTILE.encode()
        uploads[f"exports/{COMMUNITY}/community-export.txt"] = (SAMPLES / "community-export.txt").read_bytes()
        for key, body in uploads.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        store = DynamoContentStore(cloud.resources.content_table, cloud.client("dynamodb"))
        wait_for("every upload's outcome", lambda: {o.key for o in store.outcomes()} >= set(uploads), cloud)
        cloud.wait_until_idle(timeout=120)
        hostile = store.outcome(f"posts/{COMMUNITY}/beware.txt")
        assert hostile is not None and hostile.status == "published", hostile
        hostile_id = hostile.post_ids[0]
        site_url = f"{cloud.site_url}/{COMMUNITY}/"
        posts = list(store.community_posts(COMMUNITY))  # pinned first, then newest first

        def published_all() -> bool:
            status, _, body = _get(site_url)
            return status == 200 and all(f'id="post-{p.id}"' in body.decode() for p in posts)

        wait_for("the site to show every post", published_all, cloud)
        yield Published(cloud=cloud, site_url=site_url, posts=posts, hostile_id=hostile_id)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_the_site_host_serves_objects_with_their_headers(published: Published) -> None:
    status, headers, body = _get(published.site_url)
    assert status == 200 and body.startswith(b"<!doctype html>")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=60, stale-while-revalidate=300"
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    status, headers, _ = _get(published.site_url + "feed.atom")
    assert headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    request = urllib.request.Request(published.site_url.rstrip("/"), method="GET")
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(request, timeout=10)
    assert redirect.value.code == 301 and redirect.value.headers["Location"] == f"/{COMMUNITY}/"
    assert _get(published.site_url + "posts/nope/")[0] == 404


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_the_community_page_in_chromium(published: Published, browser: Any) -> None:
    from playwright.sync_api import expect

    dialogs: list[str] = []
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1000, "height": 1400}, locale="en-US")
    # Outbound links are answered here: the test never leaves the machine.
    context.route("https://bit.ly/**", lambda route: route.fulfill(status=200, body="bit.ly stand-in"))
    page = context.new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(published.site_url, wait_until="load")

        # The profile, as the channel shows it.
        assert page.locator("h1").first.inner_text().startswith("Harbour Line Migrant Network")
        assert page.locator("h1 .verified .visually-hidden").inner_text() == "Verified community"
        assert (
            page.locator(".tagline").inner_text()
            == "Practical help for people on the move, in their language."
        )
        assert page.locator(".members").inner_text() == "48.5K Members"
        assert page.locator(".created").inner_text() == "Created In 2019"
        qr_width = page.locator("img.qr").evaluate("img => img.complete ? img.naturalWidth : 0")
        assert qr_width > 0, "the QR code did not load"

        # The posts: pinned first, then newest first, as the store orders them.
        shown = page.locator("main article").evaluate_all("els => els.map(e => e.id)")
        assert shown == [f"post-{p.id}" for p in published.posts]
        assert page.locator("main article").first.get_attribute("class") == "post pinned"
        arabic = next(p for p in published.posts if p.language == "ar")
        assert page.locator(f"#post-{arabic.id}").get_attribute("dir") == "rtl"
        assert "🌊" in page.locator("main").inner_text()
        assert page.locator('a[href^="https://bit.ly/"]').count() >= 4

        # Nothing a post holds ran: no script, no handler, no dialog.
        assert page.evaluate("typeof window.__pwned") == "undefined"
        hostile = page.locator(f"#post-{published.hostile_id}")
        assert "<script>window.__pwned = 1</script>" in hostile.inner_text()
        assert hostile.locator("script, img").count() == 0
        assert hostile.locator('a[href^="javascript:"]').count() == 0
        assert hostile.locator('a[href="https://bit.ly/HL-real"]').count() == 1

        OUTPUT.mkdir(exist_ok=True)
        screenshot = OUTPUT / "community-page.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"\nscreenshot of the community page: {screenshot}")

        # Join: the page subscribes (the published demo subscription), POSTs to the local API and
        # shows the count the API now gives: one more.
        count = page.locator("[data-members]").first
        before = int(count.get_attribute("data-members") or "0")
        assert before == 48_500
        button = page.locator("button[data-join]")
        assert button.is_visible()
        button.click()
        expect(count).to_have_attribute("data-members", str(before + 1), timeout=30_000)
        assert page.locator(".join-status").inner_text() != ""
        assert page.locator(".members").inner_text() == "48.5K Members"
        assert page.evaluate("typeof window.__pwned") == "undefined"

        # A link in a post is a real, clickable link.
        link = page.locator('a[href^="https://bit.ly/"]').first
        href = link.get_attribute("href")
        link.click()
        page.wait_for_url(href or "", timeout=10_000)
        assert "bit.ly stand-in" in page.content()

        # One post's page.
        post = published.posts[0]
        page.goto(published.site_url + f"posts/{post.id}/", wait_until="load")
        assert page.locator("h1").inner_text() == post.title
        assert page.title().endswith("Harbour Line Migrant Network")
        page.goto(published.site_url + f"posts/{published.hostile_id}/", wait_until="load")
        assert page.evaluate("typeof window.__pwned") == "undefined"
    finally:
        context.close()
    assert dialogs == [], dialogs
    assert errors == [], errors


def test_the_feeds_parse(published: Published) -> None:
    status, headers, body = _get(published.site_url + "feed.atom")
    assert status == 200
    atom = feedparser.parse(body)
    assert atom.bozo == 0, atom.get("bozo_exception")
    assert atom.feed.title == "Harbour Line Migrant Network"
    assert len(atom.entries) == len(published.posts)
    assert {e.link for e in atom.entries} == {published.site_url + f"posts/{p.id}/" for p in published.posts}

    status, headers, body = _get(published.site_url + "feed.json")
    assert status == 200 and headers["Content-Type"] == "application/feed+json; charset=utf-8"
    feed = json.loads(body)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["home_page_url"] == published.site_url
    assert feed["feed_url"] == published.site_url + "feed.json"
    assert len(feed["items"]) == len(published.posts)
    for item in feed["items"]:
        assert {"id", "url", "content_html", "date_published"} <= set(item)
        assert item["url"].startswith(published.site_url)
