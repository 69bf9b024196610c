"""Sending a Web Push message (RFC 8030), encrypted with aes128gcm (RFC 8291), signed with VAPID (RFC 8292).

Each message gets a new ephemeral ECDH key and a random salt; the body is one record of at most
4,096 bytes. The request goes out on a keep-alive connection of the sender's own small HTTP/1.1
client (:class:`PushConnections`: one POST, one status and a bounded answer are all a push needs),
so a fan-out to a push service opens a handful of TLS connections, not one per subscriber.

A push endpoint is a URL a stranger handed in, so the sender trusts nothing about the other end:

* **Where it connects.** Before each message the endpoint is checked
  (:func:`herald.members.endpoints.check_endpoint`) with the addresses its host resolved to at most
  ``resolve_ttl_s`` ago, and the connection goes to one of exactly those addresses (the TLS name and
  ``Host`` stay the host name): a name that resolved to a public address when the member joined and
  to ``169.254.169.254`` later (DNS rebinding) is refused once its checked answer is renewed, and
  one that changes between the check and the connection cannot win either, because nothing
  resolves it a second time: the verdict is kept per scheme and host with the addresses it judged,
  and a connection is pooled under the checked address it was opened to.
* **How long it may take.** Each request has a wall-clock deadline (``deadline_s``, connect to last
  byte). Every socket operation (connect, TLS handshake, send, each read) is given what is left of
  it as its timeout, so a service that trickles a byte every few seconds is cut off when the
  deadline comes, without a timer thread.
* **How much it reads.** At most ``max_response_bytes`` of the answer (undecoded: a gzip bomb stays
  compressed), then the connection is closed instead of going back to the pool.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import os
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec

from herald.fanout.channels.payload import MAX_PAYLOAD_BYTES, PayloadTooLarge
from herald.fanout.channels.vapid import VapidError, b64url_decode, b64url_encode, origin_of
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
#: What the endpoint policy refuses anywhere in a URL (``herald.members.endpoints``): such a URL
#: takes the uncached check, which names the problem.
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True, slots=True)
class Timeout:
    """Per socket operation, in seconds: ``connect`` (TCP and the TLS handshake), ``read`` (each
    read, and sending the request). The whole request is bounded by the deadline."""

    connect: float = 3.0
    read: float = 10.0


DEFAULT_TIMEOUT = Timeout(connect=3.0, read=10.0)
#: Connect to last byte. Well inside the delivery lease (60 s): a push still running when its
#: lease ends could be claimed and sent by a second sender.
DEFAULT_DEADLINE_S = 15.0
#: A push service answers with a status and at most a short error document; nothing more is read.
MAX_RESPONSE_BYTES = 64 * 1024
#: The status line and headers of an answer: more is not an answer from a push service.
MAX_HEAD_BYTES = 64 * 1024
#: aes128gcm record size: the whole body is one record (push services accept at most 4,096 bytes).
RECORD_SIZE = 4096
#: How long a host's checked addresses are used before it is resolved and checked again.
RESOLVE_TTL_S = 60.0
_RESOLVED_MAX = 1024
_POOLS_MAX = 256
_DEFAULT_PORTS = {"https": 443, "http": 80}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


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
    if type(subscription) is dict and type(keys := subscription.get("keys")) is dict:
        # The stored target's form (a JSON dict): no abstract-class checks.
        return str(subscription["endpoint"]), b64url_decode(keys["p256dh"]), b64url_decode(keys["auth"])
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
    origin: str = ""  # the push service's origin, VAPID's ``aud`` (``vapid.origin_of``)


@dataclass(frozen=True, slots=True)
class _Verdict:
    """The policy's answer for one scheme and host, with the addresses it judged, until ``expires``."""

    expires: float
    refusal: str | None  # the UnsafeEndpoint message, or None: allowed
    host: str = ""
    port: int = 0
    host_header: str = ""
    addresses: tuple[str, ...] = ()
    origin: str = ""


