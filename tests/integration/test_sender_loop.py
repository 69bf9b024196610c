"""Many pushes in flight on one thread (``WebPushSender.send_many``, ``PushConnections.exchange``)
against scripted servers on loopback: every request of a window going at once, a slow host holding
up none of the others, deadlines, an answer broken off, the next address, TLS on non-blocking sockets."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Any

from herald.fanout.channels.webpush import Answer, NoAnswer, Push, PushConnections, Request, WebPushSender
from herald.fanout.delivery import Outcome
from herald.members.endpoints import EndpointPolicy
from tests.integration.test_webpush_http import (
    CREATED,
    Reply,
    Scripted,
    _sender,
    _server,
    _subscription,
    _tls_sender,
    _tls_server,
    servers_fixture,  # noqa: F401  (the fixture)
)


class Gate:
    """A loopback server that answers nobody until ``waiting`` requests have come, each on its own
    connection, then answers them all: only a sender with that many requests in flight at once
    gets any answer."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=waiting)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                conn.close()
                return
            buf += data
        with self.lock:
            self.held.append(conn)
            if len(self.held) < self.waiting:
                return
            everyone = list(self.held)
        for held in everyone:
            held.sendall(CREATED)

    def stop(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


def _many(sender: WebPushSender, endpoints: list[str], in_flight: int) -> list[Any]:
    subscriptions = [_subscription(e) for e in endpoints]
    return sender.send_many(
        len(subscriptions),
        lambda i: sender.prepare(subscriptions[i], b'{"title":"x"}', topic="p1"),
        in_flight=in_flight,
    )


def test_a_window_of_requests_is_in_flight_at_once_on_the_calling_thread() -> None:
    gate = Gate(20)
    try:
        sender = _sender(deadline_s=30.0)
        results = _many(sender, [f"http://127.0.0.1:{gate.port}/push/{i}" for i in range(20)], in_flight=20)
        assert [r.outcome for r in results] == [Outcome.SENT] * 20
        assert len(gate.held) == 20
        assert isinstance(sender.transport, PushConnections) and sender.transport.opened == 20
        sender.close()
    finally:
        gate.stop()


def test_a_slow_host_holds_up_none_of_the_others(servers: list[Scripted]) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # takes the connection, never answers
    fast = _server(servers)
    try:
        sender = _sender(deadline_s=1.5)
        transport = sender.transport
        assert isinstance(transport, PushConnections)
        ended: list[tuple[str, Any]] = []
        endpoints = [f"http://127.0.0.1:{silent.getsockname()[1]}/slow"]
        endpoints += [f"http://127.0.0.1:{fast.port}/fast/{i}" for i in range(6)]

        def requests() -> Any:
            for endpoint in endpoints:
                push = sender.prepare(_subscription(endpoint), b"{}", topic="p")
                assert isinstance(push, Push)
                yield endpoint, Request(push.where, push.headers, push.body, sender.monotonic() + 1.5)

        transport.exchange(requests(), lambda tag, end: ended.append((tag, end)), in_flight=7, limit=1000)
        # The slow one was first to go and is last to end, cut off at its deadline; the others answered.
        assert sorted(tag for tag, _ in ended[:-1]) == sorted(endpoints[1:])
        assert ended[-1][0] == endpoints[0]
        assert isinstance(ended[-1][1], NoAnswer) and ended[-1][1].cut
        assert all(isinstance(end, Answer) and end.status == 201 for _, end in ended[:-1])
        assert len(fast.requests) == 6
    finally:
        silent.close()


def test_an_answer_broken_off_mid_body_keeps_its_status_and_its_connection_is_not_reused(
    servers: list[Scripted],
) -> None:
    broken = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 100\r\n\r\nslo"
    server = _server(servers, Reply(broken, close=True))
    sender = _sender()
    endpoint = f"http://127.0.0.1:{server.port}/push/a"
    [first, second] = _many(sender, [endpoint, endpoint], in_flight=2)
    by_status = sorted([first, second], key=lambda r: r.status)
    assert (by_status[0].outcome, by_status[0].status) == (Outcome.SENT, 201)
    broke = by_status[1]
    assert (broke.outcome, broke.status, broke.retry_after_s) == (Outcome.RETRY, 503, 7.0)
    assert "answer broken off after 3 bytes (IncompleteRead)" in broke.detail
    again = _many(sender, [endpoint, endpoint], in_flight=2)
    assert [r.outcome for r in again] == [Outcome.SENT] * 2
    assert server.connections >= 3  # the broken one was closed, not pooled


def test_a_whole_answer_keeps_its_connection_for_the_next_window(servers: list[Scripted]) -> None:
    server = _server(servers)
    sender = _sender()
    endpoints = [f"http://127.0.0.1:{server.port}/push/{i}" for i in range(4)]
    assert [r.outcome for r in _many(sender, endpoints, in_flight=4)] == [Outcome.SENT] * 4
    opened = server.connections
    assert [r.outcome for r in _many(sender, endpoints, in_flight=4)] == [Outcome.SENT] * 4
    assert server.connections == opened and len(server.requests) == 8


def test_a_refused_address_gives_way_to_the_next_checked_one(servers: list[Scripted], tmp_path: Path) -> None:
    # The server listens on 127.0.0.1 only: 127.0.0.2 (the first address checked) refuses.
    server, trusting = _tls_server(servers, tmp_path, "push.example")
    sender = _tls_sender(server, trusting, resolve=lambda host, port: ["127.0.0.2", "127.0.0.1"])
    endpoints = [f"https://push.example:{server.port}/wp/{i}" for i in range(2)]
    assert [r.outcome for r in _many(sender, endpoints, in_flight=2)] == [Outcome.SENT] * 2
    assert len(server.requests) == 2


def test_nothing_listening_is_a_network_failure_for_each(servers: list[Scripted]) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    sender = _sender()
    results = _many(sender, [f"http://127.0.0.1:{port}/p/{i}" for i in range(3)], in_flight=3)
    assert all(r.outcome is Outcome.RETRY and "ConnectionRefusedError" in r.detail for r in results)


def test_tls_handshakes_on_non_blocking_sockets_name_the_host(
    servers: list[Scripted], tmp_path: Path
) -> None:
    server, trusting = _tls_server(servers, tmp_path, "push.example")
    sender = _tls_sender(server, trusting)
    endpoints = [f"https://push.example:{server.port}/wp/{i}" for i in range(5)]
    assert [r.outcome for r in _many(sender, endpoints, in_flight=5)] == [Outcome.SENT] * 5
    assert set(server.names) == {"push.example"} and len(server.requests) == 5
    assert all(f"Host: push.example:{server.port}" in head.split("\r\n") for head, _ in server.requests)
    opened = server.connections
    assert [r.outcome for r in _many(sender, endpoints, in_flight=5)] == [Outcome.SENT] * 5
    assert server.connections == opened  # the TLS connections were pooled and used again


def test_a_certificate_for_another_name_is_refused_on_the_loop(
    servers: list[Scripted], tmp_path: Path
) -> None:
    server, trusting = _tls_server(servers, tmp_path, "other.example")
    sender = _tls_sender(server, trusting)
    results = _many(sender, [f"https://push.example:{server.port}/wp/{i}" for i in range(2)], in_flight=2)
    assert all(r.outcome is Outcome.RETRY and "SSLCertVerificationError" in r.detail for r in results)
    assert server.requests == []


def test_a_tls_handshake_that_never_comes_is_cut_off_at_the_deadline_on_the_loop() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        policy = EndpointPolicy(allow_loopback=True, allowed_ports=frozenset({port}))
        sender = _sender(
            policy=policy,
            resolve=lambda host, port: ["127.0.0.1"],
            transport=PushConnections(tls=ssl.create_default_context()),
            deadline_s=0.3,
        )
        results = _many(sender, [f"https://push.example:{port}/wp/{i}" for i in range(3)], in_flight=3)
        assert [r.detail for r in results] == ["no answer within the 0.3 s deadline: cut off"] * 3
    finally:
        listener.close()


def test_start_saying_no_starts_no_more_and_a_start_that_raises_is_that_push_alone(
    servers: list[Scripted],
) -> None:
    server = _server(servers)
    sender = _sender()
    subscription = _subscription(f"http://127.0.0.1:{server.port}/push/a")

    def start(i: int) -> Any:
        if i == 1:
            raise RuntimeError("this one broke")
        if i == 3:
            return None  # the time is up
        return sender.prepare(subscription, b"{}", topic="p")

    results = sender.send_many(5, start, in_flight=5)
    assert results[0] is not None and results[0].ok and results[2] is not None and results[2].ok
    assert results[1] is not None and results[1].outcome is Outcome.RETRY
    assert results[1].detail == "RuntimeError: this one broke"
    assert results[3:] == [None, None] and len(server.requests) == 2


def test_connection_close_with_a_length_is_read_and_its_connection_not_reused(
    servers: list[Scripted],
) -> None:
    closing = b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    server = _server(servers, closing)
    sender = _sender()
    endpoint = f"http://127.0.0.1:{server.port}/push/a"
    [first] = _many(sender, [endpoint], in_flight=2)
    [second] = _many(sender, [endpoint], in_flight=2)
    assert first.ok and second.ok and server.connections == 2


def test_an_odd_head_is_framed_by_h11_on_the_loop(servers: list[Scripted]) -> None:
    """Interim answers, a folded field and a chunked body: Herald's own framing hands them to h11."""
    odd = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nX-Note: one\r\n two\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nslow \r\n4\r\ndown\r\n0\r\n\r\n"
    )
    server = _server(servers, odd)
    sender = _sender()
    endpoint = f"http://127.0.0.1:{server.port}/push/a"
    [result] = _many(sender, [endpoint], in_flight=2)
    assert (result.outcome, result.status, result.retry_after_s) == (Outcome.RETRY, 429, 30.0)
    assert result.detail == "slow down"
    [again] = _many(sender, [endpoint], in_flight=2)
    assert again.ok and server.connections == 1  # a whole chunked answer keeps its connection


