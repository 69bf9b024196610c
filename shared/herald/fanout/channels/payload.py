"""The notification a browser's service worker receives, as compact JSON that always fits one push message.

A push message is one aes128gcm record of at most 4,096 bytes (RFC 8291 section 4): 86 bytes of
header (salt, record size, and the 65-byte ephemeral public key as key id), 16 bytes of AEAD tag
and one padding delimiter leave **3,993 bytes of plaintext**. :func:`encode` shortens the ``body``,
then the ``title``, at grapheme boundaries (an emoji ZWJ sequence, a flag, a letter with its marks
stay whole) and marks the cut with "…".
"""

from __future__ import annotations

import json
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

#: 4096-byte record - 16-byte tag - 86-byte header (65-byte key id) - 1 padding delimiter.
MAX_PAYLOAD_BYTES = 4096 - 16 - 86 - 1

ELLIPSIS = "…"


class PayloadTooLarge(ValueError):
    """The notification cannot be made to fit even with an empty body and title."""


def _well_formed(value: str) -> str:
    # A lone surrogate cannot be encoded as UTF-8; replacing it beats failing the whole fan-out.
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


Text = Annotated[str, AfterValidator(_well_formed)]


class Notification(BaseModel):
    """What a member's browser shows for a new post (the service worker reads these fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Text
    body: Text
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    post_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    community: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    tag: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    lang: Annotated[str, StringConstraints(min_length=1, max_length=35)] | None = None


def _dump(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _is_extender(char: str) -> bool:
    """Characters that belong to the character before them (a cut must not fall just before one)."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or code == 0x200D  # zero width joiner
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def grapheme_boundary(text: str, index: int) -> int:
    """The greatest index <= ``index`` where cutting ``text`` keeps every grapheme whole.

    Close to Unicode's extended grapheme clusters for what notifications carry: combining marks,
    ZWJ emoji sequences, variation selectors, skin tones, tag sequences and flag pairs.
    """
    index = max(0, min(index, len(text)))
    while 0 < index < len(text):
        if _is_extender(text[index]) or text[index - 1] == "\u200d":
            index -= 1
            continue
        if _is_regional_indicator(text[index]) and _is_regional_indicator(text[index - 1]):
            run = 0
            while index - run - 1 >= 0 and _is_regional_indicator(text[index - run - 1]):
                run += 1
            if run % 2:  # an odd run before the cut: the cut splits a flag
                index -= 1
                continue
        break
    return index


def _clip(text: str, keep: int) -> str:
    if keep >= len(text):
        return text
    head = text[:keep].rstrip()
    return head + ELLIPSIS if head else ""


def _fit(fields: dict[str, Any], name: str, limit: int) -> bytes | None:
    """The encoding with ``fields[name]`` cut as little as needed, or None if even "" does not fit."""
    text: str = fields[name]
    if len(_dump({**fields, name: ""})) > limit:
        return None
    # The encoded size grows with the number of characters kept: search for the most that fit.
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(_dump({**fields, name: _clip(text, mid)})) <= limit:
            lo = mid
        else:
            hi = mid - 1
    keep = grapheme_boundary(text, lo)
    return _dump({**fields, name: _clip(text, keep)})


def encode(notification: Notification, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """The notification as compact UTF-8 JSON of at most ``limit`` bytes (``body``, then ``title`` cut).

    Raises :class:`PayloadTooLarge` when the other fields alone exceed the limit.
    """
    fields = notification.model_dump(exclude_none=True)
    data = _dump(fields)
    if len(data) <= limit:
        return data
    for name in ("body", "title"):
        fitted = _fit(fields, name, limit)
        if fitted is not None:
            return fitted
        fields[name] = ""
    raise PayloadTooLarge(f"the notification needs more than {limit} bytes without body and title")
