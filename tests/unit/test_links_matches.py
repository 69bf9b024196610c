"""herald.enrichment.links.find_matches: linkify-it's own matches, though it looks for bare e-mail
addresses only in text that can hold one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linkify_it import LinkifyIt
from linkify_it.tlds import TLDS

from herald.enrichment.links import _MAY_HOLD_EMAIL, extract_links, find_matches
from herald_tools.bench.corpus import build_corpus

REFERENCE = LinkifyIt().tlds(TLDS)

TEXTS = [
    "write to info@example.org or see example.org/help",
    "john@example.com/path and bit.ly/x",  # the address hides the link it overlaps
    "mailto:someone@example.org",
    "@amal see www.example.org/x?lang=fr",  # a mention is no address
    "x @ y.com",
    '"quoted"@example.com',
    "a.b@bit.ly/3hD6tOZ",
    "ſ@example.com",  # a long s, an ASCII letter to IGNORECASE
    "K@example.com",  # the Kelvin sign
    "ü@example.com www.example.org",
    "192.168.1.1@gmail.com",
    "https://user@example.org/x",
    "no links at all",
    "",
]


def spans(matches: list[Any] | None) -> list[tuple[str, int, int, str]]:
    return [(m.schema, m.index, m.last_index, m.raw) for m in matches or []]


@pytest.mark.parametrize("text", TEXTS)
def test_matches_are_linkify_its_own(text: str) -> None:
    assert spans(find_matches(text)) == spans(REFERENCE.match(text))


def test_an_address_is_still_found_where_one_can_be() -> None:
    assert _MAY_HOLD_EMAIL.search("john@example.com/path")
    assert not _MAY_HOLD_EMAIL.search("@amal, see you")
    assert [link.url for link in extract_links("john@example.com/path and bit.ly/x")] == ["https://bit.ly/x"]


def test_the_bench_corpus_gives_linkify_its_matches() -> None:
    texts = [json.loads(post.body)["text"] for post in build_corpus(600)]
    assert sum(bool(REFERENCE.match(t)) for t in texts) > 100, "a corpus with links"
    for text in texts:
        assert spans(find_matches(text)) == spans(REFERENCE.match(text)), text


_PIECES = st.sampled_from(
    [
        "a",
        "Z",
        "ſ",
        "K",
        "ü",
        "1",
        ".",
        "-",
        "_",
        '"',
        "@",
        " ",
        ":",
        "/",
        "example",
        "com",
        "org",
        "ly",
        "bit",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_any_mix_of_pieces_gives_linkify_its_matches(text: str) -> None:
    assert spans(find_matches(text)) == spans(REFERENCE.match(text))
