"""The fan-out: plan a new post's pushes shard by shard, and send each member one push per channel, once.

**Planning follows the members.** The start reads the community's member count per shard and pages
only the shards that have members: a post to an empty community costs a few calls and no planner
job; a small community is planned in the start itself (the shards' first pages read in parallel);
a larger one gets one planner job per shard that has members, each paging on (see
:class:`FanoutPlanner`).

The rules are in :mod:`herald.fanout.rules`, the jobs in :mod:`herald.fanout.jobs`; this module applies
them through ports (queues, the deliveries ledger, the members directory, the channels, a clock), which
``herald.fanout.adapters`` implement on SQS and DynamoDB and ``herald.fanout.channels`` on Web Push and
SNS. Neither the planner nor the sender knows a channel by name: a target goes to the channel of its
kind (:class:`herald.fanout.channels.Channels`).

**Once per member.** Before a push, the sender *claims* the (post, member, channel) delivery record
with a conditional write: it becomes ``sending`` with a lease, and only from nothing, ``deferred``,
``retry`` or an expired lease. After the push it is marked ``sent`` (or ``pruned``, ``failed``), a
final state no claim leaves. So a duplicated stream record, a planner that pages a shard twice, a
redelivered or duplicated job, a retried batch: each finds the record claimed or final and pushes
nothing. A member whose record another sender holds (a live lease) is put back on the queue to be
looked at when the lease ends. Only a sender that dies between its push and the mark can cause a
second push, after the lease: the ``Topic`` header (the post id) collapses the two at the push
service, the notification's ``tag`` on the device.

**Always an end.** Every claim counts an attempt in the record itself, however the attempt ends (an
answer, an exception, a sender that dies or times out), and a claim past the retry policy's
``max_attempts`` marks the record ``failed`` without pushing: a subscription that keeps failing ends
``failed`` (or ``pruned``), whatever makes it fail, and is never sent round the queue for ever.

**Within the invocation's time.** Before it claims a member, the sender looks at the time the
invocation has left; below ``reserve_s`` (the longest one push may take, plus its mark and the job's
last writes) it claims no more. The members it did not claim go back on the queue as a continuation
job (the same post, the same attempt, only those members); the ones in flight finish and are marked.
So a job of slow push services never runs into the function's timeout: no lease is left to expire,
no member is pushed twice, none is lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeAlias

from herald.content.models import Post
from herald.fanout.channels import Channels, registered
from herald.fanout.delivery import Outcome, RetryPolicy, ServiceTally
from herald.fanout.jobs import (
    PlannerJob,
    PostJob,
    PostSummary,
    PushJob,
    ReleaseJob,
    ShardJob,
    Target,
    planner_jobs,
)
from herald.fanout.rules import (
    MAX_DELAY_S,
    MEMBERS_PER_JOB,
    DeliveryStats,
    delay_for,
    job_id,
    pack,
    post_job,
    shard_job,
    summary_of,
    targets,
)
from herald.members.rules import Member

# ----------------------------------------------------------------------------- ports


#: One message for a :class:`JobQueue`: its JSON values, or its body ready as JSON text (a job's
#: ``as_json()``, sent as it is).
Body: TypeAlias = Mapping[str, Any] | str


class JobQueue(Protocol):
    """An SQS queue of JSON jobs."""

    def send(self, bodies: Sequence[Body], delay_s: int = 0) -> None:
        """Send every body (in batches; a mapping written as compact JSON, a string as it is);
        raise TransientError if any could not be sent."""
        ...


ClaimKind = Literal["new", "again", "done", "busy"]


@dataclass(frozen=True)
class Claim:
    """``new``: the first record for this target (claimed); ``again``: claimed from deferred, retry or an
    expired lease; ``done``: final already (sent, pruned, failed): push nothing; ``busy``: another
    sender holds a live lease until ``until``. ``attempt``: the claims of this record so far, this
    one included (the record counts them, not the job: a job redelivered after a crash is the same
    job, its member's next attempt)."""

    kind: ClaimKind
    until: float | None = None
    attempt: int = 1


FinalState = Literal["sent", "pruned", "failed"]


class DeliveryLedger(Protocol):
    """The fan-out ledger, the per-(post, member, channel) delivery records and per-post statistics."""

    def begin(self, post: PostSummary, now: float) -> str:
        """Record that the post's fan-out starts: ``new`` the first time, else the state found
        (``planning``: a start that did not finish, ``planned``)."""
        ...

    def planned(self, post: PostSummary, now: float) -> None: ...

    def page_done(self, post: PostSummary, shard: int, after: str | None) -> bool: ...

    def mark_page(self, post: PostSummary, shard: int, after: str | None, now: float) -> None: ...

    def defer(self, post: PostSummary, found: Sequence[Target], now: float) -> int:
        """Create ``deferred`` records for targets that have none; how many were created."""
        ...

    def claim(self, post: PostSummary, target: Target, attempt: int, now: float, lease_s: float) -> Claim:
        """Claim the record (``attempt``: the job's, for the record's log) and count the attempt."""
        ...

    def finish(
        self, post: PostSummary, target: Target, state: FinalState, now: float, detail: str
    ) -> None: ...

    def release(self, post: PostSummary, target: Target, attempt: int, now: float) -> None:
        """The attempt will be retried: the record becomes ``retry`` (claimable again)."""
        ...

    def add_stats(self, post: PostSummary, stats: DeliveryStats, now: float) -> None:
        """One ``ADD`` of the counters on the post's stats item."""
        ...


class MemberDirectory(Protocol):
    def members_page(
        self, community: str, shard: int, after: str | None, limit: int
    ) -> tuple[list[Member], str | None]:
        """Up to ``limit`` members of the shard after member id ``after``, and the last id (None: the end)."""
        ...

    def shard_counts(self, community: str) -> Mapping[int, int] | None:
        """How many members each shard of the community has, read consistently (a shard left out:
        0), or None when the directory cannot say. A shard counted 0 has no member to page: every
        join and leave changes the member and its shard's count together."""
        ...

    def prune_subscription(self, community: str, member_id: str, subscription: str) -> bool:
        """Remove a dead subscription from the member and release its claim; the member stays."""
        ...


class PostSource(Protocol):
    def posts(self, community: str, post_ids: Sequence[str]) -> dict[str, Post]: ...


# ----------------------------------------------------------------------------- the planner


@dataclass
class PlanResult:
    """What one planner job came to. ``what``: duplicate, planned, scheduled, page, dropped; ``jobs``:
    the push jobs queued, for ``targets`` targets of ``members`` members paged over ``shards`` shard
    pages; ``planner_jobs``: the jobs queued on the planner queue (a shard's next page, a post's wait)."""

    what: str
    jobs: int = 0
    targets: int = 0
    members: int = 0
    shards: int = 0
    planner_jobs: int = 0


@dataclass(frozen=True)
class _Page:
    """One shard page planned: its push jobs' bodies and counts, and the last member id (None: the end)."""

    shard: int
    bodies: list[str]
    targets: int
    members: int
    last: str | None


@dataclass
class FanoutPlanner:
    """From a published post to push jobs, at a cost that follows the members, not the shards.

    A fan-out starts with a ``release`` job, which the publisher sends once the post's page, the
    community page and the feeds are written (:mod:`herald.site.publisher`), so no push ever points
    at a page that does not exist yet. Scheduled posts wait for their time on the publisher's side.

    The start reads the community's shard counts (one consistent read of the counters) and skips
    every shard counted 0. A small community (at most ``small_community`` members) is planned by the
    start itself: the first page of each shard left, read in parallel (``threads``), its push jobs
    queued before the fan-out is recorded ``planned``; a larger one gets one planner job per shard
    left (``shard``), run by as many planner invocations at once. Either way a shard page with more
    after it queues the job of its next page, so a page costs one read and its jobs whoever plans it.

    **The same pages, the same jobs.** A page's push jobs are named by the post, the shard and the
    member before the page (``pack``'s ``origin``), whether the start planned it or a shard job did.
    So a start that died before recording ``planned`` (the ledger still ``planning``) plans its pages
    again into jobs of the same ids, as a shard job redelivered before it marked its page does, and
    the sender knows them; the ``planned`` state and each shard job's page mark keep a page from
    being planned again once it is done.
    """

    ledger: DeliveryLedger
    members: MemberDirectory
    planner_queue: JobQueue
    push_queue: JobQueue
    content: PostSource
    site_url: str
    shards: int = 32
    page_size: int = 1000
    members_per_job: int = MEMBERS_PER_JOB
    max_delay_s: int = MAX_DELAY_S
    clock: Callable[[], float] = time.time
    #: Whose targets a member has (every registered channel; the planner never pushes).
    channels: Channels = field(default_factory=registered)
    #: The most members the start plans itself (by the shard counts); a larger community gets shard jobs.
    small_community: int = 5000
    #: The shard pages the start reads at once.
    threads: int = 8
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def on_job(self, job: PlannerJob | Mapping[str, Any]) -> PlanResult:
        """One planner job (a model, or its JSON values: validated here)."""
        if not isinstance(job, ReleaseJob | PostJob | ShardJob):
            job = planner_jobs.validate_python(job)
        if isinstance(job, ShardJob):
            return self._page(job.post, job.shard, job.after)
        if isinstance(job, ReleaseJob):
            return self._release(job.post)
        return self._due(job.post)

    def start(self, post: PostSummary) -> PlanResult:
        """Record the post's fan-out once in the ledger, then plan it: the shards counted 0 skipped,
        a small community's pages planned here, a larger one's shards queued as shard jobs.

        A repeated start (a release sent twice, a redelivered job) finds the ledger item ``planned``
        and does nothing; one found ``planning`` (a start that died before it was done) plans again:
        the same pages give push jobs of the same ids, and the same shard jobs."""
        now = self.clock()
        if self.ledger.begin(post, now) == "planned":
            return PlanResult("duplicate")
        post = replace(post, started_at=now)
        counts = self.members.shard_counts(post.community)
        shards = [s for s in range(self.shards) if counts is None or counts.get(s, 0) != 0]
        if counts is not None and sum(max(0, counts.get(s, 0)) for s in shards) > self.small_community:
            self.planner_queue.send([shard_job(post, s) for s in shards])
            self.ledger.planned(post, now)
            return PlanResult("planned", planner_jobs=len(shards))
        pages = self._first_pages(post, shards, now)
        bodies = [body for page in pages for body in page.bodies]
        if bodies:
            self.push_queue.send(bodies)
        following = [shard_job(post, p.shard, p.last) for p in pages if p.last is not None]
        if following:
            self.planner_queue.send(following)
        self.ledger.planned(post, now)
        return PlanResult(
            "planned",
            jobs=len(bodies),
            targets=sum(p.targets for p in pages),
            members=sum(p.members for p in pages),
            shards=len(pages),
            planner_jobs=len(following),
        )

    def _release(self, post: PostSummary) -> PlanResult:
        """The publisher has written the post's page: fan out with what the post says now."""
        current = self.content.posts(post.community, [post.post_id]).get(post.post_id)
        if current is None or not current.notify or current.source != "post":
            return PlanResult("dropped")  # deleted, or no longer notifying, since it was published
        fresh = replace(summary_of(current, self.site_url), correlation_id=post.correlation_id)
        return self.start(fresh)

    def _due(self, post: PostSummary) -> PlanResult:
        """A job an earlier release queued to wait for ``publish_at`` here: waits on (in hops of at
        most 15 minutes), then fans out. New scheduled posts wait on the publisher's side instead."""
        now = self.clock()
        current = self.content.posts(post.community, [post.post_id]).get(post.post_id)
        if current is None or not current.notify:
            return PlanResult("dropped")  # deleted, or no longer notifying, before its time
        fresh = summary_of(current, self.site_url)
        if fresh.publish_at is not None and fresh.publish_at > now:
            self.planner_queue.send([post_job(fresh)], delay_for(fresh.publish_at, now, self.max_delay_s))
            return PlanResult("scheduled", planner_jobs=1)
        return self.start(fresh)

    def _page(self, post: PostSummary, shard: int, after: str | None) -> PlanResult:
        """A shard job: one page planned, the next page's job queued, then the page marked done."""
        if self.ledger.page_done(post, shard, after):
            return PlanResult("duplicate")
        now = self.clock()
        page = self._plan_page(post, shard, after, now)
        if page.bodies:
            self.push_queue.send(page.bodies)
        if page.last is not None:
            self.planner_queue.send([shard_job(post, shard, page.last)])
        self.ledger.mark_page(post, shard, after, now)
        return PlanResult(
            "page",
            jobs=len(page.bodies),
            targets=page.targets,
            members=page.members,
            shards=1,
            planner_jobs=int(page.last is not None),
        )

    def _plan_page(self, post: PostSummary, shard: int, after: str | None, now: float) -> _Page:
        """The page's members to push jobs (as their JSON bodies), named by ``(shard, after)``."""
        members, last = self.members.members_page(post.community, shard, after, self.page_size)
        found = [t for m in members for t in targets(m, post, now, self.channels)]
        jobs = pack(post, found, members_per_job=self.members_per_job, origin=(shard, after))
        return _Page(shard, [j.as_json() for j in jobs], len(found), len(members), last)

    def _first_pages(self, post: PostSummary, shards: Sequence[int], now: float) -> list[_Page]:
        """The first page of each shard, planned in parallel (boto3's clients are thread-safe)."""
        if self.threads <= 1 or len(shards) <= 1:
            return [self._plan_page(post, s, None, now) for s in shards]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="planner")
        return list(self._pool.map(lambda s: self._plan_page(post, s, None, now), shards))


