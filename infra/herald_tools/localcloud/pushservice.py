"""A Web Push service on loopback: subscriptions with real keys, VAPID checked, every message decrypted.

It plays both the browser and the push service (Mozilla's autopush, FCM's web push endpoint): it
hands out browser-like subscriptions whose private keys it keeps, and on ``POST /push/<id>`` checks
what a push service checks (RFC 8030, 8291, 8292), decrypts the body as the browser would and records
the plaintext. Faults can be programmed (410, 404, 429 with ``Retry-After``, 500 …) to exercise the
sender's outcomes, and so can a hostile service's answers (``misbehave``: a 200 MB body, an answer
trickled a byte at a time, no answer at all) to exercise the sender's bounds.

```python
with LocalPushService() as push:
    subscription = push.new_subscription()      # {"endpoint": "http://127.0.0.1:<port>/push/<id>", "keys": …}
    ...                                         # Herald sends to it
    push.received()                             # [Delivery(subscription_id, headers, plaintext, json, …)]
```

HTTP for humans and other processes: ``GET /`` (a JSON summary), ``GET /deliveries`` (recent
deliveries, ``?subscription=<id>`` to filter), ``POST /subscriptions`` (a new subscription; body
``{"applicationServerKey": "<base64url>"}`` optional, which makes it restricted to that key).
"""

from __future__ import annotations

import binascii
import contextlib
import itertools
import json
import os
import re
import secrets
import select
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from herald.fanout.channels.vapid import VapidError, b64url_decode, b64url_encode, load_public_key, verify_jwt

