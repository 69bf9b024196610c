"""The restricted language model: its files are what py3langid's model gives, its answers py3langid's.

py3langid sums a text's feature rows in float32 with numpy's BLAS, whose order of summation is its
own (and differs between CPUs' kernels); Herald's scorer sums them exactly and rounds once. So the
probabilities agree to within float32 rounding of that sum, which grows with the text: ``TOLERANCE``
(1e-6, plus 2e-7 per byte). py3langid itself moves by as much when only the order of the features
changes (up to 0.003 in a raw score of some 2,000, 0.002 on the labelled posts), so nothing tighter
is py3langid's answer rather than one rounding of it. The labels are the same, except where
py3langid's two best are within that tolerance of each other (a tie up to rounding).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.enrichment import language
from herald.enrichment.language import (
    LANGUAGES,
    MODEL_FILES,
    MODEL_TABLES,
    REGENERATE,
    encode_text,
    load_identifier,
    model_file,
)
from herald.enrichment.language_model import derive, encode, measure, packaged_identifier

POSTS = Path(__file__).resolve().parents[1] / "data" / "language_posts.jsonl"
TEXTS = [json.loads(line)["text"] for line in POSTS.read_text("utf-8").splitlines() if line.strip()]

# Letters of the candidate languages' scripts, digits, punctuation, emoji and spaces, so that
# generated texts walk deep into the automaton as well as off it.
ALPHABET = st.characters(
    categories=("L", "M", "N", "P", "S", "Zs"),
    codec="utf-8",
)
SCRIPTS = st.sampled_from(
    [
        "abcdefghijklmnopqrstuvwxyz éèàçñãõüöğşı",
        "абвгдежзийклмнопрстуфхцчшщьюяєії",
        "ابتثجحخدذرزسشصضطظعغفقكلمنهوي پچژگ",
        "अआइईउऊएऐओऔकखगघचछजझटठडढतथदधनपफबभमयरलवशसह",
        "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年",
        "กขคงจฉชซญดตถทธนบปผพฟภมยรลวศษสหอฮะาิีึืุู",
        "αβγδεζηθικλμνξοπρστυφχψω ",
        "0123456789 .,!?:;-'\"()@#/",
    ]
)


def tolerance(text: str | bytes) -> float:
    return 1e-6 + 2e-7 * len(encode_text(text))


def assert_same_answers(mapped: Any, packaged: Any, text: str | bytes) -> None:
    """Label, probability and the whole ranking of ``text`` as py3langid's, to within rounding."""
    tol = tolerance(text)
    label, probability = mapped.classify(text)
    expected_label, expected_probability = packaged.classify(text)
    assert probability == pytest.approx(expected_probability, abs=tol), text
    expected = dict(packaged.rank(text))
    ranked = mapped.rank(text)
    assert set(dict(ranked)) == set(expected) == set(LANGUAGES)
    for lang, p in ranked:
        assert p == pytest.approx(expected[lang], abs=tol), (text, lang)
    assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)
    if label != expected_label:
        runner_up = sorted(expected.values(), reverse=True)[1]
        assert expected_probability - runner_up <= 2 * tol, (text, label, expected_label)
        assert expected[label] >= expected_probability - 2 * tol, (text, label, expected_label)


@pytest.fixture(scope="module")
def mapped() -> Any:
    return load_identifier()


@pytest.fixture(scope="module")
def packaged() -> Any:
    return packaged_identifier()


def test_the_files_are_what_the_build_derives_from_py3langid() -> None:
    wanted = encode(derive())
    stale = [model_file(n).name for n in MODEL_FILES if model_file(n).read_bytes() != wanted[n]]
    assert not stale, f"{stale} differ from py3langid's model restricted to LANGUAGES; run {REGENERATE}"


def test_the_files_hold_only_the_candidate_languages_and_stay_small() -> None:
    header = json.loads(model_file("model").read_text("utf-8"))
    assert set(header["classes"]) == set(LANGUAGES)
    features, columns = header["tables"]["ptc"]["shape"]
    assert columns == len(header["classes"]) == len(header["pc"])
    assert model_file("ptc").stat().st_size == features * columns * 2
    fixed = np.frombuffer(model_file("ptc").read_bytes(), dtype="<u2").reshape(features, columns)
    assert fixed.max() == header["tables"]["ptc"]["max"]
    # Fixed point, exact: py3langid's float16 log-probabilities, to the last bit.
    ptc = -fixed.astype(np.float64) / header["tables"]["ptc"]["scale"]
    assert np.array_equal(ptc, np.asarray(packaged_identifier().nb_ptc, dtype=np.float64))
    assert sum(model_file(n).stat().st_size for n in MODEL_FILES) < 20_000_000


def test_same_answers_as_py3langid_on_the_labelled_posts(mapped: Any, packaged: Any) -> None:
    for text in TEXTS + [language.strip_noise(t) for t in TEXTS]:
        assert mapped.classify(text)[0] == packaged.classify(text)[0], text
        assert_same_answers(mapped, packaged, text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "a",
        "ZXX",
        "HELLO WORLD",
        "1234",
        "🇲🇿🎉",
        "\x00\x01",
        "e\u0301te\u0301",
        b"\xff\xfe",
        b"caf\xc3",
    ],
)
def test_same_answers_as_py3langid_at_the_edges(mapped: Any, packaged: Any, text: str | bytes) -> None:
    assert_same_answers(mapped, packaged, text)


@settings(max_examples=300, deadline=None)
@given(
    text=SCRIPTS.flatmap(lambda s: st.lists(st.text(s, min_size=1, max_size=12), max_size=12).map(" ".join))
)
def test_same_answers_as_py3langid_on_words_of_one_script(mapped: Any, packaged: Any, text: str) -> None:
    assert_same_answers(mapped, packaged, text)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(ALPHABET, max_size=200), st.binary(max_size=200)))
def test_same_answers_as_py3langid_on_any_text(mapped: Any, packaged: Any, text: str | bytes) -> None:
    assert_same_answers(mapped, packaged, text)


def test_detection_maps_the_files() -> None:
    code = (
        "import herald.enrichment.language as m; "
        "print(m.detect('La distribution commence demain matin au bloc C')); "
        "print(open('/proc/self/maps').read())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("LanguageGuess(code='fr'")
    for name in MODEL_TABLES:
        assert str(model_file(name)) in done.stdout, name


def test_detection_imports_neither_numpy_nor_py3langid() -> None:
    code = (
        "import sys, herald.enrichment, herald.enrichment.language as m; "
        "guess = m.detect('La distribution commence demain matin au bloc C'); "
        "ranked = m.load_identifier().rank('Распределение продуктов начнётся завтра утром'); "
        "bad = [n for n in sys.modules if n.split('.')[0] in ('numpy', 'py3langid')]; "
        "print(guess.code, ranked[0][0], bad)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["fr", "ru", "[]"], done.stdout + done.stderr


def test_the_check_command_finds_the_files_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "herald.enrichment.language_model", "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_measure_compares_the_packaged_and_the_mapped_model() -> None:
    medians = measure(1)
    assert set(medians) == {"packaged", "mapped"}
    # The packaged model's tables alone are more than 60 MiB (ptc and the transition table).
    assert medians["mapped"]["anon_mib"] + 40 < medians["packaged"]["anon_mib"]
    assert all(m["first_detect_s"] > 0 and m["rss_mib"] >= m["anon_mib"] for m in medians.values())
