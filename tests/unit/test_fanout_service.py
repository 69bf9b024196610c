"""The planner and the sender against in-memory ports (tests/fakes/fanout.py): no AWS, no sockets.

The planner pages every shard and plans each member once, however often a job comes; the sender
pushes each member once, retries what the push service says to retry, prunes what is gone, and sends
on the members it had no time left for. The channel is a fake registered with neither: the planner
and the sender know no channel by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.content.models import Post
from herald.fanout.channels import Channels, registered
from herald.fanout.delivery import DeliveryResult, Outcome, RetryPolicy
from herald.fanout.jobs import PostSummary, PushJob, Target
from herald.fanout.rules import DeliveryStats, done_bits, done_from_bits, pack
from herald.fanout.service import FanoutPlanner, PushDelivery, release_job, summary_of
from herald.members.rules import Device, Member, Preferences, WebPushSubscription
from tests.fakes.fanout import (
    FakeChannel,
    MemoryDirectory,
    MemoryLedger,
    MemoryPosts,
    MemoryQueue,
    ferry_post,
)
from tests.members import new_member, p256_point

COMMUNITY = "harbour"
SITE = "https://herald.example"
AT = datetime(2025, 6, 2, 12, tzinfo=UTC)


@dataclass
class Clock:
    now: float = field(default_factory=AT.timestamp)

    def __call__(self) -> float:
        return self.now


def _member(i: int, shards: int = 1, community: str = COMMUNITY, **preferences: object) -> Member:
    member_id = f"{i:032x}"
    return Member(
        community=community,
        member_id=member_id,
        shard=i % shards,
        token_hash="0" * 64,
        subscriptions=[FakeChannel.subscription(member_id)],
        preferences=Preferences.model_validate(preferences),
        joined_at=AT,
        updated_at=AT,
    )


def _post(post_id: str = "0123456789abcdef0123", **fields: object) -> Post:
    return ferry_post(post_id, community=COMMUNITY, at=AT, **fields)


@dataclass
class Planning:
    planner: FanoutPlanner
    ledger: MemoryLedger
    members: MemoryDirectory
    planner_queue: MemoryQueue
    push_queue: MemoryQueue

    def drain(self) -> list[str]:
        """Run every planner job until the planner queue is empty; what each came to."""
        what = []
        while bodies := self.planner_queue.take():
            what += [self.planner.on_job(body).what for body in bodies]
        return what

    def planned_targets(self) -> list[str]:
        return [
            m["m"] for body in self.push_queue.take() for m in PushJob.from_dict(body).as_dict()["members"]
        ]


def _planning(members: list[Member], posts: list[Post], channels: Channels, **options: int) -> Planning:
    ledger, directory = MemoryLedger(), MemoryDirectory(members)
    planner_queue, push_queue = MemoryQueue(), MemoryQueue()
    planner = FanoutPlanner(
        ledger=ledger,
        members=directory,
        planner_queue=planner_queue,
        push_queue=push_queue,
        content=MemoryPosts(posts),
        site_url=SITE,
        clock=Clock(),
        channels=channels,
        max_delay_s=0,
        **options,
    )
    return Planning(planner, ledger, directory, planner_queue, push_queue)


def _release(post: Post) -> dict[str, object]:
    return release_job(summary_of(post, SITE))


# ----------------------------------------------------------------------------- the planner


def test_a_fanout_pages_every_shard_and_plans_each_member_once() -> None:
    shards = 4
    members = [_member(i, shards) for i in range(23)]
    muted = _member(100, shards, muted=True)
    elsewhere = _member(200, shards, community="other")
    post = _post()
    run = _planning(
        [*members, muted, elsewhere],
        [post],
        Channels([FakeChannel()]),
        shards=shards,
        page_size=3,
        members_per_job=2,
    )
    run.planner_queue.send([_release(post)])
    what = run.drain()

    assert what.count("planned") == 1 and "duplicate" not in what
    pages_per_shard = {s: [a for c, sh, a in run.members.pages if sh == s] for s in range(shards)}
    assert all(pages[0] is None for pages in pages_per_shard.values())  # every shard from its start
    assert all(c == COMMUNITY for c, _, _ in run.members.pages)
    # Each shard paged to its end (3 a page, and one empty page after a full last one).
    for s, pages in pages_per_shard.items():
        in_shard = sum(1 for m in [*members, muted] if m.shard == s)
        assert len(pages) == in_shard // 3 + 1
    jobs = [PushJob.from_dict(b) for b in run.push_queue.take()]
    assert all(len(j.targets) <= 2 for j in jobs)
    planned = sorted(t.member_id for j in jobs for t in j.targets)
    assert planned == sorted(m.member_id for m in members)  # each once; not the muted, not another community
    assert all(
        t.channel == "fake" and t.subscription == f"fake:{t.member_id}" for j in jobs for t in j.targets
    )
    assert run.ledger.fanouts == {(COMMUNITY, post.id): "planned"}
    # The first pages are the start's (guarded by the ledger's ``planned``); each later page is
    # marked by its shard job.
    assert len(run.ledger.pages) == sum(len(p) - 1 for p in pages_per_shard.values())
    assert what.count("page") == len(run.ledger.pages)


def test_a_release_sent_twice_and_a_page_planned_twice_plan_nothing_more() -> None:
    members = [_member(i, 2) for i in range(6)]
    post = _post()
    run = _planning(members, [post], Channels([FakeChannel()]), shards=2, page_size=2)
    release = _release(post)
    assert run.planner.on_job(release).what == "planned"
    queued = len(run.push_queue.sent)
    assert run.planner.on_job(release).what == "duplicate"
    assert len(run.push_queue.sent) == queued  # the second release planned nothing
    shard_jobs = run.planner_queue.take()
    assert len(shard_jobs) == 2  # each shard's second page, from the first release only
    for body in shard_jobs:
        assert run.planner.on_job(body).what == "page"
        assert run.planner.on_job(body).what == "duplicate"  # a redelivered page job
    assert run.planner_queue.take() == []  # the second pages were the last
    assert sorted(run.planned_targets()) == sorted(m.member_id for m in members)


def test_a_post_deleted_or_no_longer_notifying_before_its_release_is_dropped() -> None:
    run = _planning([_member(0)], [_post("quiet0000000000000000", notify=False)], Channels([FakeChannel()]))
    assert run.planner.on_job(_release(_post("gone00000000000000000"))).what == "dropped"
    assert run.planner.on_job(_release(_post("quiet0000000000000000"))).what == "dropped"
    assert run.planner_queue.take() == [] and run.ledger.fanouts == {}


def test_the_registered_channels_give_a_members_browser_and_app_targets() -> None:
    web = WebPushSubscription.model_validate(
        {"endpoint": "https://push.example/x", "keys": {"p256dh": p256_point(7), "auth": "A" * 22}}
    )
    arn = "arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/herald/1"
    both = new_member(
        COMMUNITY, web_push=web, device=Device(platform="fcm", token="fcm-token-0001"), endpoint_arn=arn
    )
    post = _post()
    run = _planning([both], [post], registered({}), shards=1)
    run.planner.on_job(_release(post))
    run.drain()
    [job] = run.push_queue.take()
    assert [(m["c"], sorted(m)) for m in job["members"]] == [
        ("web", ["c", "m", "s", "w"]),
        ("fcm", ["a", "c", "m", "s"]),
    ]
    assert job["members"][0]["w"]["endpoint"] == "https://push.example/x" and job["members"][1]["a"] == arn


# ----------------------------------------------------------------------------- the sender


def _summary() -> PostSummary:
    return summary_of(_post(), SITE)


def _job(n: int, **fields: object) -> PushJob:
    targets = tuple(
        Target(member_id=f"m{i}", channel="fake", subscription=f"fake:m{i}", address=f"m{i}")
        for i in range(n)
    )
    return PushJob.model_validate({"job_id": "j", "post": _summary(), "targets": targets, **fields})


@dataclass
class Sending:
    delivery: PushDelivery
    channel: FakeChannel
    ledger: MemoryLedger
    members: MemoryDirectory
    queue: MemoryQueue
    clock: Clock

    def requeued(self) -> list[PushJob]:
        return [PushJob.from_dict(b) for b in self.queue.take()]


def _sending(answers: dict[str, list[DeliveryResult]] | None = None, threads: int = 1, n: int = 0) -> Sending:
    channel, ledger, queue, clock = FakeChannel(answers or {}), MemoryLedger(), MemoryQueue(), Clock()
    members = MemoryDirectory(
        _member(i).model_copy(update={"member_id": f"m{i}", "subscriptions": [f"fake:m{i}"]})
        for i in range(n)
    )
    delivery = PushDelivery(
        ledger=ledger,
        members=members,
        push_queue=queue,
        channels=Channels([channel]),
        policy=RetryPolicy(max_attempts=3, base_s=1.0, random=lambda: 0.5),
        clock=clock,
        threads=threads,
        max_delay_s=900,
    )
    return Sending(delivery, channel, ledger, members, queue, clock)


def _key(job_id: str = "j") -> tuple[str, str, str]:
    summary = _summary()
    return (summary.community, summary.post_id, job_id)


class Crash(BaseException):
    """Not an ``Exception``: the sender dies as a process would, nothing catches it."""


@pytest.mark.parametrize("threads", [1, 4])
def test_a_job_delivered_twice_pushes_each_member_once(threads: int) -> None:
    run = _sending(threads=threads)
    job = _job(12)
    first = run.delivery.handle(job)
    again = run.delivery.handle(job)
    assert [run.channel.pushes_to(f"m{i}") for i in range(12)] == [1] * 12
    assert first.stats.counters() == {"targeted": 12, "sent": 12} and again.skipped == 12
    assert run.ledger.stats_of(_summary()) == {"targeted": 12, "sent": 12}
    assert run.channel.messages == 1  # the message made once per job, not per member; none for a job done
    assert {m for _, _, m in run.channel.sent} == {f"{_summary().post_id}: {_summary().title}"}
    assert first.services.rows() == [("fake", 12, 0)]
    assert run.queue.take() == []
    job_item = run.ledger.job(_summary(), "j")
    assert job_item is not None and job_item["state"] == "done" and job_item["done"] == frozenset(range(12))


@pytest.mark.parametrize(("members", "writes"), [(1, 3), (50, 3), (100, 4), (120, 5)])
def test_a_job_is_written_once_per_window_not_per_member(members: int, writes: int) -> None:
    run = _sending(threads=4)
    run.delivery.handle(_job(members))
    # The claim, a checkpoint after each window of 50 but the last, the last, the statistics.
    assert run.ledger.writes == writes and run.channel.pushes == members
    assert run.ledger.writes / members <= 0.06 or members < 100


def test_a_retry_goes_back_on_the_queue_as_a_job_of_its_own_and_is_sent() -> None:
    later = DeliveryResult(Outcome.RETRY, status=429, retry_after_s=30.0)
    run = _sending({"m1": [later]})
    report = run.delivery.handle(_job(3))
    assert report.requeued == 1 and report.stats.counters() == {"targeted": 3, "sent": 2, "retried": 1}
    assert run.queue.delays() == [30]  # the push service's Retry-After
    [retry] = run.requeued()
    assert [t.member_id for t in retry.targets] == ["m1"] and retry.attempt == 2 and retry.not_before is None
    assert retry.job_id != "j"
    run.delivery.handle(retry)
    run.delivery.handle(retry)  # redelivered: done
    assert run.channel.pushes_to("m1") == 2 and run.channel.pushes_to("m0") == 1
    assert run.ledger.stats_of(_summary()) == {"targeted": 3, "sent": 3, "retried": 1}


def test_retries_end_failed_after_the_policys_attempts() -> None:
    run = _sending({"m0": [DeliveryResult(Outcome.RETRY, status=503, detail="busy")] * 5})
    jobs = [_job(1)]
    reports = []
    while jobs:
        reports += [run.delivery.handle(job) for job in jobs]
        jobs = run.requeued()
    assert run.channel.pushes_to("m0") == 3  # RetryPolicy(max_attempts=3)
    assert reports[-1].failures == [("m0", "fake", "failed: busy")]
    assert run.ledger.stats_of(_summary()) == {"targeted": 1, "failed": 1, "retried": 2}


def test_a_claim_after_one_that_died_pushes_one_member_at_a_time() -> None:
    run = _sending(threads=4)
    run.ledger.jobs[_key()] = {
        "state": "sending",
        "token": "dead",
        "lease_until": run.clock.now - 1,
        "attempts": 1,
        "done": frozenset({0}),
        "counted": DeliveryStats(sent=1),
    }
    report = run.delivery.handle(_job(5))
    assert [m for m, _, _ in run.channel.sent] == ["m1", "m2", "m3", "m4"] and report.skipped == 1
    assert report.checkpoints == 4  # after each member, the last the job's end
    assert run.ledger.stats_of(_summary()) == {"targeted": 5, "sent": 5}


def test_the_member_whose_push_kills_the_sender_is_given_up_alone() -> None:
    run = _sending()
    # Three claims since the job's last progress (after m0) died on m1: RetryPolicy(max_attempts=3).
    run.ledger.jobs[_key()] = {
        "state": "sending",
        "token": "dead",
        "lease_until": run.clock.now - 1,
        "attempts": 3,
        "done": frozenset({0}),
        "counted": DeliveryStats(sent=1),
    }
    report = run.delivery.handle(_job(3))
    assert [m for m, _, _ in run.channel.sent] == ["m2"] and report.stats.failed == 1
    assert report.failures == [("m1", "fake", "gave up: 3 claims of its job died pushing it")]
    assert run.ledger.stats_of(_summary()) == {"targeted": 3, "sent": 2, "failed": 1}
    assert run.ledger.job(_summary(), "j")["state"] == "done"  # type: ignore[index]


def test_a_job_another_sender_holds_goes_back_until_its_lease_ends() -> None:
    run = _sending()
    run.ledger.jobs[_key()] = {
        "state": "sending",
        "token": "other",
        "lease_until": run.clock.now + 40,
        "attempts": 1,
        "done": frozenset(),
        "counted": DeliveryStats(),
    }
    report = run.delivery.handle(_job(2))
    assert report.requeued == 2 and run.channel.pushes == 0
    assert run.queue.delays() == [41]
    [back] = run.requeued()
    assert back.job_id == "j" and back.attempt == 1 and len(back.targets) == 2  # the same job


def test_a_sender_that_dies_mid_job_repeats_at_most_one_window_and_misses_nobody() -> None:
    run = _sending()
    job = _job(100)
    crash_after = 73  # the 74th push dies: the window of 50..99 is not checkpointed
    real_send = run.channel.send

    def send(target: Target, post: PostSummary, message: object) -> DeliveryResult:
        if run.channel.pushes >= crash_after:
            raise Crash
        return real_send(target, post, message)

    run.channel.send = send  # type: ignore[method-assign]
    with pytest.raises(Crash):
        run.delivery.handle(job)
    run.channel.send = real_send  # type: ignore[method-assign]
    run.clock.now += 61  # the lease ends; SQS delivers the job again
    again = run.delivery.handle(job)
    pushes = [run.channel.pushes_to(f"m{i}") for i in range(100)]
    assert min(pushes) == 1  # nobody missed
    repeats = sum(p - 1 for p in pushes)
    assert 0 < repeats <= run.delivery.checkpoint_every and again.skipped == 50
    assert run.ledger.stats_of(_summary()) == {"targeted": 100, "sent": 100}


def test_a_sender_whose_lease_was_taken_over_stops_at_its_next_checkpoint() -> None:
    run = _sending()
    job = _job(120)
    real_send = run.channel.send

    def send(target: Target, post: PostSummary, message: object) -> DeliveryResult:
        if run.channel.pushes == 10:  # slow: its lease ends, another claim takes the job
            run.clock.now += 61
            assert run.ledger.claim_job(_summary(), "j", 120, run.clock.now, 60.0).kind == "again"
        return real_send(target, post, message)

    run.channel.send = send  # type: ignore[method-assign]
    report = run.delivery.handle(job)
    assert report.lost and run.channel.pushes == 50  # the first window, then nothing more
    assert run.ledger.stats_of(_summary()) == {}


def test_an_exception_pushing_one_member_is_that_members_retry() -> None:
    run = _sending()
    real_send = run.channel.send

    def send(target: Target, post: PostSummary, message: object) -> DeliveryResult:
        if target.member_id == "m1" and post.post_id:
            raise RuntimeError("the channel broke")
        return real_send(target, post, message)

    run.channel.send = send  # type: ignore[method-assign]
    report = run.delivery.handle(_job(3))
    assert report.stats.counters() == {"targeted": 3, "sent": 2, "retried": 1}
    [retry] = run.requeued()
    assert [t.member_id for t in retry.targets] == ["m1"]


def test_a_gone_subscription_is_pruned_and_the_member_removed() -> None:
    gone = DeliveryResult(Outcome.PRUNE, status=410, detail="unsubscribed")
    run = _sending({"m1": [gone]}, n=3)
    report = run.delivery.handle(_job(3))
    assert report.stats.counters() == {"targeted": 3, "sent": 2, "pruned": 1}
    assert report.failures == [("m1", "fake", "unsubscribed")]
    assert run.channel.pruned == [(COMMUNITY, "m1", "fake:m1")]
    assert run.members.pruned == [(COMMUNITY, "m1", "fake:m1")]
    assert (COMMUNITY, "m1") not in run.members.members and (COMMUNITY, "m0") in run.members.members
    assert report.services.rows() == [("fake", 3, 0)]  # a gone subscription is no failure of the service


def test_a_refused_push_is_failed_and_counted_as_an_auth_failure() -> None:
    run = _sending({"m0": [DeliveryResult(Outcome.AUTH_FAILURE, status=403, detail="bad key")]})
    report = run.delivery.handle(_job(2))
    assert report.stats.counters() == {"targeted": 2, "sent": 1, "failed": 1, "auth_failures": 1}
    assert report.failures == [("m0", "fake", "auth_failure: bad key")]
    assert report.services.auth_failures == {"fake": 1} and run.members.pruned == []


def test_a_job_past_its_deadline_is_released_and_continued_where_it_stopped() -> None:
    run = _sending()
    left = iter([100.0] * 4)  # the job, its lease, then two members; then no time left

    def remaining() -> float:
        return next(left, 10.0)  # below the sender's reserve of 25 s

    report = run.delivery.handle(_job(5), remaining)
    assert [m for m, _, _ in run.channel.sent] == ["m0", "m1"] and report.continued == 3
    job_item = run.ledger.job(_summary(), "j")
    assert job_item is not None and job_item["state"] == "released" and job_item["done"] == {0, 1}
    assert run.queue.delays() == [0]
    [rest] = run.requeued()
    assert rest.job_id == "j" and len(rest.targets) == 5  # the same job: its next claim starts after m1
    continued = run.delivery.handle(rest)
    assert continued.skipped == 2
    assert [run.channel.pushes_to(f"m{i}") for i in range(5)] == [1] * 5
    assert run.ledger.stats_of(_summary()) == {"targeted": 5, "sent": 5}


def test_a_job_due_after_quiet_hours_is_deferred_once_then_sent() -> None:
    run = _sending()
    due = run.clock.now + 3600
    [job] = pack(
        _summary(),
        [
            Target(member_id=f"m{i}", channel="fake", subscription=f"fake:m{i}", not_before=due)
            for i in range(2)
        ],
    )
    report = run.delivery.handle(job)
    assert report.deferred_until == due and run.channel.sent == []
    assert run.queue.delays() == [900]  # the longest SQS delay: the rest is another hop
    [waiting] = run.requeued()
    assert waiting.deferred_recorded and waiting.not_before == due
    run.delivery.handle(job)  # the first message again: the deferral is recorded, not counted again
    run.queue.take()
    run.clock.now += 900
    run.delivery.handle(waiting)  # not due yet: waits on, the deferral not counted again
    [waiting] = run.requeued()
    run.clock.now = due
    run.delivery.handle(waiting)
    run.delivery.handle(job)  # and the first message once more, after the time: done
    assert [run.channel.pushes_to(f"m{i}") for i in range(2)] == [1, 1]
    assert run.ledger.stats_of(_summary()) == {"targeted": 2, "sent": 2, "deferred": 2}


def test_a_target_no_channel_sends_fails_alone() -> None:
    run = _sending()
    stray = Target(member_id="x", channel="pigeon", subscription="p:x")
    job = _job(1).model_copy(update={"targets": (*_job(1).targets, stray)})
    report = run.delivery.handle(job)
    assert report.stats.counters() == {"targeted": 2, "sent": 1, "failed": 1}
    assert report.failures == [("x", "pigeon", "failed: no channel sends 'pigeon'")]
    assert report.services.rows() == [("fake", 1, 0), ("other", 1, 1)]


@given(
    st.integers(min_value=0, max_value=700).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(0, max(0, n - 1))))
    )
)
def test_done_bits_round_trip(case: tuple[int, set[int]]) -> None:
    size, done = case
    done = {i for i in done if i < size}
    bits = done_bits(done, size)
    assert len(bits) == (size + 7) // 8 and done_from_bits(bits, size) == done
