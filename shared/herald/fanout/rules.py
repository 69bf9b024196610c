"""Who gets a push for a new post, when, and in what job: the fan-out rules (pure: no I/O, clock handed in).

* :func:`notifying_post` takes a change of the content table (:mod:`herald.content.changes`) and says
  whether it is a post that notifies: a post added (``INSERT``), written by an editor
  (``source == "post"``), with ``notify`` true. Edits, deletes, exports, duplicates and rejections
  never notify.
* :func:`targets` applies a member's preferences: muted gets nothing; a member who chose languages
  or topics gets only posts that match them; quiet hours defer (never drop) until they end, in the
  member's own time zone. One target per channel: the browser (``web``) and the app (``fcm``/``apns``).
* Jobs: the planner pages one shard of the community's members and packs targets into push jobs of
  ``members_per_job``; everything a sender needs travels in the job (no read per member).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from herald.content.changes import ContentChange, PostAdded
from herald.content.limits import SQS_MAX_DELAY_S
from herald.content.models import Post, PostSource
from herald.content.urls import post_url
from herald.members.rules import Member, QuietHours, subscription_id

#: The longest delay an SQS message can carry (seconds): a wait beyond it is made in hops.
MAX_DELAY_S = SQS_MAX_DELAY_S
MEMBERS_PER_JOB = 100
JOB_VERSION = 1

Channel = Literal["web", "fcm", "apns"]
CHANNELS: tuple[str, ...] = ("web", "fcm", "apns")


@dataclass(frozen=True)
class PostSummary:
    """What a fan-out needs of a post: who it is for (language, topics) and what the notification shows."""

    community: str
    post_id: str
    title: str
    excerpt: str
    url: str
    language: str | None = None
    topics: tuple[str, ...] = ()
    publish_at: float | None = None  # epoch seconds; None: now
    started_at: float | None = None  # when the fan-out was planned (FanOutDuration counts from it)
    correlation_id: str | None = None  # the upload's, so the planner's and senders' logs carry it

    def as_dict(self) -> dict[str, Any]:
        return {
            "community": self.community,
            "post_id": self.post_id,
            "title": self.title,
            "excerpt": self.excerpt,
            "url": self.url,
            "language": self.language,
            "topics": list(self.topics),
            "publish_at": self.publish_at,
            "started_at": self.started_at,
            "correlation_id": self.correlation_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PostSummary:
        return cls(
            community=str(data["community"]),
            post_id=str(data["post_id"]),
            title=str(data.get("title") or ""),
            excerpt=str(data.get("excerpt") or ""),
            url=str(data.get("url") or ""),
            language=data.get("language") or None,
            topics=tuple(data.get("topics") or ()),
            publish_at=float(data["publish_at"]) if data.get("publish_at") is not None else None,
            started_at=float(data["started_at"]) if data.get("started_at") is not None else None,
            correlation_id=data.get("correlation_id") or None,
        )


# ----------------------------------------------------------------------------- the stream record


def notifying_post(change: ContentChange, site_url: str) -> PostSummary | None:
    """The post a change of the content table announces, if it is one that notifies; else None."""
    if not isinstance(change, PostAdded) or not isinstance(change.post, Post):
        return None
    post = change.post
    if post.source != PostSource.POST or post.notify is not True:
        return None
    if not post.community or not post.id:
        return None
    publish_at = post.publish_at
    if publish_at is not None and publish_at.tzinfo is None:
        publish_at = publish_at.replace(tzinfo=UTC)
    return PostSummary(
        community=post.community,
        post_id=post.id,
        title=post.title,
        excerpt=post.excerpt,
        url=post_url(site_url, post.community, post.id),
        language=post.language or None,
        topics=tuple(post.topics),
        publish_at=publish_at.timestamp() if publish_at is not None else None,
        correlation_id=post.correlation_id or None,
    )


# ----------------------------------------------------------------------------- preferences


def quiet_until(quiet: QuietHours | None, now: float) -> float | None:
    """When the member's quiet hours end (epoch seconds) if ``now`` falls inside them; else None."""
    if quiet is None:
        return None
    zone = ZoneInfo(quiet.timezone)
    local = datetime.fromtimestamp(now, UTC).astimezone(zone)
    if not quiet.contains(local.strftime("%H:%M")):
        return None
    hour, minute = (int(p) for p in quiet.end.split(":"))
    end = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), tzinfo=zone)
    # A wall-clock time skipped by a DST change still maps to one instant; never earlier than now.
    return max(now, end.astimezone(UTC).timestamp())


def wants(member: Member, post: PostSummary) -> bool:
    """Whether the member's preferences admit the post at all (quiet hours aside)."""
    prefs = member.preferences
    if prefs.muted:
        return False
    if prefs.languages and (post.language is None or post.language not in prefs.languages):
        return False
    return not (prefs.topics and not set(prefs.topics) & set(post.topics))


@dataclass(frozen=True)
class Target:
    """One member on one channel, and not before when (epoch seconds; None: now)."""

    member_id: str
    channel: Channel
    subscription: str  # the subscription id (herald.members.rules.subscription_id)
    web_push: dict[str, Any] | None = None
    endpoint_arn: str | None = None
    not_before: float | None = None

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"m": self.member_id, "c": self.channel, "s": self.subscription}
        if self.web_push is not None:
            entry["w"] = self.web_push
        if self.endpoint_arn is not None:
            entry["a"] = self.endpoint_arn
        return entry

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], not_before: float | None = None) -> Target:
        return cls(
            member_id=str(data["m"]),
            channel=data["c"],
            subscription=str(data["s"]),
            web_push=data.get("w"),
            endpoint_arn=data.get("a"),
            not_before=not_before,
        )


