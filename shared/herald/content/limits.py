"""Every bound Herald puts on an upload, each with its reason, and the checks that enforce them.

This is the one place limits are decided. Parsing, the layout, the models and the ingest service
call the checks here at validation time, before anything is stored, so an upload that would
break a limit of S3 or DynamoDB further down is rejected up front with a message that names the
field, the limit and the real value, instead of failing the write again on every retry.

AWS's limits are enforced here in Herald's own code rather than left to the services: a refused
write is found only at the last step, and moto, which the tests run on, does not enforce all of
them (S3's 1,024-byte key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from herald.core.errors import InvalidUpload, Problem

KIB = 1024
MIB = 1024 * KIB

# --- what AWS refuses -------------------------------------------------------------------------

#: S3: an object key is at most 1,024 bytes of UTF-8.
S3_KEY_BYTES = 1024
#: DynamoDB: an item is at most 400 KB, counting attribute names and values in UTF-8.
DYNAMODB_ITEM_BYTES = 400 * KIB
#: DynamoDB: a sort key value (of the table or of an index) is at most 1,024 bytes.
DYNAMODB_SORT_KEY_BYTES = 1024
#: DynamoDB: numbers keep at most 38 significant digits (boto3 refuses more before sending).
DYNAMODB_NUMBER_DIGITS = 38
#: SQS: a message's ``DelaySeconds`` is at most 900 (15 minutes; a larger value is refused), so a
#: longer wait (a scheduled post, a push after quiet hours) is made in hops of at most this.
SQS_MAX_DELAY_S = 900

# --- Herald's bounds on what an editor uploads ------------------------------------------------

#: One post: a long article is ~20 KiB of text; the stored item (text, excerpt, links, lists)
#: must stay well within DynamoDB's 400 KB.
POST_BYTES = 64 * KIB
#: A community page export: thousands of posts, all enriched within one function timeout.
EXPORT_BYTES = 5 * MIB
#: Posts in one export: written and counted within one invocation.
EXPORT_POSTS = 5000
#: Nesting of JSON and YAML: no post field is deeper than a list of strings.
NESTING = 8
#: Front matter of a Markdown post: a handful of short fields.
FRONT_MATTER_BYTES = 8 * KIB
#: The prefix and suffix of Herald's copies of a rejected upload (``rejected/<key>.error.json``).
REJECTED_PREFIX = "rejected/"
REJECTED_REPORT_SUFFIX = ".error.json"
#: The longest time stamp Herald writes in front of a key (``9999-12-31T23:59:59.999999+00:00``).
TIMESTAMP_BYTES = 32
#: An upload key, in UTF-8: short enough that every key Herald derives from it keeps it whole,
#: the S3 copy ``rejected/<key>.error.json`` (S3's 1,024 bytes) and the outcome listing's sort key
#: ``<processed_at>#<key>`` (DynamoDB's 1,024 bytes). 991 bytes.
KEY_BYTES = min(
    S3_KEY_BYTES - len(REJECTED_PREFIX) - len(REJECTED_REPORT_SUFFIX),
    DYNAMODB_SORT_KEY_BYTES - TIMESTAMP_BYTES - 1,
)
#: Links kept for one post: each is stored as a map of three attributes; a post of 64 KiB could
#: otherwise hold 13,000 of them and outgrow DynamoDB's item.
LINKS = 1000
#: A community's member count: more than the people on Earth is not a count, and it keeps far
#: below DynamoDB's 38 digits.
MEMBERS = 10_000_000_000
#: A community's name and description in an export's profile block.
COMMUNITY_NAME_CHARS = 200
COMMUNITY_DESCRIPTION_CHARS = 2000
#: The dates a post may carry (``publish_at``): Unix time, feeds and browsers all handle these,
#: and converting any of them to UTC cannot overflow Python's datetime (years 1 to 9999).
EARLIEST_DATE = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_DATE = datetime(2100, 1, 1, tzinfo=UTC)
#: Room left in a stored post's item for the attributes the store adds (keys, index keys, type).
STORED_KEYS_ALLOWANCE = 4 * KIB
#: A stored post: DynamoDB's item limit, less the store's own attributes.
STORED_POST_BYTES = DYNAMODB_ITEM_BYTES - STORED_KEYS_ALLOWANCE
#: Problems recorded in one outcome: enough to fix a file; the rest are counted, so an export with
#: thousands of bad posts still has an outcome that fits its item.
RECORDED_PROBLEMS = 20
#: Characters of an editor's text quoted back in one message.
QUOTED_CHARS = 80
#: Characters of one recorded problem's place and message (whatever built them).
PROBLEM_LOC_CHARS = 200
PROBLEM_MESSAGE_CHARS = 1000


class IngestLimits(BaseModel):
    """The bounds an ingest function applies; the sizes can be set from its environment."""

    model_config = ConfigDict(frozen=True)

    #: Capped so a post of the largest allowed size still fits DynamoDB's item with its derivations.
    max_post_bytes: int = Field(default=POST_BYTES, gt=0, le=128 * KIB)
    max_export_bytes: int = Field(default=EXPORT_BYTES, gt=0, le=64 * MIB)
    max_export_posts: int = Field(default=EXPORT_POSTS, gt=0)
    max_nesting: int = Field(default=NESTING, gt=0)
    max_front_matter_bytes: int = Field(default=FRONT_MATTER_BYTES, gt=0)


# --- checks -----------------------------------------------------------------------------------


def check_size(size: int, limit: int, what: str) -> None:
    """An object of ``size`` bytes fits ``limit``; else the problem names both."""
    if size > limit:
        raise InvalidUpload.one("size", f"the {what} is {size:,} bytes; the limit is {limit:,} bytes")


def check_key(key: str) -> None:
    """An upload key short enough for everything Herald derives from it (see :data:`KEY_BYTES`)."""
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > KEY_BYTES:
        raise InvalidUpload.one(
            "key",
            f"the key is {size:,} bytes of UTF-8; the limit is {KEY_BYTES:,} bytes "
            "(Herald's copies and records of an upload add to its key)",
        )


def check_member_count(digits: str, loc: str) -> None:
    """A member count written as ``digits`` (commas removed, before the unit) is not absurdly long,
    checked before any conversion so a line of a million digits costs nothing."""
    whole = digits.split(".", 1)[0].lstrip("0")
    if len(whole) > len(str(MEMBERS)):
        raise InvalidUpload.one(
            loc, f"a member count of {len(whole):,} digits; the limit is {MEMBERS:,} members"
        )


def bounded_member_count(count: int, loc: str) -> int:
    if count > MEMBERS:
        raise InvalidUpload.one(loc, f"{count:,} members is more than the limit of {MEMBERS:,}")
    return count


def bounded_datetime(value: datetime) -> datetime:
    """A date in UTC within [EARLIEST_DATE, LATEST_DATE); a date without a zone is taken as UTC.

    Raises ValueError (pydantic names the field) for a date outside, including the ones whose
    conversion to UTC overflows (year 1 at +23:59, year 9999 at -23:59).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    window = f"dates must fall between {EARLIEST_DATE:%Y-%m-%d} and {LATEST_DATE:%Y-%m-%d} (UTC)"
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range; {window}") from None
    if not EARLIEST_DATE <= utc < LATEST_DATE:
        raise ValueError(f"{value.isoformat()} is out of range; {window}")
    return utc


