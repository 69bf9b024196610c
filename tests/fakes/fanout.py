"""In-memory fakes of every fan-out port: the job queues, the deliveries ledger, the members
directory, the post source, and a channel.

The ledger keeps the DynamoDB ledger's rules (``herald.fanout.adapters.dynamo_deliveries``): a job's
claim succeeds from nothing, ``released``, ``deferred`` or an expired lease, with a new token, and
counts an attempt; ``done`` is final; a live lease is ``busy``; a checkpoint needs the claim's token.
The queue keeps what was sent as the
JSON an SQS message would carry (a body sent as text, as it is; one sent as values, as
:class:`herald.fanout.adapters.sqs_jobs.SqsJobQueue` writes it). Thread-safe where the sender's
threads reach them.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from herald.content.models import Post
from herald.fanout.delivery import DeliveryResult, Outcome
from herald.fanout.jobs import PostSummary, Target
from herald.fanout.rules import DeliveryStats
from herald.fanout.service import JobLease, Progress
from herald.members.rules import Member


def ferry_post(
    post_id: str = "0123456789abcdef0123",
    *,
    community: str = "harbour",
    at: datetime = datetime(2025, 6, 2, 12, tzinfo=UTC),
    **fields: object,
) -> Post:
    """An editor's post of ``community`` as the content table holds it (``fields`` override)."""
    values: dict[str, object] = {
        "id": post_id,
        "community": community,
        "key": f"posts/{community}/{post_id}.json",
        "title": "The ferry runs again",
        "text": "The ferry runs again from Monday.",
        "excerpt": "The ferry runs again from Monday.",
        "content_hash": "0" * 64,
        "created_at": at,
        "updated_at": at,
        **fields,
    }
    return Post.model_validate(values)


class MemoryQueue:
    """A :class:`herald.fanout.service.JobQueue`: every body sent, as its JSON, with its delay."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []
        self._lock = threading.Lock()

    def send(self, bodies: Sequence[Mapping[str, Any] | str], delay_s: int = 0) -> None:
        texts = [
            b if isinstance(b, str) else json.dumps(b, ensure_ascii=False, separators=(",", ":"))
            for b in bodies
        ]
        with self._lock:
            self.sent += [(json.loads(t), int(delay_s)) for t in texts]

    def take(self) -> list[dict[str, Any]]:
        """The bodies sent since the last take (the queue received and emptied)."""
        with self._lock:
            taken, self.sent = self.sent, []
        return [body for body, _ in taken]

    def delays(self) -> list[int]:
        return [delay for _, delay in self.sent]


def _fanout(post: PostSummary) -> tuple[str, str]:
    """The ledger's key of a fan-out: the post's, a follow-up's with its language."""
    wave = "" if post.follow_up is None else f"#{post.follow_up}"
    return post.community, post.post_id + wave