def targets(member: Member, post: PostSummary, now: float) -> list[Target]:
    """The member's targets for the post: none if their preferences say no, else one per channel."""
    if not wants(member, post):
        return []
    later = quiet_until(member.preferences.quiet_hours, now)
    found: list[Target] = []
    if member.web_push is not None:
        found.append(
            Target(
                member.member_id,
                "web",
                subscription_id(web_push=member.web_push),
                web_push=member.web_push.model_dump(mode="json"),
                not_before=later,
            )
        )
    if member.device is not None and member.endpoint_arn:
        found.append(
            Target(
                member.member_id,
                member.device.platform,
                subscription_id(device=member.device),
                endpoint_arn=member.endpoint_arn,
                not_before=later,
            )
        )
    return found


# ----------------------------------------------------------------------------- jobs


def delay_for(due: float | None, now: float, cap: int = MAX_DELAY_S) -> int:
    """SQS ``DelaySeconds`` to wait for ``due``: 0 when due, else up to ``cap`` (a longer wait takes hops)."""
    if due is None or due <= now or cap <= 0:
        return 0
    return max(1, min(cap, math.ceil(due - now)))


@dataclass(frozen=True)
class PushJob:
    """One message of the push job queue: a post and up to ``members_per_job`` targets."""

    job_id: str
    post: PostSummary
    targets: tuple[Target, ...]
    attempt: int = 1
    not_before: float | None = None
    deferred_recorded: bool = False

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "v": JOB_VERSION,
            "kind": "push",
            "job": self.job_id,
            "post": self.post.as_dict(),
            "attempt": self.attempt,
            "members": [t.as_dict() for t in self.targets],
        }
        if self.not_before is not None:
            body["not_before"] = self.not_before
        if self.deferred_recorded:
            body["deferred_recorded"] = True
        return body

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PushJob:
        not_before = data.get("not_before")
        nb = float(not_before) if not_before is not None else None
        return cls(
            job_id=str(data["job"]),
            post=PostSummary.from_dict(data["post"]),
            targets=tuple(Target.from_dict(m, nb) for m in data["members"]),
            attempt=int(data.get("attempt", 1)),
            not_before=nb,
            deferred_recorded=bool(data.get("deferred_recorded", False)),
        )


def job_id(post: PostSummary, *parts: object) -> str:
    """A deterministic job id: the same page planned twice gives the same ids (logs can match them)."""
    text = "\x00".join([post.community, post.post_id, *(str(p) for p in parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def pack(
    post: PostSummary,
    found: Iterable[Target],
    *,
    members_per_job: int = MEMBERS_PER_JOB,
    origin: Sequence[object] = (),
    attempt: int = 1,
) -> list[PushJob]:
    """Targets packed into jobs of at most ``members_per_job``, one group per ``not_before``."""
    if members_per_job < 1:
        raise ValueError("members_per_job must be >= 1")
    groups: dict[float | None, list[Target]] = {}
    for target in found:
        groups.setdefault(target.not_before, []).append(target)
    jobs: list[PushJob] = []
    for not_before in sorted(groups, key=lambda v: -1.0 if v is None else v):
        group = groups[not_before]
        for start in range(0, len(group), members_per_job):
            chunk = tuple(group[start : start + members_per_job])
            jobs.append(
                PushJob(
                    job_id=job_id(post, *origin, not_before, start, attempt),
                    post=post,
                    targets=chunk,
                    attempt=attempt,
                    not_before=not_before,
                )
            )
    return jobs


def post_job(post: PostSummary) -> dict[str, Any]:
    """The planner's message for a post whose time has not come yet."""
    return {"v": JOB_VERSION, "kind": "post", "post": post.as_dict()}


def shard_job(post: PostSummary, shard: int, after: str | None = None) -> dict[str, Any]:
    """The planner's message for one page of one shard (``after``: the last member id of the page before)."""
    return {"v": JOB_VERSION, "kind": "shard", "post": post.as_dict(), "shard": shard, "after": after}


# ----------------------------------------------------------------------------- statistics


@dataclass
class DeliveryStats:
    """Per post: members targeted (a first delivery record), sent, failed, pruned, deferred (quiet hours)."""

    targeted: int = 0
    sent: int = 0
    failed: int = 0
    pruned: int = 0
    deferred: int = 0
    auth_failures: int = 0
    retried: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    FIELDS = ("targeted", "sent", "failed", "pruned", "deferred")

    def add(self, other: DeliveryStats) -> None:
        for name in (*self.FIELDS, "auth_failures", "retried"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def counters(self) -> dict[str, int]:
        """The non-zero counters (what one ``ADD`` writes)."""
        names = (*self.FIELDS, "auth_failures", "retried")
        return {n: int(getattr(self, n)) for n in names if getattr(self, n)}

    def public(self) -> dict[str, int]:
        return {n: int(getattr(self, n)) for n in self.FIELDS}
