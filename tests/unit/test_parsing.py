"""Parsing and validation of uploads: every bad input names its problem."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.core.errors import InvalidUpload
from herald.ingest.parsing import IngestLimits, parse_export, parse_member_count, parse_post

LIMITS = IngestLimits()


def problems(data: bytes, fmt: str, limits: IngestLimits = LIMITS) -> list[tuple[str, str]]:
    with pytest.raises(InvalidUpload) as caught:
        parse_post(data, fmt, limits)
    return [(p.loc, p.message) for p in caught.value.problems]


class TestPlainText:
    def test_text_is_trimmed(self) -> None:
        assert parse_post(b"  Hello \n", "txt", LIMITS).text == "Hello"

    def test_bom_is_accepted(self) -> None:
        assert parse_post(b"\xef\xbb\xbfHello", "txt", LIMITS).text == "Hello"

    def test_invalid_utf8_names_line_and_offset(self) -> None:
        [(loc, message)] = problems(b"ok\nbad \xff byte", "txt")
        assert loc == "line 2"
        assert "0xff" in message and "offset 7" in message

    @pytest.mark.parametrize("data", [b"", b"   \n\t "])
    def test_empty(self, data: bytes) -> None:
        [(loc, message)] = problems(data, "txt")
        assert loc == "content" and "empty" in message

    def test_oversize_names_size_and_limit(self) -> None:
        [(loc, message)] = problems(b"x" * 101, "txt", IngestLimits(max_post_bytes=100))
        assert loc == "size" and "101" in message and "100" in message

    @pytest.mark.parametrize(
        ("data", "kind"),
        [(b"\x89PNG\r\n\x1a\n....", "PNG"), (b"%PDF-1.7", "PDF"), (b"abc\x00def", "NUL byte")],
    )
    def test_binary(self, data: bytes, kind: str) -> None:
        [(_, message)] = problems(data, "txt")
        assert kind in message


class TestJson:
    def test_all_fields(self) -> None:
        post = parse_post(
            json.dumps(
                {
                    "text": "Hi",
                    "title": "T",
                    "tags": ["a"],
                    "lang": "fr",
                    "pinned": True,
                    "notify": False,
                    "publish_at": "2030-01-01T09:00:00Z",
                }
            ).encode(),
            "json",
            LIMITS,
        )
        assert (post.title, post.tags, post.lang, post.pinned, post.notify) == ("T", ["a"], "fr", True, False)
        assert post.publish_at is not None and post.publish_at.year == 2030

    def test_wrong_type_names_field_and_type(self) -> None:
        assert problems(b'{"text": "a", "pinned": "yes"}', "json") == [
            ("pinned", "Input should be a valid boolean (got str)")
        ]

    def test_wrong_type_in_list_names_index(self) -> None:
        [(loc, _)] = problems(b'{"text": "a", "tags": ["x", 3]}', "json")
        assert loc == "tags[1]"

    def test_unknown_fields_are_named(self) -> None:
        found = problems(b'{"text": "a", "colour": "red", "sticky": true}', "json")
        assert [loc for loc, _ in found] == ["colour", "sticky"]
        assert all("unknown field" in message for _, message in found)

    def test_missing_text(self) -> None:
        assert problems(b'{"title": "a"}', "json") == [("text", "this field is required")]

    def test_unparseable_names_line_and_column(self) -> None:
        [(loc, message)] = problems(b'{\n  "text": "a",\n  oops\n}', "json")
        assert loc == "line 3" and "column 3" in message

    def test_not_an_object(self) -> None:
        [(_, message)] = problems(b'["text"]', "json")
        assert "must be an object" in message

    def test_deep_nesting_is_refused_before_parsing(self) -> None:
        deep = b'{"text": "a", "tags": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        [(loc, message)] = problems(deep, "json")
        assert loc == "body" and "5001 levels" in message

    def test_duplicate_fields(self) -> None:
        [(loc, message)] = problems(b'{"text": "a", "text": "b"}', "json")
        assert loc == "text" and "more than once" in message


class TestMarkdown:
    def test_front_matter_fields(self) -> None:
        post = parse_post(b"---\ntitle: Hi\ntags: [a, b]\npinned: true\n---\n# Body\n\ntext", "md", LIMITS)
        assert (post.title, post.tags, post.pinned) == ("Hi", ["a", "b"], True)
        assert post.text == "# Body\n\ntext"

    def test_no_front_matter(self) -> None:
        assert parse_post(b"just *markdown*", "md", LIMITS).text == "just *markdown*"

    def test_unsafe_tag(self) -> None:
        [(loc, message)] = problems(b"---\ntitle: !!python/object/apply:os.system [id]\n---\nbody", "md")
        assert loc == "front matter line 2" and "unsafe or unknown YAML tag" in message

    @pytest.mark.parametrize(
        ("front_matter", "loc", "message"),
        [
            (b"title: !x 1", "front matter line 2", "unsafe or unknown YAML tag !x"),
            (b"a: 1\nb: !x\n  - 1", "front matter line 3", "unsafe or unknown YAML tag !x"),
            (
                b"title: !!python/object/apply:os.system [id]",
                "front matter line 2",
                "unsafe or unknown YAML tag tag:yaml.org,2002:python/object/apply:os.system",
            ),
            # A tag's %0A decodes to a line break: shown escaped. A quote in it is shown as is.
            (b"title: !a%0Ab x", "front matter line 2", "unsafe or unknown YAML tag !a\\nb"),
            (
                b"title: !<tag:x.org,2000:it's> 1",
                "front matter line 2",
                "unsafe or unknown YAML tag tag:x.org,2000:it's",
            ),
        ],
    )
    def test_unknown_tag_is_named_from_the_node(self, front_matter: bytes, loc: str, message: str) -> None:
        assert problems(b"---\n" + front_matter + b"\n---\nbody", "md") == [(loc, message)]

    def test_a_known_tag_on_the_wrong_node_is_not_an_unknown_tag(self) -> None:
        [(loc, message)] = problems(b"---\ntitle: !!int {a: 1}\n---\nbody", "md")
        assert loc == "front matter line 2" and message.startswith("not valid YAML:")
        assert "tag" not in message

    def test_alias_bomb(self) -> None:
        bomb = (
            b"---\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n---\nbody"
        )
        [(loc, message)] = problems(bomb, "md")
        assert loc == "front matter line 3" and "aliases" in message

    def test_deep_yaml(self) -> None:
        [(_, message)] = problems(b"---\ntitle: " + b"[" * 50 + b"]" * 50 + b"\n---\nbody", "md")
        assert "nested more than" in message

    def test_text_field_in_front_matter(self) -> None:
        [(loc, _)] = problems(b"---\ntext: hi\n---\nbody", "md")
        assert loc == "text"

    def test_unclosed_front_matter(self) -> None:
        [(_, message)] = problems(b"---\ntitle: x\nbody", "md")
        assert "never closed" in message

    def test_unknown_front_matter_field(self) -> None:
        [(loc, message)] = problems(b"---\nauthor: me\n---\nbody", "md")
        assert loc == "author" and "unknown field" in message


class TestExport:
    EXPORT = (
        "First post 🌍 bit.ly/abc\n\n\nSecond post,\nstill second.\n"
        "Third runs straight into the profile\n"
        "Scan QR code to join Community\nMy Community\nA tagline.\nVerified Community\n1.2M Members\n"
        "Created In 2021\nScan QR code to join Community\n"
    )

    def test_posts_and_profile(self) -> None:
        export = parse_export(self.EXPORT.encode(), LIMITS)
        assert [p.text for p in export.posts] == [
            "First post 🌍 bit.ly/abc",
            "Second post,\nstill second.\nThird runs straight into the profile",
        ]
        assert [p.line for p in export.posts] == [1, 4]
        profile = export.profile
        assert (
            profile.name,
            profile.description,
            profile.verified,
            profile.members,
            profile.created_year,
        ) == ("My Community", "A tagline.", True, 1_200_000, 2021)

    def test_missing_profile(self) -> None:
        with pytest.raises(InvalidUpload) as caught:
            parse_export(b"just a post\n", LIMITS)
        assert caught.value.problems[0].loc == "profile"

    def test_oversize_post_names_its_line(self) -> None:
        text = "short\n\n" + "y" * 200 + "\nScan QR code to join Community\nName\n"
        with pytest.raises(InvalidUpload) as caught:
            parse_export(text.encode(), IngestLimits(max_post_bytes=100))
        assert caught.value.problems[0].loc == "line 3"

    def test_unverified_without_tagline(self) -> None:
        export = parse_export(b"p\nScan QR code to join Community\nName\n950 Members\n", LIMITS)
        assert (export.profile.verified, export.profile.members, export.profile.description) == (
            False,
            950,
            None,
        )


@pytest.mark.parametrize(
    ("display", "value"),
    [
        ("222K", 222_000),
        ("1.2M", 1_200_000),
        ("950", 950),
        ("12,345", 12_345),
        ("48.5K", 48_500),
        ("3B", 3_000_000_000),
    ],
)
def test_member_counts(display: str, value: int) -> None:
    assert parse_member_count(display) == value


# -- properties -----------------------------------------------------------------------------------

text_without_nul = st.text(min_size=1).filter(lambda s: "\x00" not in s and s.strip())


@given(st.binary(max_size=300), st.sampled_from(["txt", "md", "json"]))
def test_any_bytes_parse_or_raise_invalid_upload(data: bytes, fmt: str) -> None:
    try:
        post = parse_post(data, fmt, LIMITS)
    except InvalidUpload as exc:
        assert exc.problems and all(p.loc and p.message for p in exc.problems)
    else:
        assert post.text.strip()


@given(text_without_nul)
def test_plain_text_round_trips(text: str) -> None:
    assert parse_post(text.encode(), "txt", LIMITS).text == text.strip()


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        ),
        max_size=5,
    )
)
def test_any_json_object_parses_or_names_a_problem(document: dict) -> None:
    try:
        parse_post(json.dumps({"text": "x", **document}).encode(), "json", LIMITS)
    except InvalidUpload as exc:
        assert all(p.loc for p in exc.problems)


@given(st.lists(text_without_nul.map(lambda s: " ".join(s.split())).filter(bool), min_size=1, max_size=8))
def test_export_keeps_every_post(posts: list[str]) -> None:
    posts = [p for p in posts if p != "Scan QR code to join Community"]
    body = "\n\n".join(posts) + "\nScan QR code to join Community\nName\n"
    if not posts:
        return
    export = parse_export(body.encode(), LIMITS)
    assert [p.text for p in export.posts] == posts
