"""The restricted language model: its files are what py3langid's model gives, its answers py3langid's."""

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
from herald.enrichment.language import LANGUAGES, MODEL_ARRAYS, REGENERATE, load_identifier, model_file
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


@pytest.fixture(scope="module")
def mapped() -> Any:
    return load_identifier()


@pytest.fixture(scope="module")
def packaged() -> Any:
    return packaged_identifier()


def test_the_files_are_what_the_build_derives_from_py3langid() -> None:
    wanted = encode(derive())
    stale = [model_file(n).name for n in MODEL_ARRAYS if model_file(n).read_bytes() != wanted[n]]
    assert not stale, f"{stale} differ from py3langid's model restricted to LANGUAGES; run {REGENERATE}"


def test_the_files_hold_only_the_candidate_languages_and_stay_small() -> None:
    classes = np.load(model_file("classes"), allow_pickle=False).tolist()
    assert set(classes) == set(LANGUAGES)
    ptc = np.load(model_file("ptc"), mmap_mode="r")
    assert ptc.shape[1] == len(classes)
    assert sum(model_file(n).stat().st_size for n in MODEL_ARRAYS) < 20_000_000


def test_same_answers_as_py3langid_on_the_labelled_posts(mapped: Any, packaged: Any) -> None:
    for text in TEXTS + [language.strip_noise(t) for t in TEXTS]:
        assert mapped.classify(text) == packaged.classify(text), text
        assert mapped.rank(text) == packaged.rank(text), text


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
    assert mapped.classify(text) == packaged.classify(text)
    assert mapped.rank(text) == packaged.rank(text)


@settings(max_examples=300, deadline=None)
@given(
    text=SCRIPTS.flatmap(lambda s: st.lists(st.text(s, min_size=1, max_size=12), max_size=12).map(" ".join))
)
def test_same_answers_as_py3langid_on_words_of_one_script(mapped: Any, packaged: Any, text: str) -> None:
    assert mapped.classify(text) == packaged.classify(text)
    assert mapped.rank(text) == packaged.rank(text)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(ALPHABET, max_size=200), st.binary(max_size=200)))
def test_same_answers_as_py3langid_on_any_text(mapped: Any, packaged: Any, text: str | bytes) -> None:
    assert mapped.classify(text) == packaged.classify(text)
    assert mapped.rank(text) == packaged.rank(text)


def test_detection_maps_the_files() -> None:
    code = (
        "import herald.enrichment.language as m; "
        "print(m.detect('La distribution commence demain matin au bloc C')); "
        "print(open('/proc/self/maps').read())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("LanguageGuess(code='fr'")
    for name in ("ptc", "chunks", "rows", "states", "output"):
        assert str(model_file(name)) in done.stdout, name


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
