"""Links in free text: scheme-less ones made absolute, unsafe schemes never turned into links."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from herald.content.models import Link

if TYPE_CHECKING:
    from linkify_it import LinkifyIt

#: Only these schemes ever become links; ``javascript:``, ``data:``, ``vbscript:``, ``file:`` never do.
SAFE_SCHEMES = frozenset({"http", "https"})

#: URL shorteners: the destination is hidden, so readers (and moderators) are told.
SHORTENERS = frozenset(
    {
        "bit.ly",
        "bitly.com",
        "tinyurl.com",
        "t.co",
        "goo.gl",
        "ow.ly",
        "is.gd",
        "buff.ly",
        "rebrand.ly",
        "cutt.ly",
        "s.id",
        "shorturl.at",
        "tiny.cc",
        "rb.gy",
        "lnkd.in",
        "youtu.be",
        "amzn.to",
        "fb.me",
        "t.ly",
        "bl.ink",
        "short.io",
        "v.gd",
        "shorte.st",
        "adf.ly",
        "qr.io",
        "trib.al",
        "dlvr.it",
        "ift.tt",
        "su.pr",
        "j.mp",
        "tr.im",
        "x.co",
        "soo.gd",
        "clck.ru",
        "s.coop",
        "on.unicef.org",
    }
)


@cache
def _linkifier() -> LinkifyIt:
    from linkify_it import LinkifyIt
    from linkify_it.tlds import TLDS

    return LinkifyIt().tlds(TLDS)


def extract_links(text: str) -> list[Link]:
    """Every web link in ``text``, in order, once each.

    ``bit.ly/3hD6tOZ`` and ``www.example.org/x`` become ``https://…`` with their case, path and
    query string intact. E-mail addresses and links with any scheme but http(s) are left out.
    """
    matches = _linkifier().match(text) or []
    links: list[Link] = []
    seen: set[str] = set()
    for match in matches:
        schema = match.schema.rstrip(":").lower()
        if schema and schema not in SAFE_SCHEMES:
            continue
        url = match.raw if schema else f"https://{match.raw}"
        if schema == "" and "@" in match.raw.split("/", 1)[0]:
            continue  # a bare e-mail address
        link = make_link(url)
        if link is not None and link.url not in seen:
            seen.add(link.url)
            links.append(link)
    return links


def make_link(url: str) -> Link | None:
    """A :class:`Link` for an absolute http(s) URL, or None if it is not one."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in SAFE_SCHEMES or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    domain = host.removeprefix("www.")
    return Link(url=url, domain=domain, shortener=domain in SHORTENERS)