def release_job(post: PostSummary) -> dict[str, Any]:
    """The planner's message that starts a post's fan-out: sent by the publisher once the post's
    page, the community page and the feeds are written (:class:`herald.fanout.jobs.ReleaseJob`)."""
    return ReleaseJob(post=post).as_dict()


# ----------------------------------------------------------------------------- the sender


@dataclass
class JobReport:
    """What one push job came to (the stats item gets ``stats`` in one ``ADD``)."""

    stats: DeliveryStats = field(default_factory=DeliveryStats)
    services: ServiceTally = field(default_factory=ServiceTally)
    skipped: int = 0
    requeued: int = 0
    continued: int = 0  # members not claimed for want of time, sent on in a continuation job
    deferred_until: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass
class PushDelivery:
    """Sends one push job: claim, push, mark; prunes dead subscriptions; re-enqueues retries and deferrals.

    ``reserve_s``: the seconds of the invocation kept back when claiming a member (see ``handle``):
    at least the longest one push may take (the Web Push deadline, the SNS client's bounds), plus its
    mark, the job's statistics and the continuation. It must be well below the function's timeout.
    """

    ledger: DeliveryLedger
    members: MemberDirectory
    push_queue: JobQueue
    channels: Channels
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.time
    lease_s: float = 60.0
    max_delay_s: int = MAX_DELAY_S
    threads: int = 8
    ttl_s: int = 86400
    reserve_s: float = 25.0
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def handle(self, job: PushJob, remaining: Callable[[], float] | None = None) -> JobReport:
        """Send the job. ``remaining``: the seconds the invocation has left (Lambda's context); once
        fewer than ``reserve_s`` are left no member is claimed any more, and the unclaimed ones are
        sent on as one continuation job before this one ends (None: no limit)."""
        report = JobReport()
        now = self.clock()
        if job.not_before is not None and job.not_before > now:
            return self._wait(job, now, report)
        # Each channel's message for the post, made once for the job (the Web Push notification).
        messages = self.channels.messages(job.post, job.targets)
        retries: dict[tuple[int, int], list[Target]] = {}
        try:
            if self.threads > 1 and len(job.targets) > 1:
                pool = self._executor()
                outcomes = list(
                    pool.map(lambda t: self._counted(job, t, messages, report, remaining), job.targets)
                )
            else:
                outcomes = [self._counted(job, t, messages, report, remaining) for t in job.targets]
            rest = tuple(t for t, (kind, _) in zip(job.targets, outcomes, strict=True) if kind == "later")
            if rest:
                # Unclaimed, so no record to release and no attempt counted: the same job, the rest
                # of its members, due now. Sent before this job ends: if the send fails the job fails
                # and comes back whole (its finished members are final, so skipped).
                attempted = len(job.targets) - len(rest)
                again = job.model_copy(
                    update={"job_id": job_id(job.post, job.job_id, "rest", attempted), "targets": rest}
                )
                self.push_queue.send([again.as_json()])
                report.continued = len(rest)
            for target, (kind, delay) in zip(job.targets, outcomes, strict=True):
                if kind == "skip":
                    report.skipped += 1
                elif kind in ("retry", "busy"):
                    # A retry is the next attempt; a member another sender holds keeps its attempt.
                    attempt = job.attempt + 1 if kind == "retry" else job.attempt
                    retries.setdefault((int(delay or 0), attempt), []).append(target)
            # Retries and members another sender holds go back on the queue before this job is done.
            for (delay, attempt), group in sorted(retries.items()):
                jobs = pack(
                    job.post,
                    [t.model_copy(update={"not_before": None}) for t in group],
                    members_per_job=MEMBERS_PER_JOB,
                    origin=(job.job_id, "retry", delay),
                    attempt=attempt,
                )
                self.push_queue.send([j.as_json() for j in jobs], delay)
                report.requeued += len(group)
        finally:
            if report.stats.counters():
                self.ledger.add_stats(job.post, report.stats, self.clock())
        return report

    def _wait(self, job: PushJob, now: float, report: JobReport) -> JobReport:
        """Quiet hours: record the deferral once (counted), then wait on in hops of at most 15 minutes."""
        assert job.not_before is not None
        if not job.deferred_recorded:
            created = self.ledger.defer(job.post, job.targets, now)
            report.stats.deferred += created
            report.stats.targeted += created
        again = job.model_copy(update={"deferred_recorded": True})
        self.push_queue.send([again.as_json()], delay_for(job.not_before, now, self.max_delay_s))
        report.deferred_until = job.not_before
        if report.stats.counters():
            self.ledger.add_stats(job.post, report.stats, now)
        return report

    def _counted(
        self,
        job: PushJob,
        target: Target,
        messages: Mapping[str, Any],
        report: JobReport,
        remaining: Callable[[], float] | None = None,
    ) -> tuple[str, float | None]:
        """``_one``, its counts added to the job's as soon as the member is done, or fails (so a job
        that fails half-way still counts the members it claimed and served); ``later``, unclaimed,
        when the invocation has less than ``reserve_s`` left (looked at just before the claim, so a
        member is either claimed with time for its push or left whole to the continuation)."""
        if remaining is not None and remaining() < self.reserve_s:
            return "later", None
        stats = DeliveryStats()
        services = ServiceTally()
        try:
            return self._one(job, target, messages, stats, services)
        finally:
            with report.lock:
                report.stats.add(stats)
                report.services.merge(services)

    def _one(
        self,
        job: PushJob,
        target: Target,
        messages: Mapping[str, Any],
        stats: DeliveryStats,
        services: ServiceTally,
    ) -> tuple[str, float | None]:
        now = self.clock()
        claim = self.ledger.claim(job.post, target, job.attempt, now, self.lease_s)
        if claim.kind == "done":
            return "skip", None
        if claim.kind == "busy":
            wait = (claim.until or now) - now
            return "busy", min(float(self.max_delay_s), max(1.0, wait + 1.0))
        if claim.kind == "new":
            stats.targeted += 1
        if claim.attempt > self.policy.max_attempts:
            # Earlier attempts ended without a mark (the sender died, timed out, or raised): the
            # record still counted them. Give up rather than try for ever.
            detail = f"gave up after {claim.attempt - 1} attempts that did not finish"
            self.ledger.finish(job.post, target, "failed", now, detail)
            stats.failed += 1
            return "failed", None
        result = self.channels.send(target, job.post, messages)
        services.add(self.channels.service(target), result.outcome)
        decision = self.policy.decide(result, claim.attempt)
        done = self.clock()
        if decision.retry:
            self.ledger.release(job.post, target, job.attempt, done)
            stats.retried += 1
            return "retry", min(float(self.max_delay_s), decision.delay_s or 0.0)
        if decision.outcome is Outcome.SENT:
            self.ledger.finish(job.post, target, "sent", done, "")
            stats.sent += 1
            return "sent", None
        if decision.outcome is Outcome.PRUNE:
            self.ledger.finish(job.post, target, "pruned", done, result.detail)
            self.channels.prune(job.post.community, target, self.members)
            stats.pruned += 1
            return "pruned", None
        self.ledger.finish(job.post, target, "failed", done, f"{decision.outcome}: {result.detail}"[:300])
        stats.failed += 1
        if decision.outcome is Outcome.AUTH_FAILURE:
            stats.auth_failures += 1
        return "failed", None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="push")
        return self._pool


__all__ = [
    "Body",
    "Claim",
    "DeliveryLedger",
    "FanoutPlanner",
    "JobQueue",
    "JobReport",
    "MemberDirectory",
    "PlanResult",
    "PushDelivery",
    "job_id",
    "release_job",
    "summary_of",
]
