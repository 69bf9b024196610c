"""The ingest rules: one S3 object event in, one recorded outcome out.

- A key's post id is derived from the key, so re-uploading is an edit (a new version);
- the same text under another key of the community is a duplicate and is not published twice;
- removing the object deletes its posts;
- an event older than the one already applied to the key (S3's ``sequencer``) changes nothing,
  so duplicated and out-of-order deliveries neither create, roll back nor double-count;
- a reprocess (``herald reprocess``) carries the key's recorded sequencer and the object's current
  version: it runs again only while both still match the recorded outcome, so it refreshes what
  was derived from the same content and never wins over a newer event;
- an invalid upload is rejected with reasons, its original kept beside them.

Writes go through :meth:`ContentStore.commit`, whose guards make each step atomic; a guard that
fails means someone else got there first, and the decision is taken again on fresh reads.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from herald.domain import limits as bounds
from herald.domain.errors import ConcurrentUpdate, InvalidUpload, TransientError
from herald.domain.events import ObjectEvent
from herald.domain.layout import UploadKey, UploadKind, is_internal, parse_key
from herald.domain.models import Enrichment, Outcome, OutcomeStatus, Post, PostInput, PostSource
from herald.domain.parsing import IngestLimits, parse_export, parse_post
from herald.domain.ports import Change, ContentStore, ObjectStore

Enricher = Callable[..., Enrichment]
MAX_ATTEMPTS = 6
#: Posts written per transaction when importing or deleting an export: 2 items each, plus the
#: community's counter, within DynamoDB's 100 items per transaction.
CHUNK = 49


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What handling one event did. ``outcome`` is None when the event was superseded or ignored."""

    outcome: Outcome | None
    note: str = ""
    #: The exception, when the outcome is a rejection for a fault in Herald (or a library) rather
    #: than in the upload: the handler logs it with its traceback and counts it.
    fault: BaseException | None = None


