"""JSON (``.json``): an object holding the post's fields (``text`` and the optional ones).

Read strictly: nesting bounded before parsing, a field given twice refused, unknown fields named.
The text is plain text, shown on the page as a plain-text post is.
"""

from __future__ import annotations

import json
from typing import Any

from herald.content import limits as bounds
from herald.content.formats import text as plain
from herald.content.formats.base import Format, validate_json
from herald.content.limits import IngestLimits
from herald.content.models import PostInput
from herald.core.errors import InvalidUpload


def _json_depth(text: str) -> int:
    """Maximum nesting of JSON arrays/objects, scanned without building anything."""
    depth = best = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidUpload.one(
                key[: bounds.QUOTED_CHARS], f"the field {bounds.quoted(key)} appears more than once"
            )
        seen[key] = value
    return seen


def parse(text: str, limits: IngestLimits) -> PostInput:
    depth = _json_depth(text)
    if depth > limits.max_nesting:
        raise InvalidUpload.one(
            "body", f"JSON nested {depth} levels deep; at most {limits.max_nesting} are allowed"
        )
    try:
        document = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InvalidUpload.one(
            f"line {exc.lineno}", f"not valid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    if not isinstance(document, dict):
        raise InvalidUpload.one(
            "body", f"a JSON post must be an object with a 'text' field, not {type(document).__name__}"
        )
    post = validate_json(text)
    if not post.text.strip():
        raise InvalidUpload.one("text", "the text is empty")
    return post


FORMAT = Format(extension="json", parse=parse, plain_text=plain.plain_text, html=plain.text_html)
