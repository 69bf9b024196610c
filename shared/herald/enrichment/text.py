"""Plain-text facts about a post: normal form, title, excerpt, hashtags, mentions, emoji, counts."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from functools import cache

TITLE_MAX = 90
TITLE_MIN = 20
EXCERPT_MAX = 200
WORDS_PER_MINUTE = 200

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？؟])[\"'”’»)]*\s+|\n+")
_HASHTAG = re.compile(r"(?<![\w#&/])#(\w{1,100})")
_MENTION = re.compile(r"(?<![\w@./])@(\w(?:[\w.]{0,62}\w)?)")
_WORD = re.compile(r"[^\W_](?:[\w'’-]*[^\W_])?")
_URLISH = re.compile(r"(?i)\b(?:https?://\S+|www\.\S+|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/\S*)")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def normalise(text: str) -> str:
    """NFC, LF line ends, no trailing spaces on lines, at most one blank line in a row, trimmed."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def cut(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters (with …)."""
    flat = _SPACES.sub(" ", " ".join(text.split()))
    if len(flat) <= limit:
        return flat
    head = flat[: limit - 1]
    space = head.rfind(" ")
    if space >= limit // 2:
        head = head[:space]
    return head.rstrip(" ,;:-–—") + "…"


def first_sentence(text: str) -> str:
    for piece in _SENTENCE_END.split(text.strip()):
        if piece.strip():
            return piece.strip()
    return text.strip()


def make_title(text: str, given: str | None = None) -> str:
    """The given title, or the first sentence, cut to about 90 characters at a word boundary."""
    if given and given.strip():
        return cut(normalise(given), TITLE_MAX * 2)
    sentence = first_sentence(text)
    if len(sentence) < TITLE_MIN:
        # "Did you know?" says nothing alone: carry on into the next sentence.
        flat = " ".join(text.split())
        sentence = flat if len(flat) <= TITLE_MAX else flat[: TITLE_MAX * 2]
    return cut(sentence.rstrip(":;,–— "), TITLE_MAX)


def make_excerpt(text: str) -> str:
    return cut(text, EXCERPT_MAX)


def hashtags(text: str) -> list[str]:
    """Hashtags without the '#', in order, unique by case-insensitive value; '#1' is not one."""
    return _unique(tag for tag in _HASHTAG.findall(text) if not tag.isdigit())


def mentions(text: str) -> list[str]:
    return _unique(_MENTION.findall(text))


@cache
def _emoji_module():  # type: ignore[no-untyped-def]
    import emoji

    return emoji


def emoji_in(text: str) -> list[str]:
    """Each distinct emoji (including flags and ZWJ sequences), in order of appearance."""
    return _unique((e["emoji"] for e in _emoji_module().emoji_list(text)), fold=False)


def word_count(text: str) -> int:
    return len(_WORD.findall(_URLISH.sub(" ", text)))


def reading_time_s(words: int) -> int:
    return max(1, math.ceil(words * 60 / WORDS_PER_MINUTE)) if words else 0


def content_hash(text: str) -> str:
    """Hash of the text with white space folded: the same words are the same post."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


def _unique(items, *, fold: bool = True) -> list[str]:  # type: ignore[no-untyped-def]
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = item.casefold() if fold else item
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
