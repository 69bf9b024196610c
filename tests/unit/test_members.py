"""The membership rules, without AWS: tokens, subscription identity, validation, shards, locales."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from herald.api.locale import negotiate
from herald.content.counts import compact_number, member_count
from herald.members.endpoints import EndpointPolicy
from herald.members.rules import (
    Device,
    InvalidRequest,
    JoinRequest,
    Preferences,
    PreferencesPatch,
    QuietHours,
    WebPushSubscription,
    bearer_token,
    check_endpoint_allowed,
    choose_shard,
    derive_token,
    subscription_id,
    token_hash,
    verify_token,
)

SECRET = b"s" * 32
_KEY = ec.derive_private_key(7, ec.SECP256R1()).public_key()
P256DH = base64.urlsafe_b64encode(_KEY.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
P256DH = P256DH.rstrip(b"=").decode()
AUTH = base64.urlsafe_b64encode(bytes(16)).rstrip(b"=").decode()


def push(endpoint: str = "https://push.example/a", p256dh: str = P256DH) -> WebPushSubscription:
    return WebPushSubscription.model_validate(
        {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": AUTH}}
    )


def test_token_is_derived_stable_and_verified() -> None:
    token = derive_token(SECRET, "c", "m" * 32)
    assert token == derive_token(SECRET, "c", "m" * 32)
    assert len(base64.urlsafe_b64decode(token + "=")) == 32 and "=" not in token
    assert verify_token(SECRET, "c", "m" * 32, token)
    assert not verify_token(SECRET, "c", "n" * 32, token)
    assert not verify_token(SECRET, "d", "m" * 32, token)
    assert not verify_token(b"other" * 8, "c", "m" * 32, token)
    assert not verify_token(SECRET, "c", "m" * 32, None)
    assert not verify_token(SECRET, "c", "m" * 32, "\ud800")
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    # community and member id are separated: ("ab", "c") is not ("a", "bc")
    assert derive_token(SECRET, "ab", "c") != derive_token(SECRET, "a", "bc")


@given(st.text(max_size=40), st.text(max_size=40))
def test_tokens_differ_per_member(a: str, b: str) -> None:
    if a != b:
        assert derive_token(SECRET, "c", a) != derive_token(SECRET, "c", b)


def test_bearer_header() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_subscription_identity_ignores_keys() -> None:
    other_key = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode()
    assert subscription_id(web_push=push()) == subscription_id(web_push=push(p256dh=other_key))
    assert subscription_id(web_push=push()) != subscription_id(web_push=push("https://push.example/b"))
    fcm = Device(platform="fcm", token="tok-12345678")
    apns = Device(platform="apns", token="tok-12345678")
    assert subscription_id(device=fcm) != subscription_id(device=apns)
    request = JoinRequest.model_validate({"web_push": push().model_dump(mode="json"), "device": fcm})
    assert request.subscriptions() == [
        subscription_id(web_push=push()),
        subscription_id(device=fcm),
    ]


@pytest.mark.parametrize(
    "endpoint",
    ["http://push.example/a", "ftp://push.example/a", "https://", "https://push.example/a b", "https://[::1"],
)
def test_endpoints_must_be_https(endpoint: str) -> None:
    with pytest.raises(ValidationError) as info:
        push(endpoint)
    assert info.value.errors()[0]["loc"] == ("endpoint",)


def test_loopback_http_only_when_allowed() -> None:
    for host in ("127.0.0.1", "localhost", "[::1]"):
        request = JoinRequest.model_validate(
            {"web_push": push(f"http://{host}:8080/p").model_dump(mode="json")}
        )
        check_endpoint_allowed(request, EndpointPolicy(allow_loopback=True))
        with pytest.raises(InvalidRequest) as info:
            check_endpoint_allowed(request, EndpointPolicy())
        assert info.value.loc == ("body", "web_push", "endpoint")


def test_subscription_identity_is_the_normalised_endpoint() -> None:
    one = subscription_id(web_push=push("https://push.example/a"))
    for spelling in ("https://PUSH.example/a", "https://push.example:443/a/", "https://push.example/a#f"):
        assert subscription_id(web_push=push(spelling)) == one
    assert subscription_id(web_push=push("https://push.example/a?token=1")) != one


def test_join_keys_must_be_on_the_curve() -> None:
    off_curve = base64.urlsafe_b64encode(b"\x04" + bytes(64)).decode()
    push(p256dh=off_curve)  # a stored member's keys still load
    with pytest.raises(ValidationError) as info:
        JoinRequest.model_validate({"web_push": push(p256dh=off_curve).model_dump(mode="json")})
    assert info.value.errors()[0]["loc"] == ("web_push", "keys", "p256dh")
    assert "P-256" in info.value.errors()[0]["msg"]


def test_keys_are_checked() -> None:
    compressed = base64.urlsafe_b64encode(b"\x02" + bytes(64)).decode()
    short = base64.urlsafe_b64encode(b"\x04" + bytes(63)).decode()
    for bad in (compressed, short, P256DH + "*"):
        with pytest.raises(ValidationError):
            push(p256dh=bad)


def test_quiet_hours() -> None:
    night = QuietHours(start="22:00", end="07:00", timezone="Europe/Paris")
    assert night.contains("23:30") and night.contains("06:59") and not night.contains("07:00")
    day = QuietHours(start="09:00", end="17:00", timezone="America/Sao_Paulo")
    assert day.contains("12:00") and not day.contains("18:00")
    for bad in (
        {"start": "22:00", "end": "22:00", "timezone": "UTC"},
        {"start": "25:00", "end": "07:00", "timezone": "UTC"},
        {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"},
        {"start": "22:00", "end": "07:00", "timezone": "../etc/passwd"},
        {"start": "22:00", "end": "07:00", "timezone": ""},
    ):
        with pytest.raises(ValidationError):
            QuietHours.model_validate(bad)


def test_preferences_languages_topics_and_patch() -> None:
    with pytest.raises(ValidationError):
        Preferences(languages=["xx"])
    with pytest.raises(ValidationError):
        Preferences(topics=["astrology"])
    assert Preferences(languages=["en", "en", "ar"]).languages == ["en", "ar"]
    current = Preferences(
        languages=["en"], muted=True, quiet_hours=QuietHours(start="22:00", end="07:00", timezone="UTC")
    )
    patched = PreferencesPatch.model_validate({"quiet_hours": None}).apply(current)
    assert patched.quiet_hours is None and patched.languages == ["en"] and patched.muted
    assert PreferencesPatch.model_validate({"languages": None}).apply(current).languages == ["en"]


def test_join_needs_a_way_to_reach_the_member() -> None:
    with pytest.raises(ValidationError):
        JoinRequest.model_validate({"languages": ["en"]})


def test_shards_are_uniform_and_in_range() -> None:
    rng = random.Random(3)
    picks = [choose_shard(32, rng.randrange) for _ in range(32_000)]
    assert set(picks) == set(range(32))
    assert max(picks.count(s) for s in range(32)) < 1_200
    with pytest.raises(ValueError):
        choose_shard(4, lambda n: n)
    assert member_count(222_000, [1, 2, -1]) == 222_002


@pytest.mark.parametrize(
    ("locale", "value", "shown"),
    [
        ("en", 222_000, "222K"),
        ("en", 999_999, "1M"),
        ("en", 1_500, "1.5K"),
        ("en", 999, "999"),
        ("fr", 222_000, "222\xa0k"),
        ("fr", 1_500, "1,5\xa0k"),
        ("ar", 222_000, "222\xa0ألف"),
        ("ar", 1_200_000, "1.2\xa0مليون"),
    ],
)
def test_compact_numbers(locale: str, value: int, shown: str) -> None:
    assert compact_number(value, locale) == shown


def test_accept_language() -> None:
    assert negotiate(None) == "en"
    assert negotiate("fr-FR,fr;q=0.9,en;q=0.8") == "fr_FR"
    assert negotiate("en;q=0.1, ar;q=0.9") == "ar"
    assert negotiate("xx-YY, *") == "en"
    assert negotiate("de;q=0") == "en"


def test_member_ids_in_messages_are_hashed() -> None:
    from herald.core.observability import hashed

    assert hashed("m123") == hashed("m123") != hashed("m124")
    assert hashed("m123").startswith("h:") and "m123" not in hashed("m123")
    assert hashed(None) is None
