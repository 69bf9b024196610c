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

**Once per member, one lease per job.** A push job (a post and up to ``members_per_job`` targets) has
one record in the deliveries table, not one per member. The sender *claims* the job with a conditional
write (a lease with a fresh token, only from nothing, ``released``, ``deferred`` or an expired lease),
pushes its members in windows of ``checkpoint_every`` and after each window writes which members are
done (a bitmap, conditional on its token), then the job's statistics in one ``ADD``. So a duplicated
or redelivered job, a planner that pages a shard twice (the same members give the same job id), a
retried batch: each finds the job ``done``, or its finished members in the bitmap, and pushes nothing
again. A job another sender holds (a live lease) goes back on the queue until the lease ends. A
continuation that carries the same id picks up where the bitmap says.

**The bound on repeats.** Only a sender that dies (or loses its lease) between a push and the next
checkpoint causes a second push: at most ``checkpoint_every`` members of the window it was in, after
the lease. Every repeat is invisible to the person: the Web Push ``Topic`` header and the notification
``tag`` (the post id) replace a notification still pending or shown, the service worker does not show a
post again that it showed already, and mobile pushes carry the post's collapse id. A member's retry
goes on the queue (as a job of its own) before the checkpoint that counts it done, so a crash never
loses a member: at worst it repeats one.

**Always an end.** Each claim of a job counts an attempt; progress (a checkpoint) sets the count to
this claim's, a clean end (the job done, or released for a continuation) to none. A claim that finds
an earlier one died pushes one member at a time, with a checkpoint after each, so a member whose push
kills the sender is the first not done; once ``max_attempts`` claims died on it, it is marked
``failed`` unpushed and the job goes on. A member whose push keeps failing is retried in jobs of its
own until the policy gives up. An exception while pushing one member is that member's failed attempt
(retried), never the job's.

