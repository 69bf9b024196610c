"""Plain-text facts about a post: normal form, title, excerpt, hashtags, mentions, emoji, counts."""

from __future__ import annotations

import hashlib
import heapq
import math
import re
import unicodedata
from collections.abc import Iterable

TITLE_MAX = 90
TITLE_MIN = 20
EXCERPT_MAX = 200
WORDS_PER_MINUTE = 200

# Every pattern here sees user text, so each is linear in it (tests/unit/test_enrichment_linear.py
# checks their structure): no quantifier inside an unbounded one, no two overlapping unbounded
# quantifiers in a row, and an unbounded quantifier that something can still fail after either
# starts only where its run starts (a lookbehind) or is bounded. Otherwise the search restarts at
# every character of a long run and scans the rest of it again: quadratic, tens of seconds at 32 KiB.
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？؟])[\"'”’»)]*\s+|\n+")
_HASHTAG = re.compile(r"(?<![\w#&/])#(\w{1,100})")
_MENTION = re.compile(r"(?<![\w@./])@(\w(?:[\w.]{0,62}\w)?)")
# A word: a run of letters, digits, '_', apostrophes and hyphens that holds a letter or digit
# (counted once per run, which is what "a letter or digit, then up to the run's last one" gives).
_WORD = re.compile(r"(?<![\w'’-])[_'’-]*[^\W_][\w'’-]*")
# URL-like words are not counted. Each one runs from where it starts to the end of its word (the
# next white space); it starts at a word boundary with ``http://``, ``https://`` or ``www.``, or
# where a host name (``label.label.tld``, one dot between labels) that ends right before a ``/``
# begins: the first boundary of the last run of host characters without ``..`` in it.
_URL_HEAD = re.compile(r"(?i)\b(?:https?://\S|www\.\S)")
_HOST_RUN = re.compile(r"(?i)(?<![a-z0-9.-])[a-z0-9.-]+/")
_HOST_START = re.compile(r"(?i)\b[a-z0-9-]")
_TLD = re.compile(r"(?i)[a-z]{2,}")
_REST_OF_WORD = re.compile(r"\S*")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise(text: str) -> str:
    """NFC, LF line ends, no trailing spaces on lines, at most one blank line in a row, trimmed."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


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


def emoji_in(text: str) -> list[str]:
    """Each distinct emoji (including flags and ZWJ sequences), in order of appearance."""
    from herald.enrichment import emojis

    return _unique(emojis.find(text), fold=False)


def word_count(text: str) -> int:
    """Words of ``text``, URL-like ones (``https://…``, ``www.…``, ``bit.ly/…``) left out."""
    return len(_WORD.findall(without_urls(text)))


def without_urls(text: str) -> str:
    """``text`` with each URL-like word, from where the URL starts to the word's end, made one space.

    One pass over the text: a run of host characters is looked at once, from its first character,
    so a post of 64 KiB of ``a-a.a-a.`` costs what any post of that size costs.
    """
    pieces: list[str] = []
    done = 0
    heads = (m.start() for m in _URL_HEAD.finditer(text))
    hosts = (_host_start(text, m.start(), m.end() - 1) for m in _HOST_RUN.finditer(text))
    for start in heapq.merge(heads, (h for h in hosts if h is not None)):
        if start < done:
            continue  # inside a URL already cut
        pieces += (text[done:start], " ")
        rest = _REST_OF_WORD.match(text, start)  # \S* matches at every position
        done = rest.end() if rest else start
    pieces.append(text[done:])
    return "".join(pieces)


def _host_start(text: str, start: int, slash: int) -> int | None:
    """Where the host name that ends at ``slash`` starts in the run ``text[start:slash]``, if any."""
    double_dot = text.rfind("..", start, slash)
    if double_dot >= 0:
        start = double_dot + 2
    first = _HOST_START.search(text, start, slash)
    if first is None:
        return None
    last_dot = text.rfind(".", first.start(), slash)
    if last_dot <= first.start() or not _TLD.fullmatch(text, last_dot + 1, slash):
        return None
    return first.start()


def reading_time_s(words: int) -> int:
    return max(1, math.ceil(words * 60 / WORDS_PER_MINUTE)) if words else 0


def content_hash(text: str) -> str:
    """Hash of the text with white space folded: the same words are the same post."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


def _unique(items: Iterable[str], *, fold: bool = True) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = item.casefold() if fold else item
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
