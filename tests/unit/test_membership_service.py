"""MembershipService against in-memory ports (tests/fakes/members.py): joining, repeat joins,
preferences, leaving, the count, device registration failures and lost races. No AWS, no moto, no
sockets (tests/unit blocks them)."""

from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from herald.content.counts import member_count
from herald.core.errors import ConcurrentUpdate, TransientError
from herald.members.endpoints import EndpointPolicy
from herald.members.rules import (
    AlreadyJoined,
    CommunityNotFound,
    Forbidden,
    InvalidRequest,
    JoinRequest,
    Member,
    MemberGone,
    MissingToken,
    Preferences,
    PreferencesPatch,
    PushNotConfigured,
    QuietHours,
    derive_token,
    subscription_id,
    token_hash,
)
from herald.members.service import ATTEMPTS, MembershipService
from tests.fakes.members import MemoryDevices, MemoryMembers, MemorySecret, unavailable
from tests.members import p256_point

COMMUNITY = "safe-routes"
OTHER = "harbour-line"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SHARDS = 8


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class Rig:
    """The service and its fakes; ids and shards counted out, not random."""

    def __init__(self, policy: EndpointPolicy | None = None, resolve: Any = None) -> None:
        self.store = MemoryMembers()
        self.devices = MemoryDevices()
        self.secret = MemorySecret()
        self.clock = Clock()
        ids = itertools.count(1)
        shards = itertools.count(0)
        self.service = MembershipService(
            store=self.store,
            devices=self.devices,
            secret=self.secret,
            clock=self.clock,
            random_below=lambda n: next(shards) % n,
            random_bytes=lambda n: next(ids).to_bytes(n, "big"),
            shards=SHARDS,
            policy=policy or EndpointPolicy(),
            resolve=resolve,
        )

    def join(self, body: dict[str, Any], token: str | None = None, community: str = COMMUNITY) -> Any:
        return self.service.join(community, JoinRequest.model_validate(body), token=token)

    def snapshot(self) -> tuple[dict[Any, Member], dict[Any, str], dict[Any, int]]:
        return dict(self.store.stored), dict(self.store.claimed), dict(self.store.shards)


def web_push(n: int, key: int | None = None, auth: bytes | None = None) -> dict[str, Any]:
    secret = auth if auth is not None else n.to_bytes(16, "big")
    return {
        "endpoint": f"https://fcm.googleapis.com/fcm/send/member-{n}",
        "keys": {
            "p256dh": p256_point(key if key is not None else 1000 + n),
            "auth": base64.urlsafe_b64encode(secret).rstrip(b"=").decode(),
        },
    }


def device(n: int, platform: str = "fcm") -> dict[str, str]:
    return {"platform": platform, "token": f"device-token-{n:04d}-" + "x" * 20}


@pytest.fixture
def rig() -> Rig:
    return Rig()


# ----------------------------------------------------------------------------- joining


def test_a_join_creates_a_member_counted_once_with_its_token(rig: Rig) -> None:
    result = rig.join({"web_push": web_push(1), "languages": ["en", "ar"], "topics": ["health"]})
    assert result.created
    member = result.member
    assert result.token == derive_token(rig.secret.value, COMMUNITY, member.member_id)
    assert member.member_id == (1).to_bytes(16, "big").hex()
    assert member.token_hash == token_hash(result.token)  # only its hash is stored
    assert member.shard == 0
    assert member.preferences == Preferences(languages=["en", "ar"], topics=["health"])
    assert member.joined_at == member.updated_at == T0 + timedelta(seconds=1)
    assert rig.store.stored[(COMMUNITY, member.member_id)] == member
    sid = subscription_id(web_push=member.web_push)
    assert rig.store.claims(COMMUNITY, [sid]) == {sid: member.member_id}
    assert rig.store.count(COMMUNITY) == 1
    assert rig.devices.registered == []  # no device: nothing registered


def test_a_repeat_join_with_the_same_subscription_is_the_same_member(rig: Rig) -> None:
    first = rig.join({"web_push": web_push(1)})
    # The answer was lost; the browser sends the very same subscription again, keys and all.
    again = rig.join({"web_push": web_push(1)})
    assert not again.created
    assert (again.member.member_id, again.token) == (first.member.member_id, first.token)
    assert again.member.joined_at == first.member.joined_at
    assert again.member.updated_at > first.member.updated_at
    # The endpoint written with another case of its host and a trailing slash: one subscription.
    spelled = web_push(1)
    spelled["endpoint"] = spelled["endpoint"].replace("fcm.googleapis.com", "FCM.googleapis.com") + "/"
    assert rig.join({"web_push": spelled}).member.member_id == first.member.member_id
    assert rig.store.count(COMMUNITY) == 1
    assert len(rig.store.stored) == 1


