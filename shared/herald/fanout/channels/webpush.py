"""Sending a Web Push message (RFC 8030), encrypted with aes128gcm (RFC 8291), signed with VAPID (RFC 8292).

Each message gets a new ephemeral ECDH key and a random salt; the body is one record of at most
4,096 bytes. Connections are kept in one ``urllib3.PoolManager`` per sender, so a fan-out to a push
service opens a handful of TLS connections, not one per subscriber.

A push endpoint is a URL a stranger handed in, so the sender trusts nothing about the other end:

* **Where it connects.** Before each message the endpoint is checked again
  (:func:`herald.members.endpoints.check_endpoint`) with the addresses its host resolves to *now*, and
  the connection goes to one of exactly those addresses (the TLS name and ``Host`` stay the host
  name): a name that resolved to a public address when the member joined and to
  ``169.254.169.254`` later (DNS rebinding) is refused, and one that changes between the check and
  the connection cannot win either, because nothing resolves it a second time.
* **How long it may take.** Each request has a wall-clock deadline (``deadline_s``, connect to last
  byte). Socket timeouts bound one read, not a service that trickles a byte every few seconds, so a
  watchdog thread shuts the socket of a request past its deadline down: a blocked connect, TLS
  handshake, header or body read returns at once.
* **How much it reads.** At most ``max_response_bytes`` of the answer (undecoded: a gzip bomb stays
  compressed), then the connection is closed instead of going back to the pool.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import math
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import http_ece
import urllib3
from cryptography.hazmat.primitives.asymmetric import ec
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from herald.fanout.channels.payload import MAX_PAYLOAD_BYTES, PayloadTooLarge
from herald.fanout.channels.vapid import b64url_decode, b64url_encode
from herald.fanout.delivery import DeliveryResult, Outcome, http_result, network_failure
from herald.members.endpoints import (
    EndpointPolicy,
    EndpointUnresolvable,
    UnsafeEndpoint,
    check_endpoint,
    system_resolve,
)

Urgency = Literal["very-low", "low", "normal", "high"]
URGENCIES: tuple[str, ...] = ("very-low", "low", "normal", "high")
Resolver = Callable[[str, int], list[str]]

#: RFC 8030 section 5.4: a topic is at most 32 characters of the URL-safe base64 alphabet.
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
#: Per socket operation; the whole request is bounded by ``DEFAULT_DEADLINE_S``.
DEFAULT_TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0)
#: Connect to last byte. Well inside the delivery lease (60 s): a push still running when its
#: lease ends could be claimed and sent by a second sender.
DEFAULT_DEADLINE_S = 15.0
#: A push service answers with a status and at most a short error document; nothing more is read.
MAX_RESPONSE_BYTES = 64 * 1024
#: aes128gcm record size: the whole body is one record (push services accept at most 4,096 bytes).
RECORD_SIZE = 4096
#: How long a host's checked addresses are used before it is resolved and checked again.
RESOLVE_TTL_S = 60.0
_RESOLVED_MAX = 1024
_DEFAULT_PORTS = {"https": 443, "http": 80}


class SubscriptionLike(Protocol):
    """A browser's push subscription: ``herald.members.rules.WebPushSubscription`` has this shape."""

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


# ----------------------------------------------------------------------------- the deadline


