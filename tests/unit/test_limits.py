"""The bounds on uploads, decided in one place (herald.content.limits), and the checks that use them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from hypothesis import given
from hypothesis import strategies as st

from herald.content import limits
from herald.content.models import Outcome, OutcomeStatus
from herald.core.aws import as_domain_error
from herald.core.errors import InvalidUpload, Problem, RequestRefused, TransientError
from herald.ingest.adapters.dynamo_content import outcome_item
from herald.ingest.layout import parse_key
from herald.ingest.parsing import IngestLimits, parse_export, parse_member_count, parse_post


def problems(call: object, *args: object) -> list[tuple[str, str]]:
    with pytest.raises(InvalidUpload) as info:
        call(*args)  # type: ignore[operator]
    return [(p.loc, p.message) for p in info.value.problems]


class TestItemSize:
    def test_counts_names_and_values_in_utf8(self) -> None:
        assert limits.dynamodb_item_bytes({"a": "xyz"}) == 4
        assert limits.dynamodb_item_bytes({"é": "ü☀"}) == 2 + 5
        assert limits.dynamodb_item_bytes({"flag": True, "none": None}) == 5

    def test_numbers_by_their_digits(self) -> None:
        assert limits.dynamodb_item_bytes({"n": 7}) == 1 + 2
        assert limits.dynamodb_item_bytes({"n": 123456}) == 1 + 4
        assert limits.dynamodb_item_bytes({"n": 1_000_000}) == 1 + 2  # trailing zeros are trimmed

    def test_lists_and_maps_have_overhead(self) -> None:
        assert limits.dynamodb_item_bytes({"l": ["ab", "c"]}) == 1 + 3 + (1 + 2) + (1 + 1)
        assert limits.dynamodb_item_bytes({"m": {"k": "v"}}) == 1 + 3 + (1 + 1 + 1)

    def test_a_post_with_too_many_links_or_bytes_is_refused(self) -> None:
        links = [
            {"url": f"https://site{i}.org", "domain": f"site{i}.org", "shortener": False} for i in range(1001)
        ]
        [(loc, message)] = problems(limits.check_stored_post, {"links": links}, "line 3")
        assert loc == "line 3" and "1,001 links" in message and "1,000" in message
        [(loc, message)] = problems(limits.check_stored_post, {"text": "x" * (400 * 1024)})
        assert loc == "text" and "409,6" in message and f"{limits.STORED_POST_BYTES:,}" in message


class TestKeys:
    def test_the_key_bound_leaves_room_for_herald_s_own_keys(self) -> None:
        assert limits.KEY_BYTES == 991
        key = "posts/demo/" + "x" * (limits.KEY_BYTES - len("posts/demo/.txt")) + ".txt"
        assert parse_key(key).community == "demo"
        copy, report = limits.rejected_names(key)
        assert (copy, report) == (f"rejected/{key}", f"rejected/{key}.error.json")
        assert len(report.encode()) <= limits.S3_KEY_BYTES
        assert len(limits.sort_key("2026-01-01T00:00:00.000000+00:00", key).encode()) <= 1024

    def test_a_key_over_the_bound_is_refused_with_its_size(self) -> None:
        key = "posts/demo/" + "é" * 500 + ".txt"
        [(loc, message)] = problems(parse_key, key)
        assert loc == "key" and "1,015 bytes" in message and "991 bytes" in message

    @given(
        st.text(min_size=1, max_size=1024).filter(lambda k: len(k.encode("utf-8", "surrogatepass")) <= 1024)
    )
    def test_derived_names_always_fit(self, name: str) -> None:
        for key in (name, "posts/demo/" + name):
            copy, report = limits.rejected_names(key)
            assert report == copy + ".error.json" and copy.startswith("rejected/")
            assert len(report.encode("utf-8", "surrogatepass")) <= 1024
            assert (
                len(limits.sort_key("2026-12-01T21:30:38.762630Z", key).encode("utf-8", "surrogatepass"))
                <= 1024
            )

    def test_long_keys_keep_distinct_rejected_names(self) -> None:
        a, b = "posts/demo/" + "a" * 1000 + "1.txt", "posts/demo/" + "a" * 1000 + "2.txt"
        assert limits.rejected_names(a)[0] != limits.rejected_names(b)[0]

    def test_the_outcome_item_of_a_1024_byte_key_fits_dynamodb(self) -> None:
        key = "posts/demo/" + "é" * 504 + "e.txt"
        assert len(key.encode()) == 1024
        outcome = Outcome(
            key=key, status=OutcomeStatus.REJECTED, processed_at=datetime(2026, 1, 1, tzinfo=UTC)
        )
        item = outcome_item(outcome)
        sort = item["gsi1sk"]["S"]
        assert len(sort.encode()) <= limits.DYNAMODB_SORT_KEY_BYTES
        assert sort.startswith("2026-01-01T00:00:00Z#posts/demo/é")
        assert item["pk"]["S"] == f"UPLOAD#{key}"  # the key itself is kept whole

    @pytest.mark.parametrize(
        ("key", "words"),
        [
            ("posts/demo\n/a.txt", "'demo\\n'"),
            ("posts/demo\r/a.txt", "'demo\\r'"),
            ("posts/de mo/a.txt", "'de mo'"),
            ("posts/Demo/a.txt", "'Demo'"),
            ("posts/\x1b[31mred/a.txt", "'\\x1b[31mred'"),
        ],
    )
    def test_community_ids_are_matched_whole(self, key: str, words: str) -> None:
        [(loc, message)] = problems(parse_key, key)
        assert loc == "key" and words in message and "not a valid id" in message


class TestDates:
    def test_a_date_is_stored_in_utc(self) -> None:
        post = parse_post(b'{"text": "x", "publish_at": "2027-01-01T10:00:00+02:00"}', "json", IngestLimits())
        assert post.publish_at == datetime(2027, 1, 1, 8, tzinfo=UTC)
        naive = parse_post(b"---\npublish_at: 2027-01-01 10:00:00\n---\nbody", "md", IngestLimits())
        assert naive.publish_at == datetime(2027, 1, 1, 10, tzinfo=UTC)

    @pytest.mark.parametrize(
        "value",
        [
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59-23:59",
            "1969-12-31T23:59:59Z",
            "2100-01-01T00:00:00Z",
        ],
    )
    def test_dates_outside_the_bounds_name_the_field(self, value: str) -> None:
        [(loc, message)] = problems(
            parse_post, json.dumps({"text": "x", "publish_at": value}).encode(), "json", IngestLimits()
        )
        assert loc == "publish_at" and value[:19] in message and "1970-01-01" in message

    @given(
        st.datetimes(timezones=st.just(timezone(timedelta(hours=23, minutes=59))))
        | st.datetimes(timezones=st.just(timezone(-timedelta(hours=23, minutes=59))))
        | st.datetimes()
    )
    def test_any_datetime_is_accepted_or_refused_never_overflows(self, value: datetime) -> None:
        try:
            result = limits.bounded_datetime(value)
        except ValueError:
            return
        assert result.tzinfo is UTC and limits.EARLIEST_DATE <= result < limits.LATEST_DATE


class TestCounts:
    @pytest.mark.parametrize(
        ("display", "count"),
        [("222K", 222_000), ("1.2M", 1_200_000), ("12,345", 12_345), ("2.5B", 2_500_000_000)],
    )
    def test_exact(self, display: str, count: int) -> None:
        assert parse_member_count(display) == count

    @pytest.mark.parametrize(
        ("display", "words"),
        [("1" + "0" * 39, "40 digits"), ("9" * 100_000, "100,000 digits"), ("11B", "11,000,000,000 members")],
    )
    def test_beyond_the_bound(self, display: str, words: str) -> None:
        [(loc, message)] = problems(parse_member_count, display, "line 9")
        assert loc == "line 9" and words in message and "10,000,000,000" in message

    def test_an_export_names_the_line(self) -> None:
        export = b"A post.\n\nScan QR code to join Community\nName\n" + b"1" * 40 + b" Members\n"
        [(loc, message)] = problems(parse_export, export, IngestLimits())
        assert loc == "line 5" and "40 digits" in message


class TestEncodings:
    @pytest.mark.parametrize(
        "codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
    )
    @pytest.mark.parametrize("text", ["Clinic hours: 8 to 16.", "مواعيد العيادة من 8 إلى 16", "Ünïcödé 1"])
    def test_wide_encodings_are_named(self, codec: str, text: str) -> None:
        [(loc, message)] = problems(parse_post, text.encode(codec), "txt", IngestLimits())
        name = "UTF-32" if "32" in codec else "UTF-16"
        assert (loc, message) == ("content", f"{name} is not supported, save as UTF-8")

    def test_stray_nul_bytes_are_binary_not_utf16(self) -> None:
        [(_, message)] = problems(parse_post, b"abc\x00def", "txt", IngestLimits())
        assert "NUL byte at offset 3" in message

    def test_a_truncated_read_says_at_least(self) -> None:
        [(loc, message)] = problems(parse_post, b"x" * 101, "txt", IngestLimits(max_post_bytes=100))
        assert loc == "size" and message == "the post is at least 101 bytes; the limit is 100 bytes"


class TestFrontMatter:
    def test_a_duplicate_key_is_refused_naming_it(self) -> None:
        [(loc, message)] = problems(
            parse_post, b"---\ntags: [a]\ntitle: A\ntags: [b]\n---\nBody", "md", IngestLimits()
        )
        assert loc == "front matter line 4" and message == "the field 'tags' appears more than once"

    def test_a_duplicate_key_in_a_nested_mapping_too(self) -> None:
        [(loc, message)] = problems(
            parse_post, b"---\ntitle:\n  a: 1\n  a: 2\n---\nBody", "md", IngestLimits()
        )
        assert loc == "front matter line 4" and "'a'" in message


class TestRecorded:
    def test_problems_are_bounded_in_number(self) -> None:
        many = [Problem(f"line {i}", "too long") for i in range(100)]
        kept = limits.recordable(many)
        assert len(kept) == limits.RECORDED_PROBLEMS and kept[0] == many[0]
        assert kept[-1] == Problem("more", "and 81 more problems of the same kinds")
        assert limits.recordable(many[:20]) == many[:20]

    def test_each_problem_is_bounded_in_length(self) -> None:
        [kept] = limits.recordable([Problem("f" * 70_000, "unknown field " + "f" * 70_000)])
        assert len(kept.loc) == limits.PROBLEM_LOC_CHARS and kept.loc.endswith("…")
        assert len(kept.message) == limits.PROBLEM_MESSAGE_CHARS and kept.message.startswith("unknown field")

    def test_quoted_text_is_escaped_and_cut(self) -> None:
        assert limits.quoted("a\nb") == "'a\\nb'"
        long = limits.quoted("x" * 10_000)
        assert long.startswith("'xxx") and long.endswith("… (10,000 characters)") and len(long) < 120


class TestAwsErrors:
    @staticmethod
    def client_error(code: str, status: int) -> ClientError:
        return ClientError(
            {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
        )

    @pytest.mark.parametrize("code", ["ValidationException", "KeyTooLongError"])
    def test_an_invalid_request_is_refused_never_retried(self, code: str) -> None:
        assert isinstance(as_domain_error(self.client_error(code, 400), "writing"), RequestRefused)
        assert isinstance(as_domain_error(ParamValidationError(report="bad"), "writing"), RequestRefused)

    @pytest.mark.parametrize(
        ("code", "status"),
        [
            ("ThrottlingException", 400),
            ("InternalServerError", 500),
            ("SlowDown", 503),
            ("ResourceNotFoundException", 400),
        ],
    )
    def test_everything_else_aws_side_is_retried(self, code: str, status: int) -> None:
        assert isinstance(as_domain_error(self.client_error(code, status), "writing"), TransientError)
