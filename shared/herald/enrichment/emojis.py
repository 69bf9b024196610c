"""Emoji in text, as the ``emoji`` package finds them, from a compact table derived from it.

:func:`find` answers as ``[e["emoji"] for e in emoji.emoji_list(text)]`` and :func:`replace` as
``emoji.replace_emoji(text, replace=…)`` (with the package's default ``replace_emoji_keep_zwj =
False``): the same search, a copy of the package's ``tokenizer.tokenize`` (longest path in a tree
of every emoji, ZWJ sequences that are not in the table taken apart, stray variation selectors and
joiners dropped), over the same emoji. What the package loads on import, its whole ``emoji.json``
(names in every language, aliases, versions; 0.5 MB of JSON through a Python ``object_pairs_hook``),
is not needed for that: ``data/emoji.txt`` holds only the emoji, one a line, ``c`` before the
components (skin tones, hair styles) and ``e`` before the others.

``python -m herald.enrichment.emojis`` writes the file from the installed ``emoji`` package (run it
after upgrading the package); ``--check`` exits 1 when the file differs from what it would write.
The package is needed there, at build time, and by the tests that compare answers, not at run time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "data" / "emoji.txt"

_ZWJ = "\u200d"
_TEXT_STYLE = "\ufe0e"
_EMOJI_STYLE = "\ufe0f"
_MODULE = "herald.enrichment.emojis"


@dataclass(frozen=True)
class Table:
    """Every emoji, which of them are components, and every prefix of an emoji (the package's
    search tree as a set: a path of the tree is a prefix, a node holding data an emoji)."""

    emoji: frozenset[str]
    components: frozenset[str]
    prefixes: frozenset[str]
    source: str  # the header line: the emoji package's version the table was derived from


def parse(text: str) -> Table:
    """A table from the text of ``data/emoji.txt``."""
    header, *lines = text.removesuffix("\n").split("\n")
    wrong = next((line for line in lines if len(line) < 3 or line[1] != " " or line[0] not in "ce"), None)
    if wrong is not None:
        raise ValueError(f"{TABLE.name}: not an emoji line: {wrong!r}")
    emoji = frozenset(line[2:] for line in lines)
    components = frozenset(line[2:] for line in lines if line[0] == "c")
    prefixes = frozenset(value[:end] for value in emoji for end in range(1, len(value) + 1))
    return Table(emoji, components, prefixes, header)


@cache
def table() -> Table:
    """The table, read once per process."""
    return parse(TABLE.read_text(encoding="utf-8"))


def _tokens(text: str) -> Iterator[tuple[str, bool]]:
    """``(chars, is_emoji)`` for each emoji and each other character kept, in order: the package's
    ``tokenize(text, keep_zwj=False)`` step for step (kept apart from it so its answers can be
    compared; see the module's docstring)."""
    t = table()
    prefixes, known, components = t.prefixes, t.emoji, t.components
    result: list[tuple[str, bool]] = []
    i = 0
    length = len(text)
    ignore: set[int] = set()  # the joiners of ZWJ sequences that are not in the table
    while i < length:
        consumed = False
        char = text[i]
        if i in ignore:
            i += 1
            continue
        elif char in prefixes:
            j = i + 1
            while j < length and text[i : j + 1] in prefixes:
                if j in ignore:
                    break
                j += 1
            if text[i:j] in known:
                result.append((text[i:j], True))
                i = j - 1
                consumed = True
        elif char == _ZWJ and result and result[-1][0] in known and i > 0 and text[i - 1] in prefixes:
            # A joiner after an emoji: go back and take the sequence apart around it.
            ignore.add(i)
            if result[-1][0] in components:
                i = i - sum(len(chars) for chars, _ in result[-2:])
                if text[i] == _ZWJ:
                    i += 1
                    del result[-1]
                else:
                    del result[-2:]
            else:
                i = i - len(result[-1][0])
                del result[-1]
            continue
        elif result:
            yield from result
            result = []
        if not consumed and char != _TEXT_STYLE and char != _EMOJI_STYLE:
            result.append((char, False))
        i += 1
    yield from result


def find(text: str) -> list[str]:
    """Each emoji of ``text`` in order, repeats included (``emoji.emoji_list``'s ``"emoji"``)."""
    return [chars for chars, is_emoji in _tokens(text) if is_emoji]


def replace(text: str, replacement: str) -> str:
    """``text`` with each emoji made ``replacement`` (``emoji.replace_emoji(text, replace=…)``)."""
    return "".join(replacement if is_emoji else chars for chars, is_emoji in _tokens(text))


# -- derived from the emoji package, at build time --------------------------------------------------


def render() -> bytes:
    """The bytes of ``data/emoji.txt`` for the installed ``emoji`` package."""
    import emoji
    from emoji.unicode_codes import EMOJI_DATA, STATUS

    component = STATUS["component"]
    lines = [f"# emoji {emoji.__version__}: written by python -m herald.enrichment.emojis; do not edit"]
    for value in sorted(EMOJI_DATA):
        kind = "c" if EMOJI_DATA[value]["status"] == component else "e"
        lines.append(f"{kind} {value}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def main(argv: list[str]) -> int:
    wanted = render()
    if argv == ["--check"]:
        if TABLE.read_bytes() != wanted:
            print(f"{TABLE} is not what the installed emoji package gives: run python -m {_MODULE}")
            return 1
        return 0
    if argv:
        print(f"usage: python -m {_MODULE} [--check]", file=sys.stderr)
        return 2
    TABLE.write_bytes(wanted)
    print(f"wrote {TABLE} ({len(wanted)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
