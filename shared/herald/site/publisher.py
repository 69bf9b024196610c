"""Publishing the public site from the content table's stream: only what changed is rendered again.

The publisher reads no stream record: the function turns each record into a typed change once
(:mod:`herald.content.adapters.dynamo_stream`; :mod:`herald.content.changes`), and a batch's
changes are grouped by community. For each community the publisher reads the profile, the member
count and the posts that are due (``publish_at`` unset or past, by the injected clock), renders what
the changes changed (:meth:`SiteRenderer.render_changes`, with the posts' versions before the batch
as ``previous``), or the whole site when the profile appeared or its name or description changed
(:meth:`SiteRenderer.render_community`), and uploads to ``<community>/…`` only the files whose bytes
or headers differ from what the bucket holds. Pages of deleted posts are removed.

**Only the newest pages are read.** The profile's ``post_count`` (written with the posts) places the
archive pages, and one Query of the feed index, newest first, reads every pinned and scheduled post
and the due posts of the newest archive pages (:meth:`SitePublisher._window`); the render then
rewrites only those pages (``render_changes(..., offset=…)``). A batch that could move posts between
older pages (a delete, a changed post ranked before them, a count that disagrees) reads every post,
so a batch's reads grow with what it changes, not with what the community holds.

**Language variants.** A post's variant pages (``<lang>/posts/<id>/``) are rendered from the
variant items, read with one Query per post (:class:`VariantReader`) only when what those pages
show of the post changed (:func:`herald.site.render.variant_pages_change`); the language folders
whose community page and feeds are rewritten are those the bucket holds plus those of the posts
read (a folder whose last variant went stays until a full render); the community's
``settings.default_language`` sets the root's language.

Everything is decided from the table as it is now, not from the changes' new versions, so a
duplicated, retried or late record publishes the same bytes again and writes nothing. The changed
posts themselves are read from the table with a consistent read (the feed index may lag behind).

**Scheduled posts and the fan-out: the page first.** A post whose ``publish_at`` is still ahead is
not shown; a wake-up message waits for its time on the publisher's schedule queue (SQS delays, hops
of at most 15 minutes). When it comes due, the wake-up sets the post's release marker
(:mod:`herald.site.adapters.dynamo_release`), and the marker's stream record publishes the post like any
other change of the community, in the community's stream order. The fan-out of a post is started by
the publisher, and only here: after the post's page, the community page and the feeds are written,
one ``release`` job per post that appears now goes to the planner's queue (a new editor post that
notifies, a scheduled one at its time, one an edit moved from the future into the past). So a push
never points at a page that does not exist yet, for scheduled posts and for every other post.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from pydantic import Field

from herald.content import urls
from herald.content.changes import (
    CommunityProfileChanged,
    ContentChange,
    PostChanged,
    PostVersion,
    ProfileVersion,
    Unreadable,
)
from herald.content.counts import member_count
from herald.content.models import Community, Post, PostSource, Variant
from herald.core.settings import Settings
from herald.fanout.jobs import PostSummary
from herald.fanout.rules import (
    MAX_DELAY_S,
    awaited_translations,
    delay_for,
    pushed_languages,
    translation_window_end,
    waits_for_translations,
)
from herald.fanout.service import JobQueue, release_job, summary_of
from herald.site.render import (
    FEED_SIZE,
    PAGE_SIZE,
    CommunityView,
    OutsideWindow,
    SiteFile,
    SiteRenderer,
    published_at,
    variant_pages_change,
)

#: Files that link to the others: written last, so they never point at a page not yet uploaded.
LIVE_FILES = frozenset({"index.html", "join/index.html", "feed.atom", "feed.json"})
#: Profile fields that appear on every page (post and archive pages too): a change means a full render.
SITE_WIDE_FIELDS = ("name", "description")
#: Above this many files, one listing of the community's prefix is cheaper than a HEAD per file.
LIST_ABOVE = 64
DEFAULT_PUSH_ORIGIN = "http://127.0.0.1:9"
#: A language folder's name (``fr``, ``pt-br``, ``zh-hant``): the site's other folders are longer.
LANGUAGE_FOLDER = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- ports


class ContentReader(Protocol):
    def community(self, community: str) -> Community | None: ...

    def community_posts(self, community: str) -> Iterable[Post]: ...

    def posts(self, community: str, post_ids: Sequence[str]) -> dict[str, Post]:
        """The posts among ``post_ids`` that exist, read consistently."""
        ...

    def newest_posts(self, community: str, page: int) -> Iterator[Post]:
        """The community's posts in the feed index's order (pinned first, then newest first), read
        lazily about ``page`` at a time."""
        ...


class ReleaseMarker(Protocol):
    def release(self, community: str, post_id: str, publish_at: float) -> str:
        """Mark a scheduled post released at ``publish_at``: ``released``, ``already``, ``gone`` or
        ``moved`` (its ``publish_at`` is no longer that)."""
        ...


class VariantReader(Protocol):
    def post_variants(self, community: str, post_id: str) -> Mapping[str, Variant]:
        """The post's stored variants by language (one Query ``begins_with(sk, "VAR#<id>#")``)."""
        ...

    def community_variants(self, community: str) -> Mapping[str, Mapping[str, Variant]]:
        """Every stored variant of the community: post id -> language -> variant."""
        ...

    def default_language(self, community: str) -> str | None:
        """The community's ``settings.default_language``, if it has one."""
        ...


