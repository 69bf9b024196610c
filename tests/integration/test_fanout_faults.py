"""Fault injection: crash and redeliver at every step of the fan-out; nobody gets a post twice.

Faults are injected at the ports (a wrapper around the queue, the ledger, the push sender or the SQS
client that raises on its Nth call), never by patching Herald's code. :class:`Crash` is not an
``Exception``: nothing in the handler catches it, so the invocation dies as a process would, and the
event source redelivers (SQS: the message reappears; the stream: the batch is retried). Every wrapper
is a :class:`tests.faults.Fault`: a test whose fault never fired fails at teardown.
"""

from __future__ import annotations

from typing import Any

import pytest

from herald.fanout.adapters.sqs_jobs import SqsJobQueue
from herald.members.rules import Member
from tests.faults import Fault, FaultyCalls
from tests.integration.fanout_rig import Rig, rig_fixture  # noqa: F401


def _everyone_once(rig: Rig, members: list[Member], post_id: str) -> None:
    missing = [m.member_id for m in members if rig.received_by(m) != [post_id]]
    assert missing == [], f"{len(missing)} member(s) did not get the post exactly once"
    assert rig.push.duplicates() == {}


def _members(rig: Rig, n: int, shards: int = 1) -> list[Member]:
    return [rig.join(shard=i % shards) for i in range(n)]


def test_planner_crashes_after_enqueueing_part_of_the_jobs(rig: Rig) -> None:
    members = _members(rig, 40)
    faulty_sqs = FaultyCalls(rig.sqs, "send_message_batch", nth=2)  # the 2nd batch of push jobs

    def wrap(name: str, port: Any) -> Any:
        return SqsJobQueue(rig.env["PUSH_JOB_QUEUE_URL"], faulty_sqs) if name == "push_queue" else port

    rig.use_planner(wrap, members_per_job=2)  # 20 jobs: two batches of 10
    post_id = rig.post("p", "The ferry timetable changes on Monday.")
    rig.drain()
    assert faulty_sqs.calls >= 3  # the page was planned again after the crash
    _everyone_once(rig, members, post_id)
    assert rig.stats(post_id) == {"targeted": 40, "sent": 40, "failed": 0, "pruned": 0, "deferred": 0}


def test_planner_crashes_after_queueing_the_next_page_before_recording_its_own(rig: Rig) -> None:
    members = _members(rig, 25)
    rig.use_planner(
        lambda name, port: FaultyCalls(port, "mark_page", nth=[1, 3]) if name == "ledger" else port,
        page_size=10,
        members_per_job=4,
    )
    post_id = rig.post("p", "The ferry timetable changes on Monday.")
    rig.drain()
    _everyone_once(rig, members, post_id)


@pytest.mark.parametrize(
    ("port", "method", "after"),
    [
        ("push_queue", "send", False),  # begun in the ledger, no push job queued
        ("push_queue", "send", True),  # the first pages' push jobs queued, not the next pages' jobs
        ("planner_queue", "send", False),  # the same, on the shard jobs of a larger community
        ("ledger", "planned", False),  # everything queued, not recorded
    ],
)
def test_the_stream_handler_crashes_after_the_ledger_before_the_shard_jobs(
    rig: Rig, port: str, method: str, after: bool
) -> None:
    """The start dies after the ledger's ``planning`` (the release redelivered plans it again): the
    first pages planned in the start (two a shard, so each shard has a next page), or, with
    ``small_community=0``, the shard jobs of a larger community."""
    members = _members(rig, 5, shards=3)
    rig.use_planner(
        lambda name, p: FaultyCalls(p, method, nth=1, after=after) if name == port else p,
        page_size=2,
        **({"small_community": 0} if port == "planner_queue" else {}),
    )
    post_id = rig.post("p", "Registration for the language class is open.")
    rig.drain()
    _everyone_once(rig, members, post_id)


