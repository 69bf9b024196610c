"""The sender's HTTP/1.1 client (:class:`PushConnections`) against a scripted server on loopback.

Each server answers every request it reads with the next scripted bytes, as a push service might
write them: sized, chunked, until close, with interim answers, over the bound, broken off, not HTTP,
over TLS. The tests check what the sender makes of them and which connections it keeps: a whole
answer leaves its connection in the pool, anything else closes it, and a connection is only ever
reused for the checked address (and TLS name) it was opened to.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from herald.fanout.channels.vapid import VapidSigner, b64url_encode, generate_vapid_key
from herald.fanout.channels.webpush import PushConnections, WebPushSender
from herald.fanout.delivery import Outcome
from herald.members.endpoints import EndpointPolicy

CREATED = b"HTTP/1.1 201 Created\r\nLocation: /m/1\r\nContent-Length: 0\r\n\r\n"


@dataclass(frozen=True)
class Reply:
    data: bytes
    close: bool = False  # close the connection once written (whatever the answer said)


class Scripted:
    """A loopback server: reads each request (head and Content-Length body), records it, writes the
    next scripted reply. ``tls`` makes it an https server; ``names`` records the TLS names asked for."""

    def __init__(self, *replies: Reply | bytes, tls: ssl.SSLContext | None = None) -> None:
        self.replies = [r if isinstance(r, Reply) else Reply(r) for r in replies]
        self.requests: list[tuple[str, bytes]] = []
        self.connections = 0
        self.names: list[str | None] = []
        self.closed = threading.Event()  # set each time the server closes a connection itself
        self.tls = tls
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.names.append(name)  # type: ignore[assignment]
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                found = re.search(rb"(?im)^content-length: *(\d+)", head)
                length = int(found.group(1)) if found else 0
                while len(buf) < length:
                    buf += conn.recv(65536)
                self.requests.append((head.decode("latin-1"), buf[:length]))
                buf = buf[length:]
                reply = self.replies.pop(0) if self.replies else Reply(CREATED)
                conn.sendall(reply.data)
                if reply.close:
                    conn.close()
                    self.closed.set()
                    return
        except OSError:
            return
        finally:
            conn.close()

    def stop(self) -> None:
        self.listener.close()


@pytest.fixture(name="servers")
def servers_fixture() -> Iterator[list[Scripted]]:
    started: list[Scripted] = []
    yield started
    for server in started:
        server.stop()


def _server(servers: list[Scripted], *replies: Reply | bytes, tls: ssl.SSLContext | None = None) -> Scripted:
    server = Scripted(*replies, tls=tls)
    servers.append(server)
    return server


def _subscription(endpoint: str) -> dict[str, Any]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {
        "endpoint": endpoint,
        "keys": {"p256dh": b64url_encode(point), "auth": b64url_encode(os.urandom(16))},
    }


def _sender(**options: Any) -> WebPushSender:
    options.setdefault("policy", EndpointPolicy(allow_loopback=True))
    return WebPushSender(VapidSigner(generate_vapid_key(), "mailto:ops@herald.example"), **options)


def _push(sender: WebPushSender, server: Scripted, path: str = "/push/a") -> Any:
    return sender.send(_subscription(f"http://127.0.0.1:{server.port}{path}"), b'{"title":"x"}', topic="p1")


def test_one_request_as_written_and_its_connection_kept(servers: list[Scripted]) -> None:
    server = _server(servers)
    sender = _sender()
    first = _push(sender, server, "/push/a?x=1#frag")
    second = _push(sender, server, "/push/b")
    assert first.ok and second.ok and first.status == 201 and first.response_bytes == 0
    assert server.connections == 1 and len(server.requests) == 2  # keep-alive
    head, body = server.requests[0]
    lines = head.split("\r\n")
    assert lines[0] == "POST /push/a?x=1 HTTP/1.1"  # no fragment on the wire
    fields = dict(line.split(": ", 1) for line in lines[1:])
    assert fields["Host"] == f"127.0.0.1:{server.port}"
    assert fields["Content-Length"] == str(len(body)) and fields["Content-Encoding"] == "aes128gcm"
    assert fields["TTL"] == "86400" and fields["Urgency"] == "normal" and fields["Topic"] == "p1"
    assert fields["Authorization"].startswith("vapid t=")
    sender.close()


def test_a_chunked_error_document_is_read_and_the_connection_kept(servers: list[Scripted]) -> None:
    chunked = (
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;x=y\r\nbad t\r\n4\r\noken\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    server = _server(servers, chunked)
    sender = _sender()
    result = _push(sender, server)
    assert (result.outcome, result.status, result.detail, result.response_bytes) == (
        Outcome.FAILED,
        400,
        "bad token",
        9,
    )
    assert _push(sender, server).ok and server.connections == 1


def test_interim_answers_are_skipped_and_bare_line_feeds_read(servers: list[Scripted]) -> None:
    server = _server(
        servers,
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 429 Too Many\r\nRetry-After: 12\r\nContent-Length: 4\r\n\r\nslow",
        b"HTTP/1.1 201 Created\nContent-Length: 0\n\n",
    )
    sender = _sender()
    throttled = _push(sender, server)
    assert (throttled.outcome, throttled.status, throttled.retry_after_s, throttled.detail) == (
        Outcome.RETRY,
        429,
        12.0,
        "slow",
    )
    assert _push(sender, server).ok and server.connections == 1


def test_an_answer_until_close_is_read_and_its_connection_not_reused(servers: list[Scripted]) -> None:
    server = _server(
        servers, Reply(b"HTTP/1.1 410 Gone\r\nConnection: close\r\n\r\nunsubscribed", close=True)
    )
    sender = _sender()
    gone = _push(sender, server)
    assert (gone.outcome, gone.status, gone.detail) == (Outcome.PRUNE, 410, "unsubscribed")
    assert _push(sender, server).ok and server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n" + b"e" * 100000,
        b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"186a0\r\n"
        + b"e" * 100000
        + b"\r\n0\r\n\r\n",
    ],
    ids=["sized", "chunked"],
)
def test_an_answer_over_the_bound_is_cut_and_its_connection_closed(
    servers: list[Scripted], answer: bytes
) -> None:
    server = _server(servers, answer)
    transport = PushConnections()
    sender = _sender(transport=transport, max_response_bytes=1000)
    result = _push(sender, server)
    assert (result.outcome, result.status, result.response_bytes) == (Outcome.RETRY, 500, 1000)
    assert result.detail.startswith("answer cut off: more than 1,000 bytes; eee")
    assert _push(sender, server).ok
    assert server.connections == 2 and transport.opened == 2  # the half-read one was not reused


def test_an_answer_broken_off_keeps_its_status(servers: list[Scripted]) -> None:
    server = _server(servers, Reply(b"HTTP/1.1 503 Busy\r\nContent-Length: 50\r\n\r\nbusy", close=True))
    sender = _sender()
    result = _push(sender, server)
    assert (result.outcome, result.status, result.response_bytes) == (Outcome.RETRY, 503, 4)
    assert result.detail == "answer broken off after 4 bytes (IncompleteRead); busy"
    assert _push(sender, server).ok


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", ("RemoteProtocolError: illegal status line", "SSH-2.0-OpenSSH_9.6")),
        (b"HTTP/1.1 2x1 What\r\n\r\n", ("RemoteProtocolError: illegal status line", "2x1 What")),
        (
            b"HTTP/1.1 201 Created\r\n" + b"X-Pad: " + b"p" * 70000 + b"\r\n\r\n",
            ("answer headers over 65,536 bytes",),
        ),
    ],
    ids=["not-http", "bad-status", "endless-headers"],
)
def test_what_is_not_an_http_answer_is_a_network_failure(
    servers: list[Scripted], answer: bytes, words: tuple[str, ...]
) -> None:
    server = _server(servers, Reply(answer, close=True))
    sender = _sender()
    result = _push(sender, server)
    assert (result.outcome, result.status) == (Outcome.RETRY, None)
    assert all(word in result.detail for word in words), result.detail
    assert _push(sender, server).ok and server.connections == 2


def test_a_connection_the_service_closed_while_idle_is_not_used(servers: list[Scripted]) -> None:
    # A 201 that keeps the connection, which the service then closes (as push services do after
    # an idle while): the next push notices before sending and opens a fresh one.
    server = _server(servers, Reply(CREATED, close=True))
    sender = _sender()
    assert _push(sender, server).ok
    assert server.closed.wait(10)
    assert _push(sender, server).ok and server.connections == 2 and len(server.requests) == 2


# ----------------------------------------------------------------------------- TLS to a checked address


def _certificate(tmp_path: Path, name: str, *more: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in (name, *more)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _tls_server(
    servers: list[Scripted], tmp_path: Path, name: str, *more: str
) -> tuple[Scripted, ssl.SSLContext]:
    cert, key = _certificate(tmp_path, name, *more)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))  # the client trusts this one certificate
    return _server(servers, tls=server_side), trusting


def _tls_sender(server: Scripted, trusting: ssl.SSLContext, **options: Any) -> WebPushSender:
    policy = EndpointPolicy(allow_loopback=True, allowed_ports=frozenset({server.port}))
    options.setdefault("resolve", lambda host, port: ["127.0.0.1"])
    return _sender(policy=policy, transport=PushConnections(tls=trusting), **options)


def test_tls_names_the_host_while_the_socket_goes_to_the_checked_address(
    servers: list[Scripted], tmp_path: Path
) -> None:
    server, trusting = _tls_server(servers, tmp_path, "push.example")
    sender = _tls_sender(server, trusting)
    endpoint = f"https://push.example:{server.port}/wp/1"
    assert sender.send(_subscription(endpoint), b"{}", topic="p").ok
    assert sender.send(_subscription(endpoint), b"{}", topic="p").ok
    assert server.names == ["push.example"] and server.connections == 1
    assert f"Host: push.example:{server.port}" in server.requests[0][0].split("\r\n")


def test_a_certificate_for_another_name_is_refused_before_anything_is_sent(
    servers: list[Scripted], tmp_path: Path
) -> None:
    server, trusting = _tls_server(servers, tmp_path, "other.example")
    sender = _tls_sender(server, trusting)
    result = sender.send(_subscription(f"https://push.example:{server.port}/wp/1"), b"{}", topic="p")
    assert (result.outcome, result.status) == (Outcome.RETRY, None)
    assert "SSLCertVerificationError" in result.detail and server.requests == []


def test_a_tls_handshake_that_never_comes_is_cut_off_at_the_deadline(tmp_path: Path) -> None:
    """A listener that accepts and says nothing: the handshake is bounded by the deadline too."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        trusting = ssl.create_default_context()
        policy = EndpointPolicy(allow_loopback=True, allowed_ports=frozenset({port}))
        sender = _sender(
            policy=policy,
            resolve=lambda host, port: ["127.0.0.1"],
            transport=PushConnections(tls=trusting),
            deadline_s=0.3,
        )
        result = sender.send(_subscription(f"https://push.example:{port}/wp/1"), b"{}", topic="p")
        assert (result.outcome, result.status) == (Outcome.RETRY, None)
        assert result.detail == "no answer within the 0.3 s deadline: cut off"
    finally:
        listener.close()