def check_stored_post(values: Mapping[str, Any], loc: str = "text") -> None:
    """A post as it will be stored (its JSON form): within the links bound and DynamoDB's item."""
    links = values.get("links") or ()
    if len(links) > LINKS:
        raise InvalidUpload.one(loc, f"the post has {len(links):,} links; the limit is {LINKS:,}")
    size = dynamodb_item_bytes(values)
    if size > STORED_POST_BYTES:
        raise InvalidUpload.one(
            loc,
            f"the post with what Herald derives from it is {size:,} bytes; a stored post is at most "
            f"{STORED_POST_BYTES:,} bytes (DynamoDB's item limit)",
        )


def dynamodb_item_bytes(values: Mapping[str, Any]) -> int:
    """The size DynamoDB counts for an item of these plain values: every attribute's name and
    value in UTF-8, numbers by their digits, plus the overhead of lists and maps
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
    ``None`` values are not stored."""
    return sum(_utf8(name) + _value_bytes(value) for name, value in values.items() if value is not None)


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _value_bytes(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, str):
        return _utf8(value)
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, int | float | Decimal):
        digits = len(Decimal(value).normalize().as_tuple().digits) if value else 1
        return (digits + 1) // 2 + 1
    if isinstance(value, Mapping):
        return 3 + sum(1 + _utf8(str(k)) + _value_bytes(v) for k, v in value.items() if v is not None)
    if isinstance(value, Sequence):
        return 3 + sum(1 + _value_bytes(v) for v in value)
    return _utf8(str(value))