@dataclass
class MemoryLedger:
    """A :class:`herald.fanout.service.DeliveryLedger` in dicts."""

    fanouts: dict[tuple[str, str], str] = field(default_factory=dict)
    pages: set[tuple[str, str, int, str]] = field(default_factory=set)
    jobs: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    stats: dict[tuple[str, str], DeliveryStats] = field(default_factory=lambda: defaultdict(DeliveryStats))
    claims: int = 0
    writes: int = 0  # claims, checkpoints, deferrals and statistics: what the table would be written
    _tokens: itertools.count = field(default_factory=itertools.count, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def begin(self, post: PostSummary, now: float) -> str:
        key = _fanout(post)
        if key in self.fanouts:
            return self.fanouts[key]
        self.fanouts[key] = "planning"
        return "new"

    def planned(self, post: PostSummary, now: float) -> None:
        self.fanouts[_fanout(post)] = "planned"

    def page_done(self, post: PostSummary, shard: int, after: str | None) -> bool:
        return (*_fanout(post), shard, after or "^") in self.pages

    def mark_page(self, post: PostSummary, shard: int, after: str | None, now: float) -> None:
        self.pages.add((*_fanout(post), shard, after or "^"))

    def defer_job(self, post: PostSummary, job_id: str, size: int, now: float) -> bool:
        with self._lock:
            self.writes += 1
            key = (post.community, post.post_id, job_id)
            if key in self.jobs:
                return False
            self.jobs[key] = {"state": "deferred", "attempts": 0, "deferred": True, "done": frozenset()}
            return True

    def claim_job(self, post: PostSummary, job_id: str, size: int, now: float, lease_s: float) -> JobLease:
        with self._lock:
            self.claims += 1
            self.writes += 1
            key = (post.community, post.post_id, job_id)
            old = self.jobs.get(key)
            state = None if old is None else old["state"]
            if old is not None and not (
                state in ("released", "deferred") or (state == "sending" and old["lease_until"] < now)
            ):
                return JobLease("busy", until=old["lease_until"]) if state == "sending" else JobLease("done")
            token = f"t{next(self._tokens)}"
            attempts = (0 if old is None else old["attempts"]) + 1
            self.jobs[key] = {
                **(old or {"done": frozenset(), "counted": DeliveryStats()}),
                "state": "sending",
                "token": token,
                "lease_until": now + lease_s,
                "attempts": attempts,
            }
            counted = DeliveryStats()
            counted.add((old or {}).get("counted") or DeliveryStats())
            return JobLease(
                "again" if old else "new",
                token=token,
                done=frozenset((old or {}).get("done", ())),
                counted=counted,
                attempts=attempts,
                deferred=bool((old or {}).get("deferred")),
            )

    def checkpoint(self, post: PostSummary, job_id: str, progress: Progress, now: float) -> bool:
        with self._lock:
            self.writes += 1
            job = self.jobs[(post.community, post.post_id, job_id)]
            if job["token"] != progress.lease.token or job["state"] != "sending":
                return False
            kept = DeliveryStats()
            kept.add(progress.counted)
            job.update(state=progress.state, done=progress.done, counted=kept)
            if progress.failures:
                job["failures"] = list(progress.failures)
            if progress.state == "sending":
                job["lease_until"] = now + progress.lease_s
                job["attempts"] = 1
            else:
                job.pop("lease_until", None)
                job["attempts"] = 0
            return True

    def add_stats(self, post: PostSummary, stats: DeliveryStats, now: float) -> None:
        with self._lock:
            self.writes += 1
            self.stats[(post.community, post.post_id)].add(stats)

    # -- for the tests ----------------------------------------------------------------------------

    def job(self, post: PostSummary, job_id: str) -> dict[str, Any] | None:
        return self.jobs.get((post.community, post.post_id, job_id))

    def stats_of(self, post: PostSummary) -> dict[str, int]:
        return self.stats[(post.community, post.post_id)].counters()


class MemoryDirectory:
    """A :class:`herald.fanout.service.MemberDirectory`: members by community and shard, paged by
    member id as the members table's shard index is, and counted per shard as its counters are
    (``counts=False``: a directory that cannot say, its ``shard_counts`` None)."""

    def __init__(self, members: Iterable[Member] = (), *, counts: bool = True) -> None:
        self.members: dict[tuple[str, str], Member] = {(m.community, m.member_id): m for m in members}
        self.pages: list[tuple[str, int, str | None]] = []
        self.counted: list[str] = []
        self.pruned: list[tuple[str, str, str]] = []
        self.counts = counts
        self._lock = threading.Lock()

    def shard_counts(self, community: str) -> dict[int, int] | None:
        with self._lock:
            self.counted.append(community)
            if not self.counts:
                return None
            counts: dict[int, int] = defaultdict(int)
            for (c, _), member in self.members.items():
                if c == community:
                    counts[member.shard] += 1
            return dict(counts)

    def members_page(
        self, community: str, shard: int, after: str | None, limit: int
    ) -> tuple[list[Member], str | None]:
        with self._lock:
            self.pages.append((community, shard, after))
        shard_members = sorted(
            (m for (c, _), m in self.members.items() if c == community and m.shard == shard),
            key=lambda m: m.member_id,
        )
        page = [m for m in shard_members if after is None or m.member_id > after][:limit]
        # As a Query with a Limit: the last key whenever the page is full, even if nothing follows.
        return page, (page[-1].member_id if len(page) == limit else None)

    def prune_subscription(self, community: str, member_id: str, subscription: str) -> bool:
        with self._lock:
            member = self.members.get((community, member_id))
            if member is None or subscription not in member.subscriptions:
                return False
            self.pruned.append((community, member_id, subscription))
            left = [s for s in member.subscriptions if s != subscription]
            if not left:
                del self.members[(community, member_id)]
            else:
                self.members[(community, member_id)] = member.model_copy(update={"subscriptions": left})
            return True


class MemoryPosts:
    """A :class:`herald.fanout.service.PostSource`."""

    def __init__(self, posts: Iterable[Post] = ()) -> None:
        self.posts_by_key: dict[tuple[str, str], Post] = {(p.community, p.id): p for p in posts}

    def posts(self, community: str, post_ids: Sequence[str]) -> dict[str, Post]:
        return {i: self.posts_by_key[(community, i)] for i in post_ids if (community, i) in self.posts_by_key}


@dataclass
class FakeChannel:
    """A :class:`herald.fanout.channels.Channel` that sends nothing anywhere: every member with a
    subscription ``fake:<member id>`` has one target of kind ``fake``; each push answers the next
    result scripted for its member (``answers``), else ``sent``; every push is recorded."""

    answers: dict[str, list[DeliveryResult]] = field(default_factory=dict)
    kinds: tuple[str, ...] = ("fake",)
    bound_s: float = 1.0
    sent: list[tuple[str, str, Any]] = field(default_factory=list)
    messages: int = 0
    pruned: list[tuple[str, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @staticmethod
    def subscription(member_id: str) -> str:
        return f"fake:{member_id}"

    def targets(self, member: Member, post: PostSummary, not_before: float | None) -> list[Target]:
        sid = self.subscription(member.member_id)
        if sid not in member.subscriptions:
            return []
        return [
            Target(
                member_id=member.member_id,
                channel=self.kinds[0],
                subscription=sid,
                address=member.member_id,
                not_before=not_before,
            )
        ]

    def message(self, post: PostSummary) -> str:
        with self._lock:
            self.messages += 1
        return f"{post.post_id}: {post.title}"

    def send(self, target: Target, post: PostSummary, message: Any) -> DeliveryResult:
        with self._lock:
            self.sent.append((target.member_id, post.post_id, message))
            scripted = self.answers.get(target.member_id)
            return scripted.pop(0) if scripted else DeliveryResult(Outcome.SENT, status=201)

    def service(self, target: Target) -> str:
        return "fake"

    def prune(self, community: str, target: Target, members: Any) -> bool:
        with self._lock:
            self.pruned.append((community, target.member_id, target.subscription))
        return bool(members.prune_subscription(community, target.member_id, target.subscription))

    @property
    def pushes(self) -> int:
        return len(self.sent)

    def pushes_to(self, member_id: str) -> int:
        return sum(1 for m, _, _ in self.sent if m == member_id)
