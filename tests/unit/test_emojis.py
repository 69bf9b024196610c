"""herald.enrichment.emojis: the table derived from the emoji package, and answers equal to the
package's (``emoji_list`` and ``replace_emoji``) on emoji of every shape and on the bench corpus."""

from __future__ import annotations

import json

import emoji
import pytest
from emoji.unicode_codes import EMOJI_DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.enrichment import emojis
from herald.enrichment.text import emoji_in
from herald_tools.bench.corpus import build_corpus

ZWJ, VS15, VS16 = "\u200d", "\ufe0e", "\ufe0f"
#: Emoji of every shape, and the pieces they are made of, alone and in odd company.
SHAPES = [
    "👍",
    "👍🏽",  # a skin tone
    "🏽",  # a component alone
    "👩‍👩‍👧‍👦",  # an RGI ZWJ sequence
    "👩🏾‍🚀",  # skin tone inside a ZWJ sequence
    "🧑‍🤝‍🧑",
    "🐻‍❄️",
    "👍‍🐶",  # a ZWJ sequence that is not RGI
    "😀‍😀‍😀",
    "👩‍🦰",  # a hair component joined
    "👩‍🏻",  # ZWJ + component
    "👩‍👍🏽",  # ZWJ + emoji + component
    "🇫🇷",  # a flag
    "🇪🇺",
    "🇫🇷🇩🇪🇲🇿",  # flags back to back
    "🇫",  # half a flag
    "🇫🇷🇫",
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland's subdivision flag
    "🏴\U000e0067\U000e0062",  # a tag sequence cut short
    "#️⃣",  # keycaps
    "1️⃣2️⃣",
    "#⃣",
    "1\u20e3",
    "©",  # text-style characters that are emoji
    "©️",
    "™" + VS15,
    "❤",
    "❤️",
    "❤️‍🔥",
    VS16,  # stray variation selectors and joiners
    "a" + VS16 + "b",
    ZWJ,
    "a" + ZWJ + "b",
    "👍" + ZWJ,
    ZWJ + "👍",
    "👍" + ZWJ + ZWJ + "👍",
    "Distribution 🍞 at 10:00 🇯🇴 — bring ID 🪪!",
]


def package_answers(text: str) -> tuple[list[str], str]:
    return [e["emoji"] for e in emoji.emoji_list(text)], emoji.replace_emoji(text, replace=" ")


def herald_answers(text: str) -> tuple[list[str], str]:
    return emojis.find(text), emojis.replace(text, " ")


def test_the_table_is_what_the_installed_package_gives() -> None:
    assert emojis.TABLE.read_bytes() == emojis.render(), "run python -m herald.enrichment.emojis"
    assert emojis.main(["--check"]) == 0
    assert emojis.table().source.startswith(f"# emoji {emoji.__version__}:")


def test_the_table_holds_every_emoji_and_marks_the_components() -> None:
    table = emojis.table()
    assert table.emoji == frozenset(EMOJI_DATA)
    component = emoji.STATUS["component"]
    assert table.components == frozenset(e for e, d in EMOJI_DATA.items() if d["status"] == component)
    assert {"🏻", "🏿", "🦰"} <= table.components


@pytest.mark.parametrize("value", sorted(EMOJI_DATA)[::7])
def test_each_emoji_alone_is_found_as_the_package_finds_it(value: str) -> None:
    assert herald_answers(value) == package_answers(value)
    assert herald_answers(f"a {value}b") == package_answers(f"a {value}b")


@pytest.mark.parametrize("text", SHAPES)
def test_every_shape_is_found_as_the_package_finds_it(text: str) -> None:
    assert herald_answers(text) == package_answers(text)
    around = f"x{text} {text}y"
    assert herald_answers(around) == package_answers(around)


def test_the_bench_corpus_gives_the_package_answers() -> None:
    texts = [json.loads(post.body)["text"] for post in build_corpus(600)]
    assert sum(bool(emoji.emoji_list(t)) for t in texts) > 100, "a corpus with emoji"
    for text in texts:
        assert herald_answers(text) == package_answers(text), text


_PIECES = st.sampled_from(
    [*SHAPES, "🏻", "🏿", "🦰", "🇫", "🇷", "🏴", "\U000e0067", "\U000e007f", "\u20e3", "#", "1", "a", " "]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=8).map("".join))
def test_any_mix_of_pieces_gives_the_package_answers(text: str) -> None:
    assert herald_answers(text) == package_answers(text)


def test_emoji_in_gives_each_distinct_emoji_in_order() -> None:
    assert emoji_in("🇫🇷 merci 👍🏽 👍🏽 🇫🇷 👩‍👩‍👧‍👦") == ["🇫🇷", "👍🏽", "👩‍👩‍👧‍👦"]


def test_a_broken_table_line_is_named() -> None:
    with pytest.raises(ValueError, match="not an emoji line: 'x'"):
        emojis.parse("# header\ne 👍\nx\n")