#: What push services accept as one message's body (RFC 8030 section 7.2 lets them refuse more).
MAX_BODY_BYTES = 4096
MAX_TOKEN_LIFETIME_S = 24 * 3600
#: Tolerance for the sender's clock running ahead (``exp`` a little more than 24 h away).
CLOCK_SKEW_S = 60
_URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_PUSH_PATH = re.compile(r"/push/([A-Za-z0-9_-]+)/?")
#: What a misbehaving push service does instead of answering (see ``LocalPushService.misbehave``).
Misbehaviour = Literal["huge", "trickle", "trickle-body", "hang"]
MISBEHAVIOURS: tuple[str, ...] = ("huge", "trickle", "trickle-body", "hang")
_CHUNK = bytes(64 * 1024)  # the huge body is this buffer written again and again, never allocated whole


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message that was accepted and decrypted."""

    subscription_id: str
    headers: dict[str, str]  # TTL, Urgency, Topic as received (absent ones left out)
    plaintext: bytes
    json: Any | None  # the plaintext parsed, when it is JSON
    received_at: float
    vapid_subject: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "headers": self.headers,
            "json": self.json,
            "plaintext_bytes": len(self.plaintext),
            "received_at": self.received_at,
            "vapid_subject": self.vapid_subject,
        }


@dataclass
class _Subscription:
    id: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str | None  # restricted subscriptions accept only this VAPID key
    gone: bool = False


@dataclass
class _Fault:
    subscription_id: str | None
    status: int
    remaining: int
    retry_after: str | None


@dataclass
class _Misbehaving:
    subscription_id: str | None
    mode: str
    remaining: int
    status: int
    body_bytes: int
    interval_s: float


@dataclass
class Misbehaved:
    """One answer a misbehaving service gave (or withheld): how many bytes it wrote, and how it ended:
    ``complete`` (all of it), ``client closed`` (the sender hung up first) or ``stopped``."""

    subscription_id: str
    mode: str
    started_at: float
    bytes_written: int = 0
    ended: str = ""
    ended_after_s: float | None = None


_Programmed = TypeVar("_Programmed", _Fault, _Misbehaving)


def _take(programmed: list[_Programmed], subscription_id: str) -> _Programmed | None:
    """The first programmed answer for ``subscription_id`` (or for any), used once more: it leaves
    the list after its last time."""
    for entry in programmed:
        if entry.subscription_id in (None, subscription_id):
            entry.remaining -= 1
            if entry.remaining == 0:
                programmed.remove(entry)
            return entry
    return None


@dataclass
class _Counts:
    received: int = 0
    decrypted: int = 0
    rejected: int = 0
    faulted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "decrypted": self.decrypted,
            "rejected": self.rejected,
            "faulted": self.faulted,
        }


@dataclass
class _State:
    subscriptions: dict[str, _Subscription] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)
    misbehaving: list[_Misbehaving] = field(default_factory=list)
    misbehaved: list[Misbehaved] = field(default_factory=list)
    totals: _Counts = field(default_factory=_Counts)
    by_subscription: dict[str, _Counts] = field(default_factory=dict)
    connections: int = 0


class _Rejection(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _parse_authorization(value: str | None) -> tuple[str, str]:
    """(token, key) of ``vapid t=<jwt>, k=<key>`` (RFC 8292 section 3)."""
    if not value:
        raise _Rejection(401, "missing Authorization")
    scheme, _, params = value.strip().partition(" ")
    if scheme.lower() != "vapid":
        raise _Rejection(401, "the Authorization scheme must be vapid")
    fields: dict[str, str] = {}
    for part in params.split(","):
        name, _, val = part.strip().partition("=")
        fields[name.strip().lower()] = val.strip()
    if not fields.get("t") or not fields.get("k"):
        raise _Rejection(401, "vapid needs t= and k=")
    return fields["t"], fields["k"]


class LocalPushService:
    """A push service on ``host:port`` (0: any free port). Thread-safe; ``start()``/``stop()`` or ``with``.

    ``clock`` (seconds since the epoch) judges the tokens' ``exp`` and stamps deliveries.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self._state = _State()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind and serve in a background thread; ``port`` and ``origin`` are known from here on."""
        if self._server is not None:
            return self
        self._stopping.clear()
        service = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            # A sender opens a connection per thread at once; socketserver's backlog of 5 would drop
            # the other SYNs, and the retransmits (1 s, 3 s) look like a push service that times out.
            request_queue_size = 128

            def get_request(self) -> tuple[socket.socket, Any]:
                conn, address = super().get_request()
                # Headers and body go out in separate writes; without this, Nagle's algorithm and
                # the client's delayed ACK hold an answer with a body back for 40 ms.
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with service._lock:
                    service._state.connections += 1
                    service._sockets.add(conn)
                return conn, address

            def shutdown_request(self, request: Any) -> None:
                with service._lock:
                    service._sockets.discard(request)
                super().shutdown_request(request)

        handler = type("PushHandler", (_Handler,), {"service": self})
        self._server = Server((self.host, self.port), handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-push", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection still open (keep-alive ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # misbehaving answers still being trickled end now
        server.shutdown()
        server.server_close()
        with self._lock:
            open_sockets = list(self._sockets)
            self._sockets.clear()
        for conn in open_sockets:
            with contextlib.suppress(OSError):  # already closed by the peer
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """``http://host:port``: the ``aud`` every VAPID token sent here must carry."""
        if self._server is None and self.port == 0:
            raise RuntimeError("start() the push service first: its port is not known yet")
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ subscriptions and faults

    def new_subscription(self, application_server_key: str | None = None) -> dict[str, Any]:
        """A browser-like ``PushSubscription.toJSON()``: endpoint and keys; the private half stays here.

        With ``application_server_key`` the subscription is restricted (RFC 8292 section 3.2): a push
        signed with another VAPID key is answered 403.
        """
        private_key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        sid = secrets.token_urlsafe(16)
        with self._lock:
            self._state.subscriptions[sid] = _Subscription(sid, private_key, auth, application_server_key)
            self._state.by_subscription[sid] = _Counts()
        p256dh = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.origin}/push/{sid}",
            "keys": {"p256dh": b64url_encode(p256dh), "auth": b64url_encode(auth)},
        }

    @staticmethod
    def subscription_id(subscription: dict[str, Any] | str) -> str:
        """The id in a subscription's endpoint (or in the endpoint itself)."""
        endpoint = subscription if isinstance(subscription, str) else str(subscription["endpoint"])
        match = _PUSH_PATH.fullmatch(urlsplit(endpoint).path)
        if match is None:
            raise ValueError(f"not an endpoint of a local push service: {endpoint!r}")
        return match.group(1)

    def expire(self, subscription_id: str) -> None:
        """The subscriber unsubscribed: every later push to it is answered 410 Gone."""
        with self._lock:
            self._state.subscriptions[subscription_id].gone = True

    def respond_with(
        self,
        subscription_id: str | None,
        status: int,
        times: int = 1,
        retry_after: int | str | None = None,
    ) -> None:
        """Answer the next ``times`` pushes to ``subscription_id`` (None: to any) with ``status``,
        without looking at them; ``retry_after`` (seconds or an HTTP date) is sent as ``Retry-After``."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._state.faults.append(
                _Fault(subscription_id, status, times, None if retry_after is None else str(retry_after))
            )

    def misbehave(
        self,
        subscription_id: str | None,
        mode: Misbehaviour,
        *,
        times: int = 1,
        status: int = 201,
        body_bytes: int = 200 * 1024 * 1024,
        interval_s: float = 2.0,
    ) -> None:
        """Answer the next ``times`` pushes to ``subscription_id`` (None: to any) as a hostile push
        service would, without looking at them:

        * ``huge``: ``status`` with a body of ``body_bytes`` (200 MB by default), written as fast
          as the sender reads it, from one 64 KiB buffer (the service never holds it whole);
        * ``trickle``: the whole answer (status line, headers, body) one byte every ``interval_s``;
        * ``trickle-body``: the status line and headers at once, then the body a byte every ``interval_s``;
        * ``hang``: nothing at all, the connection held open until the sender closes it.

        Each ends when the sender hangs up (or the service stops); :meth:`misbehaved` says how.
        """
        if mode not in MISBEHAVIOURS:
            raise ValueError(f"mode must be one of {', '.join(MISBEHAVIOURS)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._state.misbehaving.append(
                _Misbehaving(subscription_id, mode, times, status, body_bytes, interval_s)
            )

    def misbehaved(self) -> list[Misbehaved]:
        """The misbehaving answers so far, oldest first (finished ones have ``ended`` set)."""
        with self._lock:
            return list(self._state.misbehaved)

    def _take_misbehaviour(self, subscription_id: str) -> _Misbehaving | None:
        with self._lock:
            if subscription_id not in self._state.subscriptions:
                return None
            return _take(self._state.misbehaving, subscription_id)

    def _take_fault(self, subscription_id: str) -> _Fault | None:
        with self._lock:
            return _take(self._state.faults, subscription_id)

    # ------------------------------------------------------------------ queries

    def received(self, subscription_id: str | None = None) -> list[Delivery]:
        """The deliveries accepted so far, oldest first (of one subscription, or all)."""
        with self._lock:
            return [d for d in self._state.deliveries if subscription_id in (None, d.subscription_id)]

    def wait_for(
        self, count: int, timeout: float = 10.0, subscription_id: str | None = None
    ) -> list[Delivery]:
        """Block until at least ``count`` deliveries arrived; raises ``TimeoutError`` naming how many did."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.received(subscription_id)
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(got)} of {count} push messages arrived within {timeout} s")
            time.sleep(0.01)

    def stats(self) -> dict[str, Any]:
        """Totals (received, decrypted, rejected, faulted), TCP connections accepted, and per subscription."""
        with self._lock:
            return {
                **self._state.totals.as_dict(),
                "connections": self._state.connections,
                "subscriptions": len(self._state.subscriptions),
                "by_subscription": {sid: c.as_dict() for sid, c in self._state.by_subscription.items()},
            }

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (keep-alive makes this far smaller than the requests)."""
        with self._lock:
            return self._state.connections

    def duplicates(self, key: Callable[[Delivery], Hashable] | None = None) -> dict[Hashable, int]:
        """Keys received more than once, with their count. The default key is (subscription id, the
        payload's ``post_id``): the same post pushed twice to one subscriber. Deliveries whose key is
        None are not counted."""
        key = key or _post_key
        with self._lock:
            counts = Counter(k for k in map(key, self._state.deliveries) if k is not None)
        return {k: n for k, n in counts.items() if n > 1}

    def reset(self) -> None:
        """Forget deliveries, faults and counts (subscriptions stay)."""
        with self._lock:
            self._state.deliveries.clear()
            self._state.faults.clear()
            self._state.misbehaving.clear()
            self._state.misbehaved.clear()
            self._state.totals = _Counts()
            self._state.by_subscription = {sid: _Counts() for sid in self._state.subscriptions}

    def summary(self) -> dict[str, Any]:
        """What ``GET /`` answers."""
        stats = self.stats()
        with self._lock:
            recent = [d.as_dict() for d in self._state.deliveries[-5:]]
        return {
            "service": "herald local push service",
            "origin": self.origin,
            **{k: v for k, v in stats.items() if k != "by_subscription"},
            "recent": recent,
        }

    # ------------------------------------------------------------------ one push

    def _count(self, sid: str, what: str) -> None:
        with self._lock:
            setattr(self._state.totals, what, getattr(self._state.totals, what) + 1)
            counts = self._state.by_subscription.get(sid)
            if counts is not None:
                setattr(counts, what, getattr(counts, what) + 1)

    def _check_vapid(self, authorization: str | None, subscription: _Subscription) -> str:
        """The token's ``sub`` once the token holds up (RFC 8292 section 4.2); raises a 401 or 403."""
        token, key = _parse_authorization(authorization)
        try:
            claims = verify_jwt(token, load_public_key(key))
        except VapidError as exc:
            raise _Rejection(401, f"VAPID: {exc}") from exc
        if claims.get("aud") != self.origin:
            raise _Rejection(401, f"VAPID: aud must be {self.origin}")
        exp, now = claims.get("exp"), self.clock()
        if not isinstance(exp, int) or isinstance(exp, bool) or exp <= now:
            raise _Rejection(401, "VAPID: the token has expired (or has no exp)")
        if exp > now + MAX_TOKEN_LIFETIME_S + CLOCK_SKEW_S:
            raise _Rejection(401, "VAPID: exp is more than 24 hours ahead")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.startswith(("mailto:", "https:")):
            raise _Rejection(401, "VAPID: sub must be a mailto: or https: URI")
        if subscription.application_server_key is not None and b64url_decode(key) != b64url_decode(
            subscription.application_server_key
        ):
            raise _Rejection(403, "VAPID: not the key this subscription was created with")
        return subject

    def _accept(self, sid: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
        """(status, headers, JSON body) of the answer to ``POST /push/<sid>``."""
        with self._lock:
            subscription = self._state.subscriptions.get(sid)
        if subscription is None:
            return 404, {}, {"error": "Not Found", "message": "no such subscription"}
        self._count(sid, "received")
        fault = self._take_fault(sid)
        if fault is not None:
            self._count(sid, "faulted")
            extra = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
            return fault.status, extra, {"error": "programmed fault", "message": f"answering {fault.status}"}
        if subscription.gone:
            self._count(sid, "rejected")
            return 410, {}, {"error": "Gone", "message": "the subscription has expired"}
        try:
            subject = self._check_vapid(headers.get("Authorization"), subscription)
            ttl = headers.get("TTL")
            if ttl is None or not ttl.strip().isdigit():
                raise _Rejection(400, "the TTL header is required (seconds)")
            if (headers.get("Content-Encoding") or "").strip().lower() != "aes128gcm":
                raise _Rejection(400, "Content-Encoding must be aes128gcm")
            urgency = headers.get("Urgency")
            if urgency is not None and urgency not in _URGENCIES:
                raise _Rejection(400, "Urgency must be very-low, low, normal or high")
            topic = headers.get("Topic")
            if topic is not None and not _TOPIC.fullmatch(topic):
                raise _Rejection(400, "Topic must be at most 32 base64url characters")
            if len(body) > self.max_body_bytes:
                raise _Rejection(413, f"the body is larger than {self.max_body_bytes} bytes")
            try:
                plaintext = http_ece.decrypt(
                    body,
                    private_key=subscription.private_key,
                    auth_secret=subscription.auth,
                    version="aes128gcm",
                )
            except (
                Exception
            ) as exc:  # http_ece raises ECEException, struct.error, ValueError …: all "garbage"
                raise _Rejection(400, f"the body does not decrypt: {type(exc).__name__}") from exc
        except _Rejection as rejection:
            self._count(sid, "rejected")
            return rejection.status, {}, {"error": "Rejected", "message": rejection.message}
        try:
            document = json.loads(plaintext)
        except ValueError:
            document = None
        delivery = Delivery(
            subscription_id=sid,
            headers={
                name: headers[name] for name in ("TTL", "Urgency", "Topic") if headers.get(name) is not None
            },
            plaintext=bytes(plaintext),
            json=document,
            received_at=self.clock(),
            vapid_subject=subject,
        )
        with self._lock:
            self._state.deliveries.append(delivery)
        self._count(sid, "decrypted")
        return 201, {"Location": f"{self.origin}/message/{uuid.uuid4().hex}"}, {}


def _post_key(delivery: Delivery) -> Hashable:
    if isinstance(delivery.json, dict) and delivery.json.get("post_id") is not None:
        return (delivery.subscription_id, str(delivery.json["post_id"]))
    return None


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as push services speak it."""

    protocol_version = "HTTP/1.1"
    server_version = "HeraldLocalPush/1"
    service: LocalPushService
    timeout = 30  # an idle keep-alive connection is closed after this

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the deliveries and stats say what happened; no per-request noise on stderr

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        try:
            return self.rfile.read(int(length))
        except ValueError:
            return None

    def _answer(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload in (None, {}) else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path in ("", "/"):
            self._answer(200, self.service.summary())
        elif parts.path == "/deliveries":
            wanted = parse_qs(parts.query).get("subscription", [None])[0]
            self._answer(200, [d.as_dict() for d in self.service.received(wanted)])
        else:
            self._answer(404, {"error": "Not Found"})

    def do_POST(self) -> None:
        body = self._body()
        if body is None:
            self._answer(411, {"error": "Length Required"})
            self.close_connection = True
            return
        path = urlsplit(self.path).path
        if path == "/subscriptions":
            self._new_subscription(body)
            return
        match = _PUSH_PATH.fullmatch(path)
        if match is None:
            self._answer(404, {"error": "Not Found"})
            return
        bad = self.service._take_misbehaviour(match.group(1))
        if bad is not None:
            self.service._count(match.group(1), "received")
            self.service._count(match.group(1), "faulted")
            self._misbehave(match.group(1), bad)
            self.close_connection = True
            return
        status, headers, payload = self.service._accept(match.group(1), self.headers, body)
        self._answer(status, payload or None, headers)

    # -- a hostile push service ---------------------------------------------------------------------

    def _peer_closed(self) -> bool:
        """The sender hung up: the socket reads as closed (EOF or reset), checked without blocking."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _misbehave(self, sid: str, bad: _Misbehaving) -> None:
        record = Misbehaved(sid, bad.mode, time.monotonic())
        with self.service._lock:
            self.service._state.misbehaved.append(record)
        stopping = self.service._stopping
        head = (
            f"HTTP/1.1 {bad.status} Misbehaving\r\nContent-Type: application/json\r\n"
            f"Content-Length: {bad.body_bytes}\r\n\r\n"
        ).encode("ascii")
        ended = "complete"
        try:
            if bad.mode == "hang":
                while not stopping.wait(0.05):
                    if self._peer_closed():
                        ended = "client closed"
                        break
                else:
                    ended = "stopped"
            elif bad.mode == "huge":
                self.wfile.write(head)
                record.bytes_written += len(head)
                left = bad.body_bytes
                while left > 0:
                    if stopping.is_set():
                        ended = "stopped"
                        break
                    chunk = _CHUNK if left >= len(_CHUNK) else _CHUNK[:left]
                    self.wfile.write(chunk)
                    record.bytes_written += len(chunk)
                    left -= len(chunk)
            else:
                if bad.mode == "trickle-body":
                    self.wfile.write(head)
                    record.bytes_written += len(head)
                    stream = (b"x" for _ in range(bad.body_bytes))
                else:
                    everything = itertools.chain(head, itertools.repeat(0x78, bad.body_bytes))
                    stream = (bytes([b]) for b in everything)
                for one in stream:
                    if stopping.wait(bad.interval_s):
                        ended = "stopped"
                        break
                    if self._peer_closed():
                        ended = "client closed"
                        break
                    self.wfile.write(one)
                    record.bytes_written += 1
        except OSError:  # BrokenPipeError, ConnectionResetError: the sender hung up mid-write
            ended = "client closed"
        with self.service._lock:
            record.ended = ended
            record.ended_after_s = time.monotonic() - record.started_at

    def _new_subscription(self, body: bytes) -> None:
        key = None
        if body.strip():
            try:
                request = json.loads(body)
                key = request.get("applicationServerKey") if isinstance(request, dict) else None
                if key is not None:
                    load_public_key(str(key))
            except (ValueError, VapidError, binascii.Error):
                self._answer(400, {"error": "applicationServerKey must be a base64url P-256 public key"})
                return
        self._answer(201, self.service.new_subscription(key))


__all__ = ["MISBEHAVIOURS", "Delivery", "LocalPushService", "Misbehaved"]


def main(argv: list[str] | None = None) -> None:
    """``python -m herald_tools.localcloud.pushservice [--host H] [--port P]``: serve until stdin closes
    or Ctrl-C; the first line printed is JSON with the ``origin``."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with LocalPushService(args.host, args.port) as push:
        print(json.dumps({"origin": push.origin}), flush=True)
        # Reading stdin to its end: the parent closing the pipe (or exiting) stops the service.
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()


if __name__ == "__main__":
    main()
