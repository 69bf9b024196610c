"""The fan-out on moto: a subscription that keeps failing always ends, and never fails the job.

* a member whose push kills the sender every time (a timeout, out of memory) ends ``failed`` after
  the retry policy's attempts, counted in the delivery record, instead of going round the queue;
* a stored subscription whose keys do not encrypt is pruned, the rest of its job is sent;
* an endpoint whose host resolves to the metadata address at send time (DNS rebinding) is pruned
  without a request.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from herald.fanout.delivery import DeliveryResult
from herald.members.rules import Member, WebPushSubscription, subscription_id
from tests.faults import Fault
from tests.integration.fanout_rig import COMMUNITY, Crash, Rig, rig_fixture  # noqa: F401


def _failures(rig: Rig, post_id: str) -> dict[str, str]:
    """Why members failed or were pruned, by member id, as the post's push jobs' items say (the
    deliveries table keeps one item per job, not a record per member)."""
    found: dict[str, str] = {}
    for item in rig.ddb.scan(TableName=rig.env["DELIVERIES_TABLE"], ConsistentRead=True)["Items"]:
        if item["pk"]["S"].startswith(f"J#{COMMUNITY}#{post_id}#"):
            for entry in item.get("failures", {}).get("L", []):
                found[entry["M"]["member"]["S"]] = entry["M"]["detail"]["S"]
    return found


class CrashesFor(Fault):
    """The web sender, dying (as the process would: a timeout, out of memory) on every push to one
    endpoint; other pushes go through."""

    def __init__(self, inner: Any, endpoint: str) -> None:
        super().__init__(f"the web sender dying on every push to {endpoint}")
        self.inner = inner
        self.endpoint = endpoint
        self.crashes = 0

    def send(self, subscription: Any, payload: bytes, **options: Any) -> DeliveryResult:
        if subscription["endpoint"] == self.endpoint:
            self.crashes += 1
            self.fire()
            raise Crash("the sender died pushing to this member")
        result: DeliveryResult = self.inner.send(subscription, payload, **options)
        return result


def test_a_member_whose_push_kills_the_sender_every_time_ends_failed(
    rig: Rig,
) -> None:
    members = [rig.join() for _ in range(4)]
    doomed = members[1]
    assert doomed.web_push is not None
    crashing: list[CrashesFor] = []

    def wrap(name: str, port: Any) -> Any:
        if name == "web":
            crashing.append(CrashesFor(port, doomed.web_push.endpoint))  # type: ignore[union-attr]
            return crashing[0]
        return port

    rig.use_sender(wrap, threads=1)  # RetryPolicy(max_attempts=3), lease 60 s
    post_id = rig.post("p", "The water point moves to the school yard.")
    for _ in range(12):  # each round: the job comes back, the dead sender's lease runs out
        rig.drain()
        rig.clock.advance(61)
    rig.drain()
    assert _failures(rig, post_id) == {doomed.member_id: "gave up: 3 claims of its job died pushing it"}
    # max_attempts claims pushing it alone (after the job's progress), one more if it first died among
    # members of its job pushed before it; then no more pushes.
    assert 3 <= crashing[0].crashes <= 4
    assert rig.queued("PUSH_JOB_QUEUE_URL") == 0
    others = [m for m in members if m is not doomed]
    received = {m.member_id: rig.received_by(m) for m in others}
    assert all(set(got) == {post_id} for got in received.values()), received  # nobody missed
    # A member its job held before the doomed one was pushed by the claim that first died, before
    # any checkpoint, and so again by the next claim: a repeat at the push service (the same Topic),
    # within the bound of one window. Only members of the doomed one's shard share its job.
    for member in others:
        most = 2 if member.shard == doomed.shard else 1
        assert 1 <= len(received[member.member_id]) <= most, (member.shard, doomed.shard, received)
    stats = rig.stats(post_id)
    assert stats is not None and (stats["sent"], stats["failed"]) == (3, 1)


def test_a_stored_subscription_whose_keys_do_not_encrypt_is_pruned_and_the_job_goes_on(
    rig: Rig,
) -> None:
    members = [rig.join() for _ in range(5)]
    broken = members[2]
    # 65 bytes that look like an uncompressed point (0x04 ...) but are not on P-256: what a member
    # item stored before joins checked the curve can hold.
    # (``k``: the member item's p256dh, as bytes.)
    rig.ddb.update_item(
        TableName=rig.env["MEMBERS_TABLE"],
        Key={"pk": {"S": f"M#{COMMUNITY}#{broken.member_id}"}, "sk": {"S": "MEMBER"}},
        UpdateExpression="SET k = :p",
        ExpressionAttributeValues={":p": {"B": b"\x04" + b"\x01" * 64}},
    )
    post_id = rig.post("p", "Vaccination day at the clinic on Tuesday.")
    rig.drain()
    assert "do not encrypt" in _failures(rig, post_id)[broken.member_id]
    # The subscription is gone; it was the member's only one, so the member is no longer counted.
    assert rig.members().member(COMMUNITY, broken.member_id) is None
    assert all(rig.received_by(m) == [post_id] for m in members if m is not broken)
    assert rig.stats(post_id) == {"targeted": 5, "sent": 4, "failed": 0, "pruned": 1, "deferred": 0}
    assert rig.queued("PUSH_JOB_QUEUE_URL") == 0


def test_an_endpoint_that_resolves_to_the_metadata_address_at_send_time_is_pruned_unsent(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host was public when the member joined; by the time of the push it resolves to the
    instance metadata service (DNS rebinding). Nothing is sent there: the subscription is pruned."""
    real_getaddrinfo = socket.getaddrinfo
    asked: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "push.rebinding.example":
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    keys = rig.push.new_subscription()["keys"]
    endpoint = "https://push.rebinding.example/wp/abc"
    web = WebPushSubscription.model_validate({"endpoint": endpoint, "keys": keys})
    now = datetime.now(UTC)
    member = Member(
        community=COMMUNITY,
        member_id="f" * 32,
        shard=0,
        token_hash="0" * 64,
        subscriptions=[subscription_id(web_push=web)],
        web_push=web,
        joined_at=now,
        updated_at=now,
    )
    rig.members().create(member)
    ok = rig.join()
    post_id = rig.post("p", "The bakery gives out bread at six.")
    rig.drain()
    assert asked  # the sender resolved the host at send time ...
    # ... and refused the address: no request, no retry, the subscription pruned.
    assert "169.254.169.254" in _failures(rig, post_id)[member.member_id]
    assert rig.stats(post_id) == {"targeted": 2, "sent": 1, "failed": 0, "pruned": 1, "deferred": 0}
    # Its only subscription pruned, the member is no longer counted.
    assert rig.members().member(COMMUNITY, member.member_id) is None
    assert rig.received_by(ok) == [post_id]
