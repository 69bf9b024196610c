"""The sender against the loopback push service, and the push service's own checks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from herald.fanout.channels.payload import Notification, encode
from herald.fanout.channels.vapid import (
    VapidSigner,
    b64url_encode,
    generate_vapid_key,
    public_key_b64,
    sign_jwt,
)
from herald.fanout.channels.webpush import WebPushSender, encrypt
from herald.fanout.delivery import Outcome, RetryPolicy
from herald.members.endpoints import EndpointPolicy
from herald_tools.localcloud.pushservice import LocalPushService

#: The local push service listens on loopback: allowed only when said so, as the local cloud does.
LOOPBACK = EndpointPolicy(allow_loopback=True)

SUBJECT = "mailto:ops@herald.example"


@pytest.fixture
def push() -> Iterator[LocalPushService]:
    with LocalPushService() as service:
        yield service


@pytest.fixture
def signer() -> VapidSigner:
    return VapidSigner(generate_vapid_key(), SUBJECT)


@pytest.fixture
def sender(signer: VapidSigner) -> Iterator[WebPushSender]:
    sender = WebPushSender(signer, policy=LOOPBACK)
    yield sender
    sender.close()


def _note(post_id: str = "0123456789abcdef0123", body: str = "مرحبا بكم في المجتمع 👋🏽") -> Notification:
    return Notification(
        title="Harbour line",
        body=body,
        url=f"https://herald.example/harbour-line/p/{post_id}",
        post_id=post_id,
        community="harbour-line",
        tag=f"post-{post_id}",
        lang="ar",
    )


def _raw_post(
    push: LocalPushService, sid: str, body: bytes, headers: dict[str, str]
) -> urllib3.BaseHTTPResponse:
    return urllib3.request("POST", f"{push.origin}/push/{sid}", body=body, headers=headers, retries=False)


# ----------------------------------------------------------------------------- sender → push service


def test_message_arrives_decrypted_with_its_headers(push: LocalPushService, sender: WebPushSender) -> None:
    subscription = push.new_subscription()
    payload = encode(_note())
    result = sender.send(subscription, payload, topic="0123456789abcdef0123", urgency="high")
    assert result.outcome is Outcome.SENT and result.status == 201
    (delivery,) = push.received()
    assert delivery.subscription_id == push.subscription_id(subscription)
    assert delivery.plaintext == payload
    assert delivery.json["body"] == "مرحبا بكم في المجتمع 👋🏽"
    assert delivery.headers == {"TTL": "86400", "Urgency": "high", "Topic": "0123456789abcdef0123"}
    assert delivery.vapid_subject == SUBJECT
    assert push.stats()["decrypted"] == 1


def test_a_full_size_payload_arrives_whole(push: LocalPushService, sender: WebPushSender) -> None:
    subscription = push.new_subscription()
    payload = encode(_note(body="ب👨‍👩‍👧" * 2000))
    assert len(payload) > 3980
    assert sender.send(subscription, payload, topic="p").ok
    assert push.received()[0].plaintext == payload


def test_gone_subscriptions_are_pruned(push: LocalPushService, sender: WebPushSender) -> None:
    subscription = push.new_subscription()
    push.respond_with(push.subscription_id(subscription), 410)
    assert sender.send(subscription, b"{}", topic="p").outcome is Outcome.PRUNE
    push.respond_with(None, 404)
    assert sender.send(subscription, b"{}", topic="p").outcome is Outcome.PRUNE
    assert sender.send(subscription, b"{}", topic="p").outcome is Outcome.SENT  # faults were used up
    push.expire(push.subscription_id(subscription))
    result = sender.send(subscription, b"{}", topic="p")
    assert (result.outcome, result.status) == (Outcome.PRUNE, 410)


def test_throttling_is_retried_after_retry_after(push: LocalPushService, sender: WebPushSender) -> None:
    subscription = push.new_subscription()
    push.respond_with(None, 429, retry_after=7)
    result = sender.send(subscription, b"{}", topic="p")
    assert (result.outcome, result.status, result.retry_after_s) == (Outcome.RETRY, 429, 7.0)
    decision = RetryPolicy().decide(result, attempt=1)
    assert decision.retry and decision.delay_s == 7.0


def test_server_errors_are_retried_with_backoff(push: LocalPushService, sender: WebPushSender) -> None:
    subscription = push.new_subscription()
    push.respond_with(push.subscription_id(subscription), 500, times=2)
    policy = RetryPolicy(max_attempts=5, random=lambda: 0.5)
    delays = []
    for attempt in (1, 2):
        result = sender.send(subscription, b"{}", topic="p")
        assert (result.outcome, result.status, result.retry_after_s) == (Outcome.RETRY, 500, None)
        delays.append(policy.decide(result, attempt).delay_s)
    assert delays == [1.0, 2.0]
    assert sender.send(subscription, b"{}", topic="p").ok


def test_a_closed_port_is_a_network_failure_to_retry(push: LocalPushService, sender: WebPushSender) -> None:
    subscription = push.new_subscription()
    push.stop()
    result = sender.send(subscription, b"{}", topic="p")
    assert result.outcome is Outcome.RETRY and result.status is None


def test_a_token_signed_with_another_key_than_k_is_refused(push: LocalPushService) -> None:
    subscription = push.new_subscription()

    class Mismatched:
        """Signs with one key, names another in k=."""

        def __init__(self) -> None:
            self.real = VapidSigner(generate_vapid_key(), SUBJECT)
            self.other = public_key_b64(generate_vapid_key().public_key())

        def header_for(self, endpoint: str) -> str:
            return self.real.header_for(endpoint).replace(self.real.public_key, self.other)

    sender = WebPushSender(Mismatched(), policy=LOOPBACK)
    result = sender.send(subscription, b"{}", topic="p")
    assert (result.outcome, result.status) == (Outcome.AUTH_FAILURE, 401)
    assert push.stats()["rejected"] == 1 and push.received() == []


def test_a_restricted_subscription_refuses_another_application_key(
    push: LocalPushService, signer: VapidSigner, sender: WebPushSender
) -> None:
    other = public_key_b64(generate_vapid_key().public_key())
    restricted = push.new_subscription(application_server_key=other)
    result = sender.send(restricted, b"{}", topic="p")
    assert (result.outcome, result.status) == (Outcome.AUTH_FAILURE, 403)
    mine = push.new_subscription(application_server_key=signer.public_key)
    assert sender.send(mine, b"{}", topic="p").ok


def test_connections_are_reused(push: LocalPushService, sender: WebPushSender) -> None:
    subscriptions = [push.new_subscription() for _ in range(4)]
    for i in range(20):
        assert sender.send(subscriptions[i % 4], encode(_note(f"post{i}")), topic=f"post{i}").ok
    assert push.stats()["received"] == 20
    assert push.connections == 1


def test_duplicates_are_reported_by_subscription_and_post(
    push: LocalPushService, sender: WebPushSender
) -> None:
    a, b = push.new_subscription(), push.new_subscription()
    for subscription, post in ((a, "p1"), (a, "p2"), (b, "p1"), (a, "p1")):
        sender.send(subscription, encode(_note(post)), topic=post)
    assert push.duplicates() == {(push.subscription_id(a), "p1"): 2}
    assert push.duplicates(key=lambda d: d.json["post_id"]) == {"p1": 3}
    by_sub = push.stats()["by_subscription"]
    assert by_sub[push.subscription_id(a)]["decrypted"] == 3
    assert len(push.received(push.subscription_id(b))) == 1


def test_pywebpush_is_accepted_too(push: LocalPushService) -> None:
    pywebpush = pytest.importorskip("pywebpush")
    key = generate_vapid_key()
    raw = b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))
    subscription = push.new_subscription()
    response = pywebpush.webpush(
        subscription, data='{"post_id": "p9"}', vapid_private_key=raw, vapid_claims={"sub": SUBJECT}, ttl=60
    )
    assert response.status_code == 201
    assert push.received()[0].json == {"post_id": "p9"}


# ----------------------------------------------------------------------------- the push service's checks


def _headers(push: LocalPushService, signer: VapidSigner, **changes: str | None) -> dict[str, str]:
    headers: dict[str, str | None] = {
        "TTL": "60",
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "Authorization": signer.header_for(push.origin + "/push/x"),
        **changes,
    }
    return {k: v for k, v in headers.items() if v is not None}


def _body(subscription: dict[str, Any], payload: bytes = b'{"post_id":"p"}') -> bytes:
    from herald.fanout.channels.vapid import b64url_decode

    return encrypt(
        payload, b64url_decode(subscription["keys"]["p256dh"]), b64url_decode(subscription["keys"]["auth"])
    )


def _token(signer: VapidSigner, **claims: Any) -> str:
    return f"vapid t={sign_jwt(signer.key, claims)}, k={signer.public_key}"


def test_push_service_checks(push: LocalPushService, signer: VapidSigner) -> None:
    subscription = push.new_subscription()
    sid = push.subscription_id(subscription)
    body = _body(subscription)
    now = int(time.time())
    cases: list[tuple[dict[str, str], bytes, int]] = [
        (_headers(push, signer), body, 201),
        (_headers(push, signer, TTL=None), body, 400),
        (_headers(push, signer, **{"Content-Encoding": "aesgcm"}), body, 400),
        (_headers(push, signer, Urgency="urgent"), body, 400),
        (_headers(push, signer, Topic="not a topic!"), body, 400),
        (_headers(push, signer), b"garbage" * 20, 400),
        (_headers(push, signer), _body(push.new_subscription()), 400),  # encrypted for someone else
        (_headers(push, signer), b"\0" * 4097, 413),
        (_headers(push, signer, Authorization=None), body, 401),
        (_headers(push, signer, Authorization="WebPush abc"), body, 401),
        (_headers(push, signer, Authorization="vapid t=a.b.c, k=" + signer.public_key), body, 401),
        (
            _headers(
                push, signer, Authorization=_token(signer, aud="https://elsewhere", exp=now + 60, sub=SUBJECT)
            ),
            body,
            401,
        ),
        (
            _headers(push, signer, Authorization=_token(signer, aud=push.origin, exp=now - 1, sub=SUBJECT)),
            body,
            401,
        ),
        (
            _headers(
                push, signer, Authorization=_token(signer, aud=push.origin, exp=now + 25 * 3600, sub=SUBJECT)
            ),
            body,
            401,
        ),
        (_headers(push, signer, Authorization=_token(signer, aud=push.origin, exp=now + 60)), body, 401),
    ]
    for headers, data, status in cases:
        response = _raw_post(push, sid, data, headers)
        assert response.status == status, (headers, response.data)
        if status == 201:
            assert response.headers["Location"].startswith(push.origin + "/message/")
    stats = push.stats()
    assert stats["decrypted"] == 1 and stats["rejected"] == len(cases) - 1
    assert _raw_post(push, "nosuchsubscription", body, _headers(push, signer)).status == 404


def test_restricted_subscription_with_another_key_is_403(push: LocalPushService, signer: VapidSigner) -> None:
    other = VapidSigner(generate_vapid_key(), SUBJECT)
    subscription = push.new_subscription(application_server_key=other.public_key)
    response = _raw_post(
        push, push.subscription_id(subscription), _body(subscription), _headers(push, signer)
    )
    assert response.status == 403


def test_http_views(push: LocalPushService, sender: WebPushSender) -> None:
    created = urllib3.request("POST", f"{push.origin}/subscriptions", body=b"")
    assert created.status == 201
    subscription = json.loads(created.data)
    assert subscription["endpoint"].startswith(push.origin + "/push/")
    assert sender.send(subscription, encode(_note()), topic="p").ok
    summary = json.loads(urllib3.request("GET", push.origin + "/").data)
    assert summary["decrypted"] == 1 and summary["subscriptions"] == 1
    assert summary["recent"][0]["json"]["post_id"] == "0123456789abcdef0123"
    sid = push.subscription_id(subscription)
    deliveries = json.loads(urllib3.request("GET", f"{push.origin}/deliveries?subscription={sid}").data)
    assert [d["subscription_id"] for d in deliveries] == [sid]
    bad = urllib3.request("POST", f"{push.origin}/subscriptions", body=b'{"applicationServerKey": "xx"}')
    assert bad.status == 400


def test_wait_for_and_reset(push: LocalPushService, sender: WebPushSender) -> None:
    subscription = push.new_subscription()
    sender.send(subscription, b"not json", topic=None)
    (delivery,) = push.wait_for(1, timeout=2)
    assert delivery.json is None and delivery.plaintext == b"not json"
    with pytest.raises(TimeoutError, match="1 of 2"):
        push.wait_for(2, timeout=0.05)
    push.reset()
    assert push.received() == [] and push.stats()["received"] == 0
