"""Language detection: accuracy on the labelled posts, noise stripping, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from herald.enrichment.language import LANGUAGES, detect, detect_language, measure, strip_noise

POSTS = Path(__file__).resolve().parents[1] / "data" / "language_posts.jsonl"


@pytest.fixture(scope="module")
def measured() -> dict:
    return measure(str(POSTS))


def test_the_labelled_set_is_big_enough(measured: dict) -> None:
    per = measured["per_language"]
    assert len(per) >= 8
    assert {"ar", "fr", "es", "en", "pt", "sw", "tr"} <= set(per)
    assert {"ru", "uk"} & set(per)
    assert all(total >= 15 for _, total in per.values())


def test_overall_accuracy(measured: dict) -> None:
    assert measured["overall"] >= 0.95, measured["confusions"]


def test_accuracy_per_language(measured: dict) -> None:
    for lang, (correct, total) in measured["per_language"].items():
        assert correct / total >= 0.85, (lang, measured["confusions"])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "🇲🇿🇰🇪 🎉🎉",
        "bit.ly/3hD6tOZ",
        "https://example.org/a/b?c=1 www.example.org/x",
        "@iom @unhcr",
        "#COVID19 #WorldRefugeeDay",
        "👍 OK",
        "Hello",
        "12 34 567",
    ],
)
def test_no_language_in_links_emoji_and_hashtags(text: str) -> None:
    assert detect_language(text) is None
    assert detect(text) is None


def test_strip_noise_removes_links_mentions_emoji_and_hash_signs() -> None:
    text = (
        "Hi @amina_k, see bit.ly/3hD6tOZ, www.example.org/x and https://example.org/a?b=1 "
        "or write to help@example.org 🇲🇿🎉 #Refugees"
    )
    clean = strip_noise(text)
    for gone in ("@", "bit.ly", "3hD6tOZ", "www", "https", "example", "🇲🇿", "🎉", "#"):
        assert gone not in clean
    assert clean.replace(",", "").split() == ["Hi", "see", "and", "or", "write", "to", "Refugees"]


def test_strip_noise_keeps_ordinary_sentences() -> None:
    text = "Registration closes on Friday, e.g. at 5 pm. Bring your card."
    assert strip_noise(text) == text


def test_detects_with_noise_and_hashtag_words() -> None:
    assert detect_language("📢 Distribution de vivres demain matin au bloc C #aide bit.ly/x1") == "fr"
    guess = detect("La vacunación contra el sarampión empieza el lunes en el centro de salud")
    assert guess is not None
    assert guess.code == "es"
    assert 0.0 < guess.probability <= 1.0


def test_arabic_varieties_are_reported_as_arabic() -> None:
    assert detect_language("شنو كاين اليوم؟ التوزيع غادي يبدا من الصباح فالمركز ديال الحي") == "ar"


def test_codes_are_iso_639_1_where_one_exists() -> None:
    assert "zxx" in LANGUAGES
    for text in ("Vaccination day tomorrow at the community centre", "Завтра день вакцинации в центре"):
        code = detect_language(text)
        assert code is not None
        assert len(code) == 2


def test_import_does_not_load_numpy_or_the_model() -> None:
    code = (
        "import sys, herald.enrichment.language as m; "
        "bad = [n for n in ('numpy', 'py3langid', 'emoji') if n in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_command_line_prints_the_measurement() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "herald.enrichment.language", str(POSTS)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "overall:" in done.stdout
    assert "µs per post" in done.stdout