class MemberCounter(Protocol):
    def count(self, community: str) -> int: ...


class FanoutMarker(Protocol):
    """Which languages a post's fan-out pushed, decided once
    (:class:`herald.site.adapters.dynamo_fanout.DynamoFanoutMarker`)."""

    def start_fanout(
        self, community: str, post_id: str, langs: Sequence[str], now: float
    ) -> tuple[str, list[str]]:
        """Record the first push: ``started``, or ``already`` with the languages recorded then."""
        ...

    def follow_up(self, community: str, post_id: str, lang: str) -> tuple[str, list[str]]:
        """Record a follow-up in ``lang``: ``started`` or ``already`` with the languages pushed
        before it, or ``not started``."""
        ...


class Stored(Protocol):
    @property
    def md5(self) -> str: ...

    def matches(self, file: SiteFile) -> bool: ...


class SiteStore(Protocol):
    def head(self, keys: Sequence[str]) -> Mapping[str, Stored]: ...

    def list(self, prefix: str) -> Mapping[str, Stored]: ...

    def folders(self, prefix: str) -> Sequence[str]:
        """The folder names right under ``prefix`` (the language folders among them)."""
        ...

    def put(self, prefix: str, files: Sequence[SiteFile]) -> None: ...

    def delete(self, keys: Iterable[str]) -> None: ...


# ----------------------------------------------------------------------------- settings


class PublisherSettings(Settings):
    """Environment of the publisher function (names as in template.yaml); an empty variable is unset."""

    env_ignore_empty: ClassVar[bool] = True

    content_table: str = Field(min_length=1)
    members_table: str | None = None
    site_bucket: str = Field(min_length=1)
    public_site_url: str = Field(default="https://herald.example", pattern=r"^https?://[^/\s]+(/\S*)?$")
    api_url: str | None = None
    site_locale: str = "en"
    member_counter_shards: int = Field(default=32, ge=1, le=1000)
    #: The local cloud: pages carry a browser-like subscription for the join button (no push service).
    herald_demo_subscriptions: bool = False
    local_push_origin: str | None = None
    #: Wake-ups of scheduled posts (the publisher's own queue) and the planner's queue (fan-outs).
    schedule_queue_url: str | None = None
    planner_queue_url: str | None = None
    max_delay_seconds: int = Field(default=MAX_DELAY_S, ge=0, le=MAX_DELAY_S)

    def base_url(self, community: str) -> str:
        """The community's folder on the site, where its pages are published."""
        return urls.community_url(self.public_site_url, community)

    def join_url(self, community: str) -> str:
        """The join link (as the API gives it): ``<site>/<community>/join``."""
        return urls.join_url(self.public_site_url, community)


# ----------------------------------------------------------------------------- changes


@dataclass
class CommunityChanges:
    """What a batch changed in one community."""

    community: str
    event_ids: list[str] = field(default_factory=list)
    #: post id -> its version before the batch (the first change's; None: new in the batch)
    before: dict[str, PostVersion | None] = field(default_factory=dict)
    #: post id -> when the first change was written (the old version is judged as it was then)
    written_at: dict[str, float | None] = field(default_factory=dict)
    #: posts a change of the batch released (their scheduled time came)
    released: set[str] = field(default_factory=set)
    full: bool = False  # the profile appeared, went, or changed its name or description

    def add(self, change: ContentChange) -> None:
        self.event_ids.append(change.event_id)
        if isinstance(change, CommunityProfileChanged):
            if _site_wide(change.old, change.new):
                self.full = True
            return
        if change.post_id not in self.before:
            self.before[change.post_id] = change.before
            self.written_at[change.post_id] = change.written_at
        if isinstance(change, PostChanged) and change.releases:
            self.released.add(change.post_id)


