"""In-memory fakes of ingest's ports (:mod:`herald.ingest.ports`): the uploads bucket and the
content store, for unit tests of :class:`herald.ingest.service.IngestService` without AWS.

They keep the contracts the service relies on, as the AWS adapters do:

- :class:`MemoryObjects` is a versioned bucket: every put is a new version, a delete leaves a
  delete marker (the object is gone, its versions can still be read), ``read`` returns at most
  ``max_bytes + 1`` bytes; ``put`` and ``delete`` also give the S3 event they cause, with a
  sequencer greater than the one before.
- :class:`MemoryContent` applies a :class:`~herald.ingest.ports.Change` as DynamoDB applies the
  adapter's ``TransactWriteItems``: the same items, each with the same condition, all evaluated
  before anything is written; one failed condition writes nothing and raises
  :class:`ConcurrentUpdate` with every item's cancellation reason; two operations on one item are
  refused (:class:`RequestRefused`), as DynamoDB refuses them; a change over 100 items does not fit.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from herald.content.limits import rejected_names
from herald.content.models import (
    Community,
    CommunityProfile,
    CommunitySettings,
    Outcome,
    Post,
    Variant,
    VariantOrigin,
)
from herald.core.errors import ConcurrentUpdate, RequestRefused
from herald.ingest.events import SEQUENCER_WIDTH, ObjectEvent, VariantCheck
from herald.ingest.ports import (
    Change,
    Claim,
    ImportProgress,
    KeyRecord,
    Lookup,
    PostRef,
    Promotion,
    Stem,
    StemChange,
    VariantContext,
    VariantsOfPost,
    Waiting,
)

BUCKET = "uploads"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

# --- the uploads bucket -------------------------------------------------------------------------


@dataclass
class _Version:
    version_id: str
    data: bytes | None  # None: a delete marker


class MemoryObjects:
    """A versioned uploads bucket in memory (implements :class:`herald.ingest.ports.ObjectStore`)."""

    def __init__(self, bucket: str = BUCKET) -> None:
        self.bucket = bucket
        self._versions: dict[tuple[str, str], list[_Version]] = {}
        self._sequence = 0
        #: every read: (key, version id asked for, max_bytes)
        self.reads: list[tuple[str, str | None, int]] = []

    # -- what an editor does, and the event S3 sends for it ----------------------------------------

    def put(self, key: str, data: bytes | str) -> ObjectEvent:
        body = data.encode() if isinstance(data, str) else data
        version = self._add(key, body)
        return self._event(key, "created", version.version_id, size=len(body))

    def delete(self, key: str) -> ObjectEvent:
        version = self._add(key, None)
        return self._event(key, "removed", version.version_id)

    def body(self, key: str) -> bytes | None:
        """The object's current bytes (None if there is none)."""
        versions = self._versions.get((self.bucket, key))
        return versions[-1].data if versions else None

    def keys(self, prefix: str = "") -> list[str]:
        """The keys that exist now (not deleted), sorted."""
        return sorted(k for (b, k), v in self._versions.items() if b == self.bucket and k.startswith(prefix)
                      and v[-1].data is not None)  # fmt: skip

    # -- the port --------------------------------------------------------------------------------

    def read(self, bucket: str, key: str, version_id: str | None, max_bytes: int) -> bytes | None:
        self.reads.append((key, version_id, max_bytes))
        version = self._find(bucket, key, version_id)
        if version is None or version.data is None:
            return None
        return version.data[: max_bytes + 1]

    def keep_rejected(
        self, bucket: str, key: str, version_id: str | None, report: dict[str, Any]
    ) -> str | None:
        copy_key, report_key = rejected_names(key)
        original = self._find(bucket, key, version_id)
        if original is not None and original.data is not None:
            self._add(copy_key, original.data, bucket)
            report = {**report, "original": copy_key}
        else:
            copy_key = ""
        self._add(report_key, json.dumps(report, ensure_ascii=False, indent=2).encode(), bucket)
        return copy_key or None

    # -- plumbing --------------------------------------------------------------------------------

    def _find(self, bucket: str, key: str, version_id: str | None) -> _Version | None:
        versions = self._versions.get((bucket, key), [])
        if version_id is None:
            return versions[-1] if versions else None
        return next((v for v in versions if v.version_id == version_id), None)

    def _add(self, key: str, data: bytes | None, bucket: str | None = None) -> _Version:
        self._sequence += 1
        version = _Version(version_id=f"v{self._sequence}", data=data)
        self._versions.setdefault((bucket or self.bucket, key), []).append(version)
        return version

    def _event(self, key: str, kind: str, version_id: str, size: int | None = None) -> ObjectEvent:
        return ObjectEvent(
            bucket=self.bucket,
            key=key,
            kind="created" if kind == "created" else "removed",
            event_name="ObjectCreated:Put" if kind == "created" else "ObjectRemoved:DeleteMarkerCreated",
            sequencer=f"{self._sequence:X}".rjust(SEQUENCER_WIDTH, "0"),
            event_time=T0 + timedelta(seconds=self._sequence),
            version_id=version_id,
            size=size,
            request_id=f"req-{self._sequence}",
        )