class IngestService:
    def __init__(
        self,
        objects: ObjectStore,
        content: ContentStore,
        enricher: Enricher,
        limits: IngestLimits | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._objects = objects
        self._content = content
        self._enrich = enricher
        self._limits = limits or IngestLimits()
        self._now = clock

    # -- entry point ---------------------------------------------------------------------------

    def handle(self, event: ObjectEvent) -> IngestResult:
        if is_internal(event.key):
            return IngestResult(None, "Herald's own object: ignored")
        for _ in range(MAX_ATTEMPTS):
            previous = self._content.outcome(event.key)
            if (
                previous is not None
                and previous.sequencer
                and previous.sequencer >= event.sequencer
                and not _is_reprocess_of(event, previous)
            ):
                return IngestResult(None, f"superseded: the key already reflects event {previous.sequencer}")
            try:
                return self._handle_once(event, previous)
            except ConcurrentUpdate:
                continue
        raise TransientError(f"{event.key}: too many concurrent changes, will retry")

    def _handle_once(self, event: ObjectEvent, previous: Outcome | None) -> IngestResult:
        try:
            upload = parse_key(event.key)
        except InvalidUpload as exc:
            if event.kind == "removed":
                return self._record(event, previous, OutcomeStatus.DELETED, detail="not a post or export key")
            return self._reject(event, previous, exc, community=None)
        if event.kind == "removed":
            # No fault handling here: the event is the only record of a removal, so a fault
            # keeps it (retried, then in the DLQ) for a redrive once fixed.
            return self._delete(event, previous, upload)
        is_export = upload.kind is UploadKind.EXPORT
        limit = self._limits.max_export_bytes if is_export else self._limits.max_post_bytes
        try:
            if event.size is not None:
                # The real size, from the event: a 50 MB object is never read to find it too big.
                bounds.check_size(event.size, limit, "export" if is_export else "post")
            data = self._objects.read(event.bucket, event.key, event.version_id, limit)
            if data is None:
                return IngestResult(None, "the object no longer exists; a later event will say what happened")
            if is_export:
                return self._import_export(event, previous, upload, data)
            return self._publish_post(event, previous, upload, data)
        except InvalidUpload as exc:
            return self._reject(event, previous, exc, community=upload.community)
        except (TransientError, ConcurrentUpdate):
            raise
        except Exception as exc:
            # A fault in Herald or a library on this object's content: retrying the same bytes
            # would fail the same way, five times, into the DLQ. Rejected instead, original kept
            # (``herald reprocess`` once fixed), and surfaced by the handler as an error.
            return self._reject(event, previous, _internal_error(exc), community=upload.community, fault=exc)

    # -- single posts --------------------------------------------------------------------------

    def _publish_post(
        self, event: ObjectEvent, previous: Outcome | None, upload: UploadKey, data: bytes
    ) -> IngestResult:
        post_input = parse_post(data, upload.fmt, self._limits)
        enrichment = self._enrich(
            post_input.text,
            title=post_input.title,
            tags=post_input.tags,
            lang=post_input.lang,
            fmt=upload.fmt,
        )
        post_id = upload.post_id
        posts, owners = self._content.lookup(upload.community, [post_id], [enrichment.content_hash])
        existing, owner = posts.get(post_id), owners.get(enrichment.content_hash)
        now = self._now()
        outcome = self._outcome(
            event, OutcomeStatus.PUBLISHED, community=upload.community, post_ids=[post_id]
        )
        change = Change(outcome=outcome, expect_sequencer=_sequencer(previous))
        if owner is not None and owner != post_id:
            outcome.status = OutcomeStatus.DUPLICATE
            outcome.duplicate_of = owner
            outcome.post_ids = [post_id] if existing else []
            outcome.detail = f"the same text is already published as post {owner}"
        elif existing is not None:
            outcome.status = OutcomeStatus.UPDATED
            post = _make_post(
                upload,
                post_input,
                enrichment,
                existing.version + 1,
                existing.created_at,
                now,
                correlation_id=event.correlation_id,
            )
            if _same_content(existing, post):
                outcome.detail = f"content unchanged; version {existing.version} kept"
            else:
                outcome.detail = f"version {post.version}"
                change.update_posts.append((post, existing.version))
                if existing.content_hash != post.content_hash:
                    change.release_hashes.append((upload.community, existing.content_hash, post_id))
        else:
            change.create_posts.append(
                _make_post(upload, post_input, enrichment, 1, now, now, correlation_id=event.correlation_id)
            )
        self._content.commit(change)
        return IngestResult(outcome)

    # -- exports -------------------------------------------------------------------------------

    def _import_export(
        self, event: ObjectEvent, previous: Outcome | None, upload: UploadKey, data: bytes
    ) -> IngestResult:
        export = parse_export(data, self._limits)
        now = self._now()
        wanted: dict[str, Post] = {}
        duplicates = 0
        total = len(export.posts)
        for item in export.posts:
            enrichment = self._enrich(item.text)
            post_id = upload.export_post_id(enrichment.content_hash)
            if post_id in wanted:
                duplicates += 1
                continue
            # Page order: the export lists the oldest post first and the newest last.
            at = now - timedelta(milliseconds=total - item.position)
            wanted[post_id] = _make_post(
                upload,
                PostInput(text=item.text, notify=False),
                enrichment,
                1,
                at,
                at,
                position=item.position,
                correlation_id=event.correlation_id,
                loc=f"line {item.line}",
            )
        existing, owners = self._content.lookup(
            upload.community, list(wanted), [p.content_hash for p in wanted.values()]
        )
        to_create = []
        for post_id, post in wanted.items():
            owner = owners.get(post.content_hash)
            if post_id in existing:
                continue
            if owner is not None and owner != post_id:
                duplicates += 1
                continue
            to_create.append(post)
        created_ids = {p.id for p in to_create}
        kept = [pid for pid in wanted if pid in existing or pid in created_ids]
        stale_ids = [pid for pid in (previous.post_ids if previous else []) if pid not in wanted]
        stale = list(self._content.posts(upload.community, stale_ids).values()) if stale_ids else []
        for start in range(0, len(to_create), CHUNK):
            self._commit_tolerant(Change(create_posts=to_create[start : start + CHUNK]))
        for start in range(0, len(stale), CHUNK):
            self._commit_tolerant(Change(delete_posts=stale[start : start + CHUNK]))
        published = len(to_create)
        status = (
            OutcomeStatus.PUBLISHED
            if previous is None or previous.status in (OutcomeStatus.DELETED, OutcomeStatus.REJECTED)
            else OutcomeStatus.UPDATED
        )
        outcome = self._outcome(event, status, community=upload.community, post_ids=kept)
        outcome.counts = {
            "posts": total,
            "published": published,
            "unchanged": len(kept) - published,
            "duplicates": duplicates,
            "removed": len(stale),
        }
        outcome.detail = (
            f"{export.profile.name}: {published} new, {len(kept) - published} unchanged, "
            f"{duplicates} duplicate, {len(stale)} removed"
        )
        final = Change(
            outcome=outcome, expect_sequencer=_sequencer(previous), profile=(upload.community, export.profile)
        )
        try:
            self._content.commit(final)
        except ConcurrentUpdate:
            self._undo_if_deleted_meanwhile(event, upload, to_create)
            raise
        return IngestResult(outcome)

    def _undo_if_deleted_meanwhile(self, event: ObjectEvent, upload: UploadKey, created: list[Post]) -> None:
        """A newer event won the race; if it deleted the export, the posts we just made go too."""
        newer = self._content.outcome(event.key)
        if newer is not None and newer.status is OutcomeStatus.DELETED and created:
            current = self._content.posts(upload.community, [p.id for p in created])
            doomed = list(current.values())
            for start in range(0, len(doomed), CHUNK):
                self._commit_tolerant(Change(delete_posts=doomed[start : start + CHUNK]))

    def _commit_tolerant(self, change: Change) -> None:
        """Commit posts whose guards may already be settled by a concurrent delivery of the same event."""
        try:
            self._content.commit(change)
        except ConcurrentUpdate:
            for post in change.create_posts:
                self._swallow(Change(create_posts=[post]))
            for post in change.delete_posts:
                self._swallow(Change(delete_posts=[post]))

    def _swallow(self, change: Change) -> None:
        # Already created (or already deleted) by a concurrent delivery: nothing to do.
        with suppress(ConcurrentUpdate):
            self._content.commit(change)

    # -- deletes and rejections ------------------------------------------------------------------

    def _delete(self, event: ObjectEvent, previous: Outcome | None, upload: UploadKey) -> IngestResult:
        ids = list(previous.post_ids) if previous else []
        if upload.kind is UploadKind.POST and upload.post_id not in ids:
            ids.append(upload.post_id)
        posts = list(self._content.posts(upload.community, ids).values())
        outcome = self._outcome(
            event, OutcomeStatus.DELETED, community=upload.community, post_ids=[p.id for p in posts]
        )
        outcome.detail = f"{len(posts)} post(s) removed" if posts else "nothing was published from this key"
        # All but the last chunk first; the last goes with the outcome, atomically.
        head, last = posts[:-CHUNK], posts[-CHUNK:]
        for start in range(0, len(head), CHUNK):
            self._commit_tolerant(Change(delete_posts=head[start : start + CHUNK]))
        self._content.commit(
            Change(outcome=outcome, expect_sequencer=_sequencer(previous), delete_posts=last)
        )
        return IngestResult(outcome)

    def _reject(
        self,
        event: ObjectEvent,
        previous: Outcome | None,
        exc: InvalidUpload,
        community: str | None,
        fault: BaseException | None = None,
    ) -> IngestResult:
        problems = bounds.recordable(exc.problems)
        errors = [p.as_dict() for p in problems]
        outcome = self._outcome(event, OutcomeStatus.REJECTED, community=community)
        outcome.errors = errors
        outcome.detail = "; ".join(str(p) for p in problems)
        report: dict[str, Any] = {
            "key": event.key,
            "version_id": event.version_id,
            "status": "rejected",
            "errors": errors,
            "rejected_at": outcome.processed_at.isoformat(),
        }
        outcome.rejected_copy = self._objects.keep_rejected(event.bucket, event.key, event.version_id, report)
        self._content.commit(Change(outcome=outcome, expect_sequencer=_sequencer(previous)))
        return IngestResult(outcome, fault=fault)

    def _record(
        self, event: ObjectEvent, previous: Outcome | None, status: OutcomeStatus, detail: str
    ) -> IngestResult:
        outcome = self._outcome(event, status)
        outcome.detail = detail
        self._content.commit(Change(outcome=outcome, expect_sequencer=_sequencer(previous)))
        return IngestResult(outcome)

    def _outcome(
        self,
        event: ObjectEvent,
        status: OutcomeStatus,
        community: str | None = None,
        post_ids: list[str] | None = None,
    ) -> Outcome:
        return Outcome(
            key=event.key,
            status=status,
            community=community,
            post_ids=post_ids or [],
            sequencer=event.sequencer,
            version_id=event.version_id,
            event_time=event.event_time,
            processed_at=self._now(),
            correlation_id=event.correlation_id,
        )


def _is_reprocess_of(event: ObjectEvent, previous: Outcome) -> bool:
    """A reprocess of exactly the recorded event: same sequencer, same version of the object."""
    return (
        event.reprocess and event.sequencer == previous.sequencer and event.version_id == previous.version_id
    )


def _internal_error(exc: BaseException) -> InvalidUpload:
    return InvalidUpload.one(
        "internal",
        f"internal error ({type(exc).__name__}): Herald could not process this upload; the error is "
        "logged for the operators, and the upload can be reprocessed once it is fixed",
    )


def _sequencer(previous: Outcome | None) -> str | None:
    return previous.sequencer if previous is not None else None


def _make_post(
    upload: UploadKey,
    post_input: PostInput,
    enrichment: Enrichment,
    version: int,
    created_at: datetime,
    updated_at: datetime,
    position: int | None = None,
    correlation_id: str | None = None,
    loc: str = "text",
) -> Post:
    is_export = upload.kind is UploadKind.EXPORT
    post = Post(
        id=upload.export_post_id(enrichment.content_hash) if is_export else upload.post_id,
        community=upload.community,
        key=upload.key,
        source=PostSource.EXPORT if is_export else PostSource.POST,
        format=upload.fmt,
        position=position,
        tags=list(post_input.tags),
        pinned=post_input.pinned,
        notify=post_input.notify and not is_export,
        publish_at=post_input.publish_at,
        version=version,
        created_at=created_at,
        updated_at=updated_at,
        correlation_id=correlation_id,
        **enrichment.model_dump(),
    )
    bounds.check_stored_post(post.model_dump(mode="json", exclude_none=True), loc)
    return post


_VOLATILE = {"version", "created_at", "updated_at", "correlation_id"}


def _same_content(old: Post, new: Post) -> bool:
    return old.model_dump(exclude=_VOLATILE) == new.model_dump(exclude=_VOLATILE)
