"""The push sender stays within its invocation's time (moto, a loopback push service that answers slowly).

A job of members whose push services are slow takes longer than the function may run. Before it
claims a member the sender looks at the Lambda context's remaining time; with less than its reserve
left it claims no more and sends the members it did not claim on as a continuation job, so the
invocation returns before its time, no lease is left to run out, and every member is pushed once.

The push service answers each slow push ``201`` after ``SLOW_S`` (the status at once, the one-byte
body ``SLOW_S`` later). The context's clock is those answers: every slow answer the service finished
uses ``SLOW_S`` of the invocation, shared by the sender's threads. So the test is about what the sender
does with the time it is told it has, whatever else the machine is doing; the per-request deadline
stays a wall-clock guard, large enough never to fire here.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from herald.fanout.rules import done_from_bits
from herald_tools.localcloud.event_sources import sqs_record
from tests.integration.conftest import LambdaContext
from tests.integration.fanout_rig import COMMUNITY, Rig, rig_fixture  # noqa: F401

SLOW_S = 0.4  # how long each slow push takes, on the push service's side
DEADLINE_S = 60.0  # the Web Push sender's per-request deadline: a hang guard only
RESERVE_S = 2.5  # one push's bound and a margin for the marks and the continuation
BUDGET_S = 4.0  # the first invocation's time: claims stop once 1.5 s of it are used


class CountingDown(LambdaContext):
    """A Lambda context whose remaining time is ``seconds`` less the slow answers since it was made."""

    def __init__(self, rig: Rig, seconds: float, threads: int) -> None:
        super().__init__()
        self.rig = rig
        self.seconds = seconds
        self.threads = threads
        self.before = self._answered()

    def _answered(self) -> int:
        return sum(1 for m in self.rig.push.misbehaved() if m.ended == "complete")

    def get_remaining_time_in_millis(self) -> int:
        used = (self._answered() - self.before) * SLOW_S / self.threads
        return max(0, int((self.seconds - used) * 1000))


def _slow_web_sender(name: str, port: Any) -> Any:
    if name != "web":
        return port
    from herald.fanout.channels.webpush import WebPushSender

    return WebPushSender(port.signer, policy=port.policy, deadline_s=DEADLINE_S)


def _use_sender(rig: Rig, threads: int) -> None:
    rig.use_sender(_slow_web_sender, threads=threads, reserve_s=RESERVE_S)


def _plan(rig: Rig, name: str, text: str) -> str:
    """Publish a post and plan its fan-out; its push jobs wait on the push queue."""
    post_id = rig.post(name, text)
    rig.feed_stream(rig.stream_records())
    rig._drain_queue("SCHEDULE_QUEUE_URL", rig.publisher_app)
    rig._drain_queue("PLANNER_QUEUE_URL", rig.planner_app)
    return post_id


def _take_jobs(rig: Rig) -> list[dict[str, Any]]:
    """Every message on the push queue, received (in flight: the test deletes or invokes with them),
    all of them, not one batch of 10."""
    messages: list[dict[str, Any]] = []
    while batch := rig._receive(rig.env["PUSH_JOB_QUEUE_URL"]):
        messages += batch
    return messages


def _invoke(rig: Rig, messages: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    """The sender with Lambda's SQS event of these messages; the messages it did not fail are deleted."""
    url = rig.env["PUSH_JOB_QUEUE_URL"]
    arn = rig.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    response: dict[str, Any] = rig.sender_app.handler(
        {"Records": [sqs_record(m, arn) for m in messages]}, context
    )
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    for m in messages:
        if m["MessageId"] not in failed:
            rig.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return response


def _drain(rig: Rig, threads: int) -> None:
    """Invoke the sender on whatever the push queue holds until it holds nothing (a redundant retry
    job of members already sent is allowed: the sender skips them, which the counts below check)."""
    for _ in range(10):
        jobs = _take_jobs(rig)
        if not jobs:
            return
        assert _invoke(rig, jobs, CountingDown(rig, 600.0, threads=threads)) == {"batchItemFailures": []}
    raise AssertionError("the push queue never emptied")


def _done(rig: Rig, body: dict[str, Any]) -> set[str] | None:
    """The members the push job's item says are done (None: the job was never claimed)."""
    item = rig.ddb.get_item(
        TableName=rig.env["DELIVERIES_TABLE"],
        Key={"pk": {"S": f"J#{COMMUNITY}#{body['post']['post_id']}#{body['job']}"}, "sk": {"S": "JOB"}},
        ConsistentRead=True,
    ).get("Item")
    if item is None:
        return None
    members = [t["m"] for t in body["members"]]
    return {members[i] for i in done_from_bits(item["done"]["B"], len(members))}