# --- the content store --------------------------------------------------------------------------

#: TransactWriteItems: at most 100 items, 4 MB (the adapter keeps a margin on the size).
MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 3_500_000


@dataclass
class _Claim:
    owner: str
    content_hash: str
    waiting: int | None = None


@dataclass
class _Profile:
    name: str | None = None
    description: str | None = None
    verified: bool = False
    members_baseline: int | None = None
    created_year: int | None = None
    post_count: int | None = None
    updated_at: datetime | None = None


@dataclass
class _Op:
    """One item of a transaction: which item, its condition (on the state before any write), the write."""

    item: tuple[str, ...]
    check: Callable[[], bool]
    apply: Callable[[], object]
    size: int = 0


def _always() -> bool:
    return True


@dataclass
class MemoryContent:
    """The content table in memory (implements :class:`herald.ingest.ports.ContentStore`)."""

    outcomes_by_key: dict[str, Outcome] = field(default_factory=dict)
    posts_by_id: dict[tuple[str, str], Post] = field(default_factory=dict)
    text_claims: dict[tuple[str, str], _Claim] = field(default_factory=dict)
    held_back: dict[tuple[str, str, str], Waiting] = field(default_factory=dict)
    published: dict[str, dict[str, tuple[PostRef, str | None]]] = field(default_factory=dict)
    waiting_refs: dict[str, dict[str, PostRef]] = field(default_factory=dict)
    progress: dict[str, ImportProgress] = field(default_factory=dict)
    profiles: dict[str, _Profile] = field(default_factory=dict)
    #: (community, the id a variant is stored under, lang) -> variant
    variant_items: dict[tuple[str, str, str], Variant] = field(default_factory=dict)
    stems: dict[tuple[str, str], Stem] = field(default_factory=dict)
    #: (community, post id) -> the post's variants revision (absent: 0)
    revisions: dict[tuple[str, str], int] = field(default_factory=dict)
    settings: dict[str, CommunitySettings] = field(default_factory=dict)
    max_items: int = MAX_TRANSACTION_ITEMS
    #: every change committed (or refused), in order
    commits: list[Change] = field(default_factory=list)
    #: called with each change before it is applied (a test's concurrent writer, a fault)
    before_commit: Callable[[Change], None] | None = None

    # -- reads -----------------------------------------------------------------------------------

    def outcome(self, key: str) -> Outcome | None:
        found = self.outcomes_by_key.get(key)
        return found.model_copy(deep=True) if found is not None else None

    def community(self, community: str) -> Community | None:
        profile = self.profiles.get(community)
        return _community(community, profile, self.settings.get(community)) if profile is not None else None

    def posts(self, community: str, post_ids: Sequence[str]) -> dict[str, Post]:
        return {
            pid: self.posts_by_id[(community, pid)]
            for pid in post_ids
            if (community, pid) in self.posts_by_id
        }

    def lookup(
        self, community: str, post_ids: Sequence[str], hashes: Sequence[str], key: str | None = None
    ) -> Lookup:
        found = Lookup(posts=self.posts(community, post_ids), claims=self.claims(community, hashes))
        found.revisions = {pid: self.revisions.get((community, pid), 0) for pid in found.posts}
        if key is not None:
            refs = self.waiting_refs.get(key, {})
            found.waiting = {pid: refs[pid] for pid in post_ids if pid in refs}
        return found

    def claims(self, community: str, hashes: Sequence[str]) -> dict[str, Claim]:
        out: dict[str, Claim] = {}
        for content_hash in hashes:
            claim = self.text_claims.get((community, content_hash))
            if claim is not None:
                out[content_hash] = Claim(owner=claim.owner, waiting=claim.waiting or 0)
        return out

    def key_record(self, key: str) -> KeyRecord:
        record = KeyRecord(progress=self.progress.get(key))
        for pid, (ref, since) in self.published.get(key, {}).items():
            record.published[pid] = ref
            record.created_by[pid] = since
        record.waiting = dict(self.waiting_refs.get(key, {}))
        return record

    def variant_context(
        self, community: str, stem_id: str | None, candidate_ids: Sequence[str], lang: str
    ) -> VariantContext:
        posts = self.posts(community, candidate_ids)
        variants = {
            container: self.variant_items[(community, container, lang)]
            for container in [*candidate_ids, *([stem_id] if stem_id is not None else [])]
            if (community, container, lang) in self.variant_items
        }
        return VariantContext(
            stem=self.stem(community, stem_id) if stem_id is not None else None,
            posts=posts,
            variants=variants,
            revisions={pid: self.revisions.get((community, pid), 0) for pid in posts},
        )

    def stem(self, community: str, stem_id: str) -> Stem | None:
        return self.stems.get((community, stem_id))

    def pending_variants(self, community: str, stem_id: str) -> list[Variant]:
        return [
            v
            for (c, s, _), v in sorted(self.variant_items.items())
            if (c, s) == (community, stem_id) and v.pending
        ]

    def variants(self, community: str, post_id: str) -> dict[str, Variant]:
        return {
            lang: v
            for (c, s, lang), v in sorted(self.variant_items.items())
            if (c, s) == (community, post_id)
        }

    def community_settings(self, community: str) -> CommunitySettings:
        return self.settings.get(community, CommunitySettings())

    def put_machine_variant(self, variant: Variant) -> bool:
        found = self.variant_context(variant.community, None, [variant.post_id], variant.lang)
        post = found.posts.get(variant.post_id)
        current = found.variants.get(variant.post_id)
        if post is None or (current is not None and current.origin is VariantOrigin.HUMAN):
            return False
        stored = variant.model_copy(update={"version": current.version + 1 if current else 1})
        summaries = {**post.variants, stored.lang: stored.summary()}
        revision = found.revisions.get(post.id, 0)
        self.commit(
            Change(
                put_variants=[(stored, current.version if current else None)],
                post_variants=[VariantsOfPost(post.community, post.id, summaries, post.version, revision)],
            )
        )
        return True

    def waiting_for(self, community: str, content_hash: str) -> list[Waiting]:
        found = [w for (c, h, _), w in self.held_back.items() if (c, h) == (community, content_hash)]
        return sorted(found, key=lambda w: (w.since, w.post.id))

    def communities(self) -> Iterable[Community]:
        return [_community(cid, self.profiles[cid], self.settings.get(cid)) for cid in sorted(self.profiles)]

    def community_posts(self, community: str) -> Iterable[Post]:
        posts = [p for (c, _), p in self.posts_by_id.items() if c == community]
        return sorted(posts, key=_feed_key, reverse=True)

    def outcomes(self) -> Iterable[Outcome]:
        return sorted(
            self.outcomes_by_key.values(), key=lambda o: (o.processed_at.isoformat(), o.key), reverse=True
        )

    # -- writes ----------------------------------------------------------------------------------

    def fits(self, change: Change) -> bool:
        ops = list(self._operations(change))
        return len(ops) <= self.max_items and sum(op.size for op in ops) <= MAX_TRANSACTION_BYTES

    def commit(self, change: Change) -> None:
        ops = list(self._operations(change))
        if not ops:
            return
        self.commits.append(change)
        if self.before_commit is not None:
            self.before_commit(change)
        items = Counter(op.item for op in ops)
        twice = [item for item, n in items.items() if n > 1]
        if twice:
            raise RequestRefused(f"a transaction cannot include two operations on one item: {twice}")
        if len(ops) > self.max_items:
            raise RequestRefused(f"{len(ops)} items in one transaction; at most {self.max_items}")
        reasons = ["None" if op.check() else "ConditionalCheckFailed" for op in ops]
        if any(r != "None" for r in reasons):
            raise ConcurrentUpdate(f"a guard failed: {sorted(set(reasons))}", reasons=reasons)
        for op in ops:
            op.apply()

    # -- the items of a change, as the DynamoDB adapter writes them -----------------------------------

    def _operations(self, change: Change) -> Iterator[_Op]:
        delta: Counter[str] = Counter()
        # A text whose claim passes to a waiting duplicate is not released as well.
        handed_over = {(p.waiting.post.community, p.waiting.post.content_hash) for p in change.promote}
        if change.outcome is not None:
            yield self._put_outcome(change.outcome, change.expect_sequencer)
        for outcome, expected in change.other_outcomes:
            yield self._put_outcome(outcome, expected)
        for post in change.create_posts:
            yield self._put_post(post, expected_version=None)
            yield self._claim(post)
            yield self._put_published(post, change.since)
            delta[post.community] += 1
        for post, expected_version in change.update_posts:
            yield self._put_post(post, expected_version, change.post_revisions.get((post.community, post.id)))
            yield self._claim(post)
            yield self._remember_published(post, change.since)
        for ref in change.delete_posts:
            yield self._delete_post(ref, change.post_revisions.get((ref.community, ref.id)))
            if (ref.community, ref.content_hash) not in handed_over:
                seen = change.claims_seen.get((ref.community, ref.content_hash), 0)
                yield self._release(ref.community, ref.content_hash, ref.id, seen)
            yield self._forget_published(ref)
            delta[ref.community] -= 1
        for community, content_hash, owner in change.release_hashes:
            if (community, content_hash) not in handed_over:
                seen = change.claims_seen.get((community, content_hash), 0)
                yield self._release(community, content_hash, owner, seen)
        for promotion in change.promote:
            post = promotion.waiting.post
            yield self._put_post(post, expected_version=None)
            yield self._pass_claim(promotion)
            yield self._put_published(post, promotion.waiting.sequencer)
            yield self._delete_waiting(promotion.waiting.ref, must_exist=True)
            yield self._delete_waiting_ref(promotion.waiting.ref, must_exist=False)
            delta[post.community] += 1
        for waiting in change.wait:
            yield self._put_waiting(waiting)
            yield self._put_waiting_ref(waiting.ref)
            yield self._count_waiting(waiting.ref, +1)
        for waiting in change.refresh_wait:
            yield self._put_waiting(waiting)
        for ref in change.unwait:
            yield self._delete_waiting_ref(ref, must_exist=True)
            yield self._delete_waiting(ref, must_exist=False)
            yield self._count_waiting(ref, -1)
        if change.progress is not None:
            yield self._put_progress(*change.progress)
        if change.clear_progress is not None:
            yield self._put_progress(change.clear_progress, None)
        for variant, replaces in change.put_variants:
            yield self._put_variant(variant, replaces)
        for community, container, lang in change.delete_variants:
            yield self._delete_variant(community, container, lang)
        for update in change.post_variants:
            yield self._set_post_variants(update)
        for stem in change.stems:
            yield self._change_stem(stem)
        if change.settings is not None:
            yield self._put_settings(*change.settings)
        communities = set(delta) | ({change.profile[0]} if change.profile else set())
        for community in sorted(communities):
            profile = change.profile[1] if change.profile and change.profile[0] == community else None
            added = delta.get(community, 0)
            if added or profile is not None:
                yield self._update_community(community, added, profile)

    def _put_outcome(self, outcome: Outcome, expected: str | None) -> _Op:
        def guard() -> bool:
            current = self.outcomes_by_key.get(outcome.key)
            return (
                current is None
                if expected is None
                else (current is not None and current.sequencer == expected)
            )

        stored = outcome.model_copy(deep=True)
        return _Op(
            ("UPLOAD", outcome.key),
            guard,
            lambda: self.outcomes_by_key.__setitem__(outcome.key, stored),
            size=len(stored.model_dump_json()),
        )

    def _put_post(self, post: Post, expected_version: int | None, revision: int | None = None) -> _Op:
        """A new post (None: only if there is none) or a new version of one (only over that version,
        and with ``revision``, only while its variants revision is still that one)."""
        where = (post.community, post.id)

        def guard() -> bool:
            stored = self.posts_by_id.get(where)
            if expected_version is None:
                return stored is None
            same_variants = revision is None or self.revisions.get(where, 0) == revision
            return stored is not None and stored.version == expected_version and same_variants

        def put() -> None:
            self.posts_by_id[where] = post

        return _Op(("POST", *where), guard, put, size=len(post.model_dump_json()))

    def _delete_post(self, ref: Post | PostRef, revision: int | None = None) -> _Op:
        where = (ref.community, ref.id)

        def guard() -> bool:
            return where in self.posts_by_id and (
                revision is None or self.revisions.get(where, 0) == revision
            )

        def delete() -> None:
            del self.posts_by_id[where]
            self.revisions.pop(where, None)

        return _Op(("POST", *where), guard, delete)

    def _put_variant(self, variant: Variant, expected: int | None) -> _Op:
        where = (variant.community, variant.post_id, variant.lang)

        def guard() -> bool:
            stored = self.variant_items.get(where)
            return stored is None if expected is None else (stored is not None and stored.version == expected)

        return _Op(
            ("VAR", *where),
            guard,
            lambda: self.variant_items.__setitem__(where, variant),
            size=len(variant.model_dump_json()),
        )

    def _delete_variant(self, community: str, container: str, lang: str) -> _Op:
        where = (community, container, lang)
        return _Op(("VAR", *where), _always, lambda: self.variant_items.pop(where, None))

    def _set_post_variants(self, update: VariantsOfPost) -> _Op:
        where = (update.community, update.post_id)

        def guard() -> bool:
            stored = self.posts_by_id.get(where)
            return (
                stored is not None
                and stored.version == update.expected_version
                and self.revisions.get(where, 0) == update.expected_revision
            )

        def apply() -> None:
            self.posts_by_id[where] = self.posts_by_id[where].model_copy(
                update={"variants": dict(update.variants)}
            )
            self.revisions[where] = update.expected_revision + 1

        return _Op(("POST", *where), guard, apply)

    def _change_stem(self, change: StemChange) -> _Op:
        where = (change.community, change.stem_id)

        def guard() -> bool:
            stored = self.stems.get(where)
            if change.release:
                return stored is None or stored.post_id == change.owner
            if change.owner is not None:
                return stored is None or (
                    stored.post_id in (None, change.owner) and stored.pending == change.expect_pending
                )
            return stored is None or stored.post_id is None

        def apply() -> None:
            stored = self.stems.get(where) or Stem()
            if change.release:
                self.stems.pop(where, None)
            elif change.owner is not None:
                self.stems[where] = Stem(change.owner, change.owner_key, 0)
            else:
                self.stems[where] = Stem(None, None, stored.pending + change.pending_delta)

        return _Op(("STEM", *where), guard, apply)

    def _put_settings(self, community: str, settings: CommunitySettings | None) -> _Op:
        def apply() -> None:
            if settings is None:
                self.settings.pop(community, None)
            else:
                self.settings[community] = settings

        return _Op(("PROFILE", community), _always, apply)

    def _claim(self, post: Post) -> _Op:
        text = (post.community, post.content_hash)

        def guard() -> bool:
            claim = self.text_claims.get(text)
            return claim is None or claim.owner == post.id

        def take() -> None:
            claim = self.text_claims.get(text)
            if claim is None:
                self.text_claims[text] = _Claim(owner=post.id, content_hash=post.content_hash)
            else:
                claim.owner = post.id

        return _Op(("HASH", *text), guard, take)

    def _release(self, community: str, content_hash: str, owner: str, seen: int) -> _Op:
        text = (community, content_hash)

        def guard() -> bool:
            claim = self.text_claims.get(text)
            return claim is None or (
                claim.owner == owner and (claim.waiting is None or claim.waiting <= seen)
            )

        return _Op(("HASH", *text), guard, lambda: self.text_claims.pop(text, None))

    def _pass_claim(self, promotion: Promotion) -> _Op:
        """The text's claim passes from its previous owner to the promoted duplicate, one fewer waiting."""
        post = promotion.waiting.post
        text = (post.community, post.content_hash)

        def guard() -> bool:
            claim = self.text_claims.get(text)
            return (
                claim is not None
                and claim.owner == promotion.previous_owner
                and claim.waiting == promotion.claim_waiting
            )

        def pass_on() -> None:
            claim = self.text_claims[text]
            claim.owner, claim.waiting = post.id, promotion.claim_waiting - 1

        return _Op(("HASH", *text), guard, pass_on)

    def _count_waiting(self, ref: PostRef, step: int) -> _Op:
        """One more duplicate waiting for the text (while another post holds it), or one fewer."""
        text = (ref.community, ref.content_hash)

        def guard() -> bool:
            claim = self.text_claims.get(text)
            return claim is not None and (step < 0 or claim.owner != ref.id)

        def count() -> None:
            claim = self.text_claims[text]
            claim.waiting = (claim.waiting or 0) + step

        return _Op(("HASH", *text), guard, count)

    def _put_published(self, post: Post, since: str | None) -> _Op:
        ref = PostRef(post.community, post.id, post.content_hash, post.key)

        def put() -> None:
            self.published.setdefault(post.key, {})[post.id] = (ref, since)

        return _Op(("PUB", post.key, post.id), _always, put)

    def _remember_published(self, post: Post, since: str | None) -> _Op:
        """The key's record of an edited post: its ``since`` kept if it has one."""
        ref = PostRef(post.community, post.id, post.content_hash, post.key)

        def remember() -> None:
            mine = self.published.setdefault(post.key, {})
            before = mine.get(post.id)
            kept = before[1] if before is not None and before[1] is not None else since
            mine[post.id] = (ref, kept)

        return _Op(("PUB", post.key, post.id), _always, remember)

    def _forget_published(self, ref: Post | PostRef) -> _Op:
        def forget() -> None:
            mine = self.published.get(ref.key, {})
            mine.pop(ref.id, None)
            if not mine:
                self.published.pop(ref.key, None)

        return _Op(("PUB", ref.key, ref.id), _always, forget)

    def _put_waiting(self, waiting: Waiting) -> _Op:
        post = waiting.post
        dup = (post.community, post.content_hash, post.id)

        def put() -> None:
            self.held_back[dup] = waiting

        return _Op(("DUP", *dup), _always, put, size=len(post.model_dump_json()))

    def _delete_waiting(self, ref: PostRef, *, must_exist: bool) -> _Op:
        dup = (ref.community, ref.content_hash, ref.id)

        def delete() -> None:
            self.held_back.pop(dup, None)

        return _Op(("DUP", *dup), (lambda: dup in self.held_back) if must_exist else _always, delete)

    def _put_waiting_ref(self, ref: PostRef) -> _Op:
        def put() -> None:
            self.waiting_refs.setdefault(ref.key, {})[ref.id] = ref

        return _Op(("WAIT", ref.key, ref.id), lambda: ref.id not in self.waiting_refs.get(ref.key, {}), put)

    def _delete_waiting_ref(self, ref: PostRef, *, must_exist: bool) -> _Op:
        def exists() -> bool:
            return ref.id in self.waiting_refs.get(ref.key, {})

        def delete() -> None:
            mine = self.waiting_refs.get(ref.key, {})
            mine.pop(ref.id, None)
            if not mine:
                self.waiting_refs.pop(ref.key, None)

        return _Op(("WAIT", ref.key, ref.id), exists if must_exist else _always, delete)

    def _put_progress(self, key: str, progress: ImportProgress | None) -> _Op:
        """How far an import got (None: its record removed)."""

        def put() -> None:
            if progress is None:
                self.progress.pop(key, None)
            else:
                self.progress[key] = progress

        return _Op(("IMPORT", key), _always, put)

    def _update_community(self, community: str, delta: int, profile: CommunityProfile | None) -> _Op:
        """The community's post counter moved by ``delta``, its profile set if given; the item is
        created on the community's first post, named after its id."""

        def update() -> None:
            stored = self.profiles.setdefault(community, _Profile())
            if profile is None:
                stored.name = stored.name or community
                stored.members_baseline = stored.members_baseline or 0
            else:
                stored.name = profile.name
                stored.verified = profile.verified
                stored.members_baseline = profile.members or 0
                stored.updated_at = datetime.now(UTC)
                stored.description = profile.description
                stored.created_year = profile.created_year
            stored.post_count = (stored.post_count or 0) + delta

        return _Op(("PROFILE", community), _always, update)

    # -- for tests ---------------------------------------------------------------------------------

    def items(self) -> int:
        """How many items the table would hold (every kind)."""
        return (
            len(self.outcomes_by_key)
            + len(self.posts_by_id)
            + len(self.text_claims)
            + len(self.held_back)
            + sum(len(v) for v in self.published.values())
            + sum(len(v) for v in self.waiting_refs.values())
            + len(self.progress)
            + len(self.profiles)
            + len(self.variant_items)
            + len(self.stems)
        )


class MemoryChecks:
    """Ingest's delayed messages, kept in order (implements :class:`herald.ingest.ports.Checks`)."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[VariantCheck, float]] = []

    def schedule(self, check: VariantCheck, delay_s: float) -> None:
        self.scheduled.append((check, delay_s))


def _feed_key(post: Post) -> str:
    at = (post.publish_at or post.created_at).astimezone(UTC).isoformat(timespec="milliseconds")
    return f"{1 if post.pinned else 0}#{at}#{post.id}"


def _community(community: str, profile: _Profile, settings: CommunitySettings | None) -> Community:
    return Community(
        id=community,
        name=profile.name or community,
        description=profile.description,
        verified=profile.verified,
        members=profile.members_baseline or 0,
        members_baseline=profile.members_baseline or 0,
        posts=profile.post_count or 0,
        created_year=profile.created_year,
        updated_at=profile.updated_at,
        settings=settings,
    )
