"""Countries a post talks about, as ISO 3166-1 alpha-2 codes.

Sources, in order of appearance in the text:

* flag emoji: a pair of regional indicators (🇲🇿 -> ``MZ``) or a subdivision tag sequence
  (England, Scotland, Wales -> ``GB``); pairs that are not assigned ISO codes (🇪🇺, 🇺🇳, 🇽🇰) are ignored;
* names: pycountry's names (short, common and official) plus the aliases of ``data/countries.json``;
* demonyms and their plurals ("Gambians", "Lebanese", "Syrian refugees", "Filipinos").

Matching rules (documented here because they are choices):

* Whole words only. The text is cut into words (letters and digits; ``U.S.``-style dotted
  abbreviations are one word); a name of several words matches when its words follow each other
  separated by spaces, one hyphen, one apostrophe or ``&``. The longest name wins, so "Equatorial
  Guinea", "Guinea-Bissau" and "Papua New Guinea" are never read as "Guinea", nor "South Sudanese" as
  "Sudanese", and "Niger"/"Nigeria", "Dominica"/"Dominican Republic" never mix.
* Accents and apostrophes do not matter for names ("Cote d'Ivoire" = "Côte d’Ivoire"); a possessive
  ("Mozambique’s") is the name followed by a word ``s`` and so matches.
* Case: country names match in any case ("mozambique", "#MOZAMBIQUE"), except the names that are
  also common words or first names, listed under ``capitalised_only`` (Turkey, Chad, Jordan, Georgia,
  China, Japan, Chile, Guinea, Niger, Mali, Jersey, ...), which need a capital first letter: "Turkey"
  is ``TR``, "turkey" is not. A sentence that starts with "Turkey dinner" is still read as ``TR``, and
  "Jordan" or "Chad" as a person's name as ``JO``/``TD``: the channel talks about countries far more
  often. Demonyms always need a capital first letter (English capitalises them; "french fries",
  "polish" are not countries).
* Abbreviations in capitals (``UK``, ``USA``, ``UAE``, ``DRC``, ``KSA``...) listed under ``exact``
  match only exactly as written. ``US`` and ``CAR`` (Central African Republic) are also English words
  when a post shouts, so they count only when neither neighbouring word is in capitals (other than
  another country abbreviation): "the US and Canada" is ``US``, "CONTACT US" and "us" are not.
  Dotted forms (``U.S.``, ``U.K.``) always count.
* Ambiguous words resolved once: "Congo" is the Republic of the Congo (``CG``, its ISO short name)
  but "Congolese" is ``CD``; "Korea"/"Korean" is ``KR``; "Dominican" is ``DO``; "Georgia" is the
  country. Phrases listed under ``ignore`` ("Indian Ocean", "Latin America", "New Mexico",
  "Central African", "New Guinea"...) are consumed without giving a country. Kosovo has no ISO code
  and is not reported.
* Demonyms that are also language names (French, Spanish, Russian, Somali...) do not count when they
  are used as a language: followed by a word such as "language", "class", "speakers", "version";
  after "speak"/"learn"/"translated"; "in French." at the end of a clause; or in a list with a word
  that only names a language ("in English, French and Arabic"). "English" is never a country.
* Camel-case hashtags are not split: "#MozambiqueFloods" gives nothing, "#Mozambique" gives ``MZ``.

The index is built once, on the first call, from pycountry and the JSON file.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

EXACT, CAPITALISED, ANY_CASE = 0, 1, 2

_TOKEN = re.compile(r"(?:[A-Z]\.){2,}|[^\W_]+")
# What may separate the words of one name, and the names of a list (each side may add spaces and
# tabs). Tested as strings, not with ``[ \t]*[-'&]?[ \t]*``: that pattern backtracks quadratically
# on a long run of spaces, and the gap between two words is user text of any length.
_NAME_JOINERS = frozenset({"", "-", "'", "&"})
_LIST_JOINERS = frozenset({"", ",", "/", "&"})
_BLANKS = " \t"
_FLAGS = re.compile(
    "[\U0001f1e6-\U0001f1ff]{2}|\U0001f3f4([\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,6})\U000e007f"
)
_APOSTROPHES = "\u2019\u2018\u02bc\u02bb\u2032\u0060\u00b4"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2212"
_CONNECTORS = frozenset({"and", "or", "et", "ou", "y", "e"})
_SHOUTING_SENSITIVE = frozenset({"US", "CAR"})


class _Fold(dict[int, str]):
    """``str.translate`` table, filled on demand: accents off, one character for one character."""

    def __missing__(self, ordinal: int) -> str:
        ch = chr(ordinal)
        if ch in _APOSTROPHES:
            out = "'"
        elif ch in _DASHES:
            out = "-"
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out = base if len(base) == 1 else ch
        self[ordinal] = out
        return out


_FOLD = _Fold()


def _fold(text: str) -> str:
    """Same length as ``text``: accents stripped, curly apostrophes and dashes made ASCII."""
    return text if text.isascii() else text.translate(_FOLD)


@dataclass(frozen=True, slots=True)
class _Entry:
    code: str | None
    mode: int
    form: str
    language: bool


@dataclass(frozen=True, slots=True)
class _Index:
    entries: dict[str, tuple[_Entry, ...]]
    first_words: frozenset[str]
    max_words: int
    codes: frozenset[str]
    language_words: frozenset[str]
    pure_languages: frozenset[str]
    language_contexts: frozenset[str]
    language_prefixes: frozenset[str]
    clause_prefixes: frozenset[str]
    abbreviations: frozenset[str]


class _Words:
    """The words of a text: spans, lower-case folded keys, and the text they come from."""

    __slots__ = ("ends", "folded", "keys", "list_runs", "original", "starts")

    def __init__(self, folded: str, original: str) -> None:
        spans = [m.span() for m in _TOKEN.finditer(folded)]
        lower = folded.lower()
        if len(lower) != len(folded):
            lower = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in folded)
        self.folded = folded
        self.original = original
        self.starts = [a for a, _ in spans]
        self.ends = [b for _, b in spans]
        self.keys = [lower[a:b] for a, b in spans]
        #: Lists of language names found so far, by member: (first word, last word, any pure language).
        self.list_runs: dict[int, tuple[int, int, bool]] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def text(self, i: int) -> str:
        return self.original[self.starts[i] : self.ends[i]]

    def gap(self, i: int) -> str:
        """What separates word ``i`` from word ``i + 1``."""
        return self.folded[self.ends[i] : self.starts[i + 1]]


def _key(name: str) -> tuple[str, str]:
    """(lower-case key, original form) of a name, both as words joined by single spaces."""
    words = _Words(_fold(name), name)
    key = " ".join(words.keys)
    form = " ".join(words.text(i) for i in range(len(words)))
    if key.startswith("the "):
        return key[4:], form[4:]
    return key, form


def _plurals(demonym: str) -> list[str]:
    if demonym.endswith("man"):
        return [demonym, demonym[:-3] + "men"]
    if demonym.endswith(("s", "sh", "ese", "nch", "tch")):
        return [demonym]
    return [demonym, demonym + "s"]


def _pycountry_names(country: object) -> list[str]:
    names: list[str] = []
    for attr in ("name", "common_name", "official_name"):
        value = getattr(country, attr, None)
        if not value:
            continue
        value = re.sub(r"\s*\([^)]*\)", "", value).strip()
        if "," in value:
            head, _, tail = value.partition(",")
            value = f"{tail.strip()} {head.strip()}"
        names.append(value)
    return names


@cache
def _index() -> _Index:
    import pycountry

    data = json.loads(resources.files("herald.enrichment").joinpath("data/countries.json").read_text("utf-8"))
    capitalised = {_key(n)[0] for n in data["capitalised_only"]}
    exact = {_key(n)[1] for n in data["exact"]}
    language_words = frozenset(_key(w)[0] for w in data["language_words"])
    codes = frozenset(c.alpha_2 for c in pycountry.countries)
    entries: dict[str, dict[tuple[int, str], _Entry]] = {}

    def add(name: str, code: str | None, demonym: bool = False) -> None:
        key, form = _key(name)
        if not key:
            return
        if form in exact:
            mode = EXACT
        elif demonym or key in capitalised:
            mode = CAPITALISED
        elif form.isupper() and "." not in form and len(form) <= 5:
            mode = EXACT
        else:
            mode = ANY_CASE
        slot = (mode, form if mode == EXACT else "")
        bucket = entries.setdefault(key, {})
        if slot not in bucket:
            language = demonym and " " not in key and key in language_words
            bucket[slot] = _Entry(code, mode, form, language)

    for country in pycountry.countries:
        for name in _pycountry_names(country):
            add(name, country.alpha_2)
    for code, extra in data["countries"].items():
        if code not in codes:
            raise ValueError(f"countries.json: {code} is not an ISO 3166-1 alpha-2 code")
        for name in extra["aliases"]:
            add(name, code)
        for demonym in extra["demonyms"]:
            for form in _plurals(demonym):
                add(form, code, demonym=True)
    for phrase in data["ignore"]:
        add(phrase, None)

    ordered = {key: tuple(sorted(bucket.values(), key=lambda e: e.mode)) for key, bucket in entries.items()}
    demonym_keys = {k for k, es in ordered.items() if any(e.language for e in es)}
    return _Index(
        entries=ordered,
        first_words=frozenset(k.split(" ", 1)[0] for k in ordered),
        max_words=max(k.count(" ") + 1 for k in ordered),
        codes=codes,
        language_words=language_words,
        pure_languages=language_words - demonym_keys,
        language_contexts=frozenset(data["language_contexts"]),
        language_prefixes=frozenset(data["language_prefixes"]),
        clause_prefixes=frozenset(data["language_clause_prefixes"]),
        abbreviations=frozenset(exact),
    )


def _joined(words: _Words, i: int) -> bool:
    """Whether word ``i`` continues the name that word ``i - 1`` is part of."""
    gap = words.gap(i - 1)
    if gap.strip(_BLANKS) in _NAME_JOINERS:
        return True
    return words.keys[i - 1] in ("st", "dr") and gap.startswith(".") and not gap[1:].strip(_BLANKS)


def _accepts(entry: _Entry, words: _Words, i: int, n: int) -> bool:
    if entry.mode == EXACT:
        return " ".join(words.text(j) for j in range(i, i + n)) == entry.form
    if entry.mode == CAPITALISED:
        return words.text(i)[0].isupper() and words.text(i + n - 1)[0].isupper()
    return True


def _shouting_around(index: _Index, words: _Words, i: int) -> bool:
    for j in (i - 1, i + 1):
        if 0 <= j < len(words):
            w = words.text(j)
            if len(w) >= 2 and w.isalpha() and w.isupper() and w not in index.abbreviations:
                return True
    return False


def _list_run(index: _Index, words: _Words, i: int) -> tuple[int, int, bool]:
    """First and last word of the list of language names that word ``i`` belongs to, and whether
    one of them names only a language.

    Worked out once per list and kept for each of its members: a post of 60,000 "French, " must
    not walk the whole list again for every word of it.
    """
    known = words.list_runs.get(i)
    if known is not None:
        return known
    keys = words.keys
    lo = hi = i
    j = i - 1
    while j >= 0:
        k = j - 1 if keys[j] in _CONNECTORS else j
        if k < 0 or keys[k] not in index.language_words:
            break
        if not all(words.gap(m).strip(_BLANKS) in _LIST_JOINERS for m in range(k, lo)):
            break
        lo, j = k, k - 1
    j = i + 1
    while j < len(keys):
        k = j + 1 if keys[j] in _CONNECTORS else j
        if k >= len(keys) or keys[k] not in index.language_words:
            break
        if not all(words.gap(m).strip(_BLANKS) in _LIST_JOINERS for m in range(hi, k)):
            break
        hi, j = k, k + 1
    run = (lo, hi, any(keys[m] in index.pure_languages for m in range(lo, hi + 1)))
    for m in range(lo, hi + 1):
        words.list_runs[m] = run
    return run


def _used_as_language(index: _Index, words: _Words, i: int) -> bool:
    """Whether the demonym at word ``i`` names a language here ("French classes", "in French.")."""
    keys = words.keys
    lo, hi, pure_language = _list_run(index, words, i)
    if pure_language:
        return True
    before = keys[lo - 1] if lo > 0 else ""
    after = keys[hi + 1] if hi + 1 < len(keys) else ""
    if before in index.language_prefixes or after in index.language_contexts:
        return True
    if before in index.clause_prefixes:
        return not after or words.gap(hi).strip(" \t") != ""
    return False


def _name_hits(index: _Index, words: _Words) -> list[tuple[int, str]]:
    hits: list[tuple[int, str]] = []
    entries, first_words, keys = index.entries, index.first_words, words.keys
    count = len(keys)
    i = 0
    while i < count:
        if keys[i] not in first_words:
            i += 1
            continue
        candidates = [keys[i]]
        for j in range(i + 1, min(i + index.max_words, count)):
            if not _joined(words, j):
                break
            candidates.append(candidates[-1] + " " + keys[j])
        consumed = 0
        for n in range(len(candidates), 0, -1):
            for entry in entries.get(candidates[n - 1], ()):
                if not _accepts(entry, words, i, n):
                    continue
                if entry.form in _SHOUTING_SENSITIVE and _shouting_around(index, words, i):
                    continue
                consumed = n
                if entry.code is not None and not (entry.language and _used_as_language(index, words, i)):
                    hits.append((words.starts[i], entry.code))
                break
            if consumed:
                break
        i += consumed or 1
    return hits


def _flag_hits(index: _Index, text: str) -> list[tuple[int, str]]:
    hits: list[tuple[int, str]] = []
    for m in _FLAGS.finditer(text):
        tags = m.group(1)
        if tags:
            code = "".join(chr(ord(c) - 0xE0000) for c in tags[:2]).upper()
        else:
            code = "".join(chr(ord(c) - 0x1F1E6 + ord("A")) for c in m.group())
        if code in index.codes:
            hits.append((m.start(), code))
    return hits


def find_countries(text: str) -> list[str]:
    """ISO 3166-1 alpha-2 codes of the countries ``text`` mentions, unique, in order of first mention.

    Flags, names and demonyms count; see the module documentation for the rules.
    """
    if not text:
        return []
    index = _index()
    hits = _name_hits(index, _Words(_fold(text), text))
    flags = _flag_hits(index, text)
    if flags:
        hits = sorted(hits + flags)
    seen: dict[str, None] = {}
    for _, code in hits:
        seen.setdefault(code, None)
    return list(seen)