def test_a_repeat_join_keeps_preferences_not_given_and_takes_those_given(rig: Rig) -> None:
    first = rig.join({"web_push": web_push(1), "languages": ["en"], "topics": ["health"]})
    kept = rig.join({"web_push": web_push(1)})
    assert kept.member.preferences == first.member.preferences
    changed = rig.join({"web_push": web_push(1), "languages": ["fr"]})
    assert changed.member.preferences == Preferences(languages=["fr"], topics=["health"])
    assert rig.store.member(COMMUNITY, first.member.member_id) == changed.member


def test_the_same_subscription_with_other_keys_needs_the_members_token(rig: Rig) -> None:
    first = rig.join({"web_push": web_push(1)})
    before = rig.snapshot()
    renewed = web_push(1, key=4242, auth=b"n" * 16)
    with pytest.raises(AlreadyJoined):
        rig.join({"web_push": renewed})  # someone who knows only the endpoint
    with pytest.raises(AlreadyJoined):
        rig.join({"web_push": renewed}, token="not-the-token")
    assert rig.snapshot() == before  # keys, preferences, claims and count untouched
    # The member itself, presenting its token, renews its keys.
    again = rig.join({"web_push": renewed}, token=first.token)
    assert not again.created and again.member.member_id == first.member.member_id
    assert again.member.web_push is not None
    assert again.member.web_push.keys.p256dh == renewed["keys"]["p256dh"]
    assert rig.store.count(COMMUNITY) == 1


def test_a_member_adds_a_device_with_its_token(rig: Rig) -> None:
    first = rig.join({"web_push": web_push(1)})
    both = rig.join({"web_push": web_push(1), "device": device(1)}, token=first.token)
    assert not both.created and both.member.member_id == first.member.member_id
    assert (
        both.member.endpoint_arn
        == rig.devices.endpoints[(rig.devices.applications["fcm"], device(1)["token"])]
    )
    device_sid = subscription_id(device=both.member.device)
    assert device_sid in both.member.subscriptions
    assert rig.store.claims(COMMUNITY, [device_sid]) == {device_sid: first.member.member_id}
    assert rig.store.count(COMMUNITY) == 1
    # Device only, again: without the token it is someone else's device; with it, the same member.
    with pytest.raises(AlreadyJoined):
        rig.join({"device": device(1)})
    assert rig.join({"device": device(1)}, token=first.token).member.member_id == first.member.member_id


def test_a_subscription_another_member_holds_is_never_taken_over(rig: Rig) -> None:
    alice = rig.join({"web_push": web_push(1)})
    bob = rig.join({"web_push": web_push(2)})
    # Bob, with his token, presents Alice's endpoint and new keys: refused, nothing changes.
    before = rig.snapshot()
    with pytest.raises(AlreadyJoined):
        rig.join({"web_push": web_push(1, key=77, auth=b"b" * 16)}, token=bob.token)
    assert rig.snapshot() == before
    assert rig.store.member(COMMUNITY, alice.member.member_id) == alice.member


def test_the_same_subscription_in_two_communities_is_two_members(rig: Rig) -> None:
    here = rig.join({"web_push": web_push(1)})
    there = rig.join({"web_push": web_push(1)}, community=OTHER)
    assert there.created and there.member.member_id != here.member.member_id
    assert there.token != here.token
    assert (rig.store.count(COMMUNITY), rig.store.count(OTHER)) == (1, 1)
    # One community's token opens nothing in the other.
    with pytest.raises(Forbidden):
        rig.service.leave(OTHER, there.member.member_id, here.token)


def test_an_id_no_upload_can_create_is_an_unknown_community(rig: Rig) -> None:
    for community in ("Safe-Routes", "safe.routes", "a" * 65, ""):
        with pytest.raises(CommunityNotFound) as raised:
            rig.join({"web_push": web_push(1)}, community=community)
        assert raised.value.community == community
        with pytest.raises(CommunityNotFound):
            rig.service.leave(community, "0" * 32, "token")
        with pytest.raises(CommunityNotFound):
            rig.service.update_preferences(community, "0" * 32, "token", PreferencesPatch(muted=True))
    assert rig.store.calls == [] and rig.secret.reads == 0


