"""Countries from flags, names and demonyms."""

from __future__ import annotations

import time

import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.enrichment.countries import find_countries

CODES = sorted(c.alpha_2 for c in pycountry.countries)


def flag(code: str) -> str:
    return "".join(chr(0x1F1E6 + ord(letter) - ord("A")) for letter in code)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("At least 62 Gambians died in a tragic shipwreck off the coast of Mauritania", ["GM", "MR"]),
        (
            "🇲🇿 UN agencies are concerned by the worsening humanitarian crisis in Mozambique’s Cabo Delgado",
            ["MZ"],
        ),
        ("Natalie came to Lebanon to earn money to pay for her sibling’s education in Kenya", ["LB", "KE"]),
        ("The devaluation of the Lebanese pound", ["LB"]),
        ("IOM and the State of Qatar", ["QA"]),
        ("Syrian refugees, Venezuelans, Afghan families and Filipinos", ["SY", "VE", "AF", "PH"]),
        ("Filipino workers in the UAE", ["PH", "AE"]),
        ("The Gambia and Gambia", ["GM"]),
        ("Côte d'Ivoire, Ivory Coast and Cote d’Ivoire", ["CI"]),
        ("the DRC, or Democratic Republic of the Congo", ["CD"]),
        ("From the UK to the USA and the United States", ["GB", "US"]),
        ("Equatorial Guinea, Guinea-Bissau, Papua New Guinea", ["GQ", "GW", "PG"]),
        ("Guinea", ["GN"]),
        ("Niger and Nigeria", ["NE", "NG"]),
        ("Nigeria and Niger", ["NG", "NE"]),
        ("Dominica, then the Dominican Republic", ["DM", "DO"]),
        ("South Sudanese refugees in Sudan", ["SS", "SD"]),
        ("Türkiye, Turkiye and Turkey", ["TR"]),
        ("MOZAMBIQUE FLOODS", ["MZ"]),
        ("#mozambique #Kenya", ["MZ", "KE"]),
    ],
)
def test_examples(text: str, expected: list[str]) -> None:
    assert find_countries(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("let us know", []),
        ("CONTACT US TODAY", []),
        ("the US and Canada", ["US", "CA"]),
        ("U.S. policy", ["US"]),
        ("US, UK and Canada", ["US", "GB", "CA"]),
        ("a turkey dinner", []),
        ("Turkey", ["TR"]),
        ("guinea pigs", []),
        ("china plates", []),
        ("Chad", ["TD"]),
        ("french fries and polish", []),
        ("French authorities", ["FR"]),
        ("Classes in English, French and Arabic", []),
        ("The guide is available in Spanish.", []),
        ("Russian speakers", []),
        ("Russian and Ukrainian refugees", ["RU", "UA"]),
        ("in Turkish waters", ["TR"]),
        ("English lessons", []),
        ("Cyclone in the Indian Ocean", []),
        ("Migrants from Latin America", []),
        ("New Mexico and New South Wales", []),
        ("family reunion", []),
        ("La Réunion", ["RE"]),
        ("Central African Republic", ["CF"]),
        ("IN THE CAR", []),
    ],
)
def test_ambiguous_words(text: str, expected: list[str]) -> None:
    assert find_countries(text) == expected


def test_flags() -> None:
    assert find_countries("🇬🇧🇪🇺🇺🇳🇰🇪") == ["GB", "KE"]
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    scotland = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert find_countries(f"{england} {scotland}") == ["GB"]
    assert find_countries("🇽🇰 Kosovo") == []


def test_order_mixes_flags_and_names() -> None:
    assert find_countries("Kenya 🇲🇿 Lebanon 🇰🇪") == ["KE", "MZ", "LB"]


def test_fast_enough() -> None:
    post = (
        "Natalie came to Lebanon to earn money to pay for her sibling’s education in Kenya. "
        "The devaluation of the Lebanese pound hit migrant workers from Ethiopia and the Philippines hard, "
        "and many Syrian refugees also lost income. "
    ) * 8  # about 300 words
    find_countries(post)
    runs = 50
    start = time.perf_counter()
    for _ in range(runs):
        find_countries(post)
    assert (time.perf_counter() - start) / runs < 0.005  # about 0.3 ms here; room for slow CI


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_gives_valid_unique_codes(text: str) -> None:
    codes = find_countries(text)
    assert len(codes) == len(set(codes))
    assert all(code in CODES for code in codes)


@given(st.lists(st.sampled_from(CODES), min_size=1, max_size=8))
@settings(max_examples=200, deadline=None)
def test_flag_emoji_round_trip(codes: list[str]) -> None:
    text = " ".join(flag(code) for code in codes)
    assert find_countries(text) == list(dict.fromkeys(codes))