# --- keys Herald derives from an upload key ---------------------------------------------------


def clip_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that is at most ``max_bytes`` bytes of UTF-8."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore")


def sort_key(prefix: str, key: str) -> str:
    """``<prefix>#<key>`` within DynamoDB's sort key limit; a key too long for it is clipped
    (the outcome's own partition key keeps it whole), so even the record of a key that breaks
    :data:`KEY_BYTES` can be stored."""
    head = f"{prefix}#"
    return head + clip_utf8(key, DYNAMODB_SORT_KEY_BYTES - _utf8(head))


def rejected_names(key: str) -> tuple[str, str]:
    """Where the copy of a rejected upload and its report go: ``rejected/<key>`` and
    ``rejected/<key>.error.json``; a key too long for that (S3's 1,024 bytes) is shortened and
    made unique with a digest of the whole key."""
    copy = f"{REJECTED_PREFIX}{key}"
    if _utf8(copy) + len(REJECTED_REPORT_SUFFIX) <= S3_KEY_BYTES:
        return copy, copy + REJECTED_REPORT_SUFFIX
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    tail = f"~{digest}"
    room = S3_KEY_BYTES - len(REJECTED_PREFIX) - len(tail) - len(REJECTED_REPORT_SUFFIX)
    copy = f"{REJECTED_PREFIX}{clip_utf8(key, room)}{tail}"
    return copy, copy + REJECTED_REPORT_SUFFIX


# --- what an outcome records ------------------------------------------------------------------


def quoted(text: str, max_chars: int = QUOTED_CHARS) -> str:
    """An editor's text quoted in a message: escaped (``repr``) and cut to ``max_chars``."""
    if len(text) <= max_chars:
        return repr(text)
    return f"{text[:max_chars]!r}… ({len(text):,} characters)"


def recordable(problems: Sequence[Problem]) -> list[Problem]:
    """At most :data:`RECORDED_PROBLEMS` problems, the rest counted in a last one, each cut to
    :data:`PROBLEM_LOC_CHARS` and :data:`PROBLEM_MESSAGE_CHARS`: the outcome always fits its item."""
    kept = [_cut(p) for p in problems[:RECORDED_PROBLEMS]]
    if len(problems) <= RECORDED_PROBLEMS:
        return kept
    rest = len(problems) - (RECORDED_PROBLEMS - 1)
    return [*kept[:-1], Problem("more", f"and {rest:,} more problems of the same kinds")]


def _cut(problem: Problem) -> Problem:
    if len(problem.loc) <= PROBLEM_LOC_CHARS and len(problem.message) <= PROBLEM_MESSAGE_CHARS:
        return problem
    loc, message = problem.loc, problem.message
    if len(loc) > PROBLEM_LOC_CHARS:
        loc = loc[: PROBLEM_LOC_CHARS - 1] + "…"
    if len(message) > PROBLEM_MESSAGE_CHARS:
        message = message[: PROBLEM_MESSAGE_CHARS - 1] + "…"
    return Problem(loc, message)
