"""The publisher's windowed read (only the newest archive pages) against its full read.

Over random histories of a community (posts added, backdated, scheduled and released, edited,
pinned, re-dated, deleted; language variants added, edited, replaced by machine ones and removed;
small pages so they roll over) a publisher that reads only the newest pages writes exactly the
files, and deletes exactly the pages, of one that reads every post.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.content.models import Community, Post, Variant, VariantOrigin
from herald.site.adapters.s3_site import StoredObject
from herald.site.publisher import CommunityChanges, Publication, PublisherSettings, SitePublisher
from herald.site.render import SiteFile

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
COMMUNITY = "harbour-line"


def feed_key(post: Post) -> str:
    """The feed index's sort key (as the content table writes it): to the millisecond."""
    at = (post.publish_at or post.created_at).astimezone(UTC).isoformat(timespec="milliseconds")
    return f"{1 if post.pinned else 0}#{at}#{post.id}"


@dataclass
class Table:
    """The content table's posts and profile, as the publisher reads them, with the items read."""

    posts: dict[str, Post] = field(default_factory=dict)
    #: post id -> language -> its variant item (``VAR#<id>#<lang>``)
    variants: dict[str, dict[str, Variant]] = field(default_factory=dict)
    items_read: int = 0

    def community(self, community: str) -> Community | None:
        return Community(id=community, name="Harbour Line", posts=len(self.posts))

    def _feed(self) -> list[Post]:
        return sorted(self.posts.values(), key=feed_key, reverse=True)

    def community_posts(self, community: str) -> list[Post]:
        feed = self._feed()
        self.items_read += len(feed)
        return feed

    def posts_of(self, post_ids: Sequence[str]) -> dict[str, Post]:
        return {pid: self.posts[pid] for pid in post_ids if pid in self.posts}

    def newest_posts(self, community: str, page: int) -> Iterator[Post]:
        for post in self._feed():
            self.items_read += 1
            yield post

    def post_variants(self, community: str, post_id: str) -> dict[str, Variant]:
        return dict(self.variants.get(post_id, {}))

    def community_variants(self, community: str) -> dict[str, dict[str, Variant]]:
        return {pid: dict(v) for pid, v in self.variants.items()}

    def default_language(self, community: str) -> str | None:
        return None