def test_connections_are_pooled_by_the_checked_address(servers: list[Scripted], tmp_path: Path) -> None:
    """Two names of one certificate on one port, checked to two addresses: the connection opened to
    the first address is never used for the second (127.0.0.2 has no listener: refused, although a
    connection to the same port and certificate is in the pool)."""
    server, trusting = _tls_server(servers, tmp_path, "a.example", "b.example")
    answers = {"a.example": ["127.0.0.1"], "b.example": ["127.0.0.2"]}
    sender = _tls_sender(server, trusting, resolve=lambda host, port: answers[host])
    assert sender.send(_subscription(f"https://a.example:{server.port}/p"), b"{}", topic=None).ok
    refused = sender.send(_subscription(f"https://b.example:{server.port}/p"), b"{}", topic=None)
    assert (refused.outcome, refused.status) == (Outcome.RETRY, None)
    assert "ConnectionRefusedError" in refused.detail
    assert server.connections == 1 and len(server.requests) == 1


def test_a_chunk_longer_than_it_said_breaks_the_answer_off(servers: list[Scripted]) -> None:
    lying = b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbad token\r\n0\r\n\r\n"
    server = _server(servers, lying)
    transport = PushConnections()
    sender = _sender(transport=transport)
    result = _push(sender, server)
    assert (result.outcome, result.status) == (Outcome.FAILED, 400)
    # h11 finds " t" where the chunk's CRLF should be.
    assert result.detail.startswith("answer broken off after 3 bytes (RemoteProtocolError: malformed chunk")
    assert result.detail.endswith("); bad")
    assert _push(sender, server).ok and transport.opened == 2  # not reused after a broken answer


