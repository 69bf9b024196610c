"""Sending a Web Push message (RFC 8030), encrypted with aes128gcm (RFC 8291), signed with VAPID (RFC 8292).

Each message gets a new ephemeral ECDH key and a random salt; the body is one record of at most
4,096 bytes. The request goes out on a keep-alive connection of the sender's own socket layer
(:class:`PushConnections`: the checked address, TLS, the deadline, the bounded reads), with ``h11``
writing the request and framing the answer (status line, headers, sized, chunked or until-close
bodies, interim answers, whether the connection may be used again), so a fan-out to a push
service opens a handful of TLS connections, not one per subscriber.

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
import errno
import hashlib
import ipaddress
import os
import re
import select
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import h11
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
_TEMPLATES_MAX = 64  # header sets whose h11 validation is kept (per PushConnections)
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


@dataclass(frozen=True, slots=True)
class Push:
    """One message ready to go (:meth:`WebPushSender.prepare`): where, its headers, its encrypted body."""

    where: Destination
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Request:
    """One POST for :meth:`PushConnections.exchange`: to the first of ``where.addresses`` that takes
    a connection (the next one when a connection is refused), connect to last byte by ``deadline``."""

    where: Destination
    headers: Mapping[str, str]
    body: bytes
    deadline: float


#: What came of one request on the loop: the answer, or why there is none.
Ending = Answer | NoAnswer | ConnectFailed


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


_T = TypeVar("_T")


class _Deadline(Exception):
    pass


class _ReadTimeout(Exception):
    pass


class _BadAnswer(Exception):
    pass


class _Stale(Exception):
    """A reused connection ended before any byte of its answer: the push service had closed it."""


#: At most this much is asked of the socket per read.
_RECV_BYTES = 65536
_IDENTITY = ("Accept-Encoding", "identity")
_END = h11.EndOfMessage()  # h11's events are immutable: one for every request


def _bounded(
    sock: socket.socket,
    deadline: float,
    per_operation: float,
    clock: Callable[[], float],
    operation: Callable[..., _T],
    *args: Any,
    **kwargs: Any,
) -> _T:
    """``operation(*args, **kwargs)`` on ``sock``, given what is left of the deadline (at most
    ``per_operation``) as its timeout: a service that trickles is cut off at the deadline
    (``_Deadline``), not an operation timeout later; a timeout of its own is ``_ReadTimeout``."""
    remaining = deadline - clock()
    if remaining <= 0:
        raise _Deadline
    bounded_by_deadline = remaining <= per_operation
    sock.settimeout(remaining if bounded_by_deadline else per_operation)
    try:
        return operation(*args, **kwargs)
    except TimeoutError:
        raise (_Deadline if bounded_by_deadline else _ReadTimeout) from None


def _receive(
    sock: socket.socket, deadline: float, read_timeout: float, clock: Callable[[], float], size: int
) -> bytes:
    """What has come (waiting for it, within the deadline and the read timeout), at most ``size``
    bytes; ``b""`` when the other end has closed."""
    return _bounded(sock, deadline, read_timeout, clock, sock.recv, size)


class _Link:
    """One connection, kept in the pool between whole exchanges."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


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


def _head_problem(exc: h11.RemoteProtocolError, closed: bool, fed: int) -> str:
    """Why an answer's head could not be read (h11 refused it, or the connection closed mid-way)."""
    if closed:
        return "RemoteDisconnected: the push service closed the connection" + (" mid-answer" if fed else "")
    if exc.error_status_hint == 431:
        return f"answer headers over {MAX_HEAD_BYTES:,} bytes"
    return f"RemoteProtocolError: {exc}"[:200]


@dataclass(frozen=True, slots=True)
class _Template:
    """A set of request headers, validated by h11 once: the bytes h11 writes for them (after the
    request line), and h11's parsed headers (for an exchange h11 frames)."""

    block: bytes
    headers: Any  # h11's Headers