def _site_wide(old: ProfileVersion | None, new: ProfileVersion | None) -> bool:
    """Whether a profile change shows on every page: it appeared, went, cannot be read, or its name
    or description changed."""
    if not isinstance(old, Community) or not isinstance(new, Community):
        return True
    if _default_language(old) != _default_language(new):
        return True  # the root's archive pages list the posts in it
    return any(getattr(old, f) != getattr(new, f) for f in SITE_WIDE_FIELDS)


def _default_language(community: Community) -> str | None:
    """The profile's ``settings.default_language`` as the stream's image carries it (None: the
    community uploaded no settings, or they name no default language)."""
    return community.settings.default_language if community.settings is not None else None


def group_changes(changes: Iterable[ContentChange]) -> dict[str, CommunityChanges]:
    grouped: dict[str, CommunityChanges] = {}
    for change in changes:
        grouped.setdefault(change.community, CommunityChanges(change.community)).add(change)
    return grouped


# ----------------------------------------------------------------------------- the publisher


@dataclass
class Publication:
    """What one community's publication did."""

    community: str
    mode: str  # "full" or "incremental"
    rendered: int = 0
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # posts whose fan-out this publication started
    scheduled: list[str] = field(default_factory=list)  # posts whose wake-up it queued


@dataclass
class Wakeup:
    """What a scheduled post's wake-up did: ``released`` (the marker is set; the stream publishes
    it), ``already``, ``waiting`` (queued again for its time), ``gone`` or ``moved``."""

    what: str
    post_id: str


def is_due(post: Post, now: datetime) -> bool:
    return post.publish_at is None or post.publish_at.astimezone(UTC) <= now


def announces(post: Post) -> bool:
    """Whether the post's first appearance starts a fan-out: an editor's post with ``notify`` on."""
    return post.source == PostSource.POST and post.notify


def wakeup_job(post: Post) -> dict[str, Any]:
    """The schedule queue's message for a post waiting for its ``publish_at``."""
    assert post.publish_at is not None
    return {
        "v": 1,
        "kind": "due",
        "community": post.community,
        "post_id": post.id,
        "publish_at": post.publish_at.timestamp(),
    }


#: The schedule queue's message for a post whose first push waits for its translations.
TRANSLATIONS_KIND = "translations"


def translations_job(post: Post, until: float) -> dict[str, Any]:
    """The schedule queue's message for a post waiting for its translations until ``until``."""
    return {
        "v": 1,
        "kind": TRANSLATIONS_KIND,
        "community": post.community,
        "post_id": post.id,
        "until": until,
    }


def _pushes_machine(settings: Any) -> bool:
    """Whether a community's settings (a mapping or a model; None: the defaults) push machine
    translations (``push_machine_translations``; default no: shown on the site, not pushed)."""
    if isinstance(settings, Mapping):
        return settings.get("push_machine_translations") is True
    return getattr(settings, "push_machine_translations", False) is True


def _readable(version: PostVersion | None) -> Post | None:
    return version if isinstance(version, Post) else None


