"""Web Push without sockets: the payload limit, VAPID keys and tokens, the sender's encryption and headers."""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Mapping
from typing import Any

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from herald.core.errors import TransientError
from herald.fanout.adapters.vapid_keys import VapidKeySource
from herald.fanout.channels import vapid
from herald.fanout.channels.payload import (
    ELLIPSIS,
    MAX_PAYLOAD_BYTES,
    Notification,
    PayloadTooLarge,
    encode,
    grapheme_boundary,
)
from herald.fanout.channels.vapid import (
    VapidError,
    VapidSigner,
    b64url_decode,
    b64url_encode,
    generate_vapid_key,
    load_public_key,
    load_vapid_key,
    origin_of,
    private_key_pem,
    verify_jwt,
)
from herald.fanout.channels.webpush import (
    MAX_RESPONSE_BYTES,
    Answer,
    ConnectFailed,
    Destination,
    NoAnswer,
    Timeout,
    WebPushSender,
    encrypt,
    push_topic,
)
from herald.fanout.delivery import Outcome
from herald.members.rules import WebPushSubscription

T0 = 1_750_000_000.0
SUBJECT = "mailto:ops@herald.example"

# ----------------------------------------------------------------------------- payload


def _note(body: str = "", title: str = "A title", **extra: Any) -> Notification:
    fields = {
        "title": title,
        "body": body,
        "url": "https://herald.example/harbour-line/p/0123456789abcdef0123",
        "post_id": "0123456789abcdef0123",
        "community": "harbour-line",
        "tag": "post-0123456789abcdef0123",
        **extra,
    }
    return Notification(**fields)


def _size_without_body(**extra: Any) -> int:
    return len(encode(_note("", **extra)))


def test_limit_is_what_fits_one_record() -> None:
    assert MAX_PAYLOAD_BYTES == 3993
    key = ec.generate_private_key(ec.SECP256R1())
    p256dh = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert len(encrypt(b"x" * MAX_PAYLOAD_BYTES, p256dh, os.urandom(16))) == 4096
    with pytest.raises(PayloadTooLarge):
        encrypt(b"x" * (MAX_PAYLOAD_BYTES + 1), p256dh, os.urandom(16))


def test_compact_json_keeps_unicode_and_leaves_out_a_missing_lang() -> None:
    data = encode(_note("مرحبا 👋"))
    assert b'", "' not in data and b'": "' not in data
    assert "مرحبا 👋" in data.decode("utf-8")
    assert "lang" not in json.loads(data)
    assert json.loads(encode(_note("x", lang="ar")))["lang"] == "ar"


