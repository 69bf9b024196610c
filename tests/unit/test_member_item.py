"""The member item: compact (under 1 KB with a 600-character endpoint and typical preferences in a
community of the longest id, so a join costs 3 write units), read back exactly as the member it was
written from (endpoints up to 600 characters, devices, preferences up to a join's bounds), and items
of the old layout (written before it) read as the same member.

Sizes are DynamoDB's, counted by the bench's counter (:func:`herald_tools.bench.fanout_scale.item_bytes`).
"""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.content.ids import MAX_COMMUNITY_ID_CHARS
from herald.core.aws import to_item
from herald.members.adapters.dynamo_members import decode_member, member_item, member_shard, members_partition
from herald.members.counting import record_changes
from herald.members.rules import (
    MAX_LANGUAGES,
    Device,
    Member,
    Preferences,
    QuietHours,
    WebPushSubscription,
    iso_639_1,
    subscription_id,
    topic_ids,
)
from herald_tools.bench.fanout_scale import item_bytes

B64URL = string.ascii_letters + string.digits + "-_"
#: Push services' endpoint prefixes (FCM, Mozilla autopush v2, Windows WNS, Apple).
PREFIXES = (
    "https://fcm.googleapis.com/fcm/send/",
    "https://updates.push.services.mozilla.com/wpush/v2/",
    "https://wns2-par02p.notify.windows.com/w/?token=",
    "https://web.push.apple.com/",
)
P256DH = base64.urlsafe_b64encode(b"\x04" + bytes(range(64))).rstrip(b"=").decode()
AUTH = base64.urlsafe_b64encode(bytes(range(16))).rstrip(b"=").decode()
TOKEN_HASH = "ab" * 32
JOINED = datetime(2026, 12, 2, 17, 15, 37, 123456, tzinfo=UTC)
#: An FCM registration token as apps get them (163 characters) and an APNs device token (64 hex).
FCM_TOKEN = "fv3jabydF5c:APA91b" + "H" * 145
APNS_TOKEN = "0f" * 32
ENDPOINT_ARN = (
    "arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/herald-fcm/2c6a9f0e-95c1-3a5b-9d1e-0c8a7b6f5e4d"
)


def endpoint(prefix: str, length: int, fill: str = "gAAAAABn") -> str:
    body = (fill * length)[: length - len(prefix)]
    return prefix + body


def member(
    *,
    community: str = "ukraine-help",
    endpoint_url: str | None = None,
    device: Device | None = None,
    preferences: Preferences | None = None,
    updated: datetime = JOINED,
    subscriptions: list[str] | None = None,
    p256dh: str = P256DH,
    auth: str = AUTH,
) -> Member:
    web = (
        WebPushSubscription(endpoint=endpoint_url, keys={"p256dh": p256dh, "auth": auth})  # type: ignore[arg-type]
        if endpoint_url
        else None
    )
    subs = subscriptions
    if subs is None:
        subs = [subscription_id(web_push=web)] if web else []
        subs += [subscription_id(device=device)] if device else []
    return Member(
        community=community,
        member_id="0123456789abcdef0123456789abcdef",
        shard=31,
        token_hash=TOKEN_HASH,
        subscriptions=subs,
        web_push=web,
        device=device,
        endpoint_arn=ENDPOINT_ARN if device else None,
        preferences=preferences or Preferences(),
        joined_at=JOINED,
        updated_at=updated,
    )


TYPICAL = Preferences(
    languages=["uk", "en", "pl"],
    topics=["health", "displacement", "education", "safety-scams", "registration-documents"],
    quiet_hours=QuietHours(start="22:00", end="07:00", timezone="Europe/Kyiv"),
)


def old_item(m: Member) -> dict[str, Any]:
    """A member item as Herald wrote them before the short layout."""
    values = m.model_dump(mode="json", exclude_none=True)
    values.update(
        pk=f"M#{m.community}#{m.member_id}",
        sk="MEMBER",
        type="member",
        gsi1pk=members_partition(m.community, m.shard),
        gsi1sk=m.member_id,
    )
    return to_item(values)


# ----------------------------------------------------------------------------- size


def test_a_600_character_endpoint_and_typical_preferences_fit_in_1_kb() -> None:
    for prefix in PREFIXES:
        m = member(
            community="c" * MAX_COMMUNITY_ID_CHARS, endpoint_url=endpoint(prefix, 600), preferences=TYPICAL
        )
        assert item_bytes(member_item(m)) < 1024, prefix
        assert item_bytes(old_item(m)) > 1024  # what it was: 2 write units a copy


def test_a_chrome_subscription_and_a_device_fit_in_1_kb() -> None:
    chrome = endpoint(PREFIXES[0], 188, "fv3jabydF5c:APA91b" + "x" * 200)
    m = member(
        community="c" * MAX_COMMUNITY_ID_CHARS,
        endpoint_url=chrome,
        device=Device(platform="fcm", token=FCM_TOKEN),
        preferences=TYPICAL,
    )
    assert item_bytes(member_item(m)) < 1024 < item_bytes(old_item(m))