# ----------------------------------------------------------------------------- push endpoints


def test_the_join_applies_the_push_endpoint_policy() -> None:
    loopback = {"web_push": {**web_push(1), "endpoint": "http://127.0.0.1:8099/push/1"}}
    strict = Rig()
    with pytest.raises(InvalidRequest) as raised:
        strict.join(loopback)
    assert raised.value.loc == ("body", "web_push", "endpoint")
    assert strict.store.stored == {}
    local = Rig(policy=EndpointPolicy(allow_loopback=True))
    assert local.join(loopback).created


def test_an_endpoint_resolving_to_a_private_address_is_refused_one_that_does_not_resolve_is_not() -> None:
    private = Rig(resolve=lambda host, port: ["10.0.0.7"])
    with pytest.raises(InvalidRequest, match="private address"):
        private.join({"web_push": web_push(1)})
    assert private.store.calls == []

    def nothing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    # DNS failing for a moment: let through (the sender checks the addresses again at every send).
    assert Rig(resolve=nothing).join({"web_push": web_push(1)}).created


# ----------------------------------------------------------------------------- preferences


def test_preferences_change_only_where_the_patch_says(rig: Rig) -> None:
    joined = rig.join({"web_push": web_push(1), "languages": ["en"], "topics": ["health"]})
    mid, token = joined.member.member_id, joined.token
    quiet = QuietHours(start="22:00", end="07:00", timezone="Europe/Paris")
    prefs = rig.service.update_preferences(
        COMMUNITY,
        mid,
        token,
        PreferencesPatch.model_validate({"muted": True, "quiet_hours": quiet.model_dump()}),
    )
    assert prefs == Preferences(languages=["en"], topics=["health"], muted=True, quiet_hours=quiet)
    prefs = rig.service.update_preferences(
        COMMUNITY, mid, token, PreferencesPatch.model_validate({"topics": []})
    )
    assert prefs == Preferences(languages=["en"], topics=[], muted=True, quiet_hours=quiet)
    # ``quiet_hours: null`` removes them; ``muted: null`` changes nothing.
    prefs = rig.service.update_preferences(
        COMMUNITY, mid, token, PreferencesPatch.model_validate({"quiet_hours": None, "muted": None})
    )
    assert prefs == Preferences(languages=["en"], topics=[], muted=True)
    stored = rig.store.member(COMMUNITY, mid)
    assert stored is not None and stored.preferences == prefs
    assert stored.updated_at > joined.member.updated_at
    assert stored.web_push == joined.member.web_push  # nothing but the preferences changed


def test_preferences_need_the_members_own_token(rig: Rig) -> None:
    alice = rig.join({"web_push": web_push(1)})
    bob = rig.join({"web_push": web_push(2)})
    patch = PreferencesPatch(muted=True)
    with pytest.raises(MissingToken):
        rig.service.update_preferences(COMMUNITY, alice.member.member_id, None, patch)
    with pytest.raises(Forbidden):
        rig.service.update_preferences(COMMUNITY, alice.member.member_id, bob.token, patch)
    with pytest.raises(Forbidden):  # a member id that is no member id: the same answer
        rig.service.update_preferences(COMMUNITY, "../etc", alice.token, patch)
    # A valid token for an id nobody holds opens nothing either, and reads nothing.
    ghost = "f" * 32
    reads = len(rig.store.calls)
    with pytest.raises(MemberGone):
        rig.service.update_preferences(
            COMMUNITY, ghost, derive_token(rig.secret.value, COMMUNITY, ghost), patch
        )
    assert rig.store.calls[reads:] == ["member"]
    stored = rig.store.member(COMMUNITY, alice.member.member_id)
    assert stored is not None and not stored.preferences.muted


def test_preferences_of_a_member_that_left_are_gone(rig: Rig) -> None:
    joined = rig.join({"web_push": web_push(1)})
    assert rig.service.leave(COMMUNITY, joined.member.member_id, joined.token)
    with pytest.raises(MemberGone):
        rig.service.update_preferences(COMMUNITY, joined.member.member_id, joined.token, PreferencesPatch())


def test_a_leave_while_preferences_are_saved_is_gone_not_recreated(rig: Rig) -> None:
    joined = rig.join({"web_push": web_push(1)})
    mid = joined.member.member_id

    def leave_first(operation: str, member: Member) -> None:
        if operation == "save_preferences":
            rig.store.before_write = None
            rig.service.leave(COMMUNITY, mid, joined.token)

    rig.store.before_write = leave_first
    with pytest.raises(MemberGone):
        rig.service.update_preferences(COMMUNITY, mid, joined.token, PreferencesPatch(muted=True))
    assert rig.store.member(COMMUNITY, mid) is None and rig.store.count(COMMUNITY) == 0