#: The plain answer Herald frames itself (anything else goes to h11): ``HTTP/1.1``, a status and
#: an optional reason of visible characters, spaces and tabs; fields of a token, a colon and a value
#: of visible characters with inner spaces and tabs (no control characters, no folding).
_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([0-9]{3})(?: [\t\x20-\x7e\x80-\xff]*)?")
_FIELD = re.compile(
    rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*((?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?)[ \t]*"
)
_TARGET = re.compile(r"[\x21-\x7e]+")  # h11's request-target


class _Framing:
    """One exchange on a connection: the request's bytes, and its answer framed as its bytes come.

    Herald frames the plain answer push services give (a whole head of ``HTTP/1.1``, a final status
    but 204 and 304, well-formed fields, one ``Content-Length``, no ``Transfer-Encoding``) itself;
    any other (an interim answer, a chunked or until-close body, HTTP/1.0, bare line feeds, odd
    fields, a head over ``MAX_HEAD_BYTES``, a connection closed before the head) is handed with
    every byte so far to an ``h11`` state machine, which is told the request as it was written
    and frames the rest. The request's bytes are h11's: the header block h11 wrote for the
    template, after the request line.
    """

    __slots__ = (
        "body",
        "buffer",
        "closed",
        "data",
        "fed",
        "headers",
        "http",
        "keep",
        "length",
        "limit",
        "status",
        "target",
        "template",
        "wire",
    )

    def __init__(self, target: str, template: _Template, body: bytes, limit: int) -> None:
        if not _TARGET.fullmatch(target):
            raise ValueError("the request cannot be written: Illegal target characters")
        self.target = target
        self.template = template
        self.body = body
        self.limit = limit
        self.wire = b"POST " + target.encode("ascii") + b" HTTP/1.1\r\n" + template.block + body
        self.buffer = bytearray()  # the head, until it is framed
        self.fed = 0  # bytes of the head read
        self.http: h11.Connection | None = None
        self.status = 0  # 0 until the final head is framed
        self.headers: dict[str, str] = {}
        self.length = 0
        self.data = bytearray()
        self.closed = False
        self.keep = True  # whether the connection may go back to the pool after the answer

    def want(self) -> int:
        """How much to read next: the head is read up to ``MAX_HEAD_BYTES`` (and one more byte)."""
        return _RECV_BYTES if self.status else min(_RECV_BYTES, MAX_HEAD_BYTES + 1 - self.fed)

    def feed(self, chunk: bytes) -> Answer | None:
        """What came (``b""``: the connection closed): the answer once it is whole (or over the
        limit, or broken off after its head: ``problem``), else None. Raises ``_BadAnswer`` when
        what came is not an answer's head."""
        self.closed = not chunk
        if self.http is not None:
            if not self.status:
                self.fed += len(chunk)
            self.http.receive_data(chunk)
            return self._h11()
        if self.status:
            return self._body(chunk)
        self.fed += len(chunk)
        buffer = self.buffer
        buffer += chunk
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if chunk and self.fed <= MAX_HEAD_BYTES and b"\n\n" not in buffer and b"\n\r\n" not in buffer:
                return None
            return self._hand_over()
        if not self._plain_head(bytes(buffer[:end])):
            return self._hand_over()
        rest = bytes(buffer[end + 4 :])
        self.buffer = bytearray()
        return self._body(rest)

    def cut(self, problem: str) -> Answer:
        """The answer as far as it came, its body broken off (``problem``: what broke it off)."""
        return self._answer(problem)

    def _plain_head(self, head: bytes) -> bool:
        lines = head.split(b"\r\n")
        status_line = _STATUS_LINE.fullmatch(lines[0])
        if status_line is None:
            return False
        status = int(status_line.group(1))
        if status < 200 or status in (204, 304):
            return False
        headers: dict[str, str] = {}
        length = -1
        for line in lines[1:]:
            field = _FIELD.fullmatch(line)
            if field is None:
                return False
            raw_name, raw_value = field.groups()
            lowered = raw_name.lower()
            if lowered == b"content-length":
                if length >= 0 or not raw_value.isdigit() or len(raw_value) > 18:
                    return False
                length = int(raw_value)
            elif lowered == b"transfer-encoding":
                return False
            elif lowered == b"connection" and b"close" in {t.strip().lower() for t in raw_value.split(b",")}:
                self.keep = False
            name, value = lowered.decode("latin-1"), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if length < 0:
            return False
        self.status, self.headers, self.length = status, headers, length
        return True

    def _body(self, chunk: bytes) -> Answer | None:
        data = self.data
        if not chunk and self.closed:
            return self._answer("IncompleteRead")
        data += chunk
        if len(data) > self.limit:
            return self._answer("")  # over the limit: nothing more is read
        if len(data) < self.length:
            return None
        if len(data) > self.length:  # bytes after the answer's end: the connection is not used again
            self.keep = False
            del data[self.length :]
        return self._answer("")

    def _hand_over(self) -> Answer | None:
        """h11 frames this exchange from here: told the request, given every byte that came."""
        http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        http.send(h11.Request(method=b"POST", target=self.target, headers=self.template.headers))
        http.send(h11.Data(data=self.body))
        http.send(_END)
        self.http = http
        http.receive_data(bytes(self.buffer))
        self.buffer = bytearray()
        if self.closed:
            http.receive_data(b"")
        return self._h11()

    def _h11(self) -> Answer | None:
        http = self.http
        assert http is not None
        if not self.status:
            while True:
                try:
                    event = http.next_event()
                except h11.RemoteProtocolError as exc:
                    raise _BadAnswer(_head_problem(exc, self.closed, self.fed)) from None
                if event is h11.NEED_DATA:
                    if self.fed > MAX_HEAD_BYTES:
                        raise _BadAnswer(f"answer headers over {MAX_HEAD_BYTES:,} bytes")
                    return None
                if type(event) is h11.Response:
                    self.status = event.status_code
                    for raw_name, raw_value in event.headers:  # h11 gives the names lower-cased
                        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
                        self.headers[name] = (
                            f"{self.headers[name]}, {value}" if name in self.headers else value
                        )
                    break
                if type(event) is not h11.InformationalResponse:  # 100 Continue and the like: skipped
                    raise _BadAnswer(f"RemoteProtocolError: {type(event).__name__} instead of an answer")
        data = self.data
        try:
            while len(data) <= self.limit:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    return None
                if type(event) is h11.Data:
                    data += event.data
                elif type(event) is h11.EndOfMessage:
                    break
                else:
                    return self._answer(type(event).__name__)
        except h11.RemoteProtocolError as exc:
            return self._answer("IncompleteRead" if self.closed else f"RemoteProtocolError: {exc}"[:200])
        return self._answer("")

    def _answer(self, problem: str) -> Answer:
        http = self.http
        # Pooled only after a whole exchange both sides may follow with another (h11 says MUST_CLOSE
        # for Connection: close, HTTP/1.0 and bodies read until close), nothing unread.
        self.keep = (
            self.keep
            and not problem
            and len(self.data) <= self.limit
            and (
                http is None
                or (http.our_state is h11.DONE and http.their_state is h11.DONE and not http.trailing_data[0])
            )
        )
        return Answer(self.status, self.headers, bytes(self.data[: self.limit + 1]), problem)


# A request's stages on the loop: the TCP connection, the TLS handshake, writing the request,
# reading the answer's head, reading its body.
_TCP, _TLS, _SEND, _HEAD, _BODY, _ENDED = range(6)
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class _Flight:
    """One request on the loop: its stage, its connection, what is left to write, its framing
    (the answer so far), and when its current operation times out (``op_end``; ``op_cut``: that
    is the deadline)."""

    __slots__ = (
        "at",
        "framing",
        "fresh",
        "interest",
        "key",
        "link",
        "op_cut",
        "op_end",
        "request",
        "reused",
        "sock",
        "stage",
        "tag",
        "wire",
    )

    def __init__(self, tag: Any, request: Request, framing: _Framing) -> None:
        self.tag = tag
        self.request = request
        self.framing = framing
        self.at = 0  # which of the checked addresses
        self.key: tuple[str, str, int, str] = ("", "", 0, "")
        self.link: _Link | None = None
        self.sock: socket.socket | None = None  # the socket before its link exists (connecting)
        self.stage = _TCP
        self.wire = b""
        self.op_end = 0.0
        self.op_cut = False
        self.interest = 0  # the selector's events for the socket (0: not registered)
        self.reused = False  # on a pooled connection, nothing of the answer read yet
        self.fresh = False  # resent after a pooled connection was found closed: a new one only

    def arm(self, now: float, per_operation: float) -> None:
        """The next operation may take ``per_operation`` seconds, or what is left of the deadline."""
        deadline = self.request.deadline
        self.op_cut = deadline - now <= per_operation
        self.op_end = deadline if self.op_cut else now + per_operation


class PushConnections:
    """Keep-alive HTTP/1.1 connections to checked addresses; thread-safe, one per sender.

    Herald opens and reads the sockets (each operation bounded by the request's deadline); ``h11``
    (one ``h11.Connection`` per socket, kept with it) writes each request and frames each answer.
    A connection is pooled under (scheme, address, port, TLS name): it is only ever reused for the
    address it was opened to. Up to ``max_per_host`` idle connections are kept per key; a burst
    beyond that opens more, which are closed when done. A connection is closed, never pooled,
    when its answer was not read to its end (over the limit, cut off, broken), when h11 does not
    have both sides ``DONE`` after it (``Connection: close``, HTTP/1.0, a body read until close)
    or when bytes came after its end. ``tls`` is the ``ssl.SSLContext`` for https (default:
    ``ssl.create_default_context()``, made on first use: the system's CAs, the host name checked).
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
        self._idle: dict[tuple[str, str, int, str], list[_Link]] = {}
        self._templates: dict[tuple[tuple[str, str], ...], _Template] = {}
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
        framing = _Framing(where.target, self._template(headers), body, limit)
        key = (where.scheme, address, where.port, where.host)
        link = self._take(key)
        if link is not None:
            try:
                return self._exchange_on(key, link, framing, deadline, reused=True)
            except _Stale:
                # A pooled connection the push service had closed (it closes idle ones, and may
                # close one just as it is reused): nothing of the request was answered, so it goes
                # once more on a new connection (Chromium and urllib3 do the same).
                framing = _Framing(where.target, framing.template, body, limit)
        link = _Link(self._connect(address, where, deadline))
        return self._exchange_on(key, link, framing, deadline, reused=False)

    def _exchange_on(
        self, key: tuple[str, str, int, str], link: _Link, framing: _Framing, deadline: float, *, reused: bool
    ) -> Answer:
        """The request on ``link`` and its answer. Raises ``_Stale`` when the connection was
        ``reused`` and ended before any byte of the answer came; else what :meth:`post` raises."""
        sock = link.sock
        read = self.timeout.read
        try:
            _bounded(sock, deadline, read, self.clock, sock.sendall, framing.wire)
            answer = None
            while answer is None:
                try:
                    chunk = _receive(sock, deadline, read, self.clock, framing.want())
                except (_Deadline, _ReadTimeout, OSError) as exc:
                    if not framing.status:
                        raise
                    # After the head the status stands: the body is what came of it.
                    problem = "deadline" if isinstance(exc, _Deadline) else type(exc).__name__
                    answer = framing.cut("ReadTimeout" if isinstance(exc, _ReadTimeout) else problem)
                    break
                answer = framing.feed(chunk)
        except _Deadline:
            _close(sock)
            raise NoAnswer("deadline", cut=True) from None
        except _ReadTimeout:
            _close(sock)
            raise NoAnswer(f"ReadTimeoutError: no answer within the {read:g} s read timeout") from None
        except _BadAnswer as exc:
            _close(sock)
            if reused and framing.closed and framing.fed == 0:
                raise _Stale from None
            raise NoAnswer(str(exc)) from None
        except OSError as exc:
            _close(sock)
            if reused and framing.fed == 0:
                raise _Stale from None
            raise NoAnswer(f"{type(exc).__name__}: {exc}") from None
        except BaseException:
            _close(sock)
            raise
        if framing.keep:
            self._give(key, link)
        else:
            _close(sock)
        return answer

    def _template(self, headers: Mapping[str, str]) -> _Template:
        """The request's header block. A fan-out sends the same headers many times (one push service
        host, one VAPID header, one topic, one body length): h11 validates and writes each set once."""
        fields = tuple(headers.items())
        template = self._templates.get(fields)
        if template is None:
            try:
                request = h11.Request(method=b"POST", target="/", headers=[*fields, _IDENTITY])
                written = h11.Connection(h11.CLIENT).send(request) or b""
            except h11.LocalProtocolError as exc:
                raise ValueError(f"the request cannot be written: {exc}") from None
            template = _Template(written[written.index(b"\r\n") + 2 :], request.headers)
            if len(self._templates) >= _TEMPLATES_MAX:
                self._templates.clear()
            self._templates[fields] = template
        return template

    def _take(self, key: tuple[str, str, int, str]) -> _Link | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                link = idle.pop()
            if _idle_and_clean(link.sock):
                return link
            _close(link.sock)

    def _give(self, key: tuple[str, str, int, str], link: _Link) -> None:
        with self._lock:
            if not self._closed:
                idle = self._idle.get(key)
                if idle is None:
                    if len(self._idle) >= _POOLS_MAX:
                        for old in self._idle.pop(next(iter(self._idle))):
                            _close(old.sock)
                    idle = self._idle[key] = []
                if len(idle) < self.max_per_host:
                    idle.append(link)
                    return
        _close(link.sock)

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
            # The TLS name is the host's (SNI and the certificate check), the socket the address's.
            wrap = self._context().wrap_socket
            return _bounded(
                sock, deadline, self.timeout.connect, self.clock, wrap, sock, server_hostname=where.host
            )
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

    # -- many requests at once, on the calling thread ---------------------------------------------

    def exchange(
        self,
        requests: Iterable[tuple[Any, Request]],
        finish: Callable[[Any, Ending], None],
        *,
        in_flight: int,
        limit: int,
    ) -> None:
        """Send ``requests`` (tag, request), keeping up to ``in_flight`` of them going at once on
        this thread, and call ``finish(tag, ending)`` as each one ends: its :class:`Answer`, or the
        :class:`NoAnswer` or :class:`ConnectFailed` it came to, what :meth:`post` returns or raises.

        One ``selectors`` loop over non-blocking sockets: a connection is opened without waiting
        for it (the TLS handshake too: ``want read``/``want write``), a request is written as soon
        as its connection is ready and each answer is read and framed (``h11``) as its bytes come,
        so a slow push service holds up none of the others. ``requests`` is read one at a time when
        there is room (a message is encrypted just before it is written); each has its deadline
        and every operation its timeout, as in :meth:`post`. The pool is the same: connections are
        taken from it and given back to it as they are by :meth:`post`. Whatever ``requests`` or
        ``finish`` raise ends the loop, the connections still in flight closed.
        """
        selector = selectors.DefaultSelector()
        flights: list[_Flight] = []
        source = iter(requests)
        more = True
        clock = self.clock
        try:
            while True:
                while more and len(flights) < in_flight:
                    try:
                        tag, request = next(source)
                    except StopIteration:
                        more = False
                        break
                    try:
                        template = self._template(request.headers)
                        framing = _Framing(request.where.target, template, request.body, limit)
                    except ValueError as exc:
                        finish(tag, NoAnswer(f"ValueError: {exc}"))
                        continue
                    flight = _Flight(tag, request, framing)
                    ending = self._guarded(flight, selector, self._begin, clock())
                    if ending is None:
                        flights.append(flight)
                    else:
                        finish(tag, ending)
                if not flights:
                    return
                wait = min(f.op_end for f in flights) - clock()
                ended = 0
                for key, mask in selector.select(wait if wait > 0 else 0):
                    flight = key.data
                    ending = self._guarded(flight, selector, self._advance, mask)
                    if ending is not None:
                        flight.stage = _ENDED
                        ended += 1
                        finish(flight.tag, ending)
                now = clock()
                for flight in flights:
                    if flight.op_end <= now and flight.stage != _ENDED:
                        ending = self._guarded(flight, selector, self._expire, now)
                        if ending is not None:
                            flight.stage = _ENDED
                            ended += 1
                            finish(flight.tag, ending)
                if ended:
                    flights = [f for f in flights if f.stage != _ENDED]
        finally:
            for flight in flights:
                self._drop(flight, selector)
            selector.close()

    def _guarded(
        self, flight: _Flight, selector: selectors.BaseSelector, step: Callable[..., Ending | None], arg: Any
    ) -> Ending | None:
        """``step(flight, selector, arg)``: anything it raises but what stops the process ends this
        request alone (its connection closed), as it would end one request of :meth:`post`."""
        try:
            return step(flight, selector, arg)
        except Exception as exc:
            self._drop(flight, selector)
            return NoAnswer(f"{type(exc).__name__}: {exc}"[:300])

    def _begin(self, flight: _Flight, selector: selectors.BaseSelector, now: float) -> Ending | None:
        """Take a pooled connection to the flight's next address and write, or start connecting."""
        request = flight.request
        where = request.where
        if flight.at >= len(where.addresses):
            return ConnectFailed("no address")
        address = where.addresses[flight.at]
        flight.key = key = (where.scheme, address, where.port, where.host)
        link = None if flight.fresh else self._take(key)
        if link is not None:
            if link.sock.gettimeout() != 0.0:
                link.sock.setblocking(False)
            flight.link = link
            flight.reused = True
            return self._write(flight, selector, now)
        if request.deadline - now <= 0:
            return ConnectFailed("deadline", cut=True)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            return self._not_connected(flight, selector, ConnectFailed(f"{type(exc).__name__}: {exc}"))
        flight.sock = sock
        flight.stage = _TCP
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            error = sock.connect_ex((address, where.port))  # a numeric address: nothing is resolved
        except OSError as exc:
            return self._refused(flight, selector, exc)
        if error not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            return self._refused(flight, selector, OSError(error, os.strerror(error)))
        flight.arm(now, self.timeout.connect)
        if error == 0:
            return self._connected(flight, selector, now)
        self._want(flight, selector, _WRITE)
        return None

    def _refused(self, flight: _Flight, selector: selectors.BaseSelector, exc: OSError) -> Ending | None:
        """The connection failed (``OSError(errno.ECONNREFUSED, …)`` is a ConnectionRefusedError)."""
        self._drop(flight, selector)
        cut = self.clock() >= flight.request.deadline
        return self._not_connected(flight, selector, ConnectFailed(f"{type(exc).__name__}: {exc}", cut=cut))

    def _not_connected(
        self, flight: _Flight, selector: selectors.BaseSelector, failed: ConnectFailed
    ) -> Ending | None:
        """No connection to this address: the next one, unless the deadline came or there is none."""
        flight.sock = None
        if failed.cut or flight.at + 1 >= len(flight.request.where.addresses):
            return failed
        flight.at += 1
        return self._begin(flight, selector, self.clock())

    def _connected(self, flight: _Flight, selector: selectors.BaseSelector, now: float) -> Ending | None:
        sock = flight.sock
        assert sock is not None
        self.opened += 1
        where = flight.request.where
        if where.scheme != "https":
            flight.sock = None
            flight.link = _Link(sock)
            return self._write(flight, selector, now)
        # The TLS name is the host's (SNI and the certificate check), the socket the address's. The
        # plain socket leaves the selector: its descriptor goes to the TLS socket.
        self._want(flight, selector, 0)
        flight.sock = self._context().wrap_socket(
            sock, server_hostname=where.host, do_handshake_on_connect=False
        )
        flight.stage = _TLS
        flight.arm(now, self.timeout.connect)
        return self._handshake(flight, selector)

    def _handshake(self, flight: _Flight, selector: selectors.BaseSelector) -> Ending | None:
        sock = flight.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(flight, selector, _READ)
            return None
        except ssl.SSLWantWriteError:
            self._want(flight, selector, _WRITE)
            return None
        except OSError as exc:  # ssl.SSLError (the certificate refused, …) is an OSError
            self._drop(flight, selector)
            return NoAnswer(f"{type(exc).__name__}: {exc}")
        flight.sock = None
        flight.link = _Link(sock)
        return self._write(flight, selector, self.clock())

    def _write(self, flight: _Flight, selector: selectors.BaseSelector, now: float) -> Ending | None:
        """The request onto its connection, as much of it as the socket takes."""
        flight.wire = flight.framing.wire
        flight.stage = _SEND
        flight.arm(now, self.timeout.read)
        return self._send(flight, selector)

    def _send(self, flight: _Flight, selector: selectors.BaseSelector) -> Ending | None:
        link = flight.link
        assert link is not None
        sock = link.sock
        try:
            while flight.wire:
                sent = sock.send(flight.wire)
                flight.wire = flight.wire[sent:]
        except (BlockingIOError, ssl.SSLWantWriteError):
            self._want(flight, selector, _WRITE)
            return None
        except ssl.SSLWantReadError:
            self._want(flight, selector, _READ)
            return None
        except OSError as exc:
            if flight.reused:
                return self._resend(flight, selector)
            self._drop(flight, selector)
            return NoAnswer(f"{type(exc).__name__}: {exc}")
        flight.stage = _HEAD
        flight.arm(self.clock(), self.timeout.read)
        self._want(flight, selector, _READ)
        return None

    def _advance(self, flight: _Flight, selector: selectors.BaseSelector, mask: int) -> Ending | None:
        """The flight's socket is ready: its stage goes on."""
        stage = flight.stage
        if stage >= _HEAD:
            return self._read(flight, selector)
        if stage == _SEND:
            return self._send(flight, selector)
        if stage == _TLS:
            return self._handshake(flight, selector)
        sock = flight.sock
        assert sock is not None
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            return self._refused(flight, selector, OSError(error, os.strerror(error)))
        return self._connected(flight, selector, self.clock())

    def _read(self, flight: _Flight, selector: selectors.BaseSelector) -> Ending | None:
        """What has come of the answer, framed (:class:`_Framing`): over TLS read until the TLS layer
        wants more from the socket (it may hold decrypted bytes the socket no longer shows); in
        plain HTTP once (the selector says when more comes)."""
        link = flight.link
        assert link is not None
        sock, framing = link.sock, flight.framing
        tls = isinstance(sock, ssl.SSLSocket)
        while True:
            try:
                chunk = sock.recv(framing.want())
            except (BlockingIOError, ssl.SSLWantReadError):
                self._want(flight, selector, _READ)
                return None
            except ssl.SSLWantWriteError:
                self._want(flight, selector, _WRITE)
                return None
            except OSError as exc:
                if framing.status:
                    return self._landed(flight, selector, framing.cut(type(exc).__name__))
                if flight.reused and framing.fed == 0:
                    return self._resend(flight, selector)
                self._drop(flight, selector)
                return NoAnswer(f"{type(exc).__name__}: {exc}")
            flight.arm(self.clock(), self.timeout.read)  # each read has its timeout
            if not chunk and flight.reused and framing.fed == 0:
                return self._resend(flight, selector)
            flight.reused = False
            try:
                answer = framing.feed(chunk)
            except _BadAnswer as exc:
                self._drop(flight, selector)
                return NoAnswer(str(exc))
            if answer is not None:
                return self._landed(flight, selector, answer)
            if framing.status:
                flight.stage = _BODY
            if not tls or not chunk:
                self._want(flight, selector, _READ)
                return None

    def _resend(self, flight: _Flight, selector: selectors.BaseSelector) -> Ending | None:
        """The flight's pooled connection ended before any byte of its answer (the push service had
        closed it, or closed it just as it was reused): nothing was answered, so the request goes
        once more, on a new connection (as :meth:`post` does)."""
        self._drop(flight, selector)
        flight.reused = False
        flight.fresh = True
        old = flight.framing
        flight.framing = _Framing(old.target, old.template, old.body, old.limit)
        return self._begin(flight, selector, self.clock())

    def _expire(self, flight: _Flight, selector: selectors.BaseSelector, now: float) -> Ending | None:
        """The flight's operation timed out (``op_cut``: at the request's deadline)."""
        stage = flight.stage
        if stage == _BODY:
            answer = flight.framing.cut("deadline" if flight.op_cut else "ReadTimeout")
            return self._landed(flight, selector, answer)
        self._drop(flight, selector)
        if stage == _TCP:
            timed_out = ConnectFailed("TimeoutError: timed out", cut=flight.op_cut)
            return self._not_connected(flight, selector, timed_out)
        if flight.op_cut:
            return NoAnswer("deadline", cut=True)
        if stage == _TLS:
            return NoAnswer(f"ConnectTimeoutError: no TLS handshake within {self.timeout.connect:g} s")
        return NoAnswer(f"ReadTimeoutError: no answer within the {self.timeout.read:g} s read timeout")

    def _landed(self, flight: _Flight, selector: selectors.BaseSelector, answer: Answer) -> Answer:
        """The answer is in: its connection pooled if the exchange was whole, else closed."""
        link = flight.link
        assert link is not None
        self._want(flight, selector, 0)
        if flight.framing.keep:
            self._give(flight.key, link)
        else:
            _close(link.sock)
        flight.link = None
        return answer

    def _want(self, flight: _Flight, selector: selectors.BaseSelector, events: int) -> None:
        """Wait for ``events`` on the flight's socket (0: not at all)."""
        if flight.interest == events:
            return
        sock = flight.link.sock if flight.link is not None else flight.sock
        assert sock is not None
        if events == 0:
            selector.unregister(sock)
        elif flight.interest == 0:
            selector.register(sock, events, flight)
        else:
            selector.modify(sock, events, flight)
        flight.interest = events

    def _drop(self, flight: _Flight, selector: selectors.BaseSelector) -> None:
        """The flight's connection closed and out of the selector."""
        sock = flight.link.sock if flight.link is not None else flight.sock
        if sock is not None:
            if flight.interest:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    selector.unregister(sock)
            _close(sock)
        flight.interest = 0
        flight.link = None
        flight.sock = None

    def close(self) -> None:
        """Close the idle connections; those in use are closed when their request ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for links in idle.values():
            for link in links:
                _close(link.sock)


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

    def prepare(
        self,
        subscription: SubscriptionLike | Mapping[str, Any],
        payload: bytes,
        *,
        topic: str | None,
        urgency: Urgency = "normal",
        ttl: int | None = None,
    ) -> Push | DeliveryResult:
        """The message for the subscriber, ready to go: checked, encrypted, signed (a :class:`Push`);
        or what became of it when it cannot go (a :class:`DeliveryResult`, as :meth:`send` returns it)."""
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
        return Push(where, headers, body)

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
        push = self.prepare(subscription, payload, topic=topic, urgency=urgency, ttl=ttl)
        if isinstance(push, DeliveryResult):
            return push
        return self._post(push.where, push.body, push.headers)

    def send_many(
        self,
        count: int,
        start: Callable[[int], Push | DeliveryResult | None],
        *,
        in_flight: int,
    ) -> list[DeliveryResult | None]:
        """``count`` messages with up to ``in_flight`` of them on their way at once, on this thread
        (:meth:`PushConnections.exchange`): the result of each, by index.

        ``start(i)`` is asked for message ``i`` (in order) when there is room for it, and gives it
        ready (:meth:`prepare`), or its result when it cannot go, or None: start no more (the time
        is up), those not started are None. A message's deadline runs from its start. Anything but
        what stops the process that ``start(i)`` raises is message ``i``'s network failure (retried,
        as :class:`herald.fanout.service.PushDelivery` treats a push that raised). With a transport
        that cannot keep several requests going (or ``in_flight`` 1) the messages go one by one.
        """
        results: list[DeliveryResult | None] = [None] * count

        def requests() -> Iterator[tuple[int, Request]]:
            for i in range(count):
                try:
                    got = start(i)
                except Exception as exc:
                    results[i] = network_failure(f"{type(exc).__name__}: {exc}"[:300])
                    continue
                if got is None:
                    return
                if isinstance(got, DeliveryResult):
                    results[i] = got
                    continue
                yield i, Request(got.where, got.headers, got.body, self.monotonic() + self.deadline_s)

        exchange = getattr(self.transport, "exchange", None)
        if exchange is None or in_flight <= 1:
            for i, request in requests():
                results[i] = self._post(request.where, request.body, request.headers)
            return results

        def finish(i: int, ending: Ending) -> None:
            results[i] = self._ending(ending)

        exchange(requests(), finish, in_flight=in_flight, limit=self.max_response_bytes)
        return results

    # -- one request, bounded in time and size -----------------------------------------------------

    def _post(self, where: Destination, body: bytes, headers: Mapping[str, str]) -> DeliveryResult:
        deadline = self.monotonic() + self.deadline_s
        failed = ConnectFailed("no address")
        for address in where.addresses:
            try:
                answer = self.transport.post(
                    address, where, headers, body, deadline=deadline, limit=self.max_response_bytes
                )
            except ConnectFailed as exc:
                # Refused, unreachable, timed out (an IPv6 address without a route): the next address.
                failed = exc
                if exc.cut:
                    break
                continue
            except NoAnswer as exc:
                return self._ending(exc)
            return self._answer(answer)
        return self._ending(failed)

    def _ending(self, ending: Ending) -> DeliveryResult:
        """What a request came to, as a result: its answer's, or the network failure it met."""
        if isinstance(ending, Answer):
            return self._answer(ending)
        if ending.cut:
            what = "answer" if isinstance(ending, NoAnswer) else "connection"
            return network_failure(f"no {what} within the {self.deadline_s:g} s deadline: cut off")
        return network_failure(str(ending)[:300])

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
