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

The model is py3langid's, already restricted to :data:`LANGUAGES`: the tables that
``set_languages`` would leave (its transition table split in pieces kept once, see
:func:`visit_counts`), written by ``python -m herald.enrichment.language_model`` as raw
little-endian files ``data/langid_<table>.bin`` described by ``data/langid_model.json`` (labels,
priors, each table's format and shape), and memory-mapped here: a process neither decompresses
py3langid's packaged model nor holds its other columns, the pages of the tables are the page
cache's, shared by every process that maps them, and neither numpy nor py3langid is imported at
run time. :class:`Identifier` is py3langid's naive Bayes classifier (``LanguageIdentifier`` with
``norm_probs=True``) in the standard library: the same byte automaton, each present feature's row
of log-probabilities weighted by ``log1p`` of its count, the priors, a softmax at temperature
``sqrt(bytes)``, aliased columns folded. It sums exactly (the table in fixed point, rows added as
integers) where py3langid sums in float32, so the labels are py3langid's and the probabilities
agree to within float32 rounding (``tests/unit/test_language_model.py`` compares the two, and the
files with what the build derives).

The model is mapped on the first call, not at import, and the identifier is kept for the life of
the process. ``python -m herald.enrichment.language FILE.jsonl`` measures accuracy on a
labelled file (one ``{"lang": ..., "text": ...}`` per line).
"""

from __future__ import annotations

import json
import math
import mmap
import re
import struct
import sys
import threading
import unicodedata
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

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

#: The restricted model: ``MODEL_DIR/langid_model.json`` (the header: ``classes`` and ``pc``, py3langid's
#: ``nb_classes`` and ``nb_pc`` after ``set_languages(LANGUAGES)``, and each table's ``format`` and
#: ``shape``) and one raw little-endian file ``MODEL_DIR/langid_<table>.bin`` per table: ``ptc`` is
#: py3langid's ``nb_ptc`` (one row per feature) in fixed point, ``-nb_ptc * scale`` as uint16 (exact:
#: its float16 log-probabilities are multiples of ``1 / scale``; the header gives ``scale`` and the
#: largest value, ``max``); ``output`` its ``tk_output`` (the feature a state emits, or -1);
#: ``chunks``, ``rows`` and ``states`` its transition table ``tk_nextmove`` split as
#: :func:`visit_counts` reads it.
MODEL_TABLES: tuple[str, ...] = ("ptc", "chunks", "rows", "states", "output")
MODEL_FILES: tuple[str, ...] = ("model", *MODEL_TABLES)
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
_identifier: Identifier | None = None


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """A detected language (ISO 639-1 where one exists) and the model's probability for it."""

    code: str
    probability: float


def _without_links(text: str) -> str:
    from herald.enrichment import emojis

    text = _EMAIL.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    return emojis.replace(text, " ")


def strip_noise(text: str) -> str:
    """``text`` without URLs, e-mail addresses, @mentions, emoji and hashtag signs, spaces collapsed."""
    return _SPACES.sub(" ", _HASH.sub("", _without_links(text))).strip()


def model_file(name: str) -> Path:
    """Where the restricted model's file ``name`` (one of :data:`MODEL_FILES`) is saved."""
    if name == "model":
        return MODEL_DIR / "langid_model.json"
    return MODEL_DIR / f"langid_{name}.bin"


def visit_counts(
    chunks: Sequence[int], rows: Sequence[int], states: Sequence[int], output: Sequence[int], text: bytes
) -> Counter[int] | None:
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


def _decode_trimmed(data: bytes) -> str | None:
    """UTF-8 ``data`` as text, up to 3 partial bytes at its end dropped; ``None`` if not UTF-8.

    py3langid's ``decode_trimmed``."""
    for trim in range(4):
        chunk = data[: len(data) - trim] if trim else data
        try:
            return chunk.decode("utf8")
        except UnicodeDecodeError as error:
            if error.start < len(data) - 3:
                return None
    return None


def encode_text(text: str | bytes) -> bytes:
    """The bytes py3langid classifies for ``text``: lower case if all upper case, NFC, UTF-8."""
    if isinstance(text, bytes):
        decoded = _decode_trimmed(text)
        if decoded is None:
            return text
        text = decoded
    if text.isupper():
        text = text.lower()
    return unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")