def _ordered(addresses: Sequence[str]) -> tuple[str, ...]:
    """IPv4 first: Lambda functions outside a VPC have no IPv6 route; each address once."""
    unique = list(dict.fromkeys(addresses))
    return tuple(sorted(unique, key=lambda a: ipaddress.ip_address(a.split("%", 1)[0]).version))


def _split_origin(url: object) -> tuple[str, str, str] | None:
    """(lower-case scheme, netloc as written, request target) of an ASCII ``http(s)://`` URL, split
    as ``urllib.parse.urlsplit`` splits it; None for anything else (the uncached check judges it)."""
    if not isinstance(url, str) or not url.isascii() or _CONTROL_OR_SPACE.search(url):
        return None
    colon = url.find(":")
    if colon <= 0 or not url.startswith("//", colon + 1):
        return None
    scheme = url[:colon].lower()
    if scheme not in _DEFAULT_PORTS:
        return None
    start = colon + 3
    end = len(url)
    for delimiter in "/?#":
        found = url.find(delimiter, start)
        if 0 <= found < end:
            end = found
    path, _, query = url[end:].split("#", 1)[0].partition("?")
    return scheme, url[start:end], (path or "/") + (f"?{query}" if query else "")


# ----------------------------------------------------------------------------- the HTTP client


class ConnectFailed(Exception):
    """No connection to this address (refused, unreachable, timed out): the next address may do."""

    def __init__(self, detail: str, *, cut: bool = False) -> None:
        super().__init__(detail)
        self.cut = cut  # the deadline ended it


class NoAnswer(Exception):
    """The request went wrong before a status came (TLS, reset, a read timeout, not HTTP)."""

    def __init__(self, detail: str, *, cut: bool = False) -> None:
        super().__init__(detail)
        self.cut = cut  # the deadline ended it


@dataclass(frozen=True, slots=True)
class Answer:
    """A push service's answer: the status, its headers (lower-case names), at most ``limit + 1``
    bytes of the body as sent (no content decoding), and why the body ended early: ``""`` (it did
    not, or it was over the limit), ``"deadline"``, or the name of what broke it off."""

    status: int
    headers: Mapping[str, str]
    data: bytes
    problem: str = ""


class Transport(Protocol):
    """Sends one POST to a checked address: :class:`PushConnections`."""

    def post(
        self,
        address: str,
        where: Destination,
        headers: Mapping[str, str],
        body: bytes,
        *,
        deadline: float,
        limit: int,
    ) -> Answer: ...

    def close(self) -> None: ...


class _Deadline(Exception):
    pass


class _ReadTimeout(Exception):
    pass


class _BadAnswer(Exception):
    pass


_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_LINE = re.compile(r"\r?\n")


