"""The content table's stream records as typed changes: every kind of record, as Lambda delivers it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from herald.content.adapters.dynamo_stream import content_change, content_changes
from herald.content.changes import (
    CommunityProfileChanged,
    PostAdded,
    PostChanged,
    PostRemoved,
    Unreadable,
)
from herald.content.models import Community, CommunitySettings, Post, PostSource
from herald.ingest.adapters.dynamo_content import post_item

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/Content/stream/2025-06-02T12:00:00.000"
WRITTEN = 1748865600
BIG = 12345678901234567890123456789012345678  # 38 digits: DynamoDB's most, far beyond a float's 15-17


def make_post(**changes: Any) -> Post:
    values: dict[str, Any] = {
        "id": "a1b2c3",
        "community": "harbour-line",
        "key": "posts/harbour-line/clinic.json",
        "title": "Clinic hours",
        "text": "The clinic opens at 8:00. #health",
        "excerpt": "The clinic opens at 8:00. #health",
        "hashtags": ["health"],
        "topics": ["health"],
        "word_count": 6,
        "reading_time_s": 2,
        "content_hash": "f" * 64,
        "created_at": datetime(2025, 6, 2, 12, tzinfo=UTC),
        "updated_at": datetime(2025, 6, 2, 12, tzinfo=UTC),
        "correlation_id": "s3-REQ123",
    }
    values.update(changes)
    return Post.model_validate(values)


def record(
    event: str,
    keys: dict[str, Any],
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    event_id: str = "e-1",
) -> dict[str, Any]:
    """One record of Lambda's DynamoDB stream event (NEW_AND_OLD_IMAGES), as the event source sends it."""
    stream: dict[str, Any] = {
        "ApproximateCreationDateTime": WRITTEN,
        "Keys": keys,
        "SequenceNumber": "4421584500000000017450439091",
        "SizeBytes": 1024,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        stream["NewImage"] = new
    if old is not None:
        stream["OldImage"] = old
    return {
        "eventID": event_id,
        "eventName": event,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": stream,
        "eventSourceARN": ARN,
    }


def post_keys(post_id: str = "a1b2c3") -> dict[str, Any]:
    return {"pk": {"S": "C#harbour-line"}, "sk": {"S": f"POST#{post_id}"}}


PROFILE_KEYS = {"pk": {"S": "C#harbour-line"}, "sk": {"S": "PROFILE"}}


def profile_image(**attrs: Any) -> dict[str, Any]:
    image: dict[str, Any] = {
        **PROFILE_KEYS,
        "id": {"S": "harbour-line"},
        "gsi1pk": {"S": "COMMUNITIES"},
        "gsi1sk": {"S": "harbour-line"},
        "name": {"S": "Harbour Line"},
        "description": {"S": "News for the harbour"},
        "verified": {"BOOL": True},
        "members_baseline": {"N": "1200"},
        "post_count": {"N": "3"},
        "created_year": {"N": "2019"},
        "profile_updated_at": {"S": "2025-06-02T12:00:00+00:00"},
    }
    image.update(attrs)
    return image


# ----------------------------------------------------------------------------- posts


def test_an_inserted_post_is_a_post_added_with_the_stored_post() -> None:
    post = make_post()
    change = content_change(record("INSERT", post_keys(), new=post_item(post)))
    assert change == PostAdded(
        event_id="e-1", community="harbour-line", post_id="a1b2c3", post=post, written_at=float(WRITTEN)
    )
    assert change.before is None and change.after == post


def test_a_modified_post_carries_both_versions() -> None:
    old, new = make_post(), make_post(title="Clinic hours, new", version=2)
    change = content_change(record("MODIFY", post_keys(), new=post_item(new), old=post_item(old)))
    assert isinstance(change, PostChanged)
    assert (change.old, change.new, change.releases) == (old, new, False)
    assert (change.before, change.after) == (old, new)


def test_setting_the_release_marker_is_a_release_and_only_once() -> None:
    at = "2025-06-02T15:00:00+00:00"
    post = make_post(publish_at=datetime(2025, 6, 2, 15, tzinfo=UTC))
    waiting = post_item(post)
    released = {**waiting, "released_at": {"S": at}}
    change = content_change(record("MODIFY", post_keys(), new=released, old=waiting))
    assert isinstance(change, PostChanged) and change.releases
    assert change.new == post  # the marker is no field of the post
    again = content_change(record("MODIFY", post_keys(), new=released, old=released))
    assert isinstance(again, PostChanged) and not again.releases
    edited = content_change(record("MODIFY", post_keys(), new=waiting, old=released))  # an edit drops it
    assert isinstance(edited, PostChanged) and not edited.releases


def test_a_removed_post_has_only_its_old_image() -> None:
    post = make_post()
    change = content_change(record("REMOVE", post_keys(), old=post_item(post)))
    assert change == PostRemoved(
        event_id="e-1", community="harbour-line", post_id="a1b2c3", old=post, written_at=float(WRITTEN)
    )
    assert change.before == post and change.after is None


def test_a_version_that_is_not_a_post_is_unreadable_not_dropped() -> None:
    broken = {**post_keys(), "id": {"S": "a1b2c3"}, "type": {"S": "post"}}  # no text, no dates
    change = content_change(record("MODIFY", post_keys(), new=post_item(make_post()), old=broken))
    assert isinstance(change, PostChanged)
    assert isinstance(change.old, Unreadable) and "not a post" in change.old.reason
    assert change.new == make_post()
    removed = content_change(record("REMOVE", post_keys(), old=broken))
    assert isinstance(removed, PostRemoved) and isinstance(removed.old, Unreadable)


def test_an_image_the_record_does_not_hold_is_unreadable() -> None:
    change = content_change(record("MODIFY", post_keys(), new=post_item(make_post())))
    assert isinstance(change, PostChanged) and change.old == Unreadable("the record carries no OldImage")
    keys_only = content_change(record("REMOVE", post_keys()))
    assert isinstance(keys_only, PostRemoved) and isinstance(keys_only.old, Unreadable)


def test_an_export_post_is_a_post_of_that_source() -> None:
    post = make_post(source=PostSource.EXPORT, position=7, notify=False)
    change = content_change(record("INSERT", post_keys(), new=post_item(post)))
    assert isinstance(change, PostAdded) and change.post == post


# ----------------------------------------------------------------------------- numbers


def test_big_integers_stay_exact() -> None:
    post = make_post(version=BIG, word_count=2**63 + 1, position=9007199254740993)  # 2**53 + 1
    change = content_change(record("INSERT", post_keys(), new=post_item(post)))
    assert isinstance(change, PostAdded) and isinstance(change.post, Post)
    assert change.post.version == BIG
    assert change.post.word_count == 2**63 + 1
    assert change.post.position == 9007199254740993
    profile = profile_image(members_baseline={"N": str(BIG)}, post_count={"N": "98765432109876543210"})
    community = content_change(record("INSERT", PROFILE_KEYS, new=profile))
    assert isinstance(community, CommunityProfileChanged) and isinstance(community.new, Community)
    assert community.new.members_baseline == BIG and community.new.members == BIG
    assert community.new.posts == 98765432109876543210


@pytest.mark.parametrize(("number", "value"), [("3", 3), ("3.0", 3), ("3E0", 3), ("30E-1", 3), ("-0", 0)])
def test_integral_decimals_are_the_integer(number: str, value: int) -> None:
    image = {**post_item(make_post()), "word_count": {"N": number}}
    change = content_change(record("INSERT", post_keys(), new=image))
    assert isinstance(change, PostAdded) and isinstance(change.post, Post)
    assert change.post.word_count == value and type(change.post.word_count) is int


@pytest.mark.parametrize("number", ["2.5", "0.1", "12345678901234567890123456789012345678E-1"])
def test_a_fraction_in_an_integer_field_is_never_rounded(number: str) -> None:
    image = {**post_item(make_post()), "word_count": {"N": number}}
    change = content_change(record("INSERT", post_keys(), new=image))
    assert isinstance(change, PostAdded) and isinstance(change.post, Unreadable)
    assert "word_count" in change.post.reason


def test_a_profile_with_a_fractional_counter_is_unreadable() -> None:
    change = content_change(
        record("MODIFY", PROFILE_KEYS, new=profile_image(post_count={"N": "2.5"}), old=profile_image())
    )
    assert isinstance(change, CommunityProfileChanged)
    assert isinstance(change.new, Unreadable) and isinstance(change.old, Community)


# ----------------------------------------------------------------------------- profiles


def test_profile_records_are_profile_changes() -> None:
    added = content_change(record("INSERT", PROFILE_KEYS, new=profile_image()))
    assert isinstance(added, CommunityProfileChanged) and added.old is None
    assert added.new == Community(
        id="harbour-line",
        name="Harbour Line",
        description="News for the harbour",
        verified=True,
        members=1200,
        members_baseline=1200,
        posts=3,
        created_year=2019,
        updated_at=datetime(2025, 6, 2, 12, tzinfo=UTC),
    )
    counted = content_change(
        record("MODIFY", PROFILE_KEYS, new=profile_image(post_count={"N": "4"}), old=profile_image())
    )
    assert isinstance(counted, CommunityProfileChanged)
    assert isinstance(counted.old, Community) and isinstance(counted.new, Community)
    assert (counted.old.posts, counted.new.posts) == (3, 4)
    gone = content_change(record("REMOVE", PROFILE_KEYS, old=profile_image()))
    assert isinstance(gone, CommunityProfileChanged) and gone.new is None
    assert isinstance(gone.old, Community) and gone.old.name == "Harbour Line"


def test_a_profile_carries_the_communitys_settings() -> None:
    """The settings ingest stores on the profile (``communities/<c>.json``) are in both images, so
    the publisher sees a default language come or change."""
    settings = {
        "M": {
            "default_language": {"S": "ar"},
            "machine_translations": {"L": [{"S": "fr"}, {"S": "pt-br"}]},
            "push_machine_translations": {"BOOL": True},
        }
    }
    change = content_change(
        record("MODIFY", PROFILE_KEYS, new=profile_image(settings=settings), old=profile_image())
    )
    assert isinstance(change, CommunityProfileChanged)
    assert isinstance(change.old, Community) and change.old.settings is None
    assert isinstance(change.new, Community)
    assert change.new.settings == CommunitySettings(
        default_language="ar", machine_translations=["fr", "pt-br"], push_machine_translations=True
    )
    wrong = content_change(
        record("MODIFY", PROFILE_KEYS, new=profile_image(settings={"M": {"colour": {"S": "red"}}}))
    )
    assert isinstance(wrong, CommunityProfileChanged) and isinstance(wrong.new, Unreadable)
    assert "settings" in wrong.new.reason


def test_a_profile_made_by_a_first_post_is_named_after_its_community() -> None:
    first = {
        **PROFILE_KEYS,
        "id": {"S": "harbour-line"},
        "name": {"S": "harbour-line"},
        "members_baseline": {"N": "0"},
        "post_count": {"N": "1"},
    }
    change = content_change(record("INSERT", PROFILE_KEYS, new=first))
    assert isinstance(change, CommunityProfileChanged) and isinstance(change.new, Community)
    assert (change.new.name, change.new.description, change.new.posts) == ("harbour-line", None, 1)


# ----------------------------------------------------------------------------- other records


OTHER_ITEMS = [
    pytest.param(
        {"pk": {"S": "UPLOAD#posts/harbour-line/clinic.json"}, "sk": {"S": "OUTCOME"}},
        {
            "status": {"S": "published"},
            "community": {"S": "harbour-line"},
            "correlation_id": {"S": "s3-REQ123"},
            "post_ids": {"L": [{"S": "a1b2c3"}]},
        },
        id="outcome",
    ),
    pytest.param(
        {"pk": {"S": "C#harbour-line"}, "sk": {"S": "HASH#" + "f" * 64}},
        {"post_id": {"S": "a1b2c3"}, "waiting": {"N": "1"}},
        id="duplicate claim",
    ),
    pytest.param(
        {"pk": {"S": "C#harbour-line"}, "sk": {"S": f"DUP#{'f' * 64}#d4e5f6"}},
        {"post": {"M": {"id": {"S": "d4e5f6"}}}, "key": {"S": "posts/harbour-line/copy.json"}},
        id="waiting duplicate",
    ),
    pytest.param(
        {"pk": {"S": "KEY#" + "0" * 64}, "sk": {"S": "PUB#a1b2c3"}},
        {"community": {"S": "harbour-line"}, "since": {"S": "0" * 32}},
        id="published by a key",
    ),
    pytest.param({"pk": {"S": "KEY#" + "0" * 64}, "sk": {"S": "WAIT#d4e5f6"}}, {}, id="held back by a key"),
    pytest.param({"pk": {"S": "KEY#" + "0" * 64}, "sk": {"S": "IMPORT"}}, {"runs": {"N": "1"}}, id="import"),
    pytest.param({"pk": {"S": "C#harbour-line"}, "sk": {"S": "COUNTER#3"}}, {"n": {"N": "5"}}, id="counter"),
    pytest.param({"pk": {"S": "MEMBER#x"}, "sk": {"S": "POST#a1b2c3"}}, {}, id="not a community's"),
    pytest.param({"pk": {"N": "1"}, "sk": {"S": "PROFILE"}}, {}, id="a number key"),
]


@pytest.mark.parametrize(("keys", "attrs"), OTHER_ITEMS)
@pytest.mark.parametrize("event", ["INSERT", "MODIFY", "REMOVE"])
def test_records_of_other_items_are_no_change(
    event: str, keys: dict[str, Any], attrs: dict[str, Any]
) -> None:
    image = {**keys, **attrs}
    new = None if event == "REMOVE" else image
    old = None if event == "INSERT" else image
    assert content_change(record(event, keys, new=new, old=old)) is None


def test_records_that_are_no_stream_change_are_ignored() -> None:
    post = post_item(make_post())
    assert content_change(record("TTL_EXPIRED", post_keys(), new=post)) is None
    assert content_change({"eventID": "x", "eventName": "INSERT"}) is None
    without_name = record("INSERT", post_keys(), new=post)
    del without_name["eventName"]
    assert content_change(without_name) is None


def test_a_batch_keeps_its_order_and_leaves_out_the_rest() -> None:
    post = make_post()
    edited = make_post(title="New title", version=2)
    outcome_keys = {"pk": {"S": "UPLOAD#posts/harbour-line/clinic.json"}, "sk": {"S": "OUTCOME"}}
    records = [
        record("INSERT", post_keys(), new=post_item(post), event_id="1"),
        record("INSERT", outcome_keys, new={**outcome_keys, "status": {"S": "published"}}, event_id="2"),
        record(
            "MODIFY",
            PROFILE_KEYS,
            new=profile_image(post_count={"N": "4"}),
            old=profile_image(),
            event_id="3",
        ),
        record("MODIFY", post_keys(), new=post_item(edited), old=post_item(post), event_id="4"),
        record("REMOVE", post_keys(), old=post_item(edited), event_id="5"),
    ]
    changes = content_changes(records)
    assert [(type(c).__name__, c.event_id) for c in changes] == [
        ("PostAdded", "1"),
        ("CommunityProfileChanged", "3"),
        ("PostChanged", "4"),
        ("PostRemoved", "5"),
    ]
    # The same record twice (as the stream may deliver it) is the same change twice.
    assert content_changes([records[0], records[0]]) == [changes[0], changes[0]]


def test_a_powertools_record_and_its_event_json_are_the_same_change() -> None:
    raw = record("MODIFY", post_keys(), new=post_item(make_post(version=2)), old=post_item(make_post()))
    untouched = copy.deepcopy(raw)
    assert content_change(DynamoDBRecord(raw)) == content_change(raw)
    assert raw == untouched  # the record is read, never changed


def test_binary_attributes_as_lambda_sends_them_do_not_stop_a_post() -> None:
    image = {**post_item(make_post()), "thumbnail": {"B": "AQID"}, "flags": {"BS": ["AQ==", "Ag=="]}}
    change = content_change(record("INSERT", post_keys(), new=image))
    assert isinstance(change, PostAdded) and change.post == make_post()


def test_a_creation_time_in_fractions_of_a_second_is_kept() -> None:
    raw = record("INSERT", post_keys(), new=post_item(make_post()))
    raw["dynamodb"]["ApproximateCreationDateTime"] = 1748865600.25
    change = content_change(raw)
    assert change is not None and change.written_at == 1748865600.25
    del raw["dynamodb"]["ApproximateCreationDateTime"]
    later = content_change(raw)
    assert later is not None and later.written_at is None