def test_duplicate_stream_records(rig: Rig) -> None:
    members = _members(rig, 8, shards=4)
    post_id = rig.post("p", "The clinic is closed on the public holiday.")
    records = rig.stream_records()
    for _ in range(3):  # the same batch three times: a retried batch, moto's extra INSERTs
        assert rig.feed_stream(records) == {"batchItemFailures": []}
    rig.feed_stream([records[-1], *records])
    rig.drain()
    _everyone_once(rig, members, post_id)
    assert rig.stats(post_id) == {"targeted": 8, "sent": 8, "failed": 0, "pruned": 0, "deferred": 0}


class Twice(Fault):
    """A queue that sends every job twice (SQS's at-least-once delivery, made certain)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(f"{type(inner).__name__}.send sending twice")
        self.inner = inner

    def send(self, bodies: Any, delay_s: int = 0) -> None:
        self.inner.send(bodies, delay_s)
        self.inner.send(bodies, delay_s)
        self.fire()


def test_duplicate_push_jobs_and_duplicate_planner_jobs(rig: Rig) -> None:
    members = _members(rig, 30, shards=2)
    rig.use_planner(lambda name, port: Twice(port) if name.endswith("queue") else port, page_size=7)
    post_id = rig.post("p", "Free bus passes for the new arrivals this month.")
    rig.drain()
    _everyone_once(rig, members, post_id)
    assert rig.stats(post_id) == {"targeted": 30, "sent": 30, "failed": 0, "pruned": 0, "deferred": 0}


class PartlyFailingSqs(Fault):
    """``SendMessageBatch`` accepting only the first entry of each batch; the rest come back ``Failed``."""

    def __init__(self, inner: Any) -> None:
        super().__init__("SendMessageBatch failing all entries but the first")
        self.inner = inner
        self.failed = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        response = dict(self.inner.send_message_batch(QueueUrl=QueueUrl, Entries=Entries[:1]))
        rest = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
            for e in Entries[1:]
        ]
        self.failed += len(rest)
        if rest:
            self.fire()
        response["Failed"] = rest
        return response


def test_a_retried_batch_with_failed_entries(rig: Rig) -> None:
    members = _members(rig, 24)
    partly = PartlyFailingSqs(rig.sqs)

    def wrap(name: str, port: Any) -> Any:
        if name == "push_queue":
            return SqsJobQueue(rig.env["PUSH_JOB_QUEUE_URL"], partly, sleep=lambda _s: None, attempts=20)
        return port

    rig.use_planner(wrap, members_per_job=2)
    post_id = rig.post("p", "Water distribution at the station from noon.")
    rig.drain()
    assert partly.failed > 0
    _everyone_once(rig, members, post_id)


#: The sender's checkpoint interval in these tests: 12 members are 3 windows of 4.
K = 4


def _seen_twice(rig: Rig, members: list[Member], post_id: str) -> int:
    """Pushes a person would see twice: a repeat to one subscription whose ``Topic`` or notification
    ``tag`` differs from the first push's (the same ones replace it at the push service and on the
    device, and the service worker does not show a tag it showed already)."""
    seen = 0
    for member in members:
        marks = {
            (d.headers.get("Topic"), (d.json or {}).get("tag"))
            for d in rig.push.received(rig.sid(member))
            if (d.json or {}).get("post_id") == post_id
        }
        assert all(topic and tag for topic, tag in marks), "a push without its Topic or tag"
        seen += len(marks) - 1 if marks else 0
    return seen


def _counts(rig: Rig, members: list[Member], post_id: str) -> tuple[int, int, int]:
    """(seen twice, repeats at the push service, members missed)."""
    received = [len(rig.received_by(m)) for m in members]
    return _seen_twice(rig, members, post_id), sum(n - 1 for n in received if n > 1), received.count(0)


@pytest.mark.parametrize(
    ("port", "method", "nth"),
    [
        ("ledger", "claim_job", 1),  # dies claiming the job
        ("web", "send", 1),  # dies on the first push
        ("web", "send", 3),  # ... in the first window
        ("web", "send", 6),  # ... in the second
        ("web", "send", 12),  # ... on the last push
        ("ledger", "checkpoint", 1),  # dies writing the first window's checkpoint
        ("ledger", "checkpoint", 2),
        ("ledger", "checkpoint", 3),  # ... the last (the job's end)
        ("ledger", "add_stats", 1),  # dies after the job's end, before its statistics
    ],
)
def test_sender_crashes_at_every_step_and_nobody_sees_a_post_twice(
    rig: Rig, port: str, method: str, nth: int
) -> None:
    members = _members(rig, 12)
    rig.use_sender(_fault(port, method, nth), threads=1, checkpoint_every=K)
    rig.use_planner(members_per_job=12)
    post_id = rig.post("p", "The shelter has beds for families tonight.")
    rig.drain()
    rig.clock.advance(61)  # the dead sender's lease ends; the job is delivered again
    rig.drain()
    seen_twice, repeats, missed = _counts(rig, members, post_id)
    assert (seen_twice, missed) == (0, 0) and repeats <= K
    stats = rig.stats(post_id)
    if method == "add_stats":  # the job ended, its statistics died with the sender: the one gap
        assert stats is None
    else:
        assert stats == {"targeted": 12, "sent": 12, "failed": 0, "pruned": 0, "deferred": 0}


def test_sender_crashes_after_pushing_repeats_only_the_window_past_its_checkpoint(rig: Rig) -> None:
    members = _members(rig, 12)
    rig.use_sender(_fault("web", "send", 7), threads=1, checkpoint_every=K)
    rig.use_planner(members_per_job=12)
    post_id = rig.post("p", "The shelter has beds for families tonight.")
    rig.drain()
    assert len(rig.push.received()) == 6  # the first window checkpointed, two of the second pushed
    rig.clock.advance(61)
    rig.drain()
    duplicates = rig.push.duplicates()
    assert sorted(duplicates.values()) == [2, 2]  # the second window's two pushes before the crash
    for subscription, post in duplicates:
        # ... with the same Topic: a push service still holding the first replaces it; a device shows one.
        assert post == post_id
        assert {d.headers["Topic"] for d in rig.push.received(str(subscription))} == {post_id}
    assert _counts(rig, members, post_id) == (0, 2, 0)


def test_sender_crashes_while_requeueing_a_retry(rig: Rig) -> None:
    members = _members(rig, 6)
    rig.push.respond_with(rig.sid(members[2]), 503, times=1)
    rig.use_sender(
        lambda name, port: FaultyCalls(port, "send", nth=1) if name == "push_queue" else port, threads=1
    )
    post_id = rig.post("p", "Lessons resume at the community centre.")
    rig.drain()
    rig.clock.advance(61)
    rig.drain()
    seen_twice, repeats, missed = _counts(rig, members, post_id)
    assert (seen_twice, missed) == (0, 0) and repeats <= 6  # at most the window (all 6) again


def test_sender_crashes_at_several_steps_in_turn(rig: Rig) -> None:
    """Crashes on the 1st, 3rd and 6th ledger write of the fan-out: each run ends with everyone served."""
    members = _members(rig, 4)
    rig.use_sender(
        lambda name, port: FaultyCalls(port, "claim_job", nth=[1, 3, 6]) if name == "ledger" else port
    )
    post_id = rig.post("p", "Mobile clinic at the north camp on Wednesday.")
    for _ in range(3):
        rig.drain()
        rig.clock.advance(61)
    rig.drain()
    seen_twice, _, missed = _counts(rig, members, post_id)
    assert (seen_twice, missed) == (0, 0)


def _fault(port: str, method: str, nth: int) -> Any:
    """A ``wrap`` for ``use_sender``: the ``nth`` call of ``port.method`` crashes."""
    return lambda name, inner: FaultyCalls(inner, method, nth=nth) if name == port else inner