class _Cutoff:
    """One request's deadline and the connection it runs on; ``fire`` shuts that socket down."""

    __slots__ = ("_lock", "conn", "deadline", "fired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.conn: HTTPConnection | None = None
        self.fired = False
        self._lock = threading.Lock()

    def attach(self, conn: HTTPConnection) -> None:
        with self._lock:
            self.conn = conn
            if self.fired:
                _shut(conn)

    def detach(self) -> None:
        """The request is done with its connection (it goes back to the pool, maybe to another
        request): a late fire must not touch it."""
        with self._lock:
            self.conn = None

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            if self.conn is not None:
                _shut(self.conn)


def _shut(conn: HTTPConnection) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    # The plain socket's shutdown, also for a TLS socket: it only has to wake the blocked read.
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_current = threading.local()


def _attach(conn: HTTPConnection) -> None:
    cutoff: _Cutoff | None = getattr(_current, "cutoff", None)
    if cutoff is not None:
        cutoff.attach(conn)


class _Watchdog:
    """One daemon thread per sender: fires the cut-off of every request past its deadline.

    Only the requests in flight are watched (at most the sender's thread count), so each check is a
    scan of a handful of entries; the thread sleeps until the earliest deadline.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._active: set[_Cutoff] = set()
        self._thread: threading.Thread | None = None
        self._wake_at = math.inf
        self._stopped = False

    def watch(self, cutoff: _Cutoff) -> None:
        with self._cond:
            self._active.add(cutoff)
            if self._thread is None or not self._thread.is_alive():
                self._stopped = False
                self._thread = threading.Thread(target=self._run, name="push-deadlines", daemon=True)
                self._thread.start()
            elif cutoff.deadline < self._wake_at:
                self._cond.notify()

    def unwatch(self, cutoff: _Cutoff) -> None:
        with self._cond:
            self._active.discard(cutoff)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                now = self.clock()
                for cutoff in [c for c in self._active if c.deadline <= now]:
                    self._active.discard(cutoff)
                    cutoff.fire()
                self._wake_at = min((c.deadline for c in self._active), default=math.inf)
                self._cond.wait(None if self._wake_at == math.inf else max(0.0, self._wake_at - now))


class _WatchedHTTPConnection(HTTPConnection):
    """Registers itself with the request's cut-off before it connects and before each request."""

    def connect(self) -> None:
        _attach(self)
        super().connect()
        _attach(self)  # the cut-off may have fired while the socket did not exist yet

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        _attach(self)
        super().connect()
        _attach(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def pool_manager(max_connections_per_host: int = 10) -> urllib3.PoolManager:
    """The sender's default pool: keep-alive, connections that honour the request deadline."""
    # A burst beyond ``maxsize`` opens extra connections rather than waiting (urllib3's
    # block=False); those are closed on return, the pool keeps ``maxsize`` per push service address.
    http = urllib3.PoolManager(num_pools=64, maxsize=max_connections_per_host)
    http.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return http


# ----------------------------------------------------------------------------- where to connect


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked endpoint: connect to one of ``addresses``, name ``host`` in TLS and ``Host``."""

    scheme: str
    host: str  # IDNA, lower case: the TLS server name and the certificate's expected name
    port: int
    host_header: str
    target: str  # path and query, as the browser gave them
    addresses: tuple[str, ...]


def _ordered(addresses: Sequence[str]) -> tuple[str, ...]:
    """IPv4 first: Lambda functions outside a VPC have no IPv6 route; each address once."""
    unique = list(dict.fromkeys(addresses))
    return tuple(sorted(unique, key=lambda a: ipaddress.ip_address(a.split("%", 1)[0]).version))


# ----------------------------------------------------------------------------- the sender


class WebPushSender:
    """Sends Web Push messages; thread-safe, one per container (it owns the connection pool).

    ``signer`` gives the ``Authorization`` header (a :class:`herald.fanout.channels.vapid.VapidSigner`);
    ``http`` defaults to :func:`pool_manager` (keep-alive, deadline-aware connections); ``ttl`` is how
    long (seconds) the push service keeps a message for a subscriber that is offline; ``clock``
    (seconds since the epoch) reads ``Retry-After`` dates.

    ``policy`` is the endpoint policy (default: https on port 443 to public addresses only);
    ``resolve`` (``host, port -> addresses``) is the resolver whose answers are checked and connected
    to. ``deadline_s`` bounds each request from connect to last byte, ``max_response_bytes`` how much
    of an answer is read.
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
        policy: EndpointPolicy | None = None,
        resolve: Resolver = system_resolve,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        resolve_ttl_s: float = RESOLVE_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0:
            raise ValueError("ttl must be >= 0")
        if deadline_s <= 0:
            raise ValueError("deadline_s must be > 0")
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must be >= 0")
        self.signer = signer
        self.http = http if http is not None else pool_manager(max_connections_per_host)
        self.ttl = ttl
        self.clock = clock
        self.timeout = timeout
        self.policy = policy if policy is not None else EndpointPolicy()
        self.resolve = resolve
        self.deadline_s = deadline_s
        self.max_response_bytes = max_response_bytes
        self.resolve_ttl_s = resolve_ttl_s
        self.monotonic = monotonic
        self._watchdog = _Watchdog(monotonic)
        self._resolved: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}
        self._resolved_lock = threading.Lock()

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

    def destination(self, endpoint: str) -> Destination:
        """Where ``endpoint`` may be reached now: raises ``UnsafeEndpoint`` (``EndpointUnresolvable``
        when its host does not resolve) naming the problem.

        The addresses are the resolver's answer that :func:`check_endpoint` judged (cached for
        ``resolve_ttl_s``); the request connects to them and to nothing resolved later.
        """
        parts = urlsplit(endpoint)
        scheme = parts.scheme.lower()
        checked: list[str] = []

        def pinned(host: str, port: int) -> list[str]:
            checked[:] = self._addresses(host, port)
            return list(checked)

        normalised = check_endpoint(endpoint, self.policy, resolve=pinned)
        split = urlsplit(normalised)
        host = split.hostname or ""
        port = split.port or _DEFAULT_PORTS[scheme]
        netloc = f"[{host}]" if ":" in host else host
        host_header = netloc if port == _DEFAULT_PORTS[scheme] else f"{netloc}:{port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Destination(scheme, host, port, host_header, target, _ordered(checked))

    def _addresses(self, host: str, port: int) -> list[str]:
        now = self.monotonic()
        with self._resolved_lock:
            cached = self._resolved.get((host, port))
        if cached is not None and cached[0] > now:
            return list(cached[1])
        addresses = tuple(self.resolve(host, port))
        with self._resolved_lock:
            if len(self._resolved) >= _RESOLVED_MAX:
                self._resolved.clear()
            self._resolved[(host, port)] = (now + self.resolve_ttl_s, addresses)
        return list(addresses)

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
        ``Topic`` header with :func:`push_topic`. Never raises for what the subscription, the push
        service or the network does: that is in the result's outcome (a subscription whose keys do
        not encrypt, or whose endpoint the policy refuses, is ``prune``; a host that does not
        resolve, or an answer that does not come within the deadline, is ``retry``). Raises
        ``PayloadTooLarge`` for more than 3,993 bytes of payload and ``ValueError`` for a bad urgency.
        """
        if urgency not in URGENCIES:
            raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}")
        try:
            endpoint, p256dh, auth = _subscription_parts(subscription)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return DeliveryResult(Outcome.PRUNE, detail=f"malformed subscription: {type(exc).__name__}")
        try:
            where = self.destination(endpoint)
        except EndpointUnresolvable as exc:
            return network_failure(f"endpoint {exc}"[:300])
        except UnsafeEndpoint as exc:
            return DeliveryResult(Outcome.PRUNE, detail=f"endpoint refused: {exc}"[:300])
        try:
            body = encrypt(payload, p256dh, auth)
        except PayloadTooLarge:
            raise
        except Exception as exc:  # http_ece and cryptography raise ValueError, ECEException, struct.error …
            # A p256dh that is not a point on P-256 (stored before keys were validated) or an auth
            # secret of the wrong length: this subscription can never be pushed to.
            detail = f"the subscription's keys do not encrypt: {type(exc).__name__}: {exc}"
            return DeliveryResult(Outcome.PRUNE, detail=detail[:300])
        headers = self.headers(
            endpoint, len(body), topic=topic, urgency=urgency, ttl=self.ttl if ttl is None else ttl
        )
        headers["Host"] = where.host_header
        return self._post(where, body, headers)

    # -- one request, bounded in time and size -----------------------------------------------------

    def _post(self, where: Destination, body: bytes, headers: dict[str, str]) -> DeliveryResult:
        cutoff = _Cutoff(self.monotonic() + self.deadline_s)
        self._watchdog.watch(cutoff)
        _current.cutoff = cutoff
        try:
            return self._attempt(where, body, headers, cutoff)
        finally:
            _current.cutoff = None
            self._watchdog.unwatch(cutoff)

    def _timeout(self, cutoff: _Cutoff) -> urllib3.Timeout:
        remaining = max(0.001, cutoff.deadline - self.monotonic())
        connect = self.timeout.connect_timeout
        read = self.timeout.read_timeout
        return urllib3.Timeout(
            connect=min(connect, remaining) if isinstance(connect, int | float) else remaining,
            read=min(read, remaining) if isinstance(read, int | float) else remaining,
        )

    def _attempt(
        self, where: Destination, body: bytes, headers: dict[str, str], cutoff: _Cutoff
    ) -> DeliveryResult:
        problem = "no address"
        for address in where.addresses:
            # TLS names the host (SNI, the certificate's name), the socket the checked address.
            tls = {"server_hostname": where.host, "assert_hostname": where.host}
            pool_kwargs = tls if where.scheme == "https" else {}
            pool = self.http.connection_from_host(address, where.port, where.scheme, pool_kwargs=pool_kwargs)
            try:
                response = pool.urlopen(
                    "POST",
                    where.target,
                    body=body,
                    headers=headers,
                    timeout=self._timeout(cutoff),
                    retries=False,  # the retry policy decides, with backoff, not the transport
                    redirect=False,
                    assert_same_host=False,
                    preload_content=False,
                    release_conn=False,
                )
            except urllib3.exceptions.NewConnectionError as exc:
                # Refused or unreachable (an IPv6 address without a route): the next checked address.
                problem = f"{type(exc).__name__}: {exc}"
                if cutoff.fired:
                    break
                continue
            except urllib3.exceptions.HTTPError as exc:
                if cutoff.fired:
                    return network_failure(f"no answer within the {self.deadline_s:g} s deadline: cut off")
                return network_failure(f"{type(exc).__name__}: {exc}"[:300])
            return self._answer(response, cutoff)
        if cutoff.fired:
            return network_failure(f"no connection within the {self.deadline_s:g} s deadline: cut off")
        return network_failure(problem[:300])

    def _answer(self, response: Any, cutoff: _Cutoff) -> DeliveryResult:
        """The status stands; the body is read up to the limit and the deadline, for the log's detail."""
        limit = self.max_response_bytes
        data = b""
        failure = ""
        try:
            data = response.read(limit + 1, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            failure = f"{type(exc).__name__}"
        cut = ""
        if len(data) > limit:
            cut = f"answer cut off: more than {limit:,} bytes"
            data = data[:limit]
        elif cutoff.fired:
            cut = f"answer cut off at the {self.deadline_s:g} s deadline after {len(data):,} bytes"
        elif failure:
            cut = f"answer broken off after {len(data):,} bytes ({failure})"
        cutoff.detach()
        if cut:
            # Whatever is left of this answer must not be read by the next request: close, then
            # hand the (closed) connection back so the pool opens a fresh one.
            response.close()
        response.release_conn()
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        status = int(response.status)
        # The answer is the other end's text: control characters become spaces (logs, the record).
        detail = "" if status < 300 else _CONTROL.sub(" ", data[:300].decode("utf-8", "replace")).strip()
        if cut:
            detail = f"{cut}; {detail}" if detail else cut
        result = http_result(status, response.headers.get("Retry-After"), now, detail[:300])
        return replace(result, response_bytes=len(data))

    def close(self) -> None:
        """Close the pooled connections and stop the deadline thread."""
        self.http.clear()
        self._watchdog.stop()