class SitePublisher:
    """Renders communities' sites and keeps the bucket in step with them."""

    def __init__(
        self,
        content: ContentReader,
        members: MemberCounter | None,
        store: SiteStore,
        settings: PublisherSettings,
        *,
        clock: Callable[[], datetime],
        demo_subscription: Callable[[str], Mapping[str, Any]] | None = None,
        schedule: JobQueue | None = None,
        fanout: JobQueue | None = None,
        marker: ReleaseMarker | None = None,
        variants: VariantReader | None = None,
        window: bool = True,
        page_size: int = PAGE_SIZE,
        feed_size: int = FEED_SIZE,
        starts: FanoutMarker | None = None,
    ) -> None:
        self.content = content
        self.members = members
        self.store = store
        self.settings = settings
        self.clock = clock
        self.demo_subscription = demo_subscription
        #: Without a schedule queue a scheduled post appears with the first publication after its
        #: time; without the planner's queue nothing fans out from here.
        self.schedule = schedule
        self.fanout = fanout
        self.marker = marker
        #: Language variants: their pages, the language folders, the default language. Without a
        #: reader no variant page or language folder is published.
        self.variants = variants
        #: Read only the newest archive pages when a batch's changes allow (:meth:`_window`).
        self.window = window
        self.page_size = page_size
        self.feed_size = feed_size
        #: Records each post's pushed languages, once (without it: every post pushed at once, in
        #: the languages it has, no wait for translations, no follow-up).
        self.starts = starts

    # -- entry points ------------------------------------------------------------------------------

    def publish(self, changes: CommunityChanges) -> Publication:
        """Publish what ``changes`` changed (the whole site when the profile says so); then start the
        fan-out of the posts that appear now and queue the wake-ups of those that wait."""
        community = changes.community
        now = self.clock().astimezone(UTC)
        view, renderer = self._profile(community)
        reads = _VariantReads(self, community)
        fresh = self.content.posts(community, list(changes.before)) if changes.before else {}
        held = None if changes.full or not self.window else self._window(community, view, changes, fresh, now)
        if held is not None:
            try:
                stored, offset = held
                publication = self._publish_changes(changes, view, renderer, stored, now, offset, reads)
            except OutsideWindow as exc:
                log.info("publishing %s from every post: %s", community, exc)
                held = None
        if held is None:
            stored = self._all_posts(community, changes, fresh)
            if changes.full:
                posts = [p for p in stored.values() if is_due(p, now)]
                items = self.variants.community_variants(community) if self.variants is not None else {}
                files = list(renderer.render_community(view, posts, items).values())
                publication = self._sync(community, "full", files, [], full=True)
            else:
                publication = self._publish_changes(changes, view, renderer, stored, now, 0, reads)
        # Only now that the pages and feeds are written: fan-outs, then wake-ups.
        self._announce(publication, changes, stored, now)
        return publication

    def _publish_changes(
        self,
        changes: CommunityChanges,
        view: CommunityView,
        renderer: SiteRenderer,
        stored: Mapping[str, Post],
        now: datetime,
        offset: int,
        reads: _VariantReads,
    ) -> Publication:
        """Render and upload what ``changes`` changed, from ``stored``: every post, or with
        ``offset`` only the newest (raises :class:`OutsideWindow` if they do not suffice). The
        variant items of a changed post are read only when its variant pages may have changed."""
        posts = [p for p in stored.values() if is_due(p, now)]
        due = {p.id: p for p in posts}
        previous: dict[str, Post] = {}
        deleted: set[str] = set()
        for pid, version in changes.before.items():
            old = _readable(version)
            was_visible = self._was_visible(changes, pid, now)
            if was_visible and old is not None:
                previous[pid] = old
            if pid not in due and (was_visible or isinstance(version, Unreadable)):
                deleted.add(pid)  # gone, or no longer due (an old version we cannot read: delete too)
        changed = {pid for pid in changes.before if pid in due}
        variants = {
            pid: reads.post(pid)
            for pid in sorted(changed)
            if variant_pages_change(previous.get(pid), due[pid])
        }
        site = renderer.render_changes(
            view,
            posts,
            changed,
            deleted,
            previous=previous,
            offset=offset,
            variants=variants,
            languages=reads.languages(posts),
        )
        files = [*site.writes, *renderer.assets(view)]
        return self._sync(changes.community, "incremental", files, site.deletes, full=False)

    def publish_all(self, community: str) -> Publication:
        """Render the whole site of ``community`` and make the bucket hold exactly it."""
        return self.publish(CommunityChanges(community, full=True))

    def wake(self, body: Mapping[str, Any]) -> Wakeup:
        """A scheduled post's wake-up: not due yet, queue it again; due, set its release marker (the
        stream then publishes it and starts its fan-out). A post deleted, or whose ``publish_at`` an
        edit changed, is left to the edit's own record (which queued a wake-up for the new time)."""
        if body.get("kind") == TRANSLATIONS_KIND:
            return self._translations_due(body)
        community, post_id = str(body["community"]), str(body["post_id"])
        wanted = float(body["publish_at"])
        now = self.clock().astimezone(UTC)
        current = self.content.posts(community, [post_id]).get(post_id)
        if current is None:
            return Wakeup("gone", post_id)
        if current.publish_at is None or abs(current.publish_at.timestamp() - wanted) > 1e-3:
            return Wakeup("moved", post_id)
        if not is_due(current, now):
            self._wait([current], now)
            return Wakeup("waiting", post_id)
        if self.marker is None:
            raise RuntimeError("a wake-up came due but the publisher has no release marker")
        return Wakeup(self.marker.release(community, post_id, wanted), post_id)

    # -- steps -------------------------------------------------------------------------------------

    @staticmethod
    def _was_visible(changes: CommunityChanges, pid: str, now: datetime) -> bool:
        """Whether the post was on the site before the batch: its old image was due when the first
        record was written (not now: a late batch must not take a post that was still waiting for
        visible), and no record of the batch released it (a release is its first appearance)."""
        if pid in changes.released:
            return False
        old = _readable(changes.before.get(pid))
        written = changes.written_at.get(pid)
        at = datetime.fromtimestamp(written, UTC) if written is not None else now
        return old is not None and is_due(old, at)

    def _announce(
        self, publication: Publication, changes: CommunityChanges, stored: Mapping[str, Post], now: datetime
    ) -> None:
        released: list[Post] = []
        changed: list[tuple[Post, Post | None]] = []  # posts on the site before, announcing: variants?
        waiting: list[Post] = []
        for pid, version in changes.before.items():
            post = stored.get(pid)
            if post is None:
                continue
            if is_due(post, now):
                if announces(post):
                    if not self._was_visible(changes, pid, now):
                        released.append(post)
                    else:
                        changed.append((post, _readable(version)))
            elif _schedule_changed(version, post):
                waiting.append(post)  # a wake-up for the post's (new) time; the old one finds it moved
        if self.fanout is not None:
            releases = self._fanouts(changes.community, released, changed, now)
            if releases:
                self.fanout.send([release_job(summary) for summary in releases])
            publication.released = sorted({s.post_id for s in releases if s.follow_up is None})
        if waiting and self.schedule is not None:
            self._wait(waiting, now)
            publication.scheduled = sorted(p.id for p in waiting)

    # -- the fan-out's start: at once, or once the translations came or their window ended ----------

    def _fanouts(
        self,
        community: str,
        appearing: Sequence[Post],
        changed: Sequence[tuple[Post, Post | None]],
        now: datetime,
    ) -> list[PostSummary]:
        """The release jobs' posts of a publication: each post that appears now, unless it waits
        for its translations (a wake-up at its window's end); a post on the site that was waiting
        and now has them all; and a follow-up per pushable language a post gained after its push."""
        at = now.timestamp()
        self._machine: dict[str, bool] = {}
        releases: list[PostSummary] = []
        for post in appearing:
            if self.starts is not None and waits_for_translations(post, at):
                self._wait_for_translations(post, at)
            else:
                releases.append(self._first_push(post, at))
        for post, old in changed:
            started = False
            was_waiting = post.translations and (old is None or awaited_translations(old))
            if was_waiting and not waits_for_translations(post, at) and self.starts is not None:
                # Every translation has come (or the window ended): the first push, once.
                state, summary = self._start(post, at)
                releases.append(summary)
                started = state == "started"
            if not started:
                releases += self._follow_ups(post, old)
        return releases

    def _summary(self, post: Post) -> PostSummary:
        pushes = False
        if post.variants:  # the community's setting, read once a publication
            known = getattr(self, "_machine", {})
            if post.community not in known:
                known[post.community] = self._pushes_machine(post.community)
            pushes = known[post.community]
        summary = summary_of(post, self.settings.public_site_url, push_machine=pushes)
        return replace(summary, correlation_id=post.correlation_id)

    def _pushes_machine(self, community: str) -> bool:
        """The community's ``push_machine_translations`` setting: from the content store's
        ``community_settings`` where it has one, else the profile's ``settings``."""
        read = getattr(self.content, "community_settings", None)
        if callable(read):
            return _pushes_machine(read(community))
        profile = self.content.community(community)
        return _pushes_machine(profile.settings if profile is not None else None)

    def _first_push(self, post: Post, at: float) -> PostSummary:
        return self._start(post, at)[1] if self.starts is not None else self._summary(post)

    def _start(self, post: Post, at: float) -> tuple[str, PostSummary]:
        """The post's first push, its languages recorded once: ``started``, or ``already`` (a
        repeated record, or the window's wake-up first) with the languages recorded then."""
        assert self.starts is not None
        summary = self._summary(post)
        state, langs = self.starts.start_fanout(post.community, post.id, pushed_languages(summary), at)
        return state, summary.only(set(langs))

    def _follow_ups(self, post: Post, old: Post | None) -> list[PostSummary]:
        """A follow-up push for each pushable language the post's variants gained with this change
        (an edited variant gains none: it never pushes again), once per language; none before the
        post's first push started (its languages go with it)."""
        if self.starts is None or not post.variants:
            return []
        summary = self._summary(post)
        before = set(pushed_languages(self._summary(old))) if old is not None else {summary.language}
        follow: list[PostSummary] = []
        for lang in summary.variants:
            if lang in before:
                continue
            state, pushed = self.starts.follow_up(post.community, post.id, lang)
            if state != "not started" and lang not in pushed:
                follow.append(replace(summary.only({lang}), follow_up=lang, pushed=tuple(pushed)))
        return follow

    def _wait_for_translations(self, post: Post, at: float) -> None:
        """A wake-up at the end of the post's translation window (in hops of the longest SQS delay)."""
        end = translation_window_end(post)
        if self.schedule is None or end is None:
            return
        delay = delay_for(end, at, self.settings.max_delay_seconds)
        self.schedule.send([translations_job(post, end)], delay)

    def _translations_due(self, body: Mapping[str, Any]) -> Wakeup:
        """A translation window's wake-up: the post's first push starts now unless it has (all its
        translations came, or a repeat), or the window is longer than one SQS delay (wait on)."""
        community, post_id = str(body["community"]), str(body["post_id"])
        at = self.clock().astimezone(UTC).timestamp()
        current = self.content.posts(community, [post_id]).get(post_id)
        if current is None:
            return Wakeup("gone", post_id)
        if not announces(current) or not is_due(current, self.clock().astimezone(UTC)):
            return Wakeup("moved", post_id)  # notify off, or an edit moved it ahead: its own record
        if waits_for_translations(current, at):
            self._wait_for_translations(current, at)
            return Wakeup("waiting", post_id)
        if self.starts is None or self.fanout is None:
            raise RuntimeError("a translation window ended but the publisher has no fan-out marker or queue")
        state, summary = self._start(current, at)
        if state == "started":
            self.fanout.send([release_job(summary)])
        return Wakeup("fanned out" if state == "started" else "already", post_id)

    def _wait(self, posts: Sequence[Post], now: datetime) -> None:
        assert self.schedule is not None
        for post in posts:
            assert post.publish_at is not None
            delay = delay_for(post.publish_at.timestamp(), now.timestamp(), self.settings.max_delay_seconds)
            self.schedule.send([wakeup_job(post)], delay)

    def _profile(self, community: str) -> tuple[CommunityView, SiteRenderer]:
        """The community's view (its post count is the profile's ``post_count``) and its renderer."""
        stored = self.content.community(community) or Community(id=community, name=community)
        members = stored.members
        if self.members is not None:
            members = member_count(stored.members_baseline, self.members.count(community))
        view = CommunityView.from_community(stored, join_url=self.settings.join_url(community))
        view = view.model_copy(update={"members": members})
        renderer = SiteRenderer(
            self.settings.base_url(community),
            api_url=self.settings.api_url,
            locale=self.settings.site_locale,
            page_size=self.page_size,
            feed_size=self.feed_size,
            demo_subscription=self.demo_subscription(community) if self.demo_subscription else None,
            default_language=self.variants.default_language(community) if self.variants is not None else None,
        )
        return view, renderer

    def _all_posts(
        self, community: str, changes: CommunityChanges, fresh: Mapping[str, Post]
    ) -> dict[str, Post]:
        """Every post the community has (due or not) by id; the changed posts as read from the table
        itself, since the feed index they are listed by is eventually consistent and may not have a
        post the stream just announced."""
        posts = {p.id: p for p in self.content.community_posts(community)}
        for pid in changes.before:
            if pid in fresh:
                posts[pid] = fresh[pid]
            else:
                posts.pop(pid, None)
        return posts

    def _window(
        self,
        community: str,
        view: CommunityView,
        changes: CommunityChanges,
        fresh: Mapping[str, Post],
        now: datetime,
    ) -> tuple[dict[str, Post], int] | None:
        """The newest posts only, and how many full archive pages precede them: every pinned post,
        every scheduled one, and the unpinned due posts of the newest archive pages (the newest and
        the one before, more if the feeds need them), from one Query of the feed index newest first.
        The profile's ``post_count`` (written with the posts) tells where the pages begin. None when
        the batch may move posts between older pages (a post deleted, or one changed there), or when
        what was read disagrees with the count: the caller reads every post.
        """
        if any(pid not in fresh or isinstance(v, Unreadable) for pid, v in changes.before.items()):
            return None  # a post deleted, or an old version unknown: its place is not known
        size = self.page_size
        total = view.posts
        page = _held(total, size, self.feed_size)[0] + 1
        read: dict[str, Post] = {}
        above = {pid for pid, p in fresh.items() if p.pinned or not is_due(p, now)}  # not on the pages
        cutoff: datetime | None = None
        listed_pages = 0  # unpinned due posts read
        complete = True
        for listed in self.content.newest_posts(community, page):
            post = fresh.get(listed.id, listed) if listed.id in changes.before else listed
            if post.pinned != listed.pinned or published_at(post) != published_at(listed):
                return None  # the index lags behind an edit of the post's place
            on_pages = not post.pinned and is_due(post, now)
            if cutoff is not None and on_pages and _millisecond(post) < cutoff:
                complete = False  # the index orders by the millisecond: every post of cutoff's is read
                break
            read[post.id] = post
            if not on_pages:
                above.add(post.id)
                continue
            listed_pages += 1
            if cutoff is None and listed_pages >= _held(total - len(above), size, self.feed_size)[0]:
                cutoff = _millisecond(post)
        if complete and cutoff is None:
            # The whole partition was read: what the full read would have.
            posts = {**read, **{pid: p for pid, p in fresh.items()}}
            return posts, 0
        pages = [p for p in read.values() if not p.pinned and is_due(p, now)]
        boundary = min(_key(p) for p in pages)
        extra = {pid: p for pid, p in fresh.items() if pid not in read}
        for post in extra.values():
            if not post.pinned and is_due(post, now):
                if _key(post) < boundary:
                    return None  # a changed post older than the pages held
                pages.append(post)
        unpinned = total - len(above)
        hold, offset = _held(unpinned, size, self.feed_size)
        if unpinned < len(pages) or len(pages) < hold:
            return None  # the count disagrees with what was read
        pages.sort(key=_key)
        kept = pages[len(pages) - hold :]
        kept_ids = {p.id for p in kept}
        if any(pid not in kept_ids and pid not in above for pid in fresh):
            return None  # a changed post older than the pages held
        posts = {pid: p for pid, p in {**read, **extra}.items() if pid in above}
        posts.update((p.id, p) for p in kept)
        return posts, offset

    def _sync(
        self, community: str, mode: str, files: list[SiteFile], deletes: Sequence[str], *, full: bool
    ) -> Publication:
        prefix = f"{community}/"
        by_path = {f.path: f for f in files}
        removed = [prefix + path for path in deletes if path not in by_path]
        keys = [*(prefix + path for path in by_path), *removed]
        if full or len(keys) > LIST_ABOVE:
            existing = dict(self.store.list(prefix))
        else:
            existing = dict(self.store.head(keys))
        pending = [f for f in by_path.values() if not _same(existing.get(prefix + f.path), f)]
        gone = {key for key in removed if key in existing}
        if full:  # whatever the site no longer has: pages of posts deleted meanwhile, old archive pages
            gone |= {key for key in existing if key.removeprefix(prefix) not in by_path}
        # Pages first, then the files that link to them; deletes last (nothing links there any more).
        self.store.put(prefix, [f for f in pending if f.path not in LIVE_FILES])
        self.store.put(prefix, [f for f in pending if f.path in LIVE_FILES])
        if gone:
            self.store.delete(sorted(gone))
        return Publication(
            community=community,
            mode=mode,
            rendered=len(by_path),
            written=sorted(f.path for f in pending),
            unchanged=len(by_path) - len(pending),
            deleted=sorted(key.removeprefix(prefix) for key in gone),
        )