class _Reader:
    """Reads one connection's answer, each read given what is left of the deadline (at most the read
    timeout): a service that trickles is cut off at the deadline, not a read timeout later."""

    __slots__ = ("buf", "clock", "deadline", "read_timeout", "sock")

    def __init__(self, sock: socket.socket, deadline: float, read_timeout: float, clock: Callable[[], float]):
        self.sock = sock
        self.deadline = deadline
        self.read_timeout = read_timeout
        self.clock = clock
        self.buf = bytearray()

    def fill(self) -> bool:
        """Reads what has come (waiting for it); False when the other end has closed."""
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            raise _Deadline
        bounded_by_deadline = remaining <= self.read_timeout
        self.sock.settimeout(remaining if bounded_by_deadline else self.read_timeout)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            if bounded_by_deadline:
                raise _Deadline from None
            raise _ReadTimeout from None
        if not chunk:
            return False
        self.buf += chunk
        return True

    def line(self, limit: int = 4096) -> bytes:
        while (end := self.buf.find(b"\n")) < 0:
            if len(self.buf) > limit:
                raise _BadAnswer("a chunk line over 4 KiB")
            if not self.fill():
                raise _BadAnswer("IncompleteRead")
        line = bytes(self.buf[:end]).rstrip(b"\r")
        del self.buf[: end + 1]
        return line

    def head(self) -> tuple[str, int, dict[str, str]]:
        """HTTP version, status and headers of the final answer (interim 1xx answers skipped)."""
        while True:
            searched = 0
            while (match := _END_OF_HEAD.search(self.buf, max(0, searched - 3))) is None:
                searched = len(self.buf)
                if searched > MAX_HEAD_BYTES:
                    raise _BadAnswer(f"answer headers over {MAX_HEAD_BYTES:,} bytes")
                if not self.fill():
                    detail = "the push service closed the connection"
                    raise _BadAnswer(f"RemoteDisconnected: {detail}" + (" mid-answer" if self.buf else ""))
            if match.start() > MAX_HEAD_BYTES:
                raise _BadAnswer(f"answer headers over {MAX_HEAD_BYTES:,} bytes")
            text = bytes(self.buf[: match.start()]).decode("latin-1")
            del self.buf[: match.end()]
            status_line, *lines = _LINE.split(text)
            version, _, rest = status_line.partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
                raise _BadAnswer(f"BadStatusLine: {status_line[:60]!r}")
            status = int(code)
            if 100 <= status < 200 and status != 101:
                continue  # 100 Continue and the like: the answer follows
            headers: dict[str, str] = {}
            last = ""
            for line in lines:
                if line[:1] in (" ", "\t") and last:
                    headers[last] = f"{headers[last]} {line.strip()}"
                    continue
                name, colon, value = line.partition(":")
                if not colon:
                    continue
                last = name.strip().lower()
                value = value.strip()
                headers[last] = f"{headers[last]}, {value}" if last in headers else value
            return version, status, headers

    def body(self, status: int, headers: Mapping[str, str], limit: int) -> tuple[bytes, str, bool]:
        """(at most ``limit + 1`` bytes of the body, the problem, whether the connection can be reused)."""
        if status < 200:  # 101: the connection is no longer HTTP
            return b"", "", False
        if status in (204, 304):
            return b"", "", not self.buf
        coding = headers.get("transfer-encoding")
        if coding is not None:
            if coding.rsplit(",", 1)[-1].strip().lower() == "chunked":
                return self._chunked(limit)
            return self._until_close(limit)
        length = headers.get("content-length")
        if length is None:
            return self._until_close(limit)
        values = {v.strip() for v in length.split(",")}
        if len(values) != 1 or not (size := values.pop()).isdigit():
            return b"", f"InvalidHeader: Content-Length {length[:40]!r}", False
        return self._sized(int(size), limit)

    def _sized(self, size: int, limit: int) -> tuple[bytes, str, bool]:
        want = min(size, limit + 1)
        problem = ""
        try:
            while len(self.buf) < want:
                if not self.fill():
                    problem = "IncompleteRead"
                    break
        except _Deadline:
            problem = "deadline"
        except (_ReadTimeout, OSError) as exc:
            problem = "ReadTimeout" if isinstance(exc, _ReadTimeout) else type(exc).__name__
        data = bytes(self.buf[:want])
        return data, problem, not problem and want == size and len(self.buf) == size

    def _until_close(self, limit: int) -> tuple[bytes, str, bool]:
        problem = ""
        try:
            while len(self.buf) <= limit and self.fill():
                pass
        except _Deadline:
            problem = "deadline"
        except (_ReadTimeout, OSError) as exc:
            problem = "ReadTimeout" if isinstance(exc, _ReadTimeout) else type(exc).__name__
        return bytes(self.buf[: limit + 1]), problem, False

    def _chunked(self, limit: int) -> tuple[bytes, str, bool]:
        data = bytearray()
        try:
            while True:
                size_text = self.line().split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    return bytes(data), "InvalidChunkLength", False
                if size == 0:
                    while self.line():  # trailers, up to the empty line
                        pass
                    return bytes(data), "", not self.buf
                need = min(size, limit + 1 - len(data))
                while len(self.buf) < need:
                    if not self.fill():
                        return bytes(data + self.buf), "IncompleteRead", False
                data += self.buf[:need]
                del self.buf[:need]
                if len(data) > limit:
                    return bytes(data), "", False
                if self.line():  # the CRLF after the chunk's data
                    return bytes(data), "InvalidChunk", False
        except _Deadline:
            return bytes(data), "deadline", False
        except _BadAnswer as exc:
            return bytes(data), str(exc).split(":", 1)[0], False
        except (_ReadTimeout, OSError) as exc:
            return bytes(data), "ReadTimeout" if isinstance(exc, _ReadTimeout) else type(exc).__name__, False


