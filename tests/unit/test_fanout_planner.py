"""The planner's cost follows the members: against in-memory ports (tests/fakes/fanout.py), every call
to a port counted.

A post to an empty community reads the shard counts and nothing else; empty shards are never paged;
a small community is planned by the start itself (no shard job); a larger one gets one shard job per
shard that has members. Whoever plans a page, and however often, its push jobs have the same ids.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from herald.content.models import Post
from herald.fanout.channels import Channels
from herald.fanout.jobs import PushJob
from herald.fanout.rules import shard_job
from herald.fanout.service import FanoutPlanner, release_job, summary_of
from herald.members.rules import Member, Preferences
from tests.fakes.fanout import (
    FakeChannel,
    MemoryDirectory,
    MemoryLedger,
    MemoryPosts,
    MemoryQueue,
    ferry_post,
)
from tests.faults import Crash, FaultyCalls

COMMUNITY = "harbour"
SITE = "https://herald.example"
AT = datetime(2025, 6, 2, 12, tzinfo=UTC)
SHARDS = 32


class Counting:
    """A port with every method call counted (``calls``: by method name)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


def _member(i: int, shard: int, **preferences: object) -> Member:
    member_id = f"{i:032x}"
    return Member(
        community=COMMUNITY,
        member_id=member_id,
        shard=shard,
        token_hash="0" * 64,
        subscriptions=[FakeChannel.subscription(member_id)],
        preferences=Preferences.model_validate(preferences),
        joined_at=AT,
        updated_at=AT,
    )


def _post() -> Post:
    return ferry_post(community=COMMUNITY, at=AT)


class Run:
    """A planner on counted in-memory ports."""

    def __init__(self, members: list[Member], *, counts: bool = True, **options: Any) -> None:
        self.directory = MemoryDirectory(members, counts=counts)
        self.ledger = MemoryLedger()
        self.planner_queue, self.push_queue = MemoryQueue(), MemoryQueue()
        self.ports: dict[str, Any] = {
            "ledger": Counting(self.ledger),
            "members": Counting(self.directory),
            "planner_queue": Counting(self.planner_queue),
            "push_queue": Counting(self.push_queue),
            "content": Counting(MemoryPosts([_post()])),
        }
        for name, wrap in options.pop("wrap", {}).items():
            self.ports[name] = wrap(self.ports[name])
        self.planner = FanoutPlanner(
            **self.ports,
            site_url=SITE,
            clock=AT.timestamp,
            channels=Channels([FakeChannel()]),
            shards=SHARDS,
            **options,
        )

    def release(self) -> str:
        return self.planner.on_job(release_job(summary_of(_post(), SITE))).what

    def calls(self) -> dict[str, int]:
        """Every port call so far, as ``port.method``."""
        return {
            f"{name}.{method}": n
            for name, port in self.ports.items()
            for method, n in sorted(getattr(port, "calls", Counter()).items())
        }

    def drain(self) -> list[str]:
        what = []
        while bodies := self.planner_queue.take():
            what += [self.planner.on_job(body).what for body in bodies]
        return what

    def jobs(self) -> dict[str, list[str]]:
        """The push jobs queued so far: their ids and members (taken off the queue)."""
        jobs = [PushJob.from_dict(b) for b in self.push_queue.take()]
        return {j.job_id: [t.member_id for t in j.targets] for j in jobs}


def _spread(n: int, shards: list[int]) -> list[Member]:
    return [_member(i, shards[i % len(shards)]) for i in range(n)]


def test_a_post_to_an_empty_community_reads_the_counts_and_queues_nothing() -> None:
    others = [_member(i, i % SHARDS).model_copy(update={"community": "other"}) for i in range(40)]
    run = Run(others)
    assert run.release() == "planned"
    assert run.calls() == {
        "ledger.begin": 1,
        "ledger.planned": 1,
        "members.shard_counts": 1,
        "content.posts": 1,
    }
    assert run.directory.pages == [] and run.planner_queue.sent == [] and run.push_queue.sent == []
    assert run.ledger.fanouts == {(COMMUNITY, _post().id): "planned"}


def test_ten_members_are_planned_in_the_start_without_a_shard_job() -> None:
    members = _spread(10, list(range(0, 20, 2)))  # ten shards of one member, 22 empty ones
    run = Run(members)
    result = run.planner.start(summary_of(_post(), SITE))
    assert (result.what, result.members, result.targets, result.shards) == ("planned", 10, 10, 10)
    assert result.planner_jobs == 0 and result.jobs == len(run.push_queue.sent)
    assert run.planner_queue.sent == []  # no shard job, now or later
    assert sorted(run.directory.pages) == [(COMMUNITY, s, None) for s in range(0, 20, 2)]
    calls = run.calls()
    assert calls == {
        "ledger.begin": 1,
        "ledger.planned": 1,
        "members.shard_counts": 1,
        "members.members_page": 10,
        "push_queue.send": 1,  # every page's jobs in one send
    }
    planned = [m for ids in run.jobs().values() for m in ids]
    assert sorted(planned) == sorted(m.member_id for m in members)