# ----------------------------------------------------------------------------- leaving and counts


def test_leaving_ends_the_membership_once_and_frees_its_subscriptions(rig: Rig) -> None:
    joined = rig.join({"web_push": web_push(1), "device": device(1)})
    mid = joined.member.member_id
    with pytest.raises(MissingToken):
        rig.service.leave(COMMUNITY, mid, None)
    with pytest.raises(Forbidden):
        rig.service.leave(COMMUNITY, mid, "not-the-token")
    assert rig.service.leave(COMMUNITY, mid, joined.token) is True
    assert rig.service.leave(COMMUNITY, mid, joined.token) is False  # again: still a success
    assert rig.store.stored == {} and rig.store.claimed == {}
    assert rig.store.count(COMMUNITY) == 0
    # The same browser joins again: a new member, counted again.
    again = rig.join({"web_push": web_push(1)})
    assert again.created and again.member.member_id != mid
    assert rig.store.count(COMMUNITY) == 1


def test_the_count_is_joins_minus_leaves_over_the_shards(rig: Rig) -> None:
    joined = [rig.join({"web_push": web_push(n)}) for n in range(1, 21)]
    assert sorted({j.member.shard for j in joined}) == list(range(SHARDS))  # spread over every shard
    for j in joined[:5]:
        rig.join({"web_push": web_push(int(j.member.web_push.endpoint.rsplit("-", 1)[1]))})  # repeats
    for j in joined[::4]:
        rig.service.leave(COMMUNITY, j.member.member_id, j.token)
    rig.service.leave(COMMUNITY, joined[0].member.member_id, joined[0].token)  # a retried leave
    assert rig.store.count(COMMUNITY) == 20 - 5
    for shard in range(SHARDS):
        counted = rig.store.shards[(COMMUNITY, shard)]
        assert counted == len(list(rig.store.members(COMMUNITY, shard)))
    # What a community shows: the export's baseline plus that count, never below 0.
    assert member_count(222_000, rig.store.count(COMMUNITY)) == 222_015
    assert member_count(0, -3) == 0


def test_a_leave_that_lost_to_another_leave_is_answered_as_left(rig: Rig) -> None:
    joined = rig.join({"web_push": web_push(1)})
    mid = joined.member.member_id

    def another_leave(operation: str, member: Member) -> None:
        if operation == "remove":
            rig.store.before_write = None
            assert rig.store.remove(COMMUNITY, mid, member.token_hash) is not None

    rig.store.before_write = another_leave
    assert rig.service.leave(COMMUNITY, mid, joined.token) is False
    assert rig.store.count(COMMUNITY) == 0  # taken off once


def test_a_busy_counter_shard_on_leave_is_tried_again(rig: Rig) -> None:
    joined = rig.join({"web_push": web_push(1)})
    busy = ConcurrentUpdate("busy shard", reasons=("None", "None", "TransactionConflict"))
    rig.store.fail("remove", busy, busy)
    assert rig.service.leave(COMMUNITY, joined.member.member_id, joined.token) is True
    assert rig.store.count(COMMUNITY) == 0
    rig2 = Rig()
    j2 = rig2.join({"web_push": web_push(1)})
    rig2.store.fail("remove", *[busy] * ATTEMPTS)
    with pytest.raises(TransientError):
        rig2.service.leave(COMMUNITY, j2.member.member_id, j2.token)
    assert rig2.store.count(COMMUNITY) == 1


# ----------------------------------------------------------------------------- races


def test_a_join_that_lost_its_subscription_to_a_concurrent_identical_join_gets_that_member(rig: Rig) -> None:
    winner: list[Any] = []

    def the_same_browser_meanwhile(operation: str, member: Member) -> None:
        if operation == "create":
            rig.store.before_write = None
            winner.append(rig.join({"web_push": web_push(1)}))  # the other request wins the race

    rig.store.before_write = the_same_browser_meanwhile
    result = rig.join({"web_push": web_push(1)})
    assert winner and winner[0].created and not result.created
    assert result.member.member_id == winner[0].member.member_id and result.token == winner[0].token
    assert rig.store.count(COMMUNITY) == 1 and len(rig.store.stored) == 1


