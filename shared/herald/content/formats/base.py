"""What every upload format is made of, and the pieces the formats share.

A format is one module of :mod:`herald.content.formats` holding a :class:`Format`: how a post in it
is read (its decoded text to the fields of a post), the plain text enrichment reads, and the HTML
of the post's page. Nothing here touches AWS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup
from pydantic import ValidationError

from herald.content import limits as bounds
from herald.content.limits import IngestLimits
from herald.content.models import Link, PostInput
from herald.core.errors import InvalidUpload, Problem

#: Schemes a link in a plain-text post may have (a format may allow more, as Markdown ``mailto:``).
LINK_SCHEMES = frozenset({"http", "https"})
LINK_REL = "nofollow noopener ugc"
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\"'<>\\`]")


@dataclass(frozen=True, slots=True)
class Format:
    """One upload format, known by its file extension (lowercase, without the dot).

    - ``parse``: the upload's decoded text (UTF-8, checked for size and emptiness) to the fields of
      a post; raises :class:`InvalidUpload` naming the field or the line;
    - ``plain_text``: the stored text (normalised) to the plain text enrichment reads (titles,
      excerpts, links, counts);
    - ``html``: the stored text and its extracted links to the body of the post's page, every
      string the editor wrote escaped;
    - ``exports``: a community page export may be uploaded with this extension (its posts are then
      posts of this format).
    """

    extension: str
    parse: Callable[[str, IngestLimits], PostInput]
    plain_text: Callable[[str], str]
    html: Callable[[str, Sequence[Link]], Markup]
    exports: bool = False


# --- the fields of a post ---------------------------------------------------------------------


def validate_fields(fields: dict[str, Any]) -> PostInput:
    """The fields of a post, checked; every problem named by its field."""
    try:
        return PostInput.model_validate(fields)
    except ValidationError as exc:
        raise InvalidUpload([_problem_from_pydantic(err) for err in exc.errors()]) from None


def validate_json(document: str) -> PostInput:
    """A JSON object holding the fields of a post, checked; every problem named by its field."""
    try:
        return PostInput.model_validate_json(document)
    except ValidationError as exc:
        raise InvalidUpload([_problem_from_pydantic(err) for err in exc.errors()]) from None


_ALLOWED_FIELDS = ", ".join(PostInput.model_fields)


def _problem_from_pydantic(err: Any) -> Problem:
    loc = _format_loc(err["loc"])
    if err["type"] == "extra_forbidden":
        return Problem(loc, f"unknown field {bounds.quoted(loc)}; allowed fields are {_ALLOWED_FIELDS}")
    if err["type"] == "missing":
        return Problem(loc, "this field is required")
    got = err.get("input")
    kind = type(got).__name__ if got is not None else "null"
    message = err["msg"]
    if err["type"] == "value_error":
        # Herald's own validators (e.g. the date bounds) already say what is wrong.
        message = message.removeprefix("Value error, ")
    if err["type"].endswith("_type"):
        message = f"{message} (got {kind})"
    return Problem(loc, message)


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


# --- links on a page --------------------------------------------------------------------------


def safe_href(url: str, schemes: frozenset[str] = LINK_SCHEMES) -> bool:
    """True for an absolute URL with one of ``schemes`` (and a host, unless ``mailto:``)."""
    if not url or _UNSAFE_URL_CHARS.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        return False
    return scheme == "mailto" or bool(parts.hostname)