**Within the invocation's time.** Before it claims a member, the sender looks at the time the
invocation has left; below ``reserve_s`` (the longest one push may take, plus the job's last writes)
it pushes no more: it writes its checkpoint, releases the job and sends the job on again as a
continuation (the same id: the next sender starts after the bitmap). So a job of slow push services
never runs into the function's timeout; no member is pushed twice, none is lost.

**Writes.** A job of 100 members costs its claim, one checkpoint per window and one ``ADD`` of
statistics: 4 writes, 0.04 per push with the defaults (a member on the retry path adds its own job's).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeAlias

from herald.content.models import Post
from herald.core.errors import TransientError
from herald.fanout.channels import Channels, registered
from herald.fanout.delivery import DeliveryResult, Outcome, RetryPolicy, ServiceTally, network_failure
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
    CHECKPOINT_EVERY,
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
    targets_digest,
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


LeaseKind = Literal["new", "again", "done", "busy"]


@dataclass(frozen=True)
class JobLease:
    """A claim of a push job. ``new``: the job's first record (claimed); ``again``: claimed from
    ``released``, ``deferred`` or an expired lease; ``done``: finished already: push nothing;
    ``busy``: another sender holds a live lease until ``until``.

    ``token``: this claim's, which every checkpoint must carry (a sender whose lease ran out and was
    taken over writes nothing more). ``done``: the indexes of the job's members finished before;
    ``counted``: their statistics, kept in the job until it ends; ``attempts``: claims since the last
    clean end, this one included; ``deferred``: the job waited for quiet hours (counted then)."""

    kind: LeaseKind
    token: str = ""
    until: float | None = None
    done: frozenset[int] = frozenset()
    counted: DeliveryStats = field(default_factory=DeliveryStats)
    attempts: int = 1
    deferred: bool = False


#: ``sending``: a window is done, more follow (the lease stays); ``released``: the invocation ends
#: before the job does (a continuation follows; the lease ends now); ``done``: every member is done.
CheckpointState = Literal["sending", "released", "done"]


@dataclass(frozen=True)
class Progress:
    """What a checkpoint writes of a job: under ``lease``'s token, the indexes of its ``size``
    members ``done``, their statistics so far (``counted``), the ``state`` it is left in, the lease
    renewed for ``lease_s`` while ``sending``, and why members failed (member id, channel, detail)."""

    lease: JobLease
    done: frozenset[int]
    counted: DeliveryStats
    size: int
    state: CheckpointState
    lease_s: float
    failures: tuple[tuple[str, str, str], ...] = ()


class DeliveryLedger(Protocol):
    """The fan-out ledger: per post its start and planned pages, per push job its lease and progress,
    per post the delivery statistics."""

    def begin(self, post: PostSummary, now: float) -> str:
        """Record that the post's fan-out starts: ``new`` the first time, else the state found
        (``planning``: a start that did not finish, ``planned``)."""
        ...

    def planned(self, post: PostSummary, now: float) -> None: ...

    def page_done(self, post: PostSummary, shard: int, after: str | None) -> bool: ...

    def mark_page(self, post: PostSummary, shard: int, after: str | None, now: float) -> None: ...

    def defer_job(self, post: PostSummary, job_id: str, size: int, now: float) -> bool:
        """Record that the job waits for quiet hours to end: True the first time (then count it)."""
        ...

    def claim_job(self, post: PostSummary, job_id: str, size: int, now: float, lease_s: float) -> JobLease:
        """Claim the job for ``lease_s`` seconds and count the attempt (see :class:`JobLease`)."""
        ...

    def checkpoint(self, post: PostSummary, job_id: str, progress: Progress, now: float) -> bool:
        """Write the job's progress under its lease's token, the lease renewed while ``sending``:
        False if another claim holds the job now."""
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
        """How many members each shard of the community has (a shard left out: 0), or None when the
        directory cannot say. The counts come from the members table's stream, so they lag a burst
        by a moment: a shard is counted 0 only when its members index has no member either."""
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
        fresh = self._as_released(post, summary_of(current, self.site_url, push_machine=post.push_machine))
        if fresh is None:
            return PlanResult("dropped")  # a follow-up whose variant is gone since
        return self.start(fresh)

    @staticmethod
    def _as_released(job: PostSummary, fresh: PostSummary) -> PostSummary | None:
        """The post as it is now, in the languages the release named and no others: the publisher
        recorded those as pushed (a variant that came since is its own follow-up, never a second push
        in this one). A follow-up whose one language the post no longer has: None."""
        if job.follow_up is not None and job.follow_up not in fresh.variants:
            return None
        return replace(
            fresh.only(set(job.variants)),
            correlation_id=job.correlation_id,
            follow_up=job.follow_up,
            pushed=job.pushed,
        )

    def _due(self, post: PostSummary) -> PlanResult:
        """A job an earlier release queued to wait for ``publish_at`` here: waits on (in hops of at
        most 15 minutes), then fans out. New scheduled posts wait on the publisher's side instead."""
        now = self.clock()
        current = self.content.posts(post.community, [post.post_id]).get(post.post_id)
        if current is None or not current.notify:
            return PlanResult("dropped")  # deleted, or no longer notifying, before its time
        fresh = summary_of(current, self.site_url, push_machine=post.push_machine)
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
    """What one invocation made of a push job (its own counts: the metrics'); the job's statistics
    go to the post's stats item in one ``ADD`` when the job is done."""

    stats: DeliveryStats = field(default_factory=DeliveryStats)
    services: ServiceTally = field(default_factory=ServiceTally)
    skipped: int = 0  # members done before (a repeated job, or the part a crashed sender finished)
    requeued: int = 0  # members sent back: retries, or the whole job when another sender holds it
    continued: int = 0  # members not pushed for want of time, left to the continuation
    deferred_until: float | None = None
    checkpoints: int = 0
    lost: bool = False  # the lease was taken over: another sender finishes the job
    #: Why members failed or were pruned (member id, channel, detail): the first ``FAILURES_KEPT``,
    #: for the job's log line (the job keeps counts, not a record per member).
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


#: One member's end in a window: ``sent``, ``pruned``, ``failed``, ``auth_failure``, ``retry`` (with its
#: delay), or ``later`` (not pushed: the invocation's time is up); and a detail for the log.
_End: TypeAlias = tuple[str, float | None, str]

#: How many members' failure details a job's report keeps.
FAILURES_KEPT = 10


@dataclass
class PushDelivery:
    """Sends one push job: claims its lease, pushes in checkpointed windows, prunes dead
    subscriptions, re-enqueues retries, deferrals and the continuation (see the module's docstring).

    ``reserve_s``: the seconds of the invocation kept back when starting a member (see ``handle``):
    at least the longest one push may take (the Web Push deadline, the SNS client's bounds), plus the
    job's last writes. It must be well below the function's timeout. ``lease_s``: how long a claim
    holds the job at most (see ``_lease_s``); template.yaml sets it above the function's timeout.

    **In flight without a thread each.** A window's members of a channel that keeps many pushes
    going itself (Web Push: :meth:`herald.fanout.channels.webpush.WebPushSender.send_many`, one
    event loop over non-blocking connections) are pushed on the calling thread, ``in_flight`` at
    once (default: ``threads``); the others (SNS mobile push, which blocks) in ``threads`` threads
    meanwhile. Either way the invocation's time is looked at just before each push, and a dead
    subscription is pruned once its push's outcome is in.
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
    in_flight: int | None = None
    reserve_s: float = 25.0
    checkpoint_every: int = CHECKPOINT_EVERY
    lease_margin_s: float = 5.0
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def handle(self, job: PushJob, remaining: Callable[[], float] | None = None) -> JobReport:
        """Send the job. ``remaining``: the seconds the invocation has left (Lambda's context); once
        fewer than ``reserve_s`` are left no member is started any more, and the job is released and
        sent on as a continuation before this invocation ends (None: no limit)."""
        report = JobReport()
        now = self.clock()
        if job.not_before is not None and job.not_before > now:
            return self._wait(job, now, report)
        size = len(job.targets)
        if self._out_of_time(remaining):
            # No time for even one member: the job goes on whole, unclaimed (nothing written).
            self.push_queue.send([job.as_json()])
            report.continued = size
            return report
        lease = self.ledger.claim_job(job.post, job.job_id, size, now, self._lease_s(remaining))
        if lease.kind == "done":
            report.skipped = size
            return report
        if lease.kind == "busy":
            wait = (lease.until or now) - now
            self.push_queue.send([job.as_json()], int(min(float(self.max_delay_s), max(1.0, wait + 1.0))))
            report.requeued = size
            return report
        done = set(lease.done)
        report.skipped = len(done)
        counted = DeliveryStats()
        counted.add(lease.counted)
        todo = [i for i in range(size) if i not in done]
        # A claim after one that died (``attempts`` counts the claims since the job's last progress)
        # pushes one member at a time and writes its progress after each: the member whose push kills
        # the sender is then the first one not done, and is given up alone after ``max_attempts``.
        isolate = lease.attempts >= 2
        if isolate and todo and lease.attempts - 1 >= self.policy.max_attempts:
            suspect = todo.pop(0)
            done.add(suspect)
            report.stats.failed += 1
            counted.failed += 1
            target = job.targets[suspect]
            why = f"gave up: {lease.attempts - 1} claims of its job died pushing it"
            report.failures.append((target.member_id, target.channel, why))
            if todo and not self._checkpoint(job, lease, done, counted, report, "sending", remaining):
                return report
        # Each channel's message for the post, made once for the job (the Web Push notification), one
        # per language the job's members read (never per member).
        messages = self.channels.messages(job.post, job.targets) if todo else {}
        step = 1 if isolate else max(1, self.checkpoint_every)
        for seq, start in enumerate(range(0, len(todo), step)):
            window = todo[start : start + step]
            ends = self._window(job, window, messages, report, remaining, threads=1 if isolate else None)
            window_stats, retries, later = self._tally(job, window, ends, done, report)
            # A retry is queued before the checkpoint that counts its member done: never lost.
            self._retry(job, seq, retries, report)
            report.stats.add(window_stats)
            counted.add(window_stats)
            if later or (start + step < len(todo) and self._out_of_time(remaining)):
                left = size - len(done)
                if not self._checkpoint(job, lease, done, counted, report, "released", remaining):
                    return report
                # The same job again: its next claim starts after the members done.
                self.push_queue.send([job.as_json()])
                report.continued = left
                return report
            more = start + step < len(todo)
            if more and not self._checkpoint(job, lease, done, counted, report, "sending", remaining):
                return report
        self._end(job, lease, done, counted, report, remaining)
        return report

    def _tally(
        self, job: PushJob, window: Sequence[int], ends: Sequence[_End], done: set[int], report: JobReport
    ) -> tuple[DeliveryStats, dict[int, list[Target]], list[int]]:
        """A window's ends: its statistics, its members to retry by delay, those left for later;
        the others added to ``done``, why they failed to ``report.failures``."""
        stats = DeliveryStats()
        retries: dict[int, list[Target]] = {}
        later: list[int] = []
        for i, (kind, delay, detail) in zip(window, ends, strict=True):
            if kind == "later":
                later.append(i)
                continue
            done.add(i)
            target = job.targets[i]
            if kind == "retry":
                stats.retried += 1
                retries.setdefault(int(delay or 0), []).append(target)
                continue
            if kind == "sent":
                stats.sent += 1
                continue
            if len(report.failures) < FAILURES_KEPT:
                report.failures.append((target.member_id, target.channel, detail))
            if kind == "pruned":
                stats.pruned += 1
            else:  # failed, auth_failure
                stats.failed += 1
                stats.auth_failures += kind == "auth_failure"
        return stats, retries, later

    def _end(
        self,
        job: PushJob,
        lease: JobLease,
        done: set[int],
        counted: DeliveryStats,
        report: JobReport,
        remaining: Callable[[], float] | None,
    ) -> None:
        """The job's last checkpoint, then its statistics (a first attempt's members are targeted
        here, unless its deferral counted them)."""
        if not self._checkpoint(job, lease, done, counted, report, "done", remaining):
            return
        totals = DeliveryStats()
        totals.add(counted)
        if job.attempt == 1 and not job.deferred_recorded and not lease.deferred:
            totals.targeted += len(job.targets)
            report.stats.targeted += len(job.targets)
        if totals.counters():
            self.ledger.add_stats(job.post, totals, self.clock())

    def _checkpoint(
        self,
        job: PushJob,
        lease: JobLease,
        done: set[int],
        counted: DeliveryStats,
        report: JobReport,
        state: CheckpointState,
        remaining: Callable[[], float] | None,
    ) -> bool:
        progress = Progress(
            lease=lease,
            done=frozenset(done),
            counted=counted,
            size=len(job.targets),
            state=state,
            lease_s=self._lease_s(remaining),
            failures=tuple(report.failures),
        )
        ok = self.ledger.checkpoint(job.post, job.job_id, progress, self.clock())
        report.checkpoints += 1
        report.lost = not ok
        return ok

    def _retry(self, job: PushJob, seq: int, retries: Mapping[int, list[Target]], report: JobReport) -> None:
        """The window's members to try again, as jobs of their own (the next attempt), by delay. The
        id is the job's, the window's and the members': the same members from the same window (a
        window pushed again after a crash) give the same job."""
        for delay, group in sorted(retries.items()):
            again = [t.model_copy(update={"not_before": None}) for t in group]
            jobs = pack(
                job.post,
                again,
                members_per_job=MEMBERS_PER_JOB,
                origin=(job.job_id, "retry", seq, targets_digest(again)),
                attempt=job.attempt + 1,
            )
            self.push_queue.send([j.as_json() for j in jobs], delay)
            report.requeued += len(group)

    def _wait(self, job: PushJob, now: float, report: JobReport) -> JobReport:
        """Quiet hours: record the deferral once (counted), then wait on in hops of at most 15 minutes."""
        assert job.not_before is not None
        if not job.deferred_recorded and self.ledger.defer_job(job.post, job.job_id, len(job.targets), now):
            report.stats.deferred += len(job.targets)
            report.stats.targeted += len(job.targets)
        again = job.model_copy(update={"deferred_recorded": True})
        self.push_queue.send([again.as_json()], delay_for(job.not_before, now, self.max_delay_s))
        report.deferred_until = job.not_before
        if report.stats.counters():
            self.ledger.add_stats(job.post, report.stats, now)
        return report

    def _window(
        self,
        job: PushJob,
        window: Sequence[int],
        messages: Mapping[str, Any],
        report: JobReport,
        remaining: Callable[[], float] | None,
        threads: int | None = None,
    ) -> list[_End]:
        """Push the window's members: one at a time (``threads`` 1, a window of one, or a sender of
        one thread and one push in flight), else those of a channel that sends many at once on this
        thread, ``in_flight`` at a time, and the others in the pool's threads meanwhile."""
        alone = self.threads <= 1 and (self.in_flight or 1) <= 1
        if threads == 1 or alone or len(window) <= 1:
            return [self._counted(job, job.targets[i], messages, report, remaining) for i in window]
        by_channel: dict[str, list[int]] = {}
        blocking: list[int] = []
        for i in window:
            kind = job.targets[i].channel
            if kind in by_channel:
                by_channel[kind].append(i)
            elif self._sends_many(kind):
                by_channel[kind] = [i]
            else:
                blocking.append(i)
        pending: list[tuple[int, Future[_End]]] = []
        if blocking:
            pool = self._executor()
            pending = [
                (i, pool.submit(self._counted, job, job.targets[i], messages, report, remaining))
                for i in blocking
            ]
        ends: dict[int, _End] = {}
        for kind, members in by_channel.items():
            ends.update(self._many(job, kind, members, messages, report, remaining))
        for i, future in pending:
            ends[i] = future.result()
        return [ends[i] for i in window]

    def _sends_many(self, kind: str) -> bool:
        """Whether the channel of ``kind`` sends many pushes at once itself. A channel that cannot
        say (its sender could not be made) is pushed member by member, each push its own failure."""
        channel = self.channels.get(kind)
        sends_many = getattr(channel, "sends_many", None)
        try:
            return callable(sends_many) and bool(sends_many())
        except Exception:
            return False

    def _many(
        self,
        job: PushJob,
        kind: str,
        members: Sequence[int],
        messages: Mapping[str, Any],
        report: JobReport,
        remaining: Callable[[], float] | None,
    ) -> dict[int, _End]:
        """The members of one channel pushed by its ``send_many``, ``in_flight`` at once on this thread;
        the invocation's time looked at before each push (a member not started is ``later``)."""
        channel: Any = self.channels.get(kind)
        targets = [job.targets[i] for i in members]
        try:
            results: list[DeliveryResult | None] = channel.send_many(
                targets,
                job.post,
                messages.get(kind),
                in_flight=self.in_flight or self.threads,
                may_start=lambda: not self._out_of_time(remaining),
            )
        except Exception as exc:  # the channel itself broke: each member not pushed is a failed attempt
            results = [network_failure(f"{type(exc).__name__}: {exc}"[:300])] * len(targets)
        ends: dict[int, _End] = {}
        pruning: list[tuple[int, Target, DeliveryResult]] = []
        for i, target, result in zip(members, targets, results, strict=True):
            if result is None:
                ends[i] = ("later", None, "")
                continue
            with report.lock:
                report.services.add(self.channels.service(target), result.outcome)
            if result.outcome is Outcome.PRUNE:
                pruning.append((i, target, result))
            else:
                ends[i] = self._end_of(job, target, result)
        # Pruning is a call to the members table each: several go in the pool's threads at once.
        pool = self._executor() if len(pruning) > 1 else None
        pruned = (
            pool.map(lambda p: self._end_of(job, p[1], p[2]), pruning)
            if pool is not None
            else [self._end_of(job, target, result) for _, target, result in pruning]
        )
        for (i, _, _), end in zip(pruning, pruned, strict=True):
            ends[i] = end
        return ends

    def _out_of_time(self, remaining: Callable[[], float] | None) -> bool:
        return remaining is not None and remaining() < self.reserve_s

    def _lease_s(self, remaining: Callable[[], float] | None) -> float:
        """How long a claim (or a checkpoint's renewal) holds the job: ``lease_s``, or less when the
        invocation ends sooner (its time left plus ``lease_margin_s``: a job whose sender died is
        taken up again soon after). With ``lease_s`` at least the function's timeout a live sender
        never loses its job."""
        if remaining is None:
            return self.lease_s
        return min(self.lease_s, max(1.0, remaining()) + self.lease_margin_s)

    def _counted(
        self,
        job: PushJob,
        target: Target,
        messages: Mapping[str, Any],
        report: JobReport,
        remaining: Callable[[], float] | None = None,
    ) -> _End:
        """One member pushed, its push service tallied; ``later`` when the invocation has less than
        ``reserve_s`` left (looked at just before the push, so a member is pushed with time for it or
        left whole to the continuation)."""
        if self._out_of_time(remaining):
            return "later", None, ""
        try:
            result = self.channels.send(target, job.post, messages)
        except Exception as exc:
            result = network_failure(f"{type(exc).__name__}: {exc}"[:300])
        service = self.channels.service(target)
        with report.lock:
            report.services.add(service, result.outcome)
        return self._end_of(job, target, result)

    def _end_of(self, job: PushJob, target: Target, result: DeliveryResult) -> _End:
        """What the member's push came to, by the retry policy (a dead subscription pruned)."""
        decision = self.policy.decide(result, job.attempt)
        if decision.retry:
            return "retry", min(float(self.max_delay_s), decision.delay_s or 0.0), result.detail
        if decision.outcome is Outcome.SENT:
            return "sent", None, ""
        if decision.outcome is Outcome.PRUNE:
            # A prune that fails leaves the subscription until a later post finds it gone again.
            with contextlib.suppress(TransientError):
                self.channels.prune(job.post.community, target, self.members)
            return "pruned", None, result.detail
        if decision.outcome is Outcome.AUTH_FAILURE:
            return "auth_failure", None, f"auth_failure: {result.detail}"[:300]
        return "failed", None, f"{decision.outcome}: {result.detail}"[:300]

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="push")
        return self._pool


__all__ = [
    "Body",
    "CheckpointState",
    "DeliveryLedger",
    "FanoutPlanner",
    "JobLease",
    "JobQueue",
    "JobReport",
    "MemberDirectory",
    "PlanResult",
    "Progress",
    "PushDelivery",
    "job_id",
    "release_job",
    "summary_of",
]