def test_a_join_racing_a_stranger_for_the_subscription_is_refused(rig: Rig) -> None:
    def stranger(operation: str, member: Member) -> None:
        if operation == "create":
            rig.store.before_write = None
            rig.join({"web_push": web_push(1, key=99, auth=b"z" * 16)})  # same endpoint, other keys

    rig.store.before_write = stranger
    with pytest.raises(AlreadyJoined):
        rig.join({"web_push": web_push(1)})
    assert rig.store.count(COMMUNITY) == 1


def test_a_join_still_contended_after_every_attempt_is_transient_and_stores_nothing(rig: Rig) -> None:
    busy = ConcurrentUpdate("busy shard", reasons=("None", "None", "TransactionConflict"))
    rig.store.fail("create", *[busy] * ATTEMPTS)
    with pytest.raises(TransientError):
        rig.join({"web_push": web_push(1), "device": device(1)})
    assert rig.store.stored == {} and rig.store.count(COMMUNITY) == 0
    assert rig.devices.registered == [("fcm", device(1)["token"])]  # registered once, not per attempt


def test_a_join_after_a_busy_shard_succeeds_and_registers_the_device_once(rig: Rig) -> None:
    busy = ConcurrentUpdate("busy shard", reasons=("None", "None", "TransactionConflict"))
    rig.store.fail("create", busy, busy)
    result = rig.join({"device": device(1)})
    assert result.created and result.member.endpoint_arn is not None
    assert rig.devices.registered == [("fcm", device(1)["token"])]
    assert rig.store.count(COMMUNITY) == 1


# ----------------------------------------------------------------------------- failures


def test_a_platform_without_mobile_push_is_refused_and_nothing_is_stored() -> None:
    rig = Rig()
    rig.devices.applications.pop("apns")
    with pytest.raises(PushNotConfigured) as raised:
        rig.join({"device": device(1, "apns")})
    assert raised.value.loc == ("body", "device", "platform")
    assert rig.store.stored == {} and rig.store.count(COMMUNITY) == 0
    assert rig.join({"device": device(1, "fcm")}).created  # the other platform still works


def test_a_device_token_the_push_service_refuses_is_refused_and_nothing_is_stored(rig: Rig) -> None:
    rig.devices.refused.add(device(1)["token"])
    with pytest.raises(PushNotConfigured) as raised:
        rig.join({"web_push": web_push(1), "device": device(1)})
    assert raised.value.loc == ("body", "device", "token")
    assert rig.store.stored == {} and rig.store.claimed == {}


def test_a_repeat_join_whose_device_registration_fails_changes_nothing(rig: Rig) -> None:
    first = rig.join({"web_push": web_push(1)})
    before = rig.snapshot()
    rig.devices.refused.add(device(2)["token"])
    with pytest.raises(PushNotConfigured):
        rig.join({"web_push": web_push(1), "device": device(2)}, token=first.token)
    rig.devices.fail(unavailable("registering a fcm device"))
    with pytest.raises(TransientError):
        rig.join({"web_push": web_push(1), "device": device(3)}, token=first.token)
    assert rig.snapshot() == before


def test_the_push_service_unavailable_is_transient_and_stores_nothing(rig: Rig) -> None:
    rig.devices.fail(unavailable("registering a fcm device"))
    with pytest.raises(TransientError) as raised:
        rig.join({"device": device(1)})
    assert raised.value.code == "ThrottlingException"
    assert rig.store.stored == {}
    assert rig.join({"device": device(1)}).created  # it passes


def test_the_token_secret_unavailable_is_transient_and_nothing_is_decided(rig: Rig) -> None:
    rig.secret.fail(unavailable("reading the member token secret"))
    with pytest.raises(TransientError):
        rig.join({"web_push": web_push(1)})
    assert rig.store.calls == []
    joined = rig.join({"web_push": web_push(1)})
    rig.secret.fail(unavailable("reading the member token secret"))
    with pytest.raises(TransientError):
        rig.service.leave(COMMUNITY, joined.member.member_id, joined.token)
    assert rig.store.count(COMMUNITY) == 1


def test_a_store_that_fails_for_a_moment_is_transient(rig: Rig) -> None:
    rig.store.fail("create", unavailable("a join of safe-routes"))
    with pytest.raises(TransientError):
        rig.join({"web_push": web_push(1)})
    assert rig.store.count(COMMUNITY) == 0
    assert rig.join({"web_push": web_push(1)}).created