class _VariantReads:
    """One publication's reads of variants, each made once (a windowed attempt that falls back to
    every post reads nothing twice)."""

    def __init__(self, publisher: SitePublisher, community: str) -> None:
        self.publisher = publisher
        self.community = community
        self._posts: dict[str, Mapping[str, Variant]] = {}
        self._folders: list[str] | None = None

    def post(self, post_id: str) -> Mapping[str, Variant]:
        reader = self.publisher.variants
        if reader is None:
            return {}
        if post_id not in self._posts:
            self._posts[post_id] = reader.post_variants(self.community, post_id)
        return self._posts[post_id]

    def languages(self, posts: Iterable[Post]) -> list[str]:
        """The language folders to render: those the bucket holds (a folder stays until a full render
        finds no post in its language, so pages not read keep theirs) and those of ``posts``."""
        if self.publisher.variants is None:
            return []
        if self._folders is None:
            found = self.publisher.store.folders(f"{self.community}/")
            self._folders = [name for name in found if LANGUAGE_FOLDER.match(name)]
        return sorted({*self._folders, *(lang for p in posts for lang in p.variants)})


def _same(stored: Stored | None, file: SiteFile) -> bool:
    return stored is not None and stored.matches(file)


def _key(post: Post) -> tuple[datetime, str]:
    """A post's place in publication order (as :class:`herald.site.render.Layout` ranks them)."""
    return published_at(post), post.id