class Reader:
    """One publisher's reads of the table, counted: windowed reads and full reads apart."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.windowed = 0
        self.full = 0
        self.variant_queries = 0

    def community(self, community: str) -> Community | None:
        return self.table.community(community)

    def community_posts(self, community: str) -> list[Post]:
        self.full += 1
        return self.table.community_posts(community)

    def posts(self, community: str, post_ids: Sequence[str]) -> dict[str, Post]:
        return self.table.posts_of(post_ids)

    def newest_posts(self, community: str, page: int) -> Iterator[Post]:
        self.windowed += 1
        return self.table.newest_posts(community, page)

    def post_variants(self, community: str, post_id: str) -> dict[str, Variant]:
        self.variant_queries += 1
        return self.table.post_variants(community, post_id)

    def community_variants(self, community: str) -> dict[str, dict[str, Variant]]:
        return self.table.community_variants(community)

    def default_language(self, community: str) -> str | None:
        return self.table.default_language(community)


@dataclass
class Bucket:
    files: dict[str, SiteFile] = field(default_factory=dict)

    def _stored(self, key: str) -> StoredObject:
        f = self.files[key]
        return StoredObject(f.md5, f.content_type, f.cache_control)

    def head(self, keys: Sequence[str]) -> Mapping[str, StoredObject]:
        return {k: self._stored(k) for k in keys if k in self.files}

    def list(self, prefix: str) -> Mapping[str, StoredObject]:
        return {k: self._stored(k) for k in self.files if k.startswith(prefix)}

    def folders(self, prefix: str) -> list[str]:
        return sorted(
            {
                k.removeprefix(prefix).split("/")[0]
                for k in self.files
                if k.startswith(prefix) and "/" in k.removeprefix(prefix)
            }
        )

    def put(self, prefix: str, files: Sequence[SiteFile]) -> None:
        for f in files:
            self.files[prefix + f.path] = f

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            del self.files[key]


def publisher(
    reader: Any, bucket: Bucket, now: list[datetime], *, window: bool, page_size: int, feed_size: int
) -> SitePublisher:
    return SitePublisher(
        reader,
        None,
        bucket,
        PublisherSettings(content_table="content", site_bucket="site"),
        clock=lambda: now[0],
        variants=reader,
        window=window,
        page_size=page_size,
        feed_size=feed_size,
    )


def make_post(n: int, at: datetime, *, publish_at: datetime | None = None, pinned: bool = False) -> Post:
    return Post(
        id=f"{n:020x}",
        community=COMMUNITY,
        key=f"posts/{COMMUNITY}/{n}.txt",
        title=f"Post {n}",
        text=f"Post number {n}: the ferry leaves at nine.",
        excerpt=f"Post number {n}",
        content_hash=f"{n:064x}",
        pinned=pinned,
        publish_at=publish_at,
        created_at=at,
        updated_at=at,
    )


# ----------------------------------------------------------------------------- histories

ops = st.one_of(
    # a new post: now, backdated (ranked among older pages), or scheduled (shown when released)
    st.tuples(
        st.just("add"),
        st.sampled_from(["now", "now", "now", "backdated", "scheduled"]),
        st.sampled_from([False, False, False, True]),  # pinned
        st.integers(0, 999),  # microseconds: posts in one millisecond, as the index cannot order
    ),
    st.tuples(st.just("edit"), st.integers(0, 10_000), st.sampled_from(["text", "pin", "date"])),
    st.tuples(st.just("delete"), st.integers(0, 10_000)),
    st.tuples(st.just("tick"), st.integers(1, 120)),
    st.tuples(st.just("profile")),
    # a language variant of a post: added or edited (human), a machine one, or removed
    st.tuples(
        st.just("variant"),
        st.integers(0, 10_000),
        st.sampled_from(["fr", "ar", "es"]),
        st.sampled_from(["human", "human", "machine", "remove"]),
    ),
)


@dataclass
class History:
    table: Table = field(default_factory=Table)
    now: list[datetime] = field(default_factory=lambda: [T0])
    released: set[str] = field(default_factory=set)
    serial: int = 0

    def apply(self, batch: Sequence[tuple[Any, ...]]) -> CommunityChanges:
        changes = CommunityChanges(COMMUNITY)
        posts = self.table.posts
        for op in batch:
            self.now[0] += timedelta(seconds=7)
            now = self.now[0]
            kind = op[0]
            if kind == "add":
                _, when, pinned, micros = op
                self.serial += 1
                at = now.replace(microsecond=micros)
                publish_at = None
                if when == "backdated":
                    publish_at = at - timedelta(hours=3 + self.serial % 5, microseconds=micros)
                elif when == "scheduled":
                    publish_at = at + timedelta(minutes=30 + self.serial % 90)
                post = make_post(self.serial, at, publish_at=publish_at, pinned=pinned)
                self._record(changes, post.id, None)
                posts[post.id] = post
            elif kind in ("edit", "delete") and posts:
                pid = sorted(posts)[op[1] % len(posts)]
                old = posts[pid]
                self._record(changes, pid, old)
                if kind == "delete":
                    del posts[pid]
                    self.table.variants.pop(pid, None)
                    continue
                edit: dict[str, Any] = {"version": old.version + 1, "updated_at": now}
                if op[2] == "text":
                    edit.update(
                        text=old.text + " Edited.", content_hash=f"{self.serial:032x}{old.version:032x}"
                    )
                elif op[2] == "pin":
                    edit["pinned"] = not old.pinned
                else:
                    edit["publish_at"] = (old.publish_at or old.created_at) - timedelta(
                        hours=1, microseconds=3
                    )
                posts[pid] = old.model_copy(update=edit)
            elif kind == "tick":
                self.now[0] += timedelta(minutes=op[1])
                for pid, post in posts.items():
                    scheduled = post.publish_at is not None and post.publish_at > post.created_at
                    if scheduled and post.publish_at <= self.now[0] and pid not in self.released:
                        self.released.add(pid)  # a scheduled post comes due: its release
                        self._record(changes, pid, post)
                        changes.released.add(pid)
            elif kind == "profile":
                changes.full = True
            elif kind == "variant" and posts:
                _, index, lang, how = op
                pid = sorted(posts)[index % len(posts)]
                old = posts[pid]
                items = self.table.variants.setdefault(pid, {})
                if how == "remove":
                    if lang not in items:
                        continue
                    del items[lang]
                else:
                    self.serial += 1
                    prior = items.get(lang)
                    items[lang] = Variant(
                        post_id=pid,
                        community=COMMUNITY,
                        lang=lang,
                        key=f"{old.key.removesuffix('.txt')}.{lang}.txt",
                        origin=VariantOrigin.MACHINE if how == "machine" else VariantOrigin.HUMAN,
                        title=f"{old.title} ({lang} {self.serial})",
                        text=f"{old.text} [{lang} {self.serial}]",
                        excerpt=f"{old.excerpt} [{lang}]",
                        content_hash=f"{self.serial:064x}",
                        version=prior.version + 1 if prior else 1,
                        created_at=prior.created_at if prior else now,
                        updated_at=now,
                    )
                self._record(changes, pid, old)
                posts[pid] = old.model_copy(
                    update={"variants": {k: v.summary() for k, v in sorted(items.items())}}
                )
        return changes

    def _record(self, changes: CommunityChanges, pid: str, before: Post | None) -> None:
        if pid not in changes.before:
            changes.before[pid] = before
            changes.written_at[pid] = self.now[0].timestamp()
        changes.event_ids.append(f"{pid}@{self.now[0].timestamp()}")


def summary(publication: Publication) -> tuple[Any, ...]:
    return publication.mode, publication.written, publication.deleted, publication.released


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    page_size=st.integers(1, 4),
    feed_size=st.integers(1, 8),
    bulk=st.integers(0, 40),
    seed=st.lists(ops, min_size=0, max_size=12),
    batches=st.lists(st.lists(ops, min_size=1, max_size=4), min_size=1, max_size=14),
)
def test_windowed_read_writes_what_the_full_read_writes(
    page_size: int,
    feed_size: int,
    bulk: int,
    seed: list[tuple[Any, ...]],
    batches: list[list[tuple[Any, ...]]],
) -> None:
    history = History()
    windowed, full = Bucket(), Bucket()
    fast = publisher(
        Reader(history.table), windowed, history.now, window=True, page_size=page_size, feed_size=feed_size
    )
    slow = publisher(
        Reader(history.table), full, history.now, window=False, page_size=page_size, feed_size=feed_size
    )
    # A first history, published whole: both buckets start from the same site.
    history.apply([("add", "now", False, n * 37 % 1000) for n in range(bulk)] + seed)
    fast.publish_all(COMMUNITY)
    slow.publish_all(COMMUNITY)
    assert windowed.files == full.files
    for batch in batches:
        changes = history.apply(batch)
        again = CommunityChanges(
            COMMUNITY,
            event_ids=list(changes.event_ids),
            before=dict(changes.before),
            written_at=dict(changes.written_at),
            released=set(changes.released),
            full=changes.full,
        )
        assert summary(fast.publish(changes)) == summary(slow.publish(again))
        assert windowed.files == full.files


def test_appending_to_a_long_feed_reads_the_newest_pages_only() -> None:
    """New posts appended to a community of many pages: every batch is published from the newest
    pages (no full read), reads about two pages of posts, and writes what the full read writes."""
    history = History()
    windowed, full = Bucket(), Bucket()
    fast_reader, slow_reader = Reader(history.table), Reader(history.table)
    fast = publisher(fast_reader, windowed, history.now, window=True, page_size=3, feed_size=4)
    slow = publisher(slow_reader, full, history.now, window=False, page_size=3, feed_size=4)
    history.apply([("add", "now", False, 0)] * 40 + [("add", "now", True, 0)] * 2)
    fast.publish_all(COMMUNITY)
    slow.publish_all(COMMUNITY)
    for n in range(12):
        batch: list[tuple[Any, ...]] = [("add", "now", False, n * 7 % 1000)] * (1 + n % 3)
        if n % 4 == 1:
            batch.append(("edit", len(history.table.posts) - 1, "text"))  # the newest post
        changes = history.apply(batch)
        fast_reader.table.items_read = 0
        fast_reader.full = 0
        mine = fast.publish(changes)
        read = history.table.items_read
        assert fast_reader.full == 0, f"batch {n} read every post"
        assert read <= 2 * 3 + 1 + 2 + len(changes.before) + 2, read
        assert summary(mine) == summary(slow.publish(changes))
        assert windowed.files == full.files


def test_variants_are_read_only_for_the_posts_whose_variant_pages_change() -> None:
    """Over a long feed, a new variant is one Query of that post's variant items and its pages and
    its language's folder are written; a new post without variants reads no variant; removing the
    variant removes its page (the language folder stays until a full render finds no post in it)."""
    history = History()
    windowed, full = Bucket(), Bucket()
    fast_reader, slow_reader = Reader(history.table), Reader(history.table)
    fast = publisher(fast_reader, windowed, history.now, window=True, page_size=3, feed_size=4)
    slow = publisher(slow_reader, full, history.now, window=False, page_size=3, feed_size=4)
    history.apply([("add", "now", False, 0)] * 30)
    fast.publish_all(COMMUNITY)
    slow.publish_all(COMMUNITY)
    newest = len(history.table.posts) - 1
    pid = sorted(history.table.posts)[newest]

    steps: list[tuple[list[tuple[Any, ...]], int]] = [
        ([("variant", newest, "ar", "human")], 1),
        ([("add", "now", False, 5)], 0),
        ([("variant", newest, "ar", "remove")], 0),  # no variant left to read: nothing to render
    ]
    for batch, queries in steps:
        changes = history.apply(batch)
        fast_reader.variant_queries = fast_reader.full = 0
        mine = fast.publish(changes)
        assert fast_reader.full == 0
        assert fast_reader.variant_queries == queries, batch
        assert summary(mine) == summary(slow.publish(changes))
        assert windowed.files == full.files
        if batch[0][3] == "human":
            assert f"{COMMUNITY}/ar/posts/{pid}/index.html" in windowed.files
            assert {"ar/index.html", "ar/feed.atom", "ar/feed.json"} <= set(mine.written)
    assert f"{COMMUNITY}/ar/posts/{pid}/index.html" not in windowed.files
    assert f"{COMMUNITY}/ar/index.html" in windowed.files
    fast.publish_all(COMMUNITY)
    assert not [key for key in windowed.files if key.startswith(f"{COMMUNITY}/ar/")]
