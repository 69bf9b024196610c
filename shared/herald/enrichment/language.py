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

py3langid and numpy are imported on the first call, not at import, and the identifier is kept for
the life of the process. ``python -m herald.enrichment.language FILE.jsonl`` measures accuracy on a
labelled file (one ``{"lang": ..., "text": ...}`` per line).
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass
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


def _get_identifier() -> Any:
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(list(LANGUAGES))
                _identifier = identifier
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