def _millisecond(post: Post) -> datetime:
    """A post's time as the feed index orders it: to the millisecond."""
    at = published_at(post)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def _held(unpinned: int, page_size: int, feed_size: int) -> tuple[int, int]:
    """How many of ``unpinned`` posts (the newest) a windowed read holds, and how many full archive
    pages precede them: the newest page (``unpinned - (pages - 1) * page_size`` posts, since pages
    fill from the oldest) and the one before, and more pages while they hold fewer than the feeds
    show."""
    pages = -(-unpinned // page_size)
    if pages <= 2:
        return unpinned, 0
    first = pages - 1
    newest = unpinned - (pages - 1) * page_size
    while first > 1 and newest + (pages - first) * page_size < feed_size:
        first -= 1
    offset = first - 1
    return unpinned - offset * page_size, offset


def _schedule_changed(version: PostVersion | None, post: Post) -> bool:
    """Whether the post's ``publish_at`` is new with this batch (so no wake-up waits for it yet)."""
    old = _readable(version)
    return old is None or old.publish_at != post.publish_at


# ----------------------------------------------------------------------------- batches


@dataclass
class BatchResult:
    publications: list[Publication] = field(default_factory=list)
    failed_event_ids: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)  # community -> error


def publish_changes(publisher: SitePublisher, changes: Iterable[ContentChange]) -> BatchResult:
    """Publish every community a batch's changes touched, in the order the batch first touched them;
    a community that fails fails its changes only (the others are published)."""
    result = BatchResult()
    for community, grouped in group_changes(changes).items():
        try:
            result.publications.append(publisher.publish(grouped))
        except Exception as exc:  # reported per record: the stream retries them
            log.exception("publishing %s failed", community)
            result.errors[community] = f"{type(exc).__name__}: {exc}"
            result.failed_event_ids.update(grouped.event_ids)
    return result


