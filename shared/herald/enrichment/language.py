"""Language of a post, as an ISO 639-1 code, with py3langid.

Before detection the text loses what carries no language: URLs (with or without a scheme:
``https://…``, ``www.example.org/x``, ``bit.ly/3hD6tOZ``), e-mail addresses, @mentions, emoji and
flags, and the ``#`` of hashtags (the words of a hashtag stay for detection). When fewer than
:data:`MIN_WORDS` words of two letters or more are left outside hashtags, there is no answer
(``None``): a post of hashtags only says too little.

Candidates are restricted to :data:`LANGUAGES`: the languages a migration or humanitarian channel
publishes in, so that a short post cannot be given a language nobody writes in there. (On the
labelled test set the restriction changes nothing; see ``docs/language-detection.md``.) Labels
without an ISO 639-1 code are normalised (Moroccan and Egyptian Arabic -> ``ar``); a post the model
finds to have no language (``zxx``) gets ``None``.

The model is py3langid's, already restricted to :data:`LANGUAGES`: the arrays that
``set_languages`` would compute (its transition table split in pieces kept once, see
:func:`visit_counts`), saved as ``data/langid_*.npy`` by ``python -m herald.enrichment.language_model``
and memory-mapped here (``np.load(mmap_mode="r")``), so a process neither decompresses py3langid's
packaged model nor holds its other columns, and the pages of the tables are the page cache's, shared
by every process that maps them. The answers are py3langid's own (its ``LanguageIdentifier``
scores; ``tests/unit/test_language_model.py`` compares them with py3langid restricted at run time,
and the files with what the build derives).

py3langid and numpy are imported on the first call, not at import, and the identifier is kept for
the life of the process. ``python -m herald.enrichment.language FILE.jsonl`` measures accuracy on a
labelled file (one ``{"lang": ..., "text": ...}`` per line).
"""

from __future__ import annotations

import re
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIN_WORDS = 2

#: Candidate languages (py3langid labels). Africa: Amharic, Hausa, Somali, Swahili, Oromo,
#: Kinyarwanda, Lingala, Malagasy, Yoruba, Igbo; Middle East and Asia: Arabic (with Moroccan and
#: Egyptian), Persian/Dari, Pashto, Kurdish, Turkish, Urdu, Hindi, Bengali, Nepali, Burmese, Khmer,
#: Thai, Vietnamese, Indonesian, Malay, Tagalog, Chinese, Uzbek, Tajik, Kyrgyz, Russian, Ukrainian;
#: Europe and the Americas: English, French, Spanish, Portuguese, Italian, German, Greek, Romanian,
#: Polish, Haitian Creole. Tigrinya and Dari are not separate labels in the model (Dari is ``fa``).
LANGUAGES: tuple[str, ...] = (
    "en", "fr", "es", "pt", "ar", "ary", "arz", "ru", "uk", "sw", "tr", "am", "so", "ha", "om", "rw",
    "ln", "mg", "yo", "ig", "fa", "ps", "ku", "ur", "hi", "bn", "ne", "my", "km", "th", "vi", "id",
    "ms", "tl", "zh", "uz", "tg", "ky", "it", "de", "el", "ro", "pl", "ht", "zxx",
)  # fmt: skip

#: The restricted model, each array in ``MODEL_DIR/langid_<name>.npy``: ``ptc``, ``pc`` and
#: ``classes`` are py3langid's ``nb_ptc``, ``nb_pc`` and ``nb_classes`` after
#: ``set_languages(LANGUAGES)``; ``output`` is its ``tk_output`` (the feature a state emits, or -1);
#: ``chunks``, ``rows`` and ``states`` are its transition table ``tk_nextmove`` split as
#: :func:`visit_counts` reads it.
MODEL_ARRAYS: tuple[str, ...] = ("ptc", "pc", "classes", "chunks", "rows", "states", "output")
MODEL_DIR = Path(__file__).with_name("data")
REGENERATE = "python -m herald.enrichment.language_model"

#: py3langid labels that are varieties of an ISO 639-1 language, or that mean "no language".
_NORMALISE: dict[str, str | None] = {"ary": "ar", "arz": "ar", "uzs": "uz", "sdh": "ku", "zxx": None}