def _idle_and_clean(sock: socket.socket) -> bool:
    """A pooled connection still open with nothing unread (a push service closes idle ones)."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


class PushConnections:
    """Keep-alive HTTP/1.1 connections to checked addresses; thread-safe, one per sender.

    A connection is pooled under (scheme, address, port, TLS name): it is only ever reused for the
    address it was opened to. Up to ``max_per_host`` idle connections are kept per key; a burst
    beyond that opens more, which are closed when done. A connection whose answer was not read to
    its end (over the limit, cut off, broken) is closed, never pooled. ``tls`` is the
    ``ssl.SSLContext`` for https (default: ``ssl.create_default_context()``, made on first use:
    the system's CAs, the host name checked).
    """

    def __init__(
        self,
        max_per_host: int = 10,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.max_per_host = max_per_host
        self.timeout = timeout
        self.clock = clock
        self._tls = tls
        self._idle: dict[tuple[str, str, int, str], list[socket.socket]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0  # connections opened: pooling's effect, for tests and benches

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
        lines = [f"POST {where.target} HTTP/1.1\r\n"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
                raise ValueError(f"header {name[:40]!r} would break the request")
            lines.append(f"{name}: {value}\r\n")
        lines.append("Accept-Encoding: identity\r\n\r\n")
        request = "".join(lines).encode("latin-1") + body
        key = (where.scheme, address, where.port, where.host)
        sock = self._take(key)
        if sock is None:
            sock = self._connect(address, where, deadline)
        reader = _Reader(sock, deadline, self.timeout.read, self.clock)
        try:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise _Deadline
            sock.settimeout(min(remaining, self.timeout.read))
            try:
                sock.sendall(request)
            except TimeoutError:
                raise (_Deadline if remaining <= self.timeout.read else _ReadTimeout) from None
            version, status, answer_headers = reader.head()
            data, problem, reusable = reader.body(status, answer_headers, limit)
        except _Deadline:
            _close(sock)
            raise NoAnswer("deadline", cut=True) from None
        except _ReadTimeout:
            _close(sock)
            raise NoAnswer(
                f"ReadTimeoutError: no answer within the {self.timeout.read:g} s read timeout"
            ) from None
        except _BadAnswer as exc:
            _close(sock)
            raise NoAnswer(str(exc)) from None
        except OSError as exc:
            _close(sock)
            raise NoAnswer(f"{type(exc).__name__}: {exc}") from None
        except BaseException:
            _close(sock)
            raise
        connection = answer_headers.get("connection", "").lower()
        keep = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
        if reusable and keep and len(data) <= limit:
            self._give(key, sock)
        else:
            _close(sock)
        return Answer(status, answer_headers, data, problem)

    def _take(self, key: tuple[str, str, int, str]) -> socket.socket | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                sock = idle.pop()
            if _idle_and_clean(sock):
                return sock
            _close(sock)

    def _give(self, key: tuple[str, str, int, str], sock: socket.socket) -> None:
        with self._lock:
            if not self._closed:
                idle = self._idle.get(key)
                if idle is None:
                    if len(self._idle) >= _POOLS_MAX:
                        for old in self._idle.pop(next(iter(self._idle))):
                            _close(old)
                    idle = self._idle[key] = []
                if len(idle) < self.max_per_host:
                    idle.append(sock)
                    return
        _close(sock)

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            with self._lock:
                if self._tls is None:
                    self._tls = ssl.create_default_context()
        return self._tls

    def _connect(self, address: str, where: Destination, deadline: float) -> socket.socket:
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise ConnectFailed("deadline", cut=True)
        try:
            # A numeric address: getaddrinfo only parses it, nothing is resolved.
            sock = socket.create_connection(
                (address, where.port), timeout=min(self.timeout.connect, remaining)
            )
        except OSError as exc:
            raise ConnectFailed(f"{type(exc).__name__}: {exc}", cut=self.clock() >= deadline) from exc
        self.opened += 1
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if where.scheme != "https":
                return sock
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise _Deadline
            sock.settimeout(min(self.timeout.connect, remaining))
            try:
                # The TLS name is the host's (SNI and the certificate check), the socket the address's.
                return self._context().wrap_socket(sock, server_hostname=where.host)
            except TimeoutError:
                raise (_Deadline if remaining <= self.timeout.connect else _ReadTimeout) from None
        except _Deadline:
            _close(sock)
            raise NoAnswer("deadline", cut=True) from None
        except _ReadTimeout:
            _close(sock)
            raise NoAnswer(
                f"ConnectTimeoutError: no TLS handshake within {self.timeout.connect:g} s"
            ) from None
        except OSError as exc:
            _close(sock)
            raise NoAnswer(f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        """Close the idle connections; those in use are closed when their request ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for socks in idle.values():
            for sock in socks:
                _close(sock)


# ----------------------------------------------------------------------------- the sender


class WebPushSender:
    """Sends Web Push messages; thread-safe, one per container (it owns the connection pool).

    ``signer`` gives the ``Authorization`` header (a :class:`herald.fanout.channels.vapid.VapidSigner`);
    ``transport`` defaults to :class:`PushConnections` (keep-alive, up to ``max_connections_per_host``
    idle connections per address: at least as many as the threads that share the sender); ``ttl`` is
    how long (seconds) the push service keeps a message for a subscriber that is offline; ``clock``
    (seconds since the epoch) reads ``Retry-After`` dates.

    ``policy`` is the endpoint policy (default: https on port 443 to public addresses only);
    ``resolve`` (``host, port -> addresses``) is the resolver whose answers are checked and connected
    to; a verdict is kept ``resolve_ttl_s`` per scheme and host. ``deadline_s`` bounds each request
    from connect to last byte, ``max_response_bytes`` how much of an answer is read.
    """

    def __init__(
        self,
        signer: Any,
        transport: Transport | None = None,
        ttl: int = 86400,
        clock: Callable[[], float] = time.time,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
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
        self.transport: Transport = (
            transport
            if transport is not None
            else PushConnections(max_connections_per_host, timeout=timeout, clock=monotonic)
        )
        self.ttl = ttl
        self.clock = clock
        self.timeout = timeout
        self.policy = policy if policy is not None else EndpointPolicy()
        self.resolve = resolve
        self.deadline_s = deadline_s
        self.max_response_bytes = max_response_bytes
        self.resolve_ttl_s = resolve_ttl_s
        self.monotonic = monotonic
        self._verdicts: dict[tuple[str, str], _Verdict] = {}
        self._verdicts_lock = threading.Lock()

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

        The addresses are the resolver's answer that :func:`check_endpoint` judged; the verdict
        (allowed with those addresses, or refused and why) is kept ``resolve_ttl_s`` per scheme
        and host as written, and the request connects to those addresses and to nothing resolved
        later. A host that does not resolve is not kept: the next message asks again.
        """
        split = _split_origin(endpoint)
        if split is None:
            # Not ASCII, a control character, not http(s)://: judged each time (the check names
            # the problem; such a URL is refused before anything is resolved).
            verdict = self._judge(endpoint, self.monotonic())
            if verdict.refusal is not None:
                raise UnsafeEndpoint(verdict.refusal)
            parts = urlsplit(endpoint)
            scheme = parts.scheme.lower()
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        else:
            scheme, netloc, target = split
            now = self.monotonic()
            cached = self._verdicts.get((scheme, netloc))
            if cached is None or cached.expires <= now:
                cached = self._judge(endpoint, now)
                with self._verdicts_lock:
                    if len(self._verdicts) >= _RESOLVED_MAX:
                        self._verdicts.clear()
                    self._verdicts[(scheme, netloc)] = cached
            verdict = cached
            if verdict.refusal is not None:
                raise UnsafeEndpoint(verdict.refusal)
        return Destination(
            scheme, verdict.host, verdict.port, verdict.host_header, target, verdict.addresses, verdict.origin
        )

    def _judge(self, endpoint: str, now: float) -> _Verdict:
        checked: list[str] = []

        def pinned(host: str, port: int) -> list[str]:
            checked[:] = self.resolve(host, port)
            return list(checked)

        expires = now + self.resolve_ttl_s
        try:
            normalised = check_endpoint(endpoint, self.policy, resolve=pinned)
        except EndpointUnresolvable:
            raise
        except UnsafeEndpoint as exc:
            return _Verdict(expires, str(exc))
        split = urlsplit(normalised)
        scheme = split.scheme
        host = split.hostname or ""
        port = split.port or _DEFAULT_PORTS[scheme]
        netloc = f"[{host}]" if ":" in host else host
        host_header = netloc if port == _DEFAULT_PORTS[scheme] else f"{netloc}:{port}"
        try:
            origin = origin_of(endpoint)
        except VapidError:
            origin = ""
        return _Verdict(expires, None, host, port, host_header, _ordered(checked), origin)

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
        by_origin = getattr(self.signer, "header_for_origin", None)
        headers = {
            "Host": where.host_header,
            "TTL": str(self.ttl if ttl is None else ttl),
            "Urgency": urgency,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(body)),
            # The origin was worked out with the verdict: the signer's cache is asked directly.
            "Authorization": by_origin(where.origin)
            if by_origin is not None and where.origin
            else self.signer.header_for(endpoint),
        }
        if topic:
            headers["Topic"] = push_topic(topic)
        return self._post(where, body, headers)

    # -- one request, bounded in time and size -----------------------------------------------------

    def _post(self, where: Destination, body: bytes, headers: dict[str, str]) -> DeliveryResult:
        deadline = self.monotonic() + self.deadline_s
        problem = "no address"
        cut = False
        for address in where.addresses:
            try:
                answer = self.transport.post(
                    address, where, headers, body, deadline=deadline, limit=self.max_response_bytes
                )
            except ConnectFailed as exc:
                # Refused, unreachable, timed out (an IPv6 address without a route): the next address.
                problem, cut = str(exc), exc.cut
                if cut:
                    break
                continue
            except NoAnswer as exc:
                if exc.cut:
                    return network_failure(f"no answer within the {self.deadline_s:g} s deadline: cut off")
                return network_failure(str(exc)[:300])
            return self._answer(answer)
        if cut:
            return network_failure(f"no connection within the {self.deadline_s:g} s deadline: cut off")
        return network_failure(problem[:300])

    def _answer(self, answer: Answer) -> DeliveryResult:
        """The status stands; the body was read up to the limit and the deadline, for the log's detail."""
        limit = self.max_response_bytes
        data = answer.data
        cut = ""
        if len(data) > limit:
            cut = f"answer cut off: more than {limit:,} bytes"
            data = data[:limit]
        elif answer.problem == "deadline":
            cut = f"answer cut off at the {self.deadline_s:g} s deadline after {len(data):,} bytes"
        elif answer.problem:
            cut = f"answer broken off after {len(data):,} bytes ({answer.problem})"
        status = answer.status
        # The answer is the other end's text: control characters become spaces (logs, the record).
        detail = "" if status < 300 else _CONTROL.sub(" ", data[:300].decode("utf-8", "replace")).strip()
        if cut:
            detail = f"{cut}; {detail}" if detail else cut
        retry_after = answer.headers.get("retry-after")
        # The clock is read only to turn a Retry-After date into seconds.
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC) if retry_after is not None else _EPOCH
        result = http_result(status, retry_after, now, detail[:300])
        return DeliveryResult(result.outcome, result.status, result.retry_after_s, result.detail, len(data))

    def close(self) -> None:
        """Close the pooled connections."""
        self.transport.close()
