"""Who gets a push for a new post, when, and in what job: the fan-out rules (pure: no I/O, clock handed in).

* :func:`notifying_post` takes a change of the content table (:mod:`herald.content.changes`) and says
  whether it is a post that notifies: a post added (``INSERT``), written by an editor
  (``source == "post"``), with ``notify`` true. Edits, deletes, exports, duplicates and rejections
  never notify.
* :func:`targets` applies a member's preferences: muted gets nothing; a member who chose languages
  or topics gets only posts that match them (a post matches a language list when any of its
  pushable languages is in it: :func:`post_languages`, :func:`wants`); each member is pushed one
  language, the first of their list the post has, else the original (:func:`chosen_language`);
  quiet hours defer (never drop) until they end, in the member's own time zone. Each channel
  (:mod:`herald.fanout.channels`) gives the member's targets on it:
  the browser (``web``), the app (``fcm``/``apns``).
* Jobs: the planner pages one shard of the community's members and packs targets into push jobs of
  ``members_per_job``; everything a sender needs travels in the job (no read per member). The jobs
  themselves, as they go on the wire, are :mod:`herald.fanout.jobs`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from herald.content.changes import ContentChange, PostAdded
from herald.content.limits import SQS_MAX_DELAY_S
from herald.content.models import Post, PostSource, VariantOrigin
from herald.content.urls import post_url
from herald.fanout.jobs import PostJob, PostSummary, PushJob, ShardJob, Target, VariantText
from herald.members.rules import Member, QuietHours

if TYPE_CHECKING:
    from herald.fanout.channels import Channels

#: The longest delay an SQS message can carry (seconds): a wait beyond it is made in hops.
MAX_DELAY_S = SQS_MAX_DELAY_S
MEMBERS_PER_JOB = 100
#: The sender writes its progress through a push job every this many members (see
#: :class:`herald.fanout.service.PushDelivery`): a sender that dies repeats at most this many pushes.
CHECKPOINT_EVERY = 50
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
    return replace(summary_of(post, site_url), correlation_id=post.correlation_id or None)


def summary_of(post: Post, site_url: str, *, push_machine: bool = False) -> PostSummary:
    """What a fan-out needs of ``post`` (a time without a zone is UTC); no correlation id.

    Its pushable variants travel with it (``variants``: each one's title, excerpt and page): every
    human variant, and the machine ones only when the community pushes them (``push_machine``)."""
    publish_at = post.publish_at
    if publish_at is not None and publish_at.tzinfo is None:
        publish_at = publish_at.replace(tzinfo=UTC)
    variants = {
        lang: VariantText(v.title, v.excerpt, post_url(site_url, post.community, post.id, lang))
        for lang, v in sorted(post.variants.items())
        if push_machine or v.origin != VariantOrigin.MACHINE
    }
    return PostSummary(
        community=post.community,
        post_id=post.id,
        title=post.title,
        excerpt=post.excerpt,
        url=post_url(site_url, post.community, post.id),
        language=post.language or None,
        topics=tuple(post.topics),
        publish_at=publish_at.timestamp() if publish_at is not None else None,
        variants=variants,
        push_machine=push_machine,
    )


# ----------------------------------------------------------------------------- waiting for translations

#: How long a post that names its coming translations waits for them when it gives no window.
DEFAULT_TRANSLATION_WINDOW_S = 900


def awaited_translations(post: Post) -> list[str]:
    """The translations the post said are coming (``translations``) that it has no variant in yet."""
    return [lang for lang in post.translations if lang not in post.variants and lang != post.language]


def translation_window_end(post: Post) -> float | None:
    """When the post stops waiting for its translations (epoch seconds): its window
    (``translation_window_s``, else :data:`DEFAULT_TRANSLATION_WINDOW_S`) from the time it appears
    (``publish_at``, else when it was stored); None for a post that waits for none."""
    if not post.translations:
        return None
    appears = post.publish_at or post.created_at
    if appears.tzinfo is None:
        appears = appears.replace(tzinfo=UTC)
    window = post.translation_window_s
    if window is None:
        window = DEFAULT_TRANSLATION_WINDOW_S
    return appears.timestamp() + max(0, window)


def waits_for_translations(post: Post, now: float) -> bool:
    """Whether the post's first push waits still: translations it named are missing and its window
    has not ended. A post that names none never waits."""
    end = translation_window_end(post)
    return end is not None and now < end and bool(awaited_translations(post))


def pushed_languages(post: PostSummary) -> list[str]:
    """The languages a (first) push of ``post`` goes out in, as its fan-out marker records them."""
    return list(post_languages(post))


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


def post_languages(post: PostSummary) -> tuple[str, ...]:
    """The languages the post is pushed in: its original's (when known), then its pushable variants'.
    A follow-up fan-out (``post.follow_up``) is pushed in its one language."""
    if post.follow_up is not None:
        return (post.follow_up,)
    original = (post.language,) if post.language else ()
    return (*original, *(lang for lang in post.variants if lang != post.language))


def primary(lang: str) -> str:
    """A language code's primary subtag: ``pt`` of ``pt-br``, ``zh`` of ``zh-hant``, ``fr`` of ``fr``."""
    return lang.split("-", 1)[0].lower()


def reads(member_lang: str, post_lang: str) -> bool:
    """Whether a member who reads ``member_lang`` reads the post's ``post_lang``: the same code, or
    the same primary language when one of them is the primary language alone (a member's ``pt``
    reads ``pt-br``; ``pt-br`` reads ``pt``). Two regions of one language (``pt-br``, ``pt-pt``)
    are not matched: the code the member or the editor chose says which."""
    a, b = member_lang.lower(), post_lang.lower()
    if a == b:
        return True
    if "-" in a and "-" in b:
        return False
    return primary(a) == primary(b)


def matches(member_langs: Sequence[str], langs: Sequence[str]) -> bool:
    """Whether any of the member's languages reads any of ``langs``."""
    return any(reads(m, p) for m in member_langs for p in langs)


def chosen_language(member_langs: Sequence[str], post: PostSummary) -> str | None:
    """The language the member is pushed: the first of their list the post has (the same code
    first, then the first of the post's languages of that primary language), else the original.
    None means the original (its language, or none known)."""
    langs = post_languages(post)
    for wanted in member_langs:
        if wanted in langs:
            return _variant_or_original(wanted, post)
        for lang in langs:
            if reads(wanted, lang):
                return _variant_or_original(lang, post)
    return None


def _variant_or_original(lang: str, post: PostSummary) -> str | None:
    return None if lang == post.language and post.follow_up is None else lang


def wants(member: Member, post: PostSummary) -> bool:
    """Whether the member's preferences admit the post at all (quiet hours aside): not muted; no
    language list, or one that reads any of the post's languages; no topics, or one of the post's.

    A follow-up fan-out (a variant that came after the first push) admits only members with a
    language list that read none of the languages pushed before (``post.pushed``) and read the new
    one: whoever the first push matched was pushed then, and is never pushed again."""
    prefs = member.preferences
    if prefs.muted:
        return False
    if prefs.topics and not set(prefs.topics) & set(post.topics):
        return False
    if post.follow_up is not None:
        return (
            bool(prefs.languages)
            and not matches(prefs.languages, post.pushed)
            and matches(prefs.languages, (post.follow_up,))
        )
    return not prefs.languages or matches(prefs.languages, post_languages(post))


def targets(member: Member, post: PostSummary, now: float, channels: Channels | None = None) -> list[Target]:
    """The member's targets for the post: none if their preferences say no, else what each channel
    has for the member (one per subscription: the browser's, the app's), due when quiet hours end,
    each in the member's language (:func:`chosen_language`; left unset for the original).
    ``channels``: the planner's (default: every registered channel)."""
    if not wants(member, post):
        return []
    if channels is None:
        from herald.fanout.channels import registered

        channels = registered()
    found = channels.targets(member, post, quiet_until(member.preferences.quiet_hours, now))
    lang = chosen_language(member.preferences.languages, post) if post.variants else None
    return found if lang is None else [t.in_language(lang) for t in found]


# ----------------------------------------------------------------------------- jobs


def delay_for(due: float | None, now: float, cap: int = MAX_DELAY_S) -> int:
    """SQS ``DelaySeconds`` to wait for ``due``: 0 when due, else up to ``cap`` (a longer wait takes hops)."""
    if due is None or due <= now or cap <= 0:
        return 0
    return max(1, min(cap, math.ceil(due - now)))


def job_id(post: PostSummary, *parts: object) -> str:
    """A deterministic job id: the same page planned twice gives the same ids (logs can match them)."""
    wave = [f"follow-up:{post.follow_up}"] if post.follow_up is not None else []
    text = "\x00".join([post.community, post.post_id, *wave, *(str(p) for p in parts)])
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
            # A job carries the texts of the variants its members read, not every variant's.
            carried = post.only({t.lang for t in chunk if t.lang is not None}) if post.variants else post
            jobs.append(
                PushJob(
                    # The members are part of the id: a page planned again after members joined or
                    # left gives other jobs, never a job id whose bitmap means other members.
                    job_id=job_id(post, *origin, not_before, start, attempt, targets_digest(chunk)),
                    post=carried,
                    targets=chunk,
                    attempt=attempt,
                    not_before=not_before,
                )
            )
    return jobs


def post_job(post: PostSummary) -> dict[str, Any]:
    """The planner's message for a post whose time has not come yet (:class:`herald.fanout.jobs.PostJob`)."""
    return PostJob(post=post).as_dict()


def shard_job(post: PostSummary, shard: int, after: str | None = None) -> dict[str, Any]:
    """The planner's message for one page of one shard (``after``: the last member id of the page
    before; :class:`herald.fanout.jobs.ShardJob`)."""
    return ShardJob(post=post, shard=shard, after=after).as_dict()


def done_bits(done: Iterable[int], size: int) -> bytes:
    """The members of a job that are done (their indexes in the job) as a bitmap: bit ``i % 8`` of byte
    ``i // 8`` is member ``i``; ``ceil(size / 8)`` bytes (13 for a job of 100)."""
    bits = bytearray((size + 7) // 8)
    for i in done:
        if not 0 <= i < size:
            raise ValueError(f"member {i} is not in a job of {size}")
        bits[i >> 3] |= 1 << (i & 7)
    return bytes(bits)


def done_from_bits(bits: bytes, size: int) -> frozenset[int]:
    """The indexes :func:`done_bits` wrote (bits past ``size`` ignored)."""
    return frozenset(i for i in range(min(size, len(bits) * 8)) if bits[i >> 3] & (1 << (i & 7)))


def targets_digest(found: Iterable[Target]) -> str:
    """A short digest of the targets (member, channel, subscription): part of a retry job's id, so
    the same members retried from the same window get the same job, and other members another."""
    text = "\x00".join(f"{t.member_id}\x01{t.channel}\x01{t.subscription}" for t in found)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ----------------------------------------------------------------------------- statistics


@dataclass
class DeliveryStats:
    """Per post: members targeted (of its first push jobs), sent, failed, pruned, deferred (quiet hours)."""

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
