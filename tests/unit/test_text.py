"""Plain-text enrichment: titles, excerpts, hashtags, mentions, emoji, links, counts."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.enrichment import text as t
from herald.enrichment.links import extract_links
from herald.enrichment.markdown import to_plain


class TestLinks:
    def test_scheme_less_links_become_https_with_case_and_query_intact(self) -> None:
        links = extract_links("Read how: bit.ly/3sgOa7c and www.Example.org/X?Lang=EN&b=2#Top.")
        assert [(link.url, link.domain, link.shortener) for link in links] == [
            ("https://bit.ly/3sgOa7c", "bit.ly", True),
            ("https://www.Example.org/X?Lang=EN&b=2#Top", "example.org", False),
        ]

    def test_explicit_schemes_are_kept(self) -> None:
        [link] = extract_links("see http://example.com/a")
        assert link.url == "http://example.com/a"

    @pytest.mark.parametrize(
        "text",
        [
            "javascript:alert(1)",
            "click javascript://example.com/%0Aalert(1)",
            "data:text/html,<b>x</b>",
            "vbscript:msgbox",
            "file:///etc/passwd",
            "mail me: someone@example.org",
            "ftp://example.org/file",
        ],
    )
    def test_unsafe_schemes_and_emails_never_become_links(self, text: str) -> None:
        assert not any(
            link.url.lower().startswith(("javascript", "data", "vbscript", "file", "ftp", "mailto"))
            for link in extract_links(text)
        )

    def test_each_link_once(self) -> None:
        assert len(extract_links("bit.ly/x bit.ly/x")) == 1

    def test_links_in_every_sample_line_are_found(self) -> None:
        assert [link.url for link in extract_links("Get all the data here ➡️ bit.ly/MigrationHighlights")] == [
            "https://bit.ly/MigrationHighlights"
        ]


class TestTitle:
    def test_first_sentence(self) -> None:
        assert t.make_title("Over 2 million migrants. In Qatar.") == "Over 2 million migrants."

    def test_given_title_wins(self) -> None:
        assert t.make_title("Body.", "  Given  ") == "Given"

    def test_cut_at_a_word_boundary(self) -> None:
        text = (
            "Mariatu used to send money back to her family but this changed when she lost her job in Lebanon "
            "six months ago and now"
        )
        title = t.make_title(text)
        assert len(title) <= 90 and title.endswith("…")
        assert text.startswith(title[:-1])
        assert text[len(title) - 1] == " "

    def test_trailing_colon_dropped(self) -> None:
        assert t.make_title("All the registration dates:\nbit.ly/x") == "All the registration dates"

    def test_a_short_first_sentence_carries_on(self) -> None:
        assert t.make_title("Did you know? Two-thirds of migrants live in 20 countries.") == (
            "Did you know? Two-thirds of migrants live in 20 countries."
        )


class TestTokens:
    def test_hashtags_mentions_emoji(self) -> None:
        text = "Hi @iom_news and @UN.Migration! #COVID19 #covid19 #1 #SaludParaTodos 🇲🇿 ❤️ 👩🏽‍⚕️ mail a@b.org"
        assert t.hashtags(text) == ["COVID19", "SaludParaTodos"]
        assert t.mentions(text) == ["iom_news", "UN.Migration"]
        assert t.emoji_in(text) == ["🇲🇿", "❤️", "👩🏽‍⚕️"]

    def test_arabic_hashtag(self) -> None:
        assert t.hashtags("تذكير #الهجرة_الآمنة") == ["الهجرة_الآمنة"]

    def test_word_count_ignores_links(self) -> None:
        assert t.word_count("Read how: bit.ly/3sgOa7c — it's free") == 4

    def test_reading_time(self) -> None:
        assert t.reading_time_s(0) == 0
        assert t.reading_time_s(1) == 1
        assert t.reading_time_s(400) == 120

    def test_content_hash_folds_white_space_only(self) -> None:
        assert t.content_hash("a  b\nc") == t.content_hash("a b c")
        assert t.content_hash("a b c") != t.content_hash("A b c")


def test_markdown_to_plain_keeps_words_and_link_targets() -> None:
    plain = to_plain("# Title\n\n**Bold** and [privacy](https://x.example/p).\n\n<script>x</script>")
    assert "Title" in plain and "Bold and privacy (https://x.example/p)." in plain
    assert "<script>" in plain  # HTML stays text, never markup


@given(st.text())
def test_normalise_is_idempotent_nfc_and_trimmed(text: str) -> None:
    once = t.normalise(text)
    assert t.normalise(once) == once
    assert unicodedata.is_normalized("NFC", once)
    assert once == once.strip()


@given(st.text(min_size=1), st.integers(min_value=10, max_value=300))
def test_cut_respects_the_limit(text: str, limit: int) -> None:
    assert len(t.cut(text, limit)) <= limit


@given(st.text())
def test_links_are_always_http_or_https(text: str) -> None:
    for link in extract_links(text):
        assert link.url.startswith(("http://", "https://"))
        assert link.domain