def _f32(values: Sequence[float]) -> list[float]:
    """``values`` each rounded to float32 (to nearest), as numpy's float32 arithmetic rounds."""
    return array("f", values).tolist()


class Identifier:
    """py3langid's ``LanguageIdentifier(norm_probs=True)`` over the mapped tables, numpy-free.

    ``classify`` and ``rank`` answer as py3langid's do: the label of the highest probability (the
    first column on a tie) and every label by probability, best first, aliased columns folded into
    their first one.
    """

    __slots__ = (
        "_aliases",
        "_chunks",
        "_even",
        "_mask",
        "_odd",
        "_output",
        "_pc",
        "_per_sum",
        "_ptc",
        "_row_bytes",
        "_rows",
        "_scale",
        "_states",
        "classes",
    )

    def __init__(
        self,
        classes: Sequence[str],
        pc: Sequence[float],
        ptc: Any,
        chunks: Sequence[int],
        rows: Sequence[int],
        states: Sequence[int],
        output: Sequence[int],
        *,
        scale: int,
        largest: int,
    ) -> None:
        self.classes = list(classes)
        self._pc = [float(p) for p in pc]
        self._ptc = ptc
        self._scale = float(scale)
        columns = len(self.classes)
        self._row_bytes = 2 * columns
        # A row read as one integer has a 16-bit field per column; masked, its even columns (and,
        # shifted, its odd ones) sit in 32-bit fields, so that sums of rows do not carry over.
        self._mask = sum(0xFFFF << (32 * i) for i in range((columns + 1) // 2))
        self._even = struct.Struct(f"<{(columns + 1) // 2}I")
        self._odd = struct.Struct(f"<{columns // 2}I")
        self._per_sum = max(1, 0xFFFFFFFF // max(1, largest))  # rows per sum before a field could overflow
        self._chunks, self._rows, self._states, self._output = chunks, rows, states, output
        first: dict[str, int] = {}
        self._aliases: list[tuple[int, int]] = []
        for i, label in enumerate(self.classes):
            if label in first:
                self._aliases.append((first[label], i))
            else:
                first[label] = i

    def raw_scores(self, data: bytes) -> list[float]:
        """Log-posterior per column of the encoded ``data`` (all 0.0 when it has no feature).

        py3langid's ``log1p(counts) @ nb_ptc[features] + nb_pc`` in float32. The features of one
        count share a weight (``log1p`` of the count, in float32), so their rows are summed first,
        exactly and all columns at once: a row of the fixed-point table read as one integer
        (``int.from_bytes``), its even and its odd columns spread to 32-bit fields by a mask, is
        added to the others as a whole, no field carrying into the next (at most ``_per_sum`` rows
        per sum). Each column's sum is then weighted, the
        weighted sums added with ``math.fsum`` and rounded to float32 once (numpy's BLAS sums in
        float32, in an order of its own), the rest rounded as numpy rounds.
        """
        visits = visit_counts(self._chunks, self._rows, self._states, self._output, data)
        if not visits:
            return [0.0] * len(self.classes)
        by_count: dict[int, list[int]] = {}
        for feature, count in visits.items():
            by_count.setdefault(count, []).append(feature)
        ptc, width, mask, from_bytes = self._ptc, self._row_bytes, self._mask, int.from_bytes
        even, odd = self._even, self._odd
        columns = [0.0] * len(self.classes)
        terms: list[Sequence[float]] = []
        for count, features in by_count.items():
            weight = -_f32([math.log1p(count)])[0] / self._scale  # exact: the scale is a power of two
            for start in range(0, len(features), self._per_sum):
                rows = [
                    from_bytes(ptc[f * width : (f + 1) * width], "little")
                    for f in features[start : start + self._per_sum]
                ]
                columns[0::2] = even.unpack(sum([row & mask for row in rows]).to_bytes(even.size, "little"))
                columns[1::2] = odd.unpack(
                    sum([row >> 16 & mask for row in rows]).to_bytes(odd.size, "little")
                )
                terms.append([weight * total for total in columns])
        dots = _f32([math.fsum(column) for column in zip(*terms, strict=True)])
        return _f32([dot + prior for dot, prior in zip(dots, self._pc, strict=True)])

    def probabilities(self, text: str | bytes) -> list[float]:
        """Probability per column of ``text``: py3langid's normalised scores (a softmax at temperature
        ``sqrt(bytes)``, in float32), aliased columns folded into their first one."""
        data = encode_text(text)
        scale = _f32([1.0 / math.sqrt(len(data) or 1)])[0]
        scores = _f32([score * scale for score in self.raw_scores(data)])
        top = max(scores)
        exps = _f32([math.exp(score) for score in _f32([score - top for score in scores])])
        total = _f32([math.fsum(exps)])[0]
        probabilities = _f32([e / total for e in exps])
        for i, j in self._aliases:
            probabilities[i] = _f32([probabilities[i] + probabilities[j]])[0]
            probabilities[j] = 0.0
        return probabilities

    def classify(self, text: str | bytes) -> tuple[str, float]:
        """``(label, probability)`` of the most probable language of ``text``."""
        probabilities = self.probabilities(text)
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return self.classes[best], probabilities[best]

    def rank(self, text: str | bytes) -> list[tuple[str, float]]:
        """Every label with its probability, best first (one entry per label)."""
        merged: dict[str, float] = {}
        for label, probability in zip(self.classes, self.probabilities(text), strict=True):
            merged.setdefault(label, probability)
        return sorted(merged.items(), key=itemgetter(1), reverse=True)


def _map_table(name: str, fmt: str, shape: Sequence[int]) -> Any:
    """The table ``name`` mapped read-only: the mmap itself for ``ptc`` (read a row at a time), a
    sequence of ints for the others."""
    path = model_file(name)
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    expected = math.prod(shape) * struct.calcsize(fmt)
    if len(mapped) != expected:
        raise RuntimeError(
            f"{path} has {len(mapped)} bytes, its header says {expected}; regenerate it: {REGENERATE}"
        )
    if fmt != {"ptc": "<H", "output": "<i"}.get(name, "<I") or struct.calcsize(fmt[1]) != struct.calcsize(
        fmt
    ):
        raise RuntimeError(f"{path}: format {fmt!r} is not one this build reads; regenerate it: {REGENERATE}")
    if name == "ptc":
        return mapped
    code: Literal["I", "i"] = "I" if fmt == "<I" else "i"
    if sys.byteorder == "little":
        return memoryview(mapped).cast(code)
    values = array(code)  # a big-endian machine: a private, byte-swapped copy
    values.frombytes(mapped)
    values.byteswap()
    return values


def load_identifier() -> Identifier:
    """The :class:`Identifier` over the memory-mapped files of ``data/langid_*``.

    Loading reads the JSON header and maps the tables: a few page faults, not a decompression; a
    classification reads only the rows of the features its text has.
    """
    header = json.loads(model_file("model").read_text("utf-8"))
    classes = [str(label) for label in header["classes"]]
    if set(classes) != set(LANGUAGES):
        raise RuntimeError(
            f"{model_file('model')} differs from LANGUAGES by {sorted(set(classes) ^ set(LANGUAGES))}; "
            f"regenerate it: {REGENERATE}"
        )
    tables = {
        name: _map_table(name, header["tables"][name]["format"], header["tables"][name]["shape"])
        for name in MODEL_TABLES
    }
    if header["tables"]["ptc"]["shape"][1:] != [len(classes)] or len(header["pc"]) != len(classes):
        raise RuntimeError(f"{model_file('model')} is inconsistent; regenerate it: {REGENERATE}")
    ptc = header["tables"]["ptc"]
    scale, largest = int(ptc["scale"]), int(ptc["max"])
    if scale < 1 or scale & (scale - 1) or not 0 <= largest < 1 << 32:
        raise RuntimeError(f"{model_file('model')}: ptc's scale or max is wrong; regenerate it: {REGENERATE}")
    return Identifier(classes, header["pc"], **tables, scale=scale, largest=largest)


def _get_identifier() -> Identifier:
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