def test_only_the_shards_with_members_are_paged_and_each_member_planned_once() -> None:
    members = [*_spread(9, [3, 17, 30]), _member(99, 17, muted=True)]
    run = Run(members, page_size=2, members_per_job=3)
    assert run.release() == "planned"
    first = run.jobs()
    # The first pages were planned by the start; the shards with more queued their next pages.
    assert [a for _, _, a in run.directory.pages] == [None, None, None]
    assert {_next_shard(b) for b in run.planner_queue.sent} == {3, 17, 30}
    assert set(run.drain()) == {"page"}
    assert {s for _, s, _ in run.directory.pages} == {3, 17, 30}
    planned = [m for ids in (first | run.jobs()).values() for m in ids]
    assert sorted(planned) == sorted(m.member_id for m in members[:9])  # once each, not the muted one


def _next_shard(sent: tuple[dict[str, Any], int]) -> int:
    body, _ = sent
    assert body["kind"] == "shard" and body["after"] is not None
    return int(body["shard"])


def test_a_larger_community_gets_one_shard_job_per_shard_with_members() -> None:
    members = _spread(40, [1, 2, 5, 8])
    run = Run(members, small_community=39, page_size=4)
    result = run.planner.start(summary_of(_post(), SITE))
    assert (result.what, result.planner_jobs, result.jobs, result.members) == ("planned", 4, 0, 0)
    assert run.directory.pages == [] and run.push_queue.sent == []
    assert [(b["shard"], b["after"]) for b, _ in run.planner_queue.sent] == [(s, None) for s in (1, 2, 5, 8)]
    run.drain()
    planned = [m for ids in run.jobs().values() for m in ids]
    assert sorted(planned) == sorted(m.member_id for m in members)


@pytest.mark.parametrize("threads", [1, 8])
def test_whoever_plans_a_page_its_jobs_have_the_same_ids(threads: int) -> None:
    """The start's first pages, shard jobs from the first page (a larger community, or a start of an
    earlier version), one thread or eight: the same pages give the same push jobs, member for member."""
    members = _spread(60, [0, 4, 9, 31])
    options: dict[str, Any] = {"page_size": 7, "members_per_job": 3}

    inline = Run(members, threads=threads, **options)
    inline.release()
    inline.drain()
    by_start = inline.jobs()

    sharded = Run(members, small_community=0, **options)
    sharded.release()
    sharded.drain()
    assert sharded.jobs() == by_start

    uncounted = Run(members, counts=False, **options)  # a directory that cannot count: every shard
    uncounted.release()
    uncounted.drain()
    assert uncounted.jobs() == by_start
    assert len(uncounted.directory.pages) == len(inline.directory.pages) + SHARDS - 4  # the empty ones once
    assert sorted(m for ids in by_start.values() for m in ids) == sorted(m.member_id for m in members)


def test_a_directory_that_cannot_count_pages_every_shard_once_in_the_start() -> None:
    run = Run([], counts=False)
    assert run.release() == "planned"
    assert sorted(s for _, s, _ in run.directory.pages) == list(range(SHARDS))
    assert run.planner_queue.sent == [] and run.push_queue.sent == []


@pytest.mark.parametrize(
    ("port", "method", "after"),
    [
        ("push_queue", "send", False),  # begun: no push job sent
        ("push_queue", "send", True),  # the push jobs sent, not the next pages
        ("planner_queue", "send", True),  # all sent
        ("ledger", "planned", False),  # all sent, not recorded
    ],
)
def test_a_start_that_died_plans_the_same_jobs_again(port: str, method: str, after: bool) -> None:
    members = _spread(30, [2, 6, 7])
    options: dict[str, Any] = {"page_size": 5, "members_per_job": 2}
    clean = Run(members, **options)
    clean.release()
    expected_jobs, expected_next = clean.jobs(), [b for b, _ in clean.planner_queue.sent]

    run = Run(members, **options, wrap={port: lambda p: FaultyCalls(p, method, nth=1, after=after)})
    with pytest.raises(Crash):
        run.release()
    assert run.ledger.fanouts == {(COMMUNITY, _post().id): "planning"}
    before_crash = run.jobs()
    assert before_crash == ({} if port == "push_queue" and not after else expected_jobs)
    assert run.release() == "planned"  # the release redelivered: the same jobs, the same ids
    assert run.jobs() == expected_jobs
    next_pages = [(b["shard"], b["after"]) for b, _ in run.planner_queue.sent]
    once = [(b["shard"], b["after"]) for b in expected_next]
    assert next_pages == (once * 2 if (port, after) in {("planner_queue", True), ("ledger", False)} else once)
    assert run.release() == "duplicate"
    assert run.jobs() == {}
    # The next pages queued twice are planned once: the second finds its page marked.
    assert set(run.drain()) == ({"page", "duplicate"} if len(next_pages) > len(once) else {"page"})
    planned = [m for ids in (expected_jobs | run.jobs()).values() for m in ids]
    assert sorted(planned) == sorted(m.member_id for m in members)


def test_a_shard_job_of_a_first_page_the_start_planned_gives_its_jobs_again() -> None:
    """A shard job for a first page (as an earlier version's start queued them) plans it into the
    jobs the start made of it: the sender takes them for the ones it has."""
    members = _spread(12, [5, 11])
    run = Run(members)
    run.release()
    by_start = run.jobs()
    post = summary_of(_post(), SITE)
    for shard in (5, 11):
        assert run.planner.on_job(shard_job(post, shard)).what == "page"
        assert run.planner.on_job(shard_job(post, shard)).what == "duplicate"  # marked by now
    assert run.jobs() == by_start
