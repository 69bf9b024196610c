"""Sending a Web Push message (RFC 8030), encrypted with aes128gcm (RFC 8291), signed with VAPID (RFC 8292).

Each message gets a new ephemeral ECDH key and a random salt; the body is one record of at most
4,096 bytes. Connections are kept in one ``urllib3.PoolManager`` per sender, so a fan-out to a push
service opens a handful of TLS connections, not one per subscriber.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

import http_ece
import urllib3
from cryptography.hazmat.primitives.asymmetric import ec

from herald.domain.delivery import DeliveryResult, http_result, network_failure
from herald.push.payload import MAX_PAYLOAD_BYTES, PayloadTooLarge
from herald.push.vapid import b64url_decode, b64url_encode

Urgency = Literal["very-low", "low", "normal", "high"]
URGENCIES: tuple[str, ...] = ("very-low", "low", "normal", "high")

#: RFC 8030 section 5.4: a topic is at most 32 characters of the URL-safe base64 alphabet.
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
DEFAULT_TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0)
#: aes128gcm record size: the whole body is one record (push services accept at most 4,096 bytes).
RECORD_SIZE = 4096


class SubscriptionLike(Protocol):
    """A browser's push subscription: ``herald.domain.members.WebPushSubscription`` has this shape."""

    @property
    def endpoint(self) -> str: ...

    @property
    def keys(self) -> Any: ...


def push_topic(value: str) -> str:
    """A ``Topic`` header for ``value`` (a post id): the value itself when it is already a valid topic,
    else the first 32 characters of the base64url of its SHA-256 (the same value, the same topic)."""
    if _TOPIC.fullmatch(value):
        return value
    return b64url_encode(hashlib.sha256(value.encode("utf-8")).digest())[:32]


def _subscription_parts(subscription: SubscriptionLike | Mapping[str, Any]) -> tuple[str, bytes, bytes]:
    if isinstance(subscription, Mapping):
        endpoint, keys = subscription["endpoint"], subscription["keys"]
    else:
        endpoint, keys = subscription.endpoint, subscription.keys
    p256dh = keys["p256dh"] if isinstance(keys, Mapping) else keys.p256dh
    auth = keys["auth"] if isinstance(keys, Mapping) else keys.auth
    return str(endpoint), b64url_decode(p256dh), b64url_decode(auth)


def encrypt(payload: bytes, p256dh: bytes, auth: bytes) -> bytes:
    """The aes128gcm body for a subscriber: a new ephemeral key and salt each time (RFC 8291 section 3)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"{len(payload)} bytes of plaintext; a push message holds {MAX_PAYLOAD_BYTES}")
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        payload,
        salt=os.urandom(16),
        private_key=ephemeral,
        dh=p256dh,
        auth_secret=auth,
        version="aes128gcm",
        rs=RECORD_SIZE,
    )
    return body


class WebPushSender:
    """Sends Web Push messages; thread-safe, one per container (it owns the connection pool).

    ``signer`` gives the ``Authorization`` header (a :class:`herald.push.vapid.VapidSigner`);
    ``http`` defaults to a ``PoolManager`` with keep-alive; ``ttl`` is how long (seconds) the push
    service keeps a message for a subscriber that is offline; ``clock`` (seconds since the epoch)
    reads ``Retry-After`` dates.
    """

    def __init__(
        self,
        signer: Any,
        http: urllib3.PoolManager | None = None,
        ttl: int = 86400,
        clock: Callable[[], float] = time.time,
        *,
        timeout: urllib3.Timeout = DEFAULT_TIMEOUT,
        max_connections_per_host: int = 10,
    ) -> None:
        if ttl < 0:
            raise ValueError("ttl must be >= 0")
        self.signer = signer
        # A burst beyond ``maxsize`` opens extra connections rather than waiting (urllib3's
        # block=False); those are closed on return, the pool keeps ``maxsize`` per push service.
        self.http = (
            http if http is not None else urllib3.PoolManager(num_pools=32, maxsize=max_connections_per_host)
        )
        self.ttl = ttl
        self.clock = clock
        self.timeout = timeout

    def headers(
        self, endpoint: str, body_length: int, *, topic: str | None, urgency: Urgency, ttl: int
    ) -> dict[str, str]:
        """The request headers of one message (RFC 8030 section 5, RFC 8291 section 4, RFC 8292)."""
        if urgency not in URGENCIES:
            raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}")
        headers = {
            "TTL": str(ttl),
            "Urgency": urgency,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Content-Length": str(body_length),
            "Authorization": self.signer.header_for(endpoint),
        }
        if topic:
            headers["Topic"] = push_topic(topic)
        return headers

    def send(
        self,
        subscription: SubscriptionLike | Mapping[str, Any],
        payload: bytes,
        *,
        topic: str | None,
        urgency: Urgency = "normal",
        ttl: int | None = None,
    ) -> DeliveryResult:
        """Encrypt ``payload`` for the subscriber and POST it to their push service.

        ``topic`` (the post id: an edit's message replaces the one still queued) becomes a valid
        ``Topic`` header with :func:`push_topic`. Never raises for what the push service or the
        network does: that is in the result's outcome. Raises ``PayloadTooLarge`` for more than
        3,993 bytes of payload and ``ValueError`` for a malformed subscription or urgency.
        """
        endpoint, p256dh, auth = _subscription_parts(subscription)
        body = encrypt(payload, p256dh, auth)
        headers = self.headers(
            endpoint, len(body), topic=topic, urgency=urgency, ttl=self.ttl if ttl is None else ttl
        )
        try:
            response = self.http.request(
                "POST",
                endpoint,
                body=body,
                headers=headers,
                timeout=self.timeout,
                retries=False,  # the retry policy decides, with backoff, not the transport
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            return network_failure(f"{type(exc).__name__}: {exc}"[:300])
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        detail = "" if response.status < 300 else response.data[:300].decode("utf-8", "replace")
        return http_result(response.status, response.headers.get("Retry-After"), now, detail)

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.clear()
