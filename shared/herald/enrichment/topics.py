"""Topics of a post, from the keyword taxonomy in ``data/topics.yaml``.

Rules (the YAML file repeats them for whoever edits it):

* keywords are words or phrases matched as whole words; a word ending in ``*`` is a prefix;
* case and combining marks are ignored in every script (``casefold`` then NFKD without combining
  marks), so "Santé" matches ``sante`` and "vacunación" matches ``vacuna*``;
* Arabic words are also tried without the attached proclitics (و ف ب ك ل, the article ال);
* hashtags count like text, camel case split ("#WorldRefugeeDay" -> world refugee day), and a whole
  hashtag also matches a phrase written together ("#migrantworkers" -> ``migrant workers``); a
  hashtag counts once even when it is both in the text and in ``hashtags``;
* a topic scores one hit per place in the text (or hashtag) where any of its keywords matches;
  topics are returned by hits, then in taxonomy order, at most :data:`MAX_TOPICS`.

The taxonomy is read once, on the first call.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

MAX_TOPICS = 5
MIN_KEYWORD_CHARS = 3

_WORD = re.compile(r"[^\W_]+")
_KEYWORD_WORD = re.compile(r"([^\W_]+)(\*?)")
_HASHTAG = re.compile(r"(?<![\w#&/])#(\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_PROCLITICS = ("وال", "فال", "بال", "كال", "لل", "ال", "و", "ف", "ب", "ك", "ل")

Pattern = tuple[str, bool]  # (word, is_prefix)


def fold(text: str) -> str:
    """Case-folded ``text`` without combining marks (accents, Arabic short vowels); ``ı`` is ``i``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("ı", "i"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic of the taxonomy."""

    id: str
    label: str
    keywords: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Taxonomy:
    topics: tuple[Topic, ...]
    exact: dict[str, tuple[tuple[tuple[Pattern, ...], int], ...]]
    prefix: dict[str, tuple[tuple[tuple[Pattern, ...], int], ...]]
    prefix_lengths: tuple[int, ...]
    heads: frozenset[str]
    joined: dict[str, frozenset[int]]
    joined_prefixes: tuple[tuple[str, int], ...]


def _patterns(keyword: str) -> tuple[Pattern, ...]:
    return tuple((word, star == "*") for word, star in _KEYWORD_WORD.findall(fold(keyword)))


def _long_enough(patterns: tuple[Pattern, ...]) -> bool:
    """Single words and prefixes need 3 characters; a phrase may start with a 2-letter word."""
    first, is_prefix = patterns[0]
    minimum = MIN_KEYWORD_CHARS if len(patterns) == 1 or is_prefix else 2
    return len(first) >= minimum and all(len(w) >= MIN_KEYWORD_CHARS for w, p in patterns if p)


@cache
def taxonomy() -> tuple[Topic, ...]:
    """The topics of ``data/topics.yaml``, in file order."""
    return _taxonomy().topics


@cache
def _taxonomy() -> _Taxonomy:
    import yaml

    # libyaml's safe loader where PyYAML has it (its wheels do, the layer's included): the same
    # safe constructors, a parser in C, about 8 times faster on the first post's cold start.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = resources.files("herald.enrichment").joinpath("data/topics.yaml").read_text("utf-8")
    raw = yaml.load(text, Loader=loader)
    topics: list[Topic] = []
    exact: dict[str, list[tuple[tuple[Pattern, ...], int]]] = {}
    prefix: dict[str, list[tuple[tuple[Pattern, ...], int]]] = {}
    joined: dict[str, set[int]] = {}
    joined_prefixes: list[tuple[str, int]] = []
    seen_ids: set[str] = set()
    for number, item in enumerate(raw["topics"]):
        topic_id = str(item["id"])
        if topic_id in seen_ids or not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", topic_id):
            raise ValueError(f"topics.yaml: bad or repeated topic id {topic_id!r}")
        seen_ids.add(topic_id)
        groups = item["keywords"]
        keywords = tuple(str(k) for group in groups.values() for k in group)
        topics.append(Topic(topic_id, str(item["label"]), keywords))
        for keyword in keywords:
            patterns = _patterns(keyword)
            if not patterns or not _long_enough(patterns):
                raise ValueError(f"topics.yaml: keyword {keyword!r} of {topic_id} is too short")
            (head, is_prefix), rest = patterns[0], patterns[1:]
            (prefix if is_prefix else exact).setdefault(head, []).append((rest, number))
            if len(patterns) > 1 and not any(p for _, p in patterns[:-1]):
                together = "".join(w for w, _ in patterns)
                if patterns[-1][1]:
                    joined_prefixes.append((together, number))
                else:
                    joined.setdefault(together, set()).add(number)
    all_heads = [*exact, *prefix]
    return _Taxonomy(
        topics=tuple(topics),
        exact={k: tuple(v) for k, v in exact.items()},
        prefix={k: tuple(v) for k, v in prefix.items()},
        prefix_lengths=tuple(sorted({len(k) for k in prefix})),
        heads=frozenset(h[:MIN_KEYWORD_CHARS] for h in all_heads),
        joined={k: frozenset(v) for k, v in joined.items()},
        joined_prefixes=tuple(joined_prefixes),
    )


def _variants(word: str) -> list[str]:
    if not _ARABIC.match(word):
        return [word]
    out = [word]
    for clitic in _PROCLITICS:
        if word.startswith(clitic) and len(word) - len(clitic) >= MIN_KEYWORD_CHARS:
            out.append(word[len(clitic) :])
    return out


def _word_matches(pattern: Pattern, word: str) -> bool:
    text, is_prefix = pattern
    return any((v.startswith(text) if is_prefix else v == text) for v in _variants(word))


def _count(tax: _Taxonomy, words: Sequence[str], hits: Counter[int]) -> None:
    count = len(words)
    for i, word in enumerate(words):
        found: set[int] = set()
        for variant in _variants(word):
            if variant[:MIN_KEYWORD_CHARS] not in tax.heads:
                continue
            candidates = list(tax.exact.get(variant, ()))
            for length in tax.prefix_lengths:
                if length > len(variant):
                    break
                candidates.extend(tax.prefix.get(variant[:length], ()))
            for rest, topic in candidates:
                if topic in found or (rest and i + len(rest) >= count):
                    continue
                if all(_word_matches(p, words[i + 1 + k]) for k, p in enumerate(rest)):
                    found.add(topic)
        hits.update(found)


def _hashtag_words(tag: str) -> list[str]:
    return _WORD.findall(fold(_CAMEL.sub(" ", tag)))


def _unique_hashtags(text: str, hashtags: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for tag in [*_HASHTAG.findall(text), *hashtags]:
        tag = tag.strip().lstrip("#")
        if tag:
            seen.setdefault(fold(tag), tag)
    return list(seen.values())


def classify_topics(text: str, hashtags: list[str]) -> list[str]:
    """Topic ids of ``text`` and its ``hashtags`` (with or without ``#``), most hits first, at most 5.

    Ties keep taxonomy order; a topic needs at least one hit. Hashtags written in ``text`` count once
    whether or not they are also in ``hashtags``.
    """
    tax = _taxonomy()
    hits: Counter[int] = Counter()
    _count(tax, _WORD.findall(fold(_HASHTAG.sub(" ", text))), hits)
    for tag in _unique_hashtags(text, hashtags):
        tag_hits: Counter[int] = Counter()
        _count(tax, _hashtag_words(tag), tag_hits)
        together = "".join(_hashtag_words(tag))
        phrases = {
            *tax.joined.get(together, ()),
            *(t for p, t in tax.joined_prefixes if together.startswith(p)),
        }
        tag_hits.update(t for t in phrases if t not in tag_hits)
        hits.update(tag_hits)
    ranked = sorted(hits, key=lambda topic: (-hits[topic], topic))
    return [tax.topics[topic].id for topic in ranked[:MAX_TOPICS]]
