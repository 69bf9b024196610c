"""Enrichment: from a post's text to everything Herald knows about it."""

from __future__ import annotations

from collections.abc import Sequence

from herald.content import formats
from herald.content.models import Enrichment
from herald.enrichment import text as t
from herald.enrichment.countries import find_countries
from herald.enrichment.language import detect_language
from herald.enrichment.links import extract_links
from herald.enrichment.topics import classify_topics


def fingerprint(raw_text: str) -> str:
    """The ``content_hash`` :func:`enrich` gives a plain-text post, without the rest of enrichment."""
    return t.content_hash(t.normalise(raw_text))


def enrich(
    raw_text: str,
    *,
    title: str | None = None,
    tags: Sequence[str] = (),
    lang: str | None = None,
    fmt: str = "txt",
) -> Enrichment:
    """Derive title, excerpt, links, hashtags, mentions, emoji, countries, language, topics and counts.

    ``raw_text`` is the post's text in its upload format ``fmt`` (Markdown for ``md``): everything
    but the stored text and its hash is derived from the format's plain text (the text itself if
    that is empty); ``lang`` overrides detection.
    """
    text = t.normalise(raw_text)
    plain = t.normalise(formats.of(fmt).plain_text(text)) or text
    tags_found = t.hashtags(plain)
    words = t.word_count(plain)
    topic_hints = [*tags_found, *tags]
    return Enrichment(
        text=text,
        title=t.make_title(plain, title),
        excerpt=t.make_excerpt(plain),
        links=extract_links(plain),
        hashtags=tags_found,
        mentions=t.mentions(plain),
        emoji=t.emoji_in(plain),
        countries=find_countries(plain),
        language=lang or detect_language(plain),
        topics=classify_topics(plain, topic_hints),
        word_count=words,
        reading_time_s=t.reading_time_s(words),
        content_hash=t.content_hash(text),
    )