def _pushes(rig: Rig) -> Counter[str]:
    """POSTs the push service got, per subscription (slow answers and ordinary ones alike)."""
    counts: Counter[str] = Counter(m.subscription_id for m in rig.push.misbehaved())
    counts.update(d.subscription_id for d in rig.push.received())
    return counts


def test_a_job_that_would_outlast_the_invocation_sends_the_rest_on_and_pushes_everyone_once(
    rig: Rig,
) -> None:
    members = [rig.join(shard=0) for _ in range(24)]  # one shard: one push job of 24
    for member in members:
        rig.push.misbehave(rig.sid(member), "trickle-body", status=201, body_bytes=1, interval_s=SLOW_S)
    by_sid = {rig.sid(m): m for m in members}
    _use_sender(rig, threads=2)  # 24 members × 0.4 s / 2 threads: 4.8 s, more than the 4 s budget
    post_id = _plan(rig, "p", "The water point moves to the school yard on Monday.")
    [job] = _take_jobs(rig)
    assert len(json.loads(job["Body"])["members"]) == 24

    context = CountingDown(rig, BUDGET_S, threads=2)
    assert _invoke(rig, [job], context) == {"batchItemFailures": []}
    left_ms = context.get_remaining_time_in_millis()
    assert left_ms > 0, "the invocation ran past its time"

    first = _pushes(rig)
    assert all(m.ended == "complete" for m in rig.push.misbehaved())  # none cut off mid-answer
    pushed = {by_sid[sid].member_id for sid in first}
    assert 0 < len(pushed) < 24
    # Nothing but the same job again: no member failed (the push service closes the connection after
    # each slow answer; a push that finds its pooled connection closed goes again on a new one).
    taken = _take_jobs(rig)
    [continuation] = taken
    body = json.loads(continuation["Body"])
    # The same job again (its id, post, attempt, members): its item says exactly who was pushed.
    assert body == json.loads(job["Body"])
    assert body["post"]["post_id"] == post_id and body["attempt"] == 1 and body["kind"] == "push"
    assert _done(rig, body) == pushed

    _use_sender(rig, threads=8)
    assert _invoke(rig, taken, CountingDown(rig, 600.0, threads=8)) == {"batchItemFailures": []}
    _drain(rig, threads=8)
    assert _pushes(rig) == Counter({rig.sid(m): 1 for m in members})  # everyone once, no one twice
    assert _done(rig, body) == {m.member_id for m in members}
    assert rig.stats(post_id) == {"targeted": 24, "sent": 24, "failed": 0, "pruned": 0, "deferred": 0}


def test_the_second_job_of_a_batch_that_finds_no_time_left_is_sent_on_whole(rig: Rig) -> None:
    """Lambda hands the sender two jobs at once (BatchSize 2); the first uses up the time."""
    members = [rig.join(shard=0) for _ in range(12)]
    for member in members:  # each member's first two pushes are slow
        rig.push.misbehave(
            rig.sid(member), "trickle-body", times=2, status=201, body_bytes=1, interval_s=SLOW_S
        )
    _use_sender(rig, threads=2)
    first_post = _plan(rig, "a", "Vaccination day at the clinic on Tuesday.")
    second_post = _plan(rig, "b", "The bakery gives out bread at six.")
    jobs = _take_jobs(rig)
    assert sorted(json.loads(m["Body"])["post"]["post_id"] for m in jobs) == sorted([first_post, second_post])
    jobs.sort(key=lambda m: json.loads(m["Body"])["post"]["post_id"] != first_post)

    context = CountingDown(rig, BUDGET_S, threads=2)
    assert _invoke(rig, jobs, context) == {"batchItemFailures": []}
    assert context.get_remaining_time_in_millis() > 0, "the invocation ran past its time"
    messages = _take_jobs(rig)
    # Each job goes on as itself, and nothing else is queued (no member failed).
    assert sorted(json.loads(m["Body"])["job"] for m in messages) == sorted(
        json.loads(m["Body"])["job"] for m in jobs
    )
    continued = {json.loads(m["Body"])["post"]["post_id"]: json.loads(m["Body"]) for m in messages}
    assert len(continued[second_post]["members"]) == 12
    assert _done(rig, continued[second_post]) is None  # not claimed: sent on whole, nothing written
    assert 0 < len(_done(rig, continued[first_post]) or ()) < 12

    _use_sender(rig, threads=8)
    assert _invoke(rig, messages, CountingDown(rig, 600.0, threads=8)) == {"batchItemFailures": []}
    _drain(rig, threads=8)
    assert _pushes(rig) == Counter({rig.sid(m): 2 for m in members})  # each post once to each member
    for post_id in (first_post, second_post):
        assert _done(rig, continued[post_id]) == {m.member_id for m in members}
        assert rig.stats(post_id) == {"targeted": 12, "sent": 12, "failed": 0, "pruned": 0, "deferred": 0}
