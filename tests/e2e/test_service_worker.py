"""The site's service worker collapses repeated pushes of a post, in a real browser's IndexedDB.

``sw.js`` runs in a page of headless Chromium (Debian's, driven by Playwright; the page is served by
Playwright's routing, no socket) with ``self`` standing in for the worker's global scope: its own
``registration.showNotification`` records what would be shown, ``indexedDB`` is the browser's. The
pushes carry the payload the sender encodes (``herald.fanout.channels.payload``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from herald.fanout.channels.payload import Notification, encode

ROOT = Path(__file__).resolve().parents[2]
SW = ROOT / "shared" / "herald" / "site" / "static" / "sw.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ORIGIN = "https://herald.test"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make browser)"),
]

HARNESS = """
(source) => {
  const shown = [], opened = [], handlers = {};
  const scope = {
    indexedDB: window.indexedDB,
    registration: {
      scope: location.origin + "/",
      showNotification: (title, options) => { shown.push({ title, options }); return Promise.resolve(); },
    },
    clients: { openWindow: (url) => { opened.push(url); return Promise.resolve(); } },
    addEventListener: (name, handler) => { handlers[name] = handler; },
  };
  new Function("self", source)(scope);
  const run = (name, event) => {
    let pending = Promise.resolve();
    handlers[name]({ ...event, waitUntil: (p) => { pending = p; } });
    return pending;
  };
  window.harness = {
    shown, opened,
    push: (text) => run("push", { data: { json: () => JSON.parse(text), text: () => text } }),
    click: (url) => run("notificationclick", { notification: { data: { url }, close: () => {} } }),
    remembered: () => new Promise((resolve) => {
      const open = indexedDB.open("herald-notifications");
      open.onerror = () => resolve([]);
      open.onsuccess = () => {
        const db = open.result;
        if (!db.objectStoreNames.contains("shown")) { db.close(); resolve([]); return; }
        const all = db.transaction("shown").objectStore("shown").getAll();
        all.onsuccess = () => { db.close(); resolve(all.result.map((r) => r.tag)); };
      };
    }),
  };
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture(name="page")
def page_fixture(browser: Any) -> Iterator[Any]:
    context = browser.new_context()  # a fresh IndexedDB for each test
    page = context.new_page()
    blank = {"status": 200, "content_type": "text/html", "body": "<!doctype html>"}
    page.route(f"{ORIGIN}/**", lambda route: route.fulfill(**blank))
    page.goto(f"{ORIGIN}/harbour/")
    page.evaluate(HARNESS, SW.read_text(encoding="utf-8"))
    yield page
    context.close()


def _payload(post_id: str, title: str = "Road closed") -> str:
    data = encode(
        Notification(
            title=title,
            body="The north road is closed today.",
            url=f"{ORIGIN}/harbour/posts/{post_id}/",
            post_id=post_id,
            community="harbour",
            tag=f"post-{post_id}",
            lang="en",
        )
    )
    return data.decode("utf-8")


def _push(page: Any, payload: str) -> None:
    page.evaluate("(text) => harness.push(text)", payload)


def _shown(page: Any) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = page.evaluate("() => harness.shown")
    return shown


def test_a_notification_carries_the_posts_tag_and_does_not_renotify(page: Any) -> None:
    _push(page, _payload("0123456789abcdef0123"))
    [note] = _shown(page)
    assert note["title"] == "Road closed"
    options = note["options"]
    assert options["tag"] == "post-0123456789abcdef0123" and options["renotify"] is False
    assert options["lang"] == "en" and options["body"] == "The north road is closed today."
    assert options["data"] == {"url": f"{ORIGIN}/harbour/posts/0123456789abcdef0123/"}


def test_a_repeat_of_a_post_is_not_shown_again(page: Any) -> None:
    """A sender that died after the push and before its mark pushes the post again: the member
    sees one notification (even one dismissed in between)."""
    _push(page, _payload("0123456789abcdef0123"))
    _push(page, _payload("0123456789abcdef0123", title="Road closed (again)"))
    _push(page, _payload("00000000000000000002"))
    tags = [n["options"]["tag"] for n in _shown(page)]
    assert tags == ["post-0123456789abcdef0123", "post-00000000000000000002"]


def test_the_set_of_shown_posts_is_bounded(page: Any) -> None:
    first = "a0000000000000000000"
    _push(page, _payload(first))
    for i in range(120):
        _push(page, _payload(f"b{i:019d}"))
    remembered = page.evaluate("() => harness.remembered()")
    assert len(remembered) == 100  # the last 100 shown, no more
    assert f"post-{first}" not in remembered and "post-b0000000000000000119" in remembered
    _push(page, _payload(first))  # forgotten: shown again (the tag still replaces one on screen)
    assert len(_shown(page)) == 122


def test_a_payload_without_a_tag_falls_back_to_the_post_id_and_clicks_open_only_web_urls(page: Any) -> None:
    _push(page, json.dumps({"title": "T", "body": "B", "url": f"{ORIGIN}/p/", "post_id": "p9"}))
    assert _shown(page)[0]["options"]["tag"] == "post-p9"
    page.evaluate("() => harness.click('javascript:alert(1)')")
    page.evaluate(f"() => harness.click('{ORIGIN}/p/')")
    assert page.evaluate("() => harness.opened") == [f"{ORIGIN}/p/"]
