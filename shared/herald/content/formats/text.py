"""Plain text (``.txt``): the file is the post's text; community page exports are plain text too.

On the page the text is split into paragraphs at blank lines, its extracted links become anchors and
everything else is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape

from herald.content.formats.base import LINK_REL, Format, safe_href, validate_fields
from herald.content.limits import IngestLimits
from herald.content.models import PostInput


def parse(text: str, limits: IngestLimits) -> PostInput:
    """The whole file, trimmed, is the text; a plain-text post has no other fields."""
    return validate_fields({"text": text.strip()})


def plain_text(text: str) -> str:
    """A plain-text post is its own plain text."""
    return text


@lru_cache(maxsize=4096)
def _link_pattern(urls: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    """A pattern matching each link as written in the text (with its scheme, or without ``https://``)."""
    forms: dict[str, str] = {}
    for url in urls:
        forms.setdefault(url, url)
        if url[:8].lower() == "https://":
            forms.setdefault(url[8:], url)
    alternation = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<![\w/:.@-])(?:{alternation})(?![\w/])"), forms


def _escape_lines(text: str) -> str:
    return str(escape(text)).replace("\n", "<br>\n")


def text_html(text: str, links: Iterable[Any]) -> Markup:
    """A plain-text post as paragraphs, its known links as anchors, everything else escaped.

    The text is split at the links first and every segment escaped on its own, so no link can
    carry markup out of the text; each ``href`` is the extracted URL, checked again and escaped.
    """
    urls = tuple(dict.fromkeys(link.url for link in links if safe_href(link.url)))
    matcher = _link_pattern(urls) if urls else None
    out: list[str] = []
    for paragraph in text.split("\n\n"):
        if not paragraph.strip():
            continue
        if matcher is None:
            out.append(f"<p>{_escape_lines(paragraph)}</p>")
            continue
        pattern, forms = matcher
        parts: list[str] = []
        position = 0
        for match in pattern.finditer(paragraph):
            parts.append(_escape_lines(paragraph[position : match.start()]))
            href = forms[match.group(0)]
            parts.append(f'<a href="{escape(href)}" rel="{LINK_REL}">{escape(match.group(0))}</a>')
            position = match.end()
        parts.append(_escape_lines(paragraph[position:]))
        out.append(f"<p>{''.join(parts)}</p>")
    return Markup("\n".join(out))


FORMAT = Format(extension="txt", parse=parse, plain_text=plain_text, html=text_html, exports=True)