def test_an_http_1_0_answer_closes_its_connection(servers: list[Scripted]) -> None:
    server = _server(servers, b"HTTP/1.0 201 Created\r\nContent-Length: 0\r\n\r\n")
    transport = PushConnections()
    sender = _sender(transport=transport)
    assert _push(sender, server).ok and _push(sender, server).ok
    assert transport.opened == 2


def test_bytes_after_a_whole_answer_leave_its_connection_out_of_the_pool(servers: list[Scripted]) -> None:
    """What the service wrote past the end of its answer would be read as the next answer: the
    connection is closed, the next push opens another."""
    server = _server(servers, CREATED + b"HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n")
    transport = PushConnections()
    sender = _sender(transport=transport)
    assert _push(sender, server).ok and _push(sender, server).ok
    assert transport.opened == 2 and server.connections == 2


def test_a_pooled_connection_closed_as_it_is_reused_sends_the_request_again_on_a_new_one(
    servers: list[Scripted],
) -> None:
    """A push service may close an idle keep-alive connection just as the sender reuses it: the request
    was read but never answered. The request goes once more on a new connection, not as a failure."""
    server = _server(servers, CREATED, Reply(b"", close=True))  # the 2nd request read, then closed
    sender = _sender()
    first = _push(sender, server, "/push/a")
    second = _push(sender, server, "/push/b")
    assert first.ok and second.ok and second.status == 201
    assert [head.split(" ")[1] for head, _ in server.requests] == ["/push/a", "/push/b", "/push/b"]
    assert server.connections == 2
    sender.close()


def test_a_request_is_sent_again_once_only_and_never_after_a_new_connection_fails(
    servers: list[Scripted],
) -> None:
    server = _server(servers, CREATED, Reply(b"", close=True), Reply(b"", close=True))
    sender = _sender()
    assert _push(sender, server, "/push/a").ok
    again = _push(sender, server, "/push/b")  # the pooled connection, then a new one: both closed
    assert again.outcome is Outcome.RETRY and not again.ok
    assert [head.split(" ")[1] for head, _ in server.requests] == ["/push/a", "/push/b", "/push/b"]
    sender.close()
    # On a connection of its own (not pooled) a request read and left unanswered is not sent again.
    other = _server(servers, Reply(b"", close=True))
    sender = _sender()
    assert _push(sender, other, "/push/c").outcome is Outcome.RETRY
    assert len(other.requests) == 1 and other.connections == 1
    sender.close()
