"""Atom 1.0 and JSON Feed 1.1: parsed back, checked against what the specs require."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import feedparser
import pytest

from herald.site import CommunityView, SiteRenderer
from herald.site.feeds import JSON_FEED_VERSION, xml_text
from tests.unit.test_site_render import BASE, T0, community, make_post


def render(posts, **kwargs):  # type: ignore[no-untyped-def]
    return SiteRenderer(BASE, **kwargs).render_community(community(), posts)


def test_atom_is_valid_and_complete() -> None:
    posts = [make_post(i) for i in range(5)]
    posts[0] = posts[0].model_copy(update={"tags": ["health"], "updated_at": T0 + timedelta(days=2)})
    site = render(posts)
    feed = feedparser.parse(site["feed.atom"].body)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Harbour Line Migrant Network"
    assert feed.feed.id == BASE
    assert feed.feed.author == "Harbour Line Migrant Network"
    links = {link.rel: link.href for link in feed.feed.links}
    assert links == {"self": f"{BASE}feed.atom", "alternate": BASE}
    assert feed.feed.updated_parsed[:6] == (T0 + timedelta(days=2)).timetuple()[:6]
    assert [e.id for e in feed.entries] == [f"{BASE}posts/{p.id}/" for p in reversed(posts)]
    first = feed.entries[-1]
    assert first.link == f"{BASE}posts/{posts[0].id}/"
    assert first.published_parsed[:6] == T0.timetuple()[:6]
    assert first.updated_parsed[:6] == (T0 + timedelta(days=2)).timetuple()[:6]
    assert first.summary == posts[0].excerpt
    assert first.content[0].type == "text/html"
    assert 'rel="nofollow noopener ugc"' in first.content[0].value
    assert first.tags[0].term == "health"


def test_atom_ids_are_stable_across_renders_and_new_posts() -> None:
    posts = [make_post(i) for i in range(3)]
    one = feedparser.parse(render(posts)["feed.atom"].body)
    two = feedparser.parse(render([*posts, make_post(3)])["feed.atom"].body)
    assert [e.id for e in one.entries] == [e.id for e in two.entries][1:]


def test_feeds_hold_the_newest_posts_only() -> None:
    posts = [make_post(i) for i in range(12)]
    posts[0] = posts[0].model_copy(update={"pinned": True})
    site = render(posts, feed_size=5)
    atom = feedparser.parse(site["feed.atom"].body)
    items = json.loads(site["feed.json"].body)["items"]
    newest = [f"{BASE}posts/{posts[i].id}/" for i in (11, 10, 9, 8, 7)]
    assert [e.id for e in atom.entries] == newest == [i["id"] for i in items]


@pytest.mark.parametrize("text", ["bell \x07 and \x1b escape, ok", "<script>alert(1)</script> & ]]> \ufffe"])
def test_feeds_stay_well_formed_with_hostile_text(text: str) -> None:
    post = make_post(1, f"Title {text}")
    site = render([post])
    feed = feedparser.parse(site["feed.atom"].body)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert len(feed.entries) == 1
    json.loads(site["feed.json"].body)
    assert xml_text("a\x00b\x0bc\ud800d") == "abcd"


def test_empty_community_has_valid_feeds() -> None:
    site = SiteRenderer(BASE).render_community(CommunityView(id="empty", name="Empty"), [])
    feed = feedparser.parse(site["feed.atom"].body)
    assert feed.bozo == 0 and feed.entries == []
    assert feed.feed.updated_parsed[:3] == (1970, 1, 1)
    document = json.loads(site["feed.json"].body)
    assert document["items"] == [] and "description" not in document


def _rfc3339(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None
    return parsed.astimezone(UTC)


def test_json_feed_follows_version_1_1() -> None:
    ar = make_post(2, "تذكير: مراكز التسجيل في عمّان مفتوحة يوم السبت. #التسجيل")
    posts = [make_post(1).model_copy(update={"tags": ["registration"]}), ar]
    site = render(posts, locale="fr")
    document = json.loads(site["feed.json"].body.decode("utf-8"))
    # top level: version, title and items are required; the rest is what Herald always gives
    assert document["version"] == JSON_FEED_VERSION == "https://jsonfeed.org/version/1.1"
    assert document["title"] == "Harbour Line Migrant Network"
    assert document["home_page_url"] == BASE and document["feed_url"] == f"{BASE}feed.json"
    assert document["description"].startswith("Practical help")
    assert document["language"] == "fr"
    assert document["authors"] == [{"name": "Harbour Line Migrant Network", "url": BASE}]
    assert isinstance(document["items"], list) and len(document["items"]) == 2
    for item in document["items"]:
        assert isinstance(item["id"], str) and item["id"]  # required
        assert item.get("content_html") or item.get("content_text")  # one of them is required
        assert item["url"] == item["id"]
        for key in ("title", "summary", "content_html", "content_text"):
            assert isinstance(item[key], str)
        assert _rfc3339(item["date_published"]) <= _rfc3339(item["date_modified"])
    arabic, first = document["items"]
    assert arabic["language"] == "ar" and "التسجيل" in arabic["tags"]
    assert first["tags"][0] == "registration" and first["language"] == "en"
    assert first["content_text"] == posts[0].text
    assert set(document) <= {
        "version",
        "title",
        "home_page_url",
        "feed_url",
        "description",
        "user_comment",
        "next_url",
        "icon",
        "favicon",
        "authors",
        "language",
        "expired",
        "hubs",
        "items",
    }
