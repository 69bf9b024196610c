"""Text for a terminal: whatever a key, a post or an error message holds is shown, never obeyed.

Object keys, titles, error messages and alarm reasons come from uploads and from AWS; printed as
they are, ``\\x1b[2J`` clears the operator's screen, ``\\x1b]0;…\\x07`` retitles the window, ``\\r``
overwrites the start of a line, ``\\n`` forges a line of its own, and U+202E turns the rest of
the line around. :func:`inert` writes each such character as an escape instead (``\\x1b``,
``\\r``, ``\\u202e``): every C0 and C1 control and DEL (category Cc; an escape sequence is inert
once its ESC is), every format character (Cf: the bidirectional embeddings, overrides and
isolates U+202A–U+202E and U+2066–U+2069, the marks U+200E/U+200F/U+061C, zero-width spaces,
U+FEFF …), the line and paragraph separators (Zl, Zp) and lone surrogates (Cs). The zero-width
non-joiner and joiner (U+200C, U+200D) stay: Persian and other scripts need them within words,
emoji sequences are made with them, and they neither move the cursor nor reorder the line.

The escapes are for display only; the data is unchanged, and ``--json`` gives it exactly.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from typing import Any

KEPT = frozenset("\u200c\u200d")  # ZWNJ, ZWJ: shaping within words and emoji
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def unsafe(char: str) -> bool:
    """Whether one character could steer a terminal (see the module's docstring)."""
    return char not in KEPT and unicodedata.category(char) in UNSAFE_CATEGORIES


@functools.cache
def _candidates() -> re.Pattern[str]:
    """The unsafe characters of the Basic Multilingual Plane exactly, and every character beyond it.

    Building the class over the BMP is quick; the few unsafe characters beyond it (tags, musical
    and hieroglyph format controls) are rare, so those planes are matched whole and checked one
    by one with :func:`unsafe`.
    """
    ranges: list[str] = []
    start = None
    for code in range(0x10001):
        bad = code < 0x10000 and unsafe(chr(code))
        if bad and start is None:
            start = code
        elif not bad and start is not None:
            ranges.append(f"\\u{start:04x}-\\u{code - 1:04x}")
            start = None
    return re.compile("[" + "".join(ranges) + "\\U00010000-\\U0010ffff]")


_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def inert(text: object) -> str:
    """``text`` (made a string) with every character that could steer a terminal written as an escape."""
    return _candidates().sub(lambda m: _escape(m.group()) if unsafe(m.group()) else m.group(), str(text))


def inert_tree(value: Any) -> Any:
    """``value`` with :func:`inert` applied to every string in it (dict keys too), for text renderers."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, dict):
        return {inert_tree(k): inert_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [inert_tree(v) for v in value]
    return value


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON writes characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def inert_json(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON that is safe on a terminal and parses to the same value.

    Non-ASCII text stays readable (``ensure_ascii=False``), but ``json.dumps`` then writes DEL,
    the C1 controls and the format characters raw; they are written as ``\\uXXXX`` escapes here.
    Outside strings JSON holds only ASCII punctuation, digits and letters, so every match is
    inside a string, where the escape means the same character.
    """
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    # json.dumps escapes every C0 control within strings: a raw newline is the indentation's.
    return _candidates().sub(
        lambda m: _json_escape(m.group()) if m.group() != "\n" and unsafe(m.group()) else m.group(), text
    )
