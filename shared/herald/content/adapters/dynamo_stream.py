"""The content table's DynamoDB stream records as typed changes (:mod:`herald.content.changes`).

This is the one place a stream image is read. A record (Lambda's DynamoDB event record, as a
mapping or as Powertools' ``DynamoDBRecord``) is told apart by its keys:

================================  =========  ==========================================
keys                              event      change
================================  =========  ==========================================
``C#<community>`` / ``POST#<id>``  INSERT     :class:`PostAdded` (the new image)
                                  MODIFY     :class:`PostChanged` (old and new images)
                                  REMOVE     :class:`PostRemoved` (the old image)
``C#<community>`` / ``PROFILE``    any        :class:`CommunityProfileChanged`
anything else                     any        None: outcomes, claims, waiting duplicates,
                                             a key's ``PUB#``/``WAIT#``/``IMPORT`` items
================================  =========  ==========================================

The publisher's FilterCriteria let only the first two kinds through (on AWS and in the local
cloud); the others are ignored here too, explicitly, for any caller without them.

Images are decoded with Powertools' deserializer: numbers stay ``Decimal`` (exact, to DynamoDB's
38 digits) until the model converts them, so an integer of any size stays exact and a fraction in
an integer field makes the version :class:`Unreadable` instead of being rounded. An image the
record should carry but does not (a stream without old images) is :class:`Unreadable` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
    StreamRecord,
)
from pydantic import TypeAdapter

from herald.content.changes import (
    CommunityProfileChanged,
    ContentChange,
    PostAdded,
    PostChanged,
    PostRemoved,
    PostVersion,
    ProfileVersion,
    Unreadable,
)
from herald.content.models import Community, Post

#: A number of an image as an exact integer (a fraction is refused, never rounded).
_integer = TypeAdapter(int).validate_python

#: What a failed decoding or validation of an image raises (a bad number, an unknown type, a model).
_UNREADABLE = (ArithmeticError, TypeError, ValueError, KeyError)


def content_changes(records: Iterable[Mapping[str, Any] | DynamoDBRecord]) -> list[ContentChange]:
    """The changes of a batch of stream records, in the records' order; records of items that are
    neither a post nor a profile are left out."""
    return [change for record in records if (change := content_change(record)) is not None]


def content_change(record: Mapping[str, Any] | DynamoDBRecord) -> ContentChange | None:
    """One stream record as the change it is; None for a record of any other item of the table."""
    wrapped = record if isinstance(record, DynamoDBRecord) else DynamoDBRecord(dict(record))
    stream = wrapped.dynamodb
    if stream is None:
        return None
    keys = stream.get("Keys") or {}
    pk, sk = _key_string(keys, "pk"), _key_string(keys, "sk")
    if not pk.startswith("C#"):
        return None
    try:
        event = wrapped.event_name
    except KeyError:
        return None  # not INSERT, MODIFY or REMOVE
    if event is None:
        return None
    community = pk.removeprefix("C#")
    common: dict[str, Any] = {
        "event_id": str(wrapped.event_id or ""),
        "community": community,
        "written_at": _written_at(stream),
    }
    if sk == "PROFILE":
        old = _profile(community, stream, "OldImage") if event != DynamoDBRecordEventName.INSERT else None
        new = _profile(community, stream, "NewImage") if event != DynamoDBRecordEventName.REMOVE else None
        return CommunityProfileChanged(old=old, new=new, **common)
    if not sk.startswith("POST#"):
        return None
    post_id = sk.removeprefix("POST#")
    if event == DynamoDBRecordEventName.INSERT:
        return PostAdded(post_id=post_id, post=_post(stream, "NewImage"), **common)
    if event == DynamoDBRecordEventName.REMOVE:
        return PostRemoved(post_id=post_id, old=_post(stream, "OldImage"), **common)
    return PostChanged(
        post_id=post_id,
        old=_post(stream, "OldImage"),
        new=_post(stream, "NewImage"),
        releases=_releases(stream),
        **common,
    )


# ----------------------------------------------------------------------------- images


def _key_string(keys: Mapping[str, Any], name: str) -> str:
    value = keys.get(name)
    inner = value.get("S") if isinstance(value, Mapping) else None
    return inner if isinstance(inner, str) else ""


def _written_at(stream: StreamRecord) -> float | None:
    created = stream.get("ApproximateCreationDateTime")
    return float(created) if isinstance(created, int | float) and not isinstance(created, bool) else None


def _values(stream: StreamRecord, which: str) -> dict[str, Any] | Unreadable:
    """An image's attributes as Python values (numbers as Decimal), or why it cannot be read."""
    if not stream.get(which):
        return Unreadable(f"the record carries no {which}")
    try:
        return stream.new_image if which == "NewImage" else stream.old_image
    except _UNREADABLE as exc:
        return Unreadable(f"{which} cannot be decoded: {type(exc).__name__}: {exc}")


def _post(stream: StreamRecord, which: str) -> PostVersion:
    values = _values(stream, which)
    if isinstance(values, Unreadable):
        return values
    try:
        return Post.model_validate(values)
    except _UNREADABLE as exc:
        return Unreadable(f"{which} is not a post: {_first_line(exc)}")


def _profile(community: str, stream: StreamRecord, which: str) -> ProfileVersion:
    """A profile item as :class:`Community`, read as the content store reads it."""
    values = _values(stream, which)
    if isinstance(values, Unreadable):
        return values
    try:
        # Counters as exact integers before they are added (Decimal sums round to 28 digits).
        baseline = _integer(values.get("members_baseline", 0))
        ident = values.get("id") or community
        return Community.model_validate(
            {
                "id": ident,
                "name": values.get("name") or ident,
                "description": values.get("description"),
                "verified": bool(values.get("verified", False)),
                "members": baseline + _integer(values.get("member_delta", 0)),
                "members_baseline": baseline,
                "posts": values.get("post_count", 0),
                "created_year": values.get("created_year"),
                "updated_at": values.get("profile_updated_at"),
                "settings": values.get("settings"),
            }
        )
    except _UNREADABLE as exc:
        return Unreadable(f"{which} is not a community profile: {_first_line(exc)}")


def _releases(stream: StreamRecord) -> bool:
    """Whether the change set the post's release marker (``released_at`` new or changed)."""
    new, old = _values(stream, "NewImage"), _values(stream, "OldImage")
    marker = new.get("released_at") if isinstance(new, dict) else None
    return bool(marker) and marker != (old.get("released_at") if isinstance(old, dict) else None)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()[:2]
    return f"{type(exc).__name__}: {' / '.join(line.strip() for line in lines)}"