def test_a_head_over_the_bound_is_no_answer(servers: list[Scripted]) -> None:
    huge = b"HTTP/1.1 201 Created\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n"
    server = _server(servers, huge)
    sender = _sender()
    [result] = _many(sender, [f"http://127.0.0.1:{server.port}/push/a"], in_flight=2)
    assert (result.outcome, result.status) == (Outcome.RETRY, None)
    assert result.detail == "answer headers over 65,536 bytes"


def test_on_the_loop_a_pooled_connection_closed_as_it_is_reused_sends_the_request_again(
    servers: list[Scripted],
) -> None:
    """The window's pushes reuse the connections of the one before; a push service that closes one just
    as it is reused (the request read, never answered) costs a new connection, not a failed push."""
    server = _server(servers, CREATED, Reply(b"", close=True))
    sender = _sender(deadline_s=10.0)
    endpoint = f"http://127.0.0.1:{server.port}/push"
    assert [r.outcome for r in _many(sender, [f"{endpoint}/a"], in_flight=2)] == [Outcome.SENT]
    # The next window's push takes the pooled connection; the service reads it and closes.
    assert [r.outcome for r in _many(sender, [f"{endpoint}/b"], in_flight=2)] == [Outcome.SENT]
    assert [head.split(" ")[1] for head, _ in server.requests] == ["/push/a", "/push/b", "/push/b"]
    assert server.connections == 2  # the first, then a new one for b's resend
    sender.close()


def test_on_the_loop_a_request_is_sent_again_once_only(servers: list[Scripted]) -> None:
    server = _server(servers, CREATED, Reply(b"", close=True), Reply(b"", close=True))
    sender = _sender(deadline_s=10.0)
    endpoint = f"http://127.0.0.1:{server.port}/push"
    assert [r.outcome for r in _many(sender, [f"{endpoint}/a"], in_flight=2)] == [Outcome.SENT]
    [again] = _many(sender, [f"{endpoint}/b"], in_flight=2)
    assert again.outcome is Outcome.RETRY
    assert [head.split(" ")[1] for head, _ in server.requests] == ["/push/a", "/push/b", "/push/b"]
    sender.close()