def test_a_chrome_member_is_a_fraction_of_what_it_was() -> None:
    m = member(endpoint_url=endpoint(PREFIXES[0], 188, "fv3jabydF5c:APA91b" + "x" * 200))
    assert item_bytes(member_item(m)) < 0.75 * item_bytes(old_item(m))


LANGUAGES = sorted(iso_639_1())
TOPICS = sorted(topic_ids())


@st.composite
def members(draw: st.DrawFn) -> Member:
    """Members as joins make them: an endpoint of up to 600 characters (base64url tails of any
    length, or characters that are not base64url), keys, maybe a device, preferences up to the
    bounds a join allows (any number of languages, every topic)."""
    prefix = draw(st.sampled_from(PREFIXES))
    tail = draw(st.text(alphabet=B64URL + ":%.", min_size=1, max_size=600 - len(prefix)))
    device = draw(
        st.one_of(
            st.none(),
            st.just(Device(platform="apns", token=APNS_TOKEN)),
            st.just(Device(platform="fcm", token=FCM_TOKEN)),
        )
    )
    preferences = Preferences(
        languages=draw(st.lists(st.sampled_from(LANGUAGES), max_size=MAX_LANGUAGES, unique=True)),
        topics=draw(st.lists(st.sampled_from(TOPICS), unique=True)),
        muted=draw(st.booleans()),
        quiet_hours=draw(st.one_of(st.none(), st.just(TYPICAL.quiet_hours))),
    )
    later = draw(st.integers(min_value=0, max_value=10**12))
    return member(
        community=draw(st.text(alphabet=string.ascii_lowercase + "-", min_size=1, max_size=64)),
        endpoint_url=prefix + tail,
        device=device,
        preferences=preferences,
        updated=JOINED + timedelta(microseconds=later),
        p256dh=draw(st.sampled_from([P256DH, P256DH + "="])),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members())
def test_every_member_reads_back_as_written(m: Member) -> None:
    item = member_item(m)
    assert decode_member(item) == m
    assert member_shard(item) == (m.community, m.shard)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=150, max_value=600), st.sampled_from(PREFIXES))
def test_a_web_push_member_with_typical_preferences_is_under_1_kb(length: int, prefix: str) -> None:
    m = member(
        community="c" * MAX_COMMUNITY_ID_CHARS, endpoint_url=endpoint(prefix, length), preferences=TYPICAL
    )
    assert item_bytes(member_item(m)) < 1024


# ----------------------------------------------------------------------------- the old layout


def test_old_items_read_as_the_same_member() -> None:
    for m in (
        member(endpoint_url=endpoint(PREFIXES[1], 400)),
        member(endpoint_url=endpoint(PREFIXES[0], 190), device=Device(platform="fcm", token=FCM_TOKEN)),
        member(device=Device(platform="apns", token=APNS_TOKEN), preferences=TYPICAL),
        member(
            endpoint_url=endpoint(PREFIXES[2], 500),
            preferences=Preferences(muted=True),
            updated=JOINED + timedelta(days=3),
            subscriptions=["1" * 64, "2" * 64],
        ),
    ):
        item = old_item(m)
        assert "h" not in item and "token_hash" in item
        assert decode_member(item) == m
        assert member_shard(item) == (m.community, m.shard)


def test_a_stream_image_of_either_layout_counts_on_its_shard() -> None:
    m = member(endpoint_url=endpoint(PREFIXES[1], 400))
    for image in (member_item(m), old_item(m)):
        assert record_changes({"dynamodb": {"NewImage": image}}) == [((m.community, 31), 1)]
        assert record_changes({"dynamodb": {"OldImage": image}}) == [((m.community, 31), -1)]


# ----------------------------------------------------------------------------- values kept exactly


def test_values_the_short_forms_do_not_fit_are_kept_as_text() -> None:
    odd = member(
        endpoint_url=endpoint(PREFIXES[1], 300),
        p256dh=P256DH + "=",  # padded base64url: kept as written
        subscriptions=["F" * 64],  # not lowercase hex
        updated=JOINED.astimezone(timezone(timedelta(hours=2))),
    )
    odd = odd.model_copy(update={"token_hash": "not-hex"})
    item = member_item(odd)
    assert item["k"] == {"S": P256DH + "="}
    assert item["h"] == {"S": "not-hex"} and item["s"] == {"L": [{"S": "F" * 64}]}
    assert "u" not in item  # the same instant as joined_at
    assert decode_member(item) == odd


def test_naive_times_and_short_endpoints_read_back() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5)
    m = member(endpoint_url="https://push.example/abc").model_copy(
        update={"joined_at": naive, "updated_at": naive + timedelta(seconds=1)}
    )
    item = member_item(m)
    assert item["e"] == {"S": "https://push.example/abc"} and "t" not in item
    assert decode_member(item) == m
