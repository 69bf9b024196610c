"""Atom 1.0 and JSON Feed 1.1 documents of a community's newest posts.

Atom is written with :mod:`xml.etree.ElementTree` (standard library): the format is small, the
output is deterministic (attribute and element order as written), and the Lambda layer stays free of
lxml, which a feed library would bring. Characters XML 1.0 forbids are dropped, so any post text
gives a well-formed document.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

ATOM_NS = "http://www.w3.org/2005/Atom"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
#: When a feed has no entries, its ``updated`` is this fixed instant (so the output stays deterministic).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# XML 1.0 allows tab, LF, CR and everything from U+0020 but the surrogates and U+FFFE/U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One post, as both feeds show it."""

    id: str
    url: str
    title: str
    summary: str
    content_html: str
    content_text: str
    published: datetime
    updated: datetime
    language: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """The feed as a whole: the community, where its site and feeds live."""

    title: str
    description: str | None
    home_page_url: str
    atom_url: str
    json_url: str
    author: str
    language: str
    entries: Sequence[FeedEntry] = field(default_factory=tuple)

    @property
    def updated(self) -> datetime:
        return max((e.updated for e in self.entries), default=EPOCH)


def xml_text(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub("", value)


def rfc3339(at: datetime) -> str:
    """``2026-11-28T21:29:46Z`` (UTC, seconds; naive datetimes are taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def atom(meta: FeedMeta) -> bytes:
    """An Atom 1.0 feed (RFC 4287): id, title, updated, links self and alternate, author, entries."""
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": meta.language})
    _sub(feed, "id", meta.home_page_url)
    _sub(feed, "title", meta.title)
    if meta.description:
        _sub(feed, "subtitle", meta.description)
    _sub(feed, "updated", rfc3339(meta.updated))
    _sub(feed, "link", rel="self", type="application/atom+xml", href=meta.atom_url)
    _sub(feed, "link", rel="alternate", type="text/html", href=meta.home_page_url)
    author = _sub(feed, "author")
    _sub(author, "name", meta.author)
    _sub(author, "uri", meta.home_page_url)
    _sub(feed, "generator", "Herald")
    for entry in meta.entries:
        item = _sub(feed, "entry")
        if entry.language:
            item.set("xml:lang", entry.language)
        _sub(item, "id", entry.id)
        _sub(item, "title", entry.title)
        _sub(item, "published", rfc3339(entry.published))
        _sub(item, "updated", rfc3339(entry.updated))
        _sub(item, "link", rel="alternate", type="text/html", href=entry.url)
        _sub(item, "summary", entry.summary)
        _sub(item, "content", entry.content_html, type="html")
        for tag in entry.tags:
            _sub(item, "category", term=tag)
    body = ET.tostring(feed, encoding="unicode", short_empty_elements=True)
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode("utf-8")


def json_feed(meta: FeedMeta) -> bytes:
    """A JSON Feed 1.1 document (https://jsonfeed.org/version/1.1)."""
    document: dict[str, object] = {
        "version": JSON_FEED_VERSION,
        "title": meta.title,
        "home_page_url": meta.home_page_url,
        "feed_url": meta.json_url,
    }
    if meta.description:
        document["description"] = meta.description
    document["language"] = meta.language
    document["authors"] = [{"name": meta.author, "url": meta.home_page_url}]
    items: list[dict[str, object]] = []
    for entry in meta.entries:
        item: dict[str, object] = {
            "id": entry.id,
            "url": entry.url,
            "title": entry.title,
            "content_html": entry.content_html,
            "content_text": entry.content_text,
            "summary": entry.summary,
            "date_published": rfc3339(entry.published),
            "date_modified": rfc3339(entry.updated),
        }
        if entry.tags:
            item["tags"] = list(entry.tags)
        if entry.language:
            item["language"] = entry.language
        items.append(item)
    document["items"] = items
    return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