# These see user text, so each must be linear in it. A scheme, host name or e-mail address starts
# only where its run of characters starts (the lookbehinds): a bare ``\b`` would let the search
# start again inside ``a-a.a-a.…`` at every letter and scan the rest of the run each time.
_URL = re.compile(
    r"(?i)(?:(?<![a-z0-9+.-])\b[a-z][a-z0-9+.-]*://\S+"
    r"|\bwww\.\S+"
    r"|(?<![a-z0-9.-])\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/\S*"
    r"|(?<![a-z0-9.-])\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|int|info|io|ly|me|gl|co|gov|edu|ngo|news)\b)"
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_MENTION = re.compile(r"(?<![\w@])@\w+")
_HASH = re.compile(r"(?<![\w#])#(?=\w)")
_HASHTAG_WORD = re.compile(r"(?<![\w#])#\w+")
_LETTER_WORD = re.compile(r"[^\W\d_]{2,}")
_SPACES = re.compile(r"\s+")

_lock = threading.Lock()
_identifier: Any = None


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """A detected language (ISO 639-1 where one exists) and the model's probability for it."""

    code: str
    probability: float


def _without_links(text: str) -> str:
    import emoji

    text = _EMAIL.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    return emoji.replace_emoji(text, replace=" ")


def strip_noise(text: str) -> str:
    """``text`` without URLs, e-mail addresses, @mentions, emoji and hashtag signs, spaces collapsed."""
    return _SPACES.sub(" ", _HASH.sub("", _without_links(text))).strip()


def model_file(name: str) -> Path:
    """Where the restricted model's array ``name`` (one of :data:`MODEL_ARRAYS`) is saved."""
    return MODEL_DIR / f"langid_{name}.npy"


def visit_counts(chunks: Any, rows: Any, states: Any, output: Any, text: bytes) -> Counter[int] | None:
    """Feature counts of ``text``: py3langid's automaton walk, over the split transition table.

    The next state after byte ``b`` in ``state`` is ``chunks[rows[states[state] + (b >> 4)] + (b & 15)]``:
    py3langid's 256-entry row of ``state`` cut in sixteen pieces of sixteen, each piece kept once.
    """
    state = 0
    indexes: list[int] = []
    append = indexes.append
    for letter in text:
        state = chunks[rows[states[state] + (letter >> 4)] + (letter & 15)]
        feature = output[state]
        if feature >= 0:
            append(feature)
    return Counter(indexes) if indexes else None


def load_identifier() -> Any:
    """py3langid's ``LanguageIdentifier`` over the memory-mapped arrays of ``data/langid_*.npy``.

    The arrays are read-only views of the files (memoryviews for the automaton, which is walked byte
    by byte), so loading costs a few page faults, not a decompression. Scoring is py3langid's own;
    only the walk reads the split table (:func:`visit_counts`), and finds the same features.
    """
    import numpy as np
    from py3langid.langid import RAW_FLOOR, LanguageIdentifier

    arrays = {
        name: np.asarray(np.load(model_file(name), mmap_mode="r", allow_pickle=False))
        for name in MODEL_ARRAYS
    }
    classes = [str(label) for label in arrays["classes"].tolist()]
    if set(classes) != set(LANGUAGES):
        raise RuntimeError(
            f"{model_file('classes')} differs from LANGUAGES by {sorted(set(classes) ^ set(LANGUAGES))}; "
            f"regenerate it: {REGENERATE}"
        )
    chunks, rows, states, output = (arrays[name].data for name in ("chunks", "rows", "states", "output"))

    class _MappedIdentifier(LanguageIdentifier):
        __slots__ = ()

        def _raw_score(self, text: bytes) -> Any:
            visits = visit_counts(chunks, rows, states, output, text)
            if visits:
                return self._sparse_score(visits, self.nb_ptc)
            return np.full(len(self.nb_classes), 0.0 if self._norm_probs else RAW_FLOOR, dtype=np.float32)

    return _MappedIdentifier(arrays["ptc"], arrays["pc"], classes, (), output, norm_probs=True, tk_row=())


def _get_identifier() -> Any:
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                _identifier = load_identifier()
    return _identifier


def detect(text: str) -> LanguageGuess | None:
    """The language of ``text`` with its probability, or ``None`` when there is too little language."""
    kept = _without_links(text)
    if len(_LETTER_WORD.findall(_HASHTAG_WORD.sub(" ", kept))) < MIN_WORDS:
        return None
    clean = _SPACES.sub(" ", _HASH.sub("", kept)).strip()
    label, probability = _get_identifier().classify(clean)
    code = _NORMALISE.get(label, label)
    if code is None:
        return None
    return LanguageGuess(code, float(probability))


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the language of ``text`` (3 letters where none exists), or ``None``."""
    guess = detect(text)
    return guess.code if guess else None


def measure(path: str) -> dict[str, Any]:
    """Accuracy of :func:`detect_language` on a JSONL file of ``{"lang": ..., "text": ...}`` lines.

    Returns ``{"posts", "overall", "per_language": {lang: (correct, total)}, "confusions":
    {(expected, got): count}, "median_us"}``; the timing is the median over the posts, after a
    first call that loads the model.
    """
    import json
    import statistics
    import time
    from collections import Counter

    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    detect_language("warm up the model before timing")
    per: dict[str, list[int]] = {}
    confusions: Counter[tuple[str, str]] = Counter()
    timings: list[float] = []
    for row in rows:
        start = time.perf_counter()
        got = detect_language(row["text"])
        timings.append(time.perf_counter() - start)
        tally = per.setdefault(row["lang"], [0, 0])
        tally[1] += 1
        if got == row["lang"]:
            tally[0] += 1
        else:
            confusions[(row["lang"], str(got))] += 1
    correct = sum(c for c, _ in per.values())
    return {
        "posts": len(rows),
        "overall": correct / len(rows) if rows else 0.0,
        "per_language": {lang: (c, n) for lang, (c, n) in sorted(per.items())},
        "confusions": dict(confusions.most_common()),
        "median_us": statistics.median(timings) * 1e6 if timings else 0.0,
    }


def _main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m herald.enrichment.language FILE.jsonl", file=sys.stderr)
        return 2
    result = measure(argv[0])
    print(f"posts: {result['posts']}")
    for lang, (correct, total) in result["per_language"].items():
        print(f"{lang}: {correct}/{total} = {correct / total:.3f}")
    print(f"overall: {result['overall']:.4f}")
    for (expected, got), count in result["confusions"].items():
        print(f"confused {expected} -> {got}: {count}")
    print(f"median: {result['median_us']:.0f} µs per post")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
