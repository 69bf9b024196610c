"""Links in free text: scheme-less ones made absolute, unsafe schemes never turned into links."""

from __future__ import annotations

import re
import threading
from functools import cache
from typing import TYPE_CHECKING, Any
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


#: What every bare e-mail address linkify-it finds holds: its name's last character (linkify-it's
#: ``src_email_name``, with the same flags) and the ``@``. Text without it has none, so linkify-it
#: is not asked to look for them there, and its e-mail expression (some 13,000 characters with
#: every TLD, about 19 ms to compile) is compiled only when a post can hold an address.
_MAY_HOLD_EMAIL = re.compile(r"[\-;:&=\+\$,\"\.a-zA-Z0-9_]@", re.IGNORECASE)
_linkify_lock = threading.Lock()


@cache
def _linkifier() -> LinkifyIt:
    from linkify_it import LinkifyIt
    from linkify_it.tlds import TLDS

    return LinkifyIt().tlds(TLDS)


def find_matches(text: str) -> list[Any]:
    """linkify-it's matches in ``text`` (``LinkifyIt().tlds(TLDS).match(text) or []``): an address
    found by its bare e-mail search still hides a link it overlaps, as there."""
    linkifier = _linkifier()
    with _linkify_lock:  # the option is the instance's, for this one call
        linkifier.set({"fuzzy_email": _MAY_HOLD_EMAIL.search(text) is not None})
        return linkifier.match(text) or []


def extract_links(text: str) -> list[Link]:
    """Every web link in ``text``, in order, once each.

    ``bit.ly/3hD6tOZ`` and ``www.example.org/x`` become ``https://…`` with their case, path and
    query string intact. E-mail addresses and links with any scheme but http(s) are left out.
    """
    matches = find_matches(text)
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
