"""A hostile push service cannot stall the sender.

:class:`WebPushSender` pushes to the loopback push service in its misbehaving modes (a 200 MB body,
an answer trickled a byte at a time, a body trickled a byte every 2 s, no answer at all): each
request ends with a result that names the cut-off, having read no more than the bound, and the next
push goes through. The deadline is set small here so the tests are quick; every send runs in a
thread with a generous join timeout, a guard against a sender that hangs (the failure these catch).
What the fan-out does with a subscription that keeps failing: ``test_fanout_hostile.py``.
"""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from herald.fanout.channels.payload import Notification, encode
from herald.fanout.channels.vapid import VapidSigner, generate_vapid_key
from herald.fanout.channels.webpush import MAX_RESPONSE_BYTES, WebPushSender
from herald.fanout.delivery import DeliveryResult, Outcome
from herald.members.endpoints import EndpointPolicy
from herald_tools.localcloud.pushservice import LocalPushService

GUARD_S = 60.0  # far beyond every deadline below: only a sender that does not cut off reaches it
PAYLOAD = encode(
    Notification(
        title="Road closed",
        body="The north road is closed today.",
        url="https://herald.example/p/",
        post_id="0123456789abcdef0123",
        community="harbour",
        tag="post-0123456789abcdef0123",
    )
)


@pytest.fixture(name="push")
def push_fixture() -> Iterator[LocalPushService]:
    with LocalPushService() as service:
        yield service


def _sender(**options: Any) -> WebPushSender:
    signer = VapidSigner(generate_vapid_key(), "mailto:ops@herald.example")
    return WebPushSender(signer, policy=EndpointPolicy(allow_loopback=True), **options)


def _guarded(send: Callable[[], DeliveryResult]) -> DeliveryResult:
    """``send()`` in a thread; fails the test if it has not returned after ``GUARD_S``."""
    box: list[DeliveryResult] = []
    thread = threading.Thread(target=lambda: box.append(send()), daemon=True)
    thread.start()
    thread.join(GUARD_S)
    assert not thread.is_alive(), f"the sender was still waiting for the push service after {GUARD_S:g} s"
    return box[0]


def _still_pushes(sender: WebPushSender, push: LocalPushService) -> None:
    """After a cut-off, the next push (a fresh connection, not the half-read one) goes through."""
    subscription = push.new_subscription()
    assert sender.send(subscription, PAYLOAD, topic="p").outcome is Outcome.SENT
    assert len(push.received(push.subscription_id(subscription))) == 1


def test_a_200_mb_answer_is_read_only_up_to_the_bound(push: LocalPushService) -> None:
    subscription = push.new_subscription()
    push.misbehave(push.subscription_id(subscription), "huge", status=500, body_bytes=200 * 1024 * 1024)
    sender = _sender()
    tracemalloc.start()
    try:
        result = _guarded(lambda: sender.send(subscription, PAYLOAD, topic="p"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.outcome, result.status) == (Outcome.RETRY, 500)
    assert "cut off" in result.detail and f"{MAX_RESPONSE_BYTES:,} bytes" in result.detail
    assert result.response_bytes is not None and result.response_bytes <= MAX_RESPONSE_BYTES
    # Python memory of the whole process, the service's threads included: far below the answer.
    assert peak < 8 * 1024 * 1024, f"{peak:,} bytes allocated for one push"
    push_service_wrote = push.misbehaved()
    [record] = push_service_wrote
    _wait_until(lambda: record.ended != "")
    assert record.ended == "client closed" and record.bytes_written < 200 * 1024 * 1024
    _still_pushes(sender, push)


def test_an_answer_trickled_a_byte_at_a_time_is_cut_off_at_the_deadline(push: LocalPushService) -> None:
    """Status line and headers a byte every 0.3 s: each read gets its byte well within the socket
    timeout, so only the deadline across the whole request ends it."""
    subscription = push.new_subscription()
    push.misbehave(push.subscription_id(subscription), "trickle", interval_s=0.3)
    sender = _sender(deadline_s=1.5)
    result = _guarded(lambda: sender.send(subscription, PAYLOAD, topic="p"))
    assert (result.outcome, result.status) == (Outcome.RETRY, None)
    assert "1.5 s deadline" in result.detail and "cut off" in result.detail
    [record] = push.misbehaved()
    _wait_until(lambda: record.ended != "")
    assert record.ended == "client closed" and record.bytes_written < 20
    _still_pushes(sender, push)


def test_a_body_trickled_a_byte_every_two_seconds_is_cut_off_at_the_deadline(
    push: LocalPushService,
) -> None:
    subscription = push.new_subscription()
    push.misbehave(push.subscription_id(subscription), "trickle-body", status=503, interval_s=2.0)
    sender = _sender(deadline_s=3.0)
    result = _guarded(lambda: sender.send(subscription, PAYLOAD, topic="p"))
    assert (result.outcome, result.status) == (Outcome.RETRY, 503)
    assert "cut off at the 3 s deadline" in result.detail
    assert result.response_bytes is not None and result.response_bytes <= 2
    _still_pushes(sender, push)


def test_a_service_that_never_answers_is_cut_off_at_the_deadline(push: LocalPushService) -> None:
    subscription = push.new_subscription()
    push.misbehave(push.subscription_id(subscription), "hang")
    sender = _sender(deadline_s=1.0)
    result = _guarded(lambda: sender.send(subscription, PAYLOAD, topic="p"))
    assert (result.outcome, result.status) == (Outcome.RETRY, None)
    assert "no answer within the 1 s deadline" in result.detail
    [record] = push.misbehaved()
    _wait_until(lambda: record.ended != "")
    assert record.ended == "client closed"
    _still_pushes(sender, push)


def _wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """The push service notices the hang-up on its own thread: wait for it (an event, polled)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        done.wait(0.02)
    raise AssertionError("the push service did not see the sender hang up")