@pytest.mark.parametrize("unit", ["a", "م", "ب"])
def test_exactly_3993_bytes_is_kept_whole(unit: str) -> None:
    room = MAX_PAYLOAD_BYTES - _size_without_body()
    body = unit * (room // len(unit.encode())) + "a" * (room % len(unit.encode()))
    data = encode(_note(body))
    assert len(data) == MAX_PAYLOAD_BYTES
    assert json.loads(data)["body"] == body


@pytest.mark.parametrize("unit", ["a", "م", "👍"])
def test_3994_bytes_is_cut_at_a_character_with_an_ellipsis(unit: str) -> None:
    room = MAX_PAYLOAD_BYTES - _size_without_body()
    width = len(unit.encode())
    body = unit * (room // width) + "a" * (room % width) + "a"  # one byte over
    assert len(_note(body).model_dump_json()) > 0
    data = encode(_note(body))
    assert len(data) <= MAX_PAYLOAD_BYTES
    cut = json.loads(data)["body"]
    assert cut.endswith(ELLIPSIS) and body.startswith(cut[:-1])
    # The cut costs no more than the ellipsis and one character of the body.
    assert MAX_PAYLOAD_BYTES - len(data) < len(ELLIPSIS.encode()) + width


ZWJ_FAMILY = "👩\u200d👩\u200d👧\u200d👦"
FLAGS = "🇸🇾🇱🇧🇺🇦"
TEXTS = [
    "مَرْحَبًا بِكُمْ فِي الْمُجْتَمَعِ " * 200,  # Arabic with harakat (combining marks)
    (ZWJ_FAMILY + " ") * 400,
    FLAGS * 300,
    ("👋🏽 ✌️ " + "é" + "x") * 400,  # skin tones, a variation selector, a decomposed accent
]


@pytest.mark.parametrize("text", TEXTS, ids=["arabic", "zwj", "flags", "modifiers"])
def test_cuts_fall_between_graphemes(text: str) -> None:
    body = unicodedata.normalize("NFD", text) if "é" in text else text
    for limit in range(600, 3994, 97):
        data = encode(_note(body), limit=limit)
        assert len(data) <= limit
        cut = json.loads(data)["body"]
        assert cut.endswith(ELLIPSIS)
        kept = cut[: -len(ELLIPSIS)]
        assert body.startswith(kept)
        index = len(kept.rstrip())
        assert grapheme_boundary(body, index) == index
        assert not kept.endswith("\u200d")
        assert unicodedata.category(body[len(kept)])[0] != "M"
        if text is TEXTS[2]:
            assert len(kept) % 2 == 0  # whole flags only


def test_grapheme_boundary_steps_back_out_of_sequences() -> None:
    text = "ab" + ZWJ_FAMILY + "cd"
    for inside in range(3, 2 + len(ZWJ_FAMILY)):
        assert grapheme_boundary(text, inside) == 2
    assert grapheme_boundary(text, 2 + len(ZWJ_FAMILY)) == 2 + len(ZWJ_FAMILY)
    assert grapheme_boundary("x" + FLAGS, 2) == 1 and grapheme_boundary("x" + FLAGS, 3) == 3


def test_title_is_cut_when_the_body_is_not_enough() -> None:
    data = encode(_note("body text", title="عنوان " * 1000))
    fields = json.loads(data)
    assert len(data) <= MAX_PAYLOAD_BYTES
    assert fields["body"] == "" and fields["title"].endswith(ELLIPSIS)


def test_escapes_count_towards_the_limit() -> None:
    data = encode(_note('"\\\n' * 3000))
    assert len(data) <= MAX_PAYLOAD_BYTES
    assert json.loads(data)["body"].endswith(ELLIPSIS)


def test_too_large_without_body_and_title() -> None:
    with pytest.raises(PayloadTooLarge):
        encode(_note("x"), limit=100)


def test_lone_surrogates_are_replaced() -> None:
    assert json.loads(encode(_note("a\ud800b")))["body"] == "a\ufffdb"


# ----------------------------------------------------------------------------- VAPID keys


def test_load_vapid_key_accepts_pem_raw_and_der() -> None:
    key = generate_vapid_key()
    number = key.private_numbers().private_value
    pkcs8 = private_key_pem(key)
    sec1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    raw = b64url_encode(number.to_bytes(32, "big"))
    der = b64url_encode(
        key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    for form in (pkcs8, sec1, raw, raw + "=", der, "\n" + pkcs8 + "\n"):
        assert load_vapid_key(form).private_numbers().private_value == number


@pytest.mark.parametrize("value", ["", "not a key!", b64url_encode(b"\0" * 32), b64url_encode(b"x" * 40)])
def test_load_vapid_key_refuses_garbage(value: str) -> None:
    with pytest.raises(VapidError):
        load_vapid_key(value)


def test_load_vapid_key_refuses_other_curves() -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(VapidError):
        load_vapid_key(private_key_pem(other))


# ----------------------------------------------------------------------------- VAPID tokens


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _claims(header: str, signer: VapidSigner) -> dict[str, Any]:
    token_part, key_part = header.removeprefix("vapid ").split(", ")
    assert key_part == f"k={signer.public_key}"
    return verify_jwt(token_part.removeprefix("t="), load_public_key(signer.public_key))


def test_header_is_an_es256_jwt_with_the_right_claims() -> None:
    signer = VapidSigner(generate_vapid_key(), SUBJECT, clock=Clock())
    header = signer.header_for("https://fcm.googleapis.com/fcm/send/abc:def")
    assert _claims(header, signer) == {
        "aud": "https://fcm.googleapis.com",
        "exp": int(T0) + 12 * 3600,
        "sub": SUBJECT,
    }
    jwt_header = json.loads(b64url_decode(header.split("t=")[1].split(".")[0]))
    assert jwt_header == {"alg": "ES256", "typ": "JWT"}
    assert len(b64url_decode(signer.public_key)) == 65


def test_application_server_key_is_the_uncompressed_public_point() -> None:
    key = generate_vapid_key()
    signer = VapidSigner(private_key_pem(key), "https://herald.example/contact")
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert b64url_decode(signer.public_key) == point


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        (
            "https://updates.push.services.mozilla.com/wpush/v2/gAAA",
            "https://updates.push.services.mozilla.com",
        ),
        ("https://FCM.googleapis.com:443/fcm/send/x", "https://fcm.googleapis.com"),
        ("https://push.example:8443/p", "https://push.example:8443"),
        ("http://127.0.0.1:4567/push/abc", "http://127.0.0.1:4567"),
        ("http://user:pw@[::1]:80/x", "http://[::1]"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_origin_of_refuses_other_schemes() -> None:
    with pytest.raises(VapidError):
        origin_of("ftp://push.example/x")


def test_tokens_are_cached_per_origin() -> None:
    signer = VapidSigner(generate_vapid_key(), SUBJECT, clock=Clock())
    first = signer.header_for("https://fcm.googleapis.com/fcm/send/a")
    assert signer.header_for("https://fcm.googleapis.com/fcm/send/b") == first
    assert signer.header_for("https://fcm.googleapis.com:443/wp/c") == first
    other = signer.header_for("https://updates.push.services.mozilla.com/wpush/v2/x")
    third = signer.header_for("https://fcm.googleapis.com:8443/x")
    assert len({first, other, third}) == 3
    assert signer.signatures == 3
    # Each token names its own origin: no claims are shared between origins.
    assert _claims(first, signer)["aud"] == "https://fcm.googleapis.com"
    assert _claims(other, signer)["aud"] == "https://updates.push.services.mozilla.com"
    assert _claims(third, signer)["aud"] == "https://fcm.googleapis.com:8443"


def test_the_token_cache_is_bounded_whatever_the_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    # Endpoints are strangers' URLs: as many push service hosts as they like, each a token kept.
    monkeypatch.setattr(vapid, "TOKENS_MAX", 3)
    signer = VapidSigner(generate_vapid_key(), SUBJECT, clock=Clock())
    first = signer.header_for("https://a.example/x")
    for host in ("b", "c", "d", "e"):
        signer.header_for(f"https://{host}.example/x")
    assert len(signer._tokens) == 3
    assert set(signer._tokens) == {"https://c.example", "https://d.example", "https://e.example"}
    assert signer.header_for("https://e.example/y") == signer._tokens["https://e.example"].header
    assert signer.signatures == 5
    # The oldest went first: asked again, it is signed again, with a token of its own.
    again = signer.header_for("https://a.example/x")
    assert signer.signatures == 6
    assert _claims(again, signer)["aud"] == _claims(first, signer)["aud"] == "https://a.example"
    assert len(signer._tokens) == 3


def test_claims_are_a_new_dict_each_time() -> None:
    signer = VapidSigner(generate_vapid_key(), SUBJECT, clock=Clock())
    a = signer.claims_for("https://a.example", T0)
    b = signer.claims_for("https://b.example", T0)
    a["aud"] = "changed"
    assert b["aud"] == "https://b.example"
    assert signer.claims_for("https://a.example", T0)["aud"] == "https://a.example"


def test_token_is_renewed_when_less_than_an_hour_remains() -> None:
    clock = Clock()
    signer = VapidSigner(generate_vapid_key(), SUBJECT, clock=clock)
    endpoint = "https://fcm.googleapis.com/fcm/send/a"
    first = signer.header_for(endpoint)
    clock.now = T0 + 11 * 3600 - 1  # 1 h and 1 s left
    assert signer.header_for(endpoint) == first
    clock.now = T0 + 11 * 3600 + 1  # less than an hour left
    renewed = signer.header_for(endpoint)
    assert renewed != first
    assert _claims(renewed, signer)["exp"] == int(clock.now) + 12 * 3600
    assert signer.signatures == 2


def test_signer_checks_subject_and_lifetime() -> None:
    key = generate_vapid_key()
    for subject in ("ops@herald.example", "http://herald.example", "mailto:nobody"):
        with pytest.raises(VapidError):
            VapidSigner(key, subject)
    with pytest.raises(VapidError):
        VapidSigner(key, SUBJECT, lifetime_s=25 * 3600)


# ----------------------------------------------------------------------------- the key's adapter


class FakeSsm:
    def __init__(self, value: str) -> None:
        self.value = value
        self.calls: list[dict[str, Any]] = []

    def get_parameter(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"Parameter": {"Name": kwargs["Name"], "Type": "SecureString", "Value": self.value}}


class FakeSecretsManager:
    def __init__(self, value: str) -> None:
        self.value = value
        self.calls = 0

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        return {"ARN": kwargs["SecretId"], "SecretString": self.value}


def test_key_source_reads_ssm_with_decryption_once() -> None:
    key = generate_vapid_key()
    ssm = FakeSsm(private_key_pem(key))
    source = VapidKeySource("/herald/dev/vapid-private-key", ssm=ssm)
    assert source().private_numbers() == key.private_numbers()
    assert source() is source()
    assert ssm.calls == [{"Name": "/herald/dev/vapid-private-key", "WithDecryption": True}]


def test_key_source_reads_secrets_manager_json_or_plain() -> None:
    key = generate_vapid_key()
    raw = b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:herald-vapid-AbCdEf"
    for stored in (raw, json.dumps({"private_key": raw, "subject": SUBJECT})):
        sm = FakeSecretsManager(stored)
        assert VapidKeySource(arn, secretsmanager=sm)().private_numbers() == key.private_numbers()
        assert sm.calls == 1


def test_key_source_turns_aws_errors_into_transient_errors() -> None:
    from botocore.exceptions import ClientError

    class Failing:
        def get_parameter(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "GetParameter")

    with pytest.raises(TransientError, match="ThrottlingException"):
        VapidKeySource("/herald/vapid", ssm=Failing())()


# ----------------------------------------------------------------------------- the sender (no sockets)


class FakeTransport:
    """Stands in for PushConnections: records each request (the checked address it goes to, the TLS
    name, the target, headers, body, deadline and read limit) and answers what it is told."""

    def __init__(self, *answers: Answer | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []
        self.closed = False

    def post(
        self,
        address: str,
        where: Destination,
        headers: Mapping[str, str],
        body: bytes,
        *,
        deadline: float,
        limit: int,
    ) -> Answer:
        self.requests.append(
            {
                "address": address,
                "port": where.port,
                "scheme": where.scheme,
                "tls_name": where.host,
                "target": where.target,
                "headers": dict(headers),
                "body": body,
                "deadline": deadline,
                "limit": limit,
            }
        )
        answer = self.answers.pop(0) if self.answers else Answer(201, {}, b"")
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


PUBLIC_ADDRESS = "93.184.215.14"


def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC_ADDRESS]


class Browser:
    """The subscriber's side: a key pair and auth secret, as PushManager.subscribe() makes them."""

    def __init__(self, endpoint: str = "https://push.example/wp/abc") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.subscription = {
            "endpoint": endpoint,
            "keys": {"p256dh": b64url_encode(point), "auth": b64url_encode(self.auth)},
        }

    def decrypt(self, body: bytes) -> bytes:
        return bytes(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


def _sender(http: FakeTransport, clock: Clock | None = None, **options: Any) -> WebPushSender:
    clock = clock or Clock()
    options.setdefault("resolve", public_resolver)
    signer = VapidSigner(generate_vapid_key(), SUBJECT, clock=clock)
    return WebPushSender(signer, transport=http, clock=clock, **options)


def test_sender_encrypts_for_the_subscriber_and_sets_the_headers() -> None:
    http, browser = FakeTransport(), Browser()
    sender = _sender(http)
    payload = encode(_note("مرحبا بكم 👋"))
    result = sender.send(browser.subscription, payload, topic="0123456789abcdef0123", urgency="high")
    assert result.outcome is Outcome.SENT and result.status == 201
    (request,) = http.requests
    assert request["target"] == "/wp/abc"
    # To the address the check resolved, naming the host in TLS and in Host.
    assert (request["scheme"], request["address"], request["port"]) == ("https", PUBLIC_ADDRESS, 443)
    assert request["tls_name"] == "push.example"
    assert request["headers"]["Host"] == "push.example"
    headers = request["headers"]
    assert headers["TTL"] == "86400" and headers["Urgency"] == "high"
    assert headers["Topic"] == "0123456789abcdef0123"
    assert headers["Content-Encoding"] == "aes128gcm"
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Authorization"] == sender.signer.header_for(browser.subscription["endpoint"])
    assert sender.timeout == Timeout(connect=3.0, read=10.0)
    assert request["limit"] == MAX_RESPONSE_BYTES
    assert browser.decrypt(request["body"]) == payload


def test_each_message_has_a_new_ephemeral_key_and_salt() -> None:
    http, browser = FakeTransport(), Browser()
    sender = _sender(http)
    for _ in range(3):
        sender.send(browser.subscription, b"same", topic=None)
    bodies = [r["body"] for r in http.requests]
    assert len({b[:16] for b in bodies}) == 3  # salt
    assert len({b[21:86] for b in bodies}) == 3  # the key id: the sender's ephemeral public key
    assert all(b[20] == 65 and b[21] == 0x04 for b in bodies)
    assert all("Topic" not in r["headers"] for r in http.requests)


def test_sender_accepts_the_domain_subscription_model() -> None:
    http, browser = FakeTransport(), Browser()
    subscription = WebPushSubscription.model_validate(browser.subscription)
    assert _sender(http).send(subscription, b"{}", topic="p1", ttl=60).ok
    assert http.requests[0]["headers"]["TTL"] == "60"


def test_sender_reports_status_and_retry_after_dates() -> None:
    clock = Clock(1740830400.0)  # 2025-03-01 12:00:00 UTC
    http = FakeTransport(
        Answer(429, {"retry-after": "Sat, 01 Mar 2025 12:00:30 GMT"}, b"slow down"),
        Answer(410, {}, b'{"errno": 106}'),
        Answer(413, {}, b""),
        ConnectFailed("TimeoutError: timed out"),
    )
    sender, browser = _sender(http, clock), Browser()
    first = sender.send(browser.subscription, b"x", topic="p")
    assert (first.outcome, first.status, first.retry_after_s, first.detail) == (
        Outcome.RETRY,
        429,
        30.0,
        "slow down",
    )
    assert sender.send(browser.subscription, b"x", topic="p").outcome is Outcome.PRUNE
    assert sender.send(browser.subscription, b"x", topic="p").outcome is Outcome.FAILED
    timeout = sender.send(browser.subscription, b"x", topic="p")
    assert (
        timeout.outcome is Outcome.RETRY
        and timeout.status is None
        and "TimeoutError: timed out" in timeout.detail
    )


def test_sender_refuses_oversized_payloads_and_bad_urgency() -> None:
    sender, browser = _sender(FakeTransport()), Browser()
    with pytest.raises(PayloadTooLarge):
        sender.send(browser.subscription, b"x" * 3994, topic=None)
    with pytest.raises(ValueError, match="urgency"):
        sender.send(browser.subscription, b"x", topic=None, urgency="urgent")  # type: ignore[arg-type]


def test_push_topic_is_url_safe_and_at_most_32_characters() -> None:
    assert push_topic("0123456789abcdef0123") == "0123456789abcdef0123"
    for value in ("a post id with spaces", "é" * 40, "x" * 33, "a/b+c="):
        topic = push_topic(value)
        assert len(topic) == 32 and topic.replace("-", "").replace("_", "").isalnum()
        assert push_topic(value) == topic
    assert push_topic("x" * 33) != push_topic("x" * 34)


# ----------------------------------------------------------------------------- the endpoint at send time


class Resolver:
    """A resolver whose answers change from call to call (DNS rebinding), counting the calls."""

    def __init__(self, *answers: list[str] | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("169.254.169.254", "link-local"),
        ("10.0.0.7", "private"),
        ("127.0.0.1", "loopback"),
        ("fd00::1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
    ],
)
def test_an_endpoint_resolving_to_a_private_address_at_send_time_is_pruned_unsent(
    address: str, why: str
) -> None:
    http, browser = FakeTransport(), Browser()
    result = _sender(http, resolve=Resolver([address])).send(browser.subscription, b"{}", topic="p")
    assert result.outcome is Outcome.PRUNE and address in result.detail and why in result.detail
    assert http.requests == []


def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    """Resolved once, checked, connected to: a second lookup that would answer the metadata address
    (a rebinding between check and connect) never happens."""
    http, browser = FakeTransport(), Browser()
    resolver = Resolver([PUBLIC_ADDRESS], ["169.254.169.254"])
    assert _sender(http, resolve=resolver).send(browser.subscription, b"{}", topic="p").ok
    assert resolver.calls == [("push.example", 443)]
    assert http.requests[0]["address"] == PUBLIC_ADDRESS


def test_checked_addresses_are_kept_a_minute_then_checked_again() -> None:
    http, browser = FakeTransport(), Browser()
    now = [100.0]
    resolver = Resolver([PUBLIC_ADDRESS], ["169.254.169.254"])
    sender = _sender(http, resolve=resolver, monotonic=lambda: now[0], resolve_ttl_s=60.0)
    assert sender.send(browser.subscription, b"{}", topic="p").ok
    now[0] += 30
    assert sender.send(browser.subscription, b"{}", topic="p").ok  # cached: the same checked address
    now[0] += 31
    late = sender.send(browser.subscription, b"{}", topic="p")
    assert late.outcome is Outcome.PRUNE and "169.254.169.254" in late.detail
    assert len(resolver.calls) == 2 and len(http.requests) == 2


def test_an_endpoint_that_does_not_resolve_is_retried() -> None:
    http, browser = FakeTransport(), Browser()
    resolver = Resolver(OSError(-2, "Name or service not known"))
    result = _sender(http, resolve=resolver).send(browser.subscription, b"{}", topic="p")
    assert result.outcome is Outcome.RETRY and "does not resolve" in result.detail
    assert http.requests == []


def test_plain_http_and_ip_literals_are_refused_by_default() -> None:
    for endpoint in (
        "http://push.example/wp/abc",
        "https://93.184.215.14/wp/abc",
        "https://push.example:8443/x",
    ):
        http, browser = FakeTransport(), Browser(endpoint)
        result = _sender(http).send(browser.subscription, b"{}", topic="p")
        assert result.outcome is Outcome.PRUNE and result.detail.startswith("endpoint refused"), endpoint
        assert http.requests == []


def test_ipv4_addresses_are_tried_first_then_the_next_on_a_refused_connection() -> None:
    refused = ConnectFailed("ConnectionRefusedError: [Errno 111] Connection refused")
    http, browser = FakeTransport(refused), Browser()
    resolver = Resolver(["2606:4700:4700::1111", PUBLIC_ADDRESS, "93.184.215.15"])
    assert _sender(http, resolve=resolver).send(browser.subscription, b"{}", topic="p").ok
    assert [r["address"] for r in http.requests] == [PUBLIC_ADDRESS, "93.184.215.15"]


def test_a_subscription_whose_keys_do_not_encrypt_is_pruned_unsent() -> None:
    http, browser = FakeTransport(), Browser()
    browser.subscription["keys"]["p256dh"] = b64url_encode(b"\x04" + b"\x01" * 64)  # not on P-256
    result = _sender(http).send(browser.subscription, b"{}", topic="p")
    assert result.outcome is Outcome.PRUNE and "do not encrypt" in result.detail
    assert http.requests == []


def test_an_answer_over_the_bound_is_cut_and_named() -> None:
    """The transport reads at most one byte past the bound (``limit``); the sender keeps the bound,
    names the cut and makes the detail printable. Closing that connection: test_webpush_http.py."""
    http, browser = FakeTransport(Answer(400, {}, (b"\x00<b>" * 20_000)[:1001])), Browser()
    sender = _sender(http, max_response_bytes=1000)
    result = sender.send(browser.subscription, b"{}", topic="p")
    assert (result.outcome, result.status, result.response_bytes) == (Outcome.FAILED, 400, 1000)
    assert "cut off: more than 1,000 bytes" in result.detail and "\x00" not in result.detail
    assert http.requests[0]["limit"] == 1000
    assert sender.send(browser.subscription, b"{}", topic="p").ok


def test_the_deadline_is_the_senders_from_the_start_of_the_request() -> None:
    http, browser = FakeTransport(NoAnswer("deadline", cut=True)), Browser()
    now = [500.0]
    sender = _sender(http, deadline_s=2.5, monotonic=lambda: now[0])
    result = sender.send(browser.subscription, b"{}", topic="p")
    assert http.requests[0]["deadline"] == 502.5
    assert (result.outcome, result.status) == (Outcome.RETRY, None)
    assert result.detail == "no answer within the 2.5 s deadline: cut off"


def test_an_answer_broken_off_keeps_its_status_and_says_so() -> None:
    for problem, words in (
        ("deadline", "cut off at the 15 s deadline after 3 bytes"),
        ("IncompleteRead", "broken off after 3 bytes (IncompleteRead)"),
    ):
        http, browser = FakeTransport(Answer(503, {"retry-after": "7"}, b"slo", problem)), Browser()
        result = _sender(http).send(browser.subscription, b"{}", topic="p")
        assert (result.outcome, result.status, result.retry_after_s) == (Outcome.RETRY, 503, 7.0)
        assert result.detail == f"answer {words}; slo" and result.response_bytes == 3


def test_one_check_per_push_service_host_for_many_endpoints() -> None:
    """A fan-out's endpoints share a few push service hosts: the host is resolved and checked once
    per ``resolve_ttl_s``, each endpoint keeps its own path and query."""
    http = FakeTransport()
    resolver = Resolver([PUBLIC_ADDRESS])
    sender = _sender(http, resolve=resolver)
    for path in ("/wp/a", "/wp/b?token=1", "/wp/c#ignored"):
        assert sender.send(Browser(f"https://push.example{path}").subscription, b"{}", topic="p").ok
    assert resolver.calls == [("push.example", 443)]
    assert [r["target"] for r in http.requests] == ["/wp/a", "/wp/b?token=1", "/wp/c"]
    assert {r["address"] for r in http.requests} == {PUBLIC_ADDRESS}


def test_a_refused_host_stays_refused_and_odd_urls_are_judged_each_time() -> None:
    http = FakeTransport()
    resolver = Resolver(["169.254.169.254"])
    sender = _sender(http, resolve=resolver)
    for path in ("/a", "/b"):
        refused = sender.send(Browser(f"https://evil.example{path}").subscription, b"{}", topic="p")
        assert refused.outcome is Outcome.PRUNE and "link-local" in refused.detail
    assert resolver.calls == [("evil.example", 443)]
    # A URL the policy refuses for its own text names that, whatever the host's verdict.
    spaced = sender.send(Browser("https://push.example/wp/a b").subscription, b"{}", topic="p")
    assert spaced.outcome is Outcome.PRUNE and "spaces or control characters" in spaced.detail
    accented = sender.send(Browser("https://push.example/wp/é").subscription, b"{}", topic="p")
    assert accented.outcome is Outcome.PRUNE and "must be ASCII" in accented.detail
    assert http.requests == []


def test_base64url_decoding_takes_both_alphabets_with_or_without_padding() -> None:
    data = bytes(range(256))
    url = b64url_encode(data)
    standard = url.replace("-", "+").replace("_", "/")
    for text in (url, url + "==", standard, f"  {standard}=\n"):
        assert b64url_decode(text) == data
    with pytest.raises(VapidError):
        b64url_decode("a")  # one character is never a whole byte
    with pytest.raises(VapidError):
        b64url_decode("ééé")