# ----------------------------------------------------------------------------- the local cloud


def demo_subscriptions(
    origin: str | None = None, seed: bytes | None = None
) -> Callable[[str], dict[str, Any]]:
    """Browser-like Web Push subscriptions for the local cloud's join buttons, one per community.

    Each is syntactically what a browser hands out: an endpoint on ``origin`` (the local push
    service; by default a loopback port nobody listens on), a P-256 public key (65 bytes,
    uncompressed) and a 16-byte auth secret, base64url. They are drawn from ``seed`` (random per
    process), so a community's pages keep the same bytes while the process lives.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = seed if seed is not None else os.urandom(32)
    base = (origin or DEFAULT_PUSH_ORIGIN).rstrip("/")
    order = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)

    def derive(label: str, community: str) -> bytes:
        return hmac.new(key, f"{label}\x00{community}".encode(), hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def subscription(community: str) -> dict[str, Any]:
        scalar = int.from_bytes(derive("p256dh", community), "big") % (order - 1) + 1
        public = ec.derive_private_key(scalar, ec.SECP256R1()).public_key()
        point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {
            "endpoint": f"{base}/push/{b64(derive('endpoint', community)[:16])}",
            "keys": {"p256dh": b64(point), "auth": b64(derive("auth", community)[:16])},
        }

    return subscription
