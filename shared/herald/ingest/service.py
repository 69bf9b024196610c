"""The ingest rules: one S3 object event in, one recorded outcome out.

- A key's post id is derived from the key, so re-uploading is an edit (a new version);
- the same text under another key of the community is a duplicate and is not published twice;
- removing the object deletes its posts;
- an event older than the one already applied to the key (S3's ``sequencer``) changes nothing,
  so duplicated and out-of-order deliveries neither create, roll back nor double-count;
- a reprocess (``herald reprocess``) carries the key's recorded sequencer and the object's current
  version: it runs again only while both still match the recorded outcome, so it refreshes what
  was derived from the same content and never wins over a newer event;
- an invalid upload is rejected with reasons, its original kept beside them;
- a language variant (``posts/<c>/<name>.<lang>.<ext>``) is stored beside its original's post,
  its summary in the post's ``variants`` in the same write; one that comes first waits for its
  original (a bounded time, through a delayed check message) and is adopted when it comes
  (see docs/languages.md).

Writes go through :meth:`ContentStore.commit`, whose guards make each step atomic; a guard that
fails means someone else got there first, and the decision is taken again on fresh reads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from herald.content import limits as bounds
from herald.content.languages import is_known_language, primary
from herald.content.models import (
    CommunitySettings,
    Enrichment,
    Outcome,
    OutcomeStatus,
    Post,
    PostInput,
    PostSource,
    Variant,
    VariantOrigin,
    VariantSummary,
)
from herald.core.errors import ConcurrentUpdate, InvalidUpload, Problem, TransientError
from herald.enrichment.pipeline import fingerprint as text_fingerprint
from herald.ingest.events import ObjectEvent, VariantCheck
from herald.ingest.layout import UploadKey, UploadKind, is_internal, parse_key
from herald.ingest.parsing import IngestLimits, decode_text, parse_export, parse_post
from herald.ingest.ports import (
    Change,
    Checks,
    ContentStore,
    ImportProgress,
    KeyRecord,
    ObjectStore,
    PostRef,
    Promotion,
    StemChange,
    VariantContext,
    VariantsOfPost,
    Waiting,
)

Enricher = Callable[..., Enrichment]
#: Seconds left in the invocation (Lambda's context: ``get_remaining_time_in_millis() / 1000``).
Remaining = Callable[[], float]
MAX_ATTEMPTS = 6
#: Export posts enriched between two looks at the clock (then written, as many a transaction as fit).
GROUP = 32
#: Runs of one event of an export that may stop before the end; the next one rejects it instead.
MAX_UNFINISHED_RUNS = 3
#: Seconds kept in hand when a long import or delete stops: its last writes and the progress record.
RESERVE_S = 5.0
#: How long a variant waits for its original by default (VARIANT_WAIT_S), and the longest
#: translation window a post may ask for.
VARIANT_WAIT_S = 900
MAX_TRANSLATION_WINDOW_S = 24 * 3600
_WINDOW_UNITS = {"s": 1, "m": 60, "h": 3600}


class Unfinished(TransientError):
    """A long export import or delete stopped before the function's time ran out.

    Transient on purpose: SQS delivers the message again and the next run goes on from what is
    stored (nothing already stored is enriched or written again).
    """


@dataclass
class Budget:
    """The invocation's time, and the longest step seen so far, to stop before the timeout."""

    remaining: Remaining = field(default=lambda: math.inf)
    slowest: float = 0.0
    _mark: float = math.inf

    def enough(self) -> bool:
        """Room for one more step like the slowest so far (twice over), and the reserve."""
        left = self.remaining()
        if self._mark != math.inf and left != math.inf:
            self.slowest = max(self.slowest, self._mark - left)
        self._mark = left
        return left > RESERVE_S + 2 * self.slowest


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
        fingerprint: Callable[[str], str] | None = None,
        checks: Checks | None = None,
        variant_wait_s: float = VARIANT_WAIT_S,
    ) -> None:
        """``fingerprint`` gives an export post's text hash (the ``content_hash`` the enricher would
        derive) without enriching it, so a resumed import skips what is stored for free."""
        self._objects = objects
        self._content = content
        self._enrich = enricher
        self._limits = limits or IngestLimits()
        self._now = clock
        if fingerprint is None:
            fingerprint = text_fingerprint
        self._fingerprint = fingerprint
        self._checks = checks
        self._variant_wait_s = variant_wait_s

    # -- entry point ---------------------------------------------------------------------------

    def handle(self, event: ObjectEvent, remaining: Remaining | None = None) -> IngestResult:
        """Handle one event; ``remaining`` (seconds left) lets a long export stop before the timeout."""
        budget = Budget(remaining) if remaining is not None else Budget()
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
                if previous.status is OutcomeStatus.WAITING and previous.sequencer == event.sequencer:
                    # The same event again: its check may not have been queued (a fault after the
                    # write); one more is harmless, a check does nothing for a key that moved on.
                    self._schedule_check(event, previous.processed_at + self._wait())
                return IngestResult(None, f"superseded: the key already reflects event {previous.sequencer}")
            try:
                return self._handle_once(event, previous, budget)
            except ConcurrentUpdate:
                continue
        raise TransientError(f"{event.key}: too many concurrent changes, will retry")

    def _handle_once(self, event: ObjectEvent, previous: Outcome | None, budget: Budget) -> IngestResult:
        try:
            upload = parse_key(event.key)
        except InvalidUpload as exc:
            if event.kind == "removed":
                return self._record(event, previous, OutcomeStatus.DELETED, detail="not a post or export key")
            return self._reject(event, previous, exc, community=None)
        if event.kind == "removed":
            # No fault handling here: the event is the only record of a removal, so a fault
            # keeps it (retried, then in the DLQ) for a redrive once fixed.
            if upload.kind is UploadKind.VARIANT:
                return self._delete_variant(event, previous, upload)
            if upload.kind is UploadKind.SETTINGS:
                return self._delete_settings(event, previous, upload)
            return self._delete(event, previous, upload, budget)
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
                return self._import_export(event, previous, upload, data, budget)
            if upload.kind is UploadKind.VARIANT:
                return self._publish_variant(event, previous, upload, data)
            if upload.kind is UploadKind.SETTINGS:
                return self._store_settings(event, previous, upload, data)
            return self._publish_post(event, previous, upload, data)
        except InvalidUpload as exc:
            return self._reject(event, previous, exc, community=upload.community, variant=upload.lang)
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
        window_s = _translations_wanted(post_input)
        enrichment = self._enrich(
            post_input.text,
            title=post_input.title,
            tags=post_input.tags,
            lang=post_input.lang,
            fmt=upload.fmt,
        )
        post_id = upload.post_id
        found = self._content.lookup(upload.community, [post_id], [enrichment.content_hash], key=event.key)
        existing, owner = found.posts.get(post_id), found.owner(enrichment.content_hash)
        waiting = found.waiting.get(post_id)
        now = self._now()
        outcome = self._outcome(
            event, OutcomeStatus.PUBLISHED, community=upload.community, post_ids=[post_id]
        )
        change = Change(outcome=outcome, expect_sequencer=_sequencer(previous), since=event.sequencer)
        if owner is not None and owner != post_id:
            # A duplicate: held back whole, so it can take the original's place when that goes;
            # the text this key published before (if any) is no longer what the key holds.
            held = _make_post(
                upload, post_input, enrichment, 1, now, now, correlation_id=event.correlation_id
            )
            held_back = Waiting(post=held, sequencer=event.sequencer, since=now.isoformat())
            if waiting is not None and waiting.content_hash == held.content_hash:
                change.refresh_wait.append(held_back)
            else:
                if waiting is not None:
                    change.unwait.append(waiting)
                change.wait.append(held_back)
            outcome.status = OutcomeStatus.DUPLICATE
            outcome.duplicate_of = owner
            outcome.post_ids = []
            outcome.detail = (
                f"the same text is already published as post {owner}; this upload takes its place "
                "if that post is removed"
            )
            if existing is not None:
                change.delete_posts.append(existing)
                outcome.detail += f"; the text this key published before (post {post_id}) was removed"
                self._hand_over(change, event.key, [existing])
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
                variants=existing.variants,
                translation_window_s=window_s,
            )
            # Its variants stay as they are: the write fails if one changed since the read.
            change.post_revisions[(upload.community, post_id)] = found.revisions.get(post_id, 0)
            if _same_content(existing, post):
                outcome.detail = f"content unchanged; version {existing.version} kept"
            else:
                outcome.detail = f"version {post.version}"
                change.update_posts.append((post, existing.version))
                if existing.content_hash != post.content_hash:
                    change.release_hashes.append((upload.community, existing.content_hash, post_id))
                    self._hand_over(change, event.key, [existing])
        else:
            if waiting is not None:
                change.unwait.append(waiting)
            post = _make_post(
                upload,
                post_input,
                enrichment,
                1,
                now,
                now,
                correlation_id=event.correlation_id,
                translation_window_s=window_s,
            )
            change.create_posts.append(self._adopt_variants(change, upload, post, now))
        self._content.commit(change)
        return IngestResult(outcome)

    # -- language variants -----------------------------------------------------------------------

    def _adopt_variants(self, change: Change, upload: UploadKey, post: Post, now: datetime) -> Post:
        """A new original claims its stem (unless another post holds it) and takes in the variants
        waiting for it, each key's outcome rewritten, all in ``change``. Returns the post to create."""
        stem = self._content.stem(upload.community, upload.stem_id)
        if stem is not None and stem.post_id not in (None, post.id):
            return post  # another original of the same name holds the stem and its variants
        pending = self._content.pending_variants(upload.community, upload.stem_id) if stem else []
        change.stems.append(
            StemChange(
                upload.community,
                upload.stem_id,
                upload.stem,
                owner=post.id,
                owner_key=post.key,
                expect_pending=stem.pending if stem else 0,
            )
        )
        summaries: dict[str, VariantSummary] = {}
        for variant in pending:
            adopted = variant.model_copy(update={"post_id": post.id, "pending": False})
            change.put_variants.append((adopted, None))
            change.delete_variants.append((upload.community, upload.stem_id, variant.lang))
            summaries[variant.lang] = adopted.summary()
            found = self._content.outcome(variant.key)
            if found is not None and found.status is OutcomeStatus.WAITING:
                adopted_outcome = found.model_copy(
                    update={
                        "status": OutcomeStatus.PUBLISHED,
                        "post_ids": [post.id],
                        "detail": (
                            f"its original {post.key!r} arrived: the {variant.lang} variant of post {post.id}"
                        ),
                        "processed_at": now,
                    }
                )
                change.other_outcomes.append((adopted_outcome, found.sequencer))
        return post.model_copy(update={"variants": summaries}) if summaries else post

    def _publish_variant(
        self, event: ObjectEvent, previous: Outcome | None, upload: UploadKey, data: bytes
    ) -> IngestResult:
        lang = _lang(upload)
        post_input = parse_post(data, upload.fmt, self._limits)
        # No declared language: the text's own is detected, to warn when it is not the key's.
        enrichment = self._enrich(
            post_input.text, title=post_input.title, tags=post_input.tags, lang=None, fmt=upload.fmt
        )
        context = self._content.variant_context(
            upload.community, upload.stem_id, list(upload.original_ids().values()), lang
        )
        original = _original(upload, context)
        now = self._now()
        outcome = self._outcome(event, OutcomeStatus.PUBLISHED, community=upload.community)
        outcome.variant = lang
        outcome.warnings = _variant_warnings(upload, post_input, enrichment)
        container = original.id if original is not None else upload.stem_id
        current = context.variants.get(container)
        if current is not None and current.key != event.key and current.origin is VariantOrigin.HUMAN:
            where = f"post {original.id}" if original is not None else f"{upload.stem}.(txt|md|json)"
            state = "is already" if original is not None else "already waits as"
            raise InvalidUpload.one("key", f"variant {lang} of {where} {state} {current.key!r}")
        same_key = current is not None and current.key == event.key
        variant = Variant.from_enrichment(
            enrichment,
            post_id=container,
            community=upload.community,
            lang=lang,
            key=event.key,
            origin=VariantOrigin.HUMAN,
            format=upload.fmt,
            version=current.version + 1 if current is not None else 1,
            pending=original is None,
            created_at=current.created_at if same_key and current is not None else now,
            updated_at=now,
            correlation_id=event.correlation_id,
        )
        bounds.check_stored_post(variant.model_dump(mode="json", exclude_none=True), "text")
        change = Change(outcome=outcome, expect_sequencer=_sequencer(previous), since=event.sequencer)
        if same_key and current is not None and _same_variant(current, variant):
            outcome.status = OutcomeStatus.WAITING if original is None else OutcomeStatus.UPDATED
            outcome.post_ids = [original.id] if original is not None else []
            outcome.detail = f"content unchanged; version {current.version} kept"
            if original is None:
                outcome.detail += "; " + self._waiting_detail(upload, now)
            self._content.commit(change)
            if original is None:
                self._schedule_check(event, now + self._wait())
            return IngestResult(outcome)
        change.put_variants.append((variant, current.version if current is not None else None))
        if original is None:
            change.stems.append(
                StemChange(
                    upload.community,
                    upload.stem_id,
                    upload.stem,
                    pending_delta=0 if current is not None else 1,
                )
            )
            outcome.status = OutcomeStatus.WAITING
            outcome.detail = self._waiting_detail(upload, now)
            self._content.commit(change)
            self._schedule_check(event, now + self._wait())
            return IngestResult(outcome)
        change.post_variants.append(
            VariantsOfPost(
                original.community,
                original.id,
                {**original.variants, lang: variant.summary()},
                original.version,
                context.revisions.get(original.id, 0),
            )
        )
        outcome.post_ids = [original.id]
        outcome.status = OutcomeStatus.UPDATED if same_key else OutcomeStatus.PUBLISHED
        outcome.detail = (
            f"the {lang} variant of post {original.id} (from {original.key!r}), version {variant.version}"
        )
        if current is not None and current.origin is VariantOrigin.MACHINE:
            outcome.detail += "; it replaces the machine translation"
        self._content.commit(change)
        return IngestResult(outcome)

    def _delete_variant(
        self, event: ObjectEvent, previous: Outcome | None, upload: UploadKey
    ) -> IngestResult:
        lang = _lang(upload)
        context = self._content.variant_context(
            upload.community, upload.stem_id, list(upload.original_ids().values()), lang
        )
        original = _original(upload, context)
        outcome = self._outcome(event, OutcomeStatus.DELETED, community=upload.community)
        outcome.variant = lang
        change = Change(outcome=outcome, expect_sequencer=_sequencer(previous))
        stored = context.variants.get(original.id) if original is not None else None
        waiting = context.variants.get(upload.stem_id)
        if original is not None and stored is not None and stored.key == event.key:
            change.delete_variants.append((upload.community, original.id, lang))
            left = {k: v for k, v in original.variants.items() if k != lang}
            change.post_variants.append(
                VariantsOfPost(
                    original.community,
                    original.id,
                    left,
                    original.version,
                    context.revisions.get(original.id, 0),
                )
            )
            outcome.post_ids = [original.id]
            outcome.detail = f"the {lang} variant of post {original.id} removed"
        elif waiting is not None and waiting.key == event.key:
            change.delete_variants.append((upload.community, upload.stem_id, lang))
            change.stems.append(StemChange(upload.community, upload.stem_id, upload.stem, pending_delta=-1))
            outcome.detail = f"the {lang} variant no longer waits for its original"
        else:
            outcome.detail = "nothing was stored from this key"
        self._content.commit(change)
        return IngestResult(outcome)

    def check_variant(self, check: VariantCheck) -> IngestResult:
        """Ingest's delayed check of a waiting variant: still waiting when due, it is rejected (its
        original kept under rejected/ beside the reason) and its item removed."""
        for _ in range(MAX_ATTEMPTS):
            previous = self._content.outcome(check.key)
            if (
                previous is None
                or previous.status is not OutcomeStatus.WAITING
                or previous.sequencer != check.sequencer
            ):
                return IngestResult(None, "the variant no longer waits as this check's event left it")
            now = self._now()
            if now < check.due:
                event = check.event()
                self._schedule_check(event, check.due)
                return IngestResult(None, f"not due yet: checked again at {check.due.isoformat()}")
            upload = parse_key(check.key)
            lang = _lang(upload)
            context = self._content.variant_context(upload.community, upload.stem_id, [], lang)
            extra = Change()
            waiting = context.variants.get(upload.stem_id)
            if waiting is not None and waiting.key == check.key:
                extra.delete_variants.append((upload.community, upload.stem_id, lang))
                extra.stems.append(
                    StemChange(upload.community, upload.stem_id, upload.stem, pending_delta=-1)
                )
            wait_s = round((check.due - previous.processed_at).total_seconds())
            problem = InvalidUpload.one(
                "original",
                f"the {lang} variant's original {upload.stem}.(txt|md|json) did not arrive within "
                f"{wait_s} s (until {check.due.isoformat(timespec='seconds')}); upload the original, "
                "then the variant again",
            )
            try:
                return self._reject(
                    check.event(), previous, problem, upload.community, extra=extra, variant=lang
                )
            except ConcurrentUpdate:
                continue
        raise TransientError(f"{check.key}: too many concurrent changes, will retry")

    def _wait(self) -> timedelta:
        return timedelta(seconds=self._variant_wait_s)

    def _waiting_detail(self, upload: UploadKey, now: datetime) -> str:
        until = (now + self._wait()).isoformat(timespec="seconds")
        return f"waiting for its original {upload.stem}.(txt|md|json) until {until}"

    def _schedule_check(self, event: ObjectEvent, due: datetime) -> None:
        if self._checks is None:
            raise TransientError(
                "a variant waits for its original but ingest has no queue for its check (INGEST_QUEUE_URL)"
            )
        check = VariantCheck(
            bucket=event.bucket,
            key=event.key,
            sequencer=event.sequencer,
            version_id=event.version_id,
            event_time=event.event_time,
            due=due,
        )
        self._checks.schedule(check, max(0.0, (due - self._now()).total_seconds()))

    # -- community settings ----------------------------------------------------------------------

    def _store_settings(
        self, event: ObjectEvent, previous: Outcome | None, upload: UploadKey, data: bytes
    ) -> IngestResult:
        settings = parse_settings(data, self._limits)
        status = (
            OutcomeStatus.PUBLISHED
            if previous is None or previous.status in (OutcomeStatus.DELETED, OutcomeStatus.REJECTED)
            else OutcomeStatus.UPDATED
        )
        outcome = self._outcome(event, status, community=upload.community)
        outcome.detail = "community settings stored: " + json.dumps(settings.model_dump(mode="json"))
        change = Change(
            outcome=outcome, expect_sequencer=_sequencer(previous), settings=(upload.community, settings)
        )
        self._content.commit(change)
        return IngestResult(outcome)

    def _delete_settings(
        self, event: ObjectEvent, previous: Outcome | None, upload: UploadKey
    ) -> IngestResult:
        outcome = self._outcome(event, OutcomeStatus.DELETED, community=upload.community)
        outcome.detail = "community settings removed: the defaults apply"
        change = Change(
            outcome=outcome, expect_sequencer=_sequencer(previous), settings=(upload.community, None)
        )
        self._content.commit(change)
        return IngestResult(outcome)

    # -- duplicates taking the place of their original ----------------------------------------

    def _hand_over(self, change: Change, key: str, released: Sequence[Post | PostRef]) -> None:
        """For each text ``released`` gives up, the oldest duplicate waiting for it is published in
        its place (within ``change``), and its key's outcome says so."""
        if not released:
            return
        community = released[0].community
        claims = self._content.claims(community, [r.content_hash for r in released])
        outcomes: dict[str, tuple[Outcome, str | None]] = {}
        now = self._now()
        for ref in released:
            claim = claims.get(ref.content_hash)
            if claim is None or claim.owner != ref.id or claim.waiting <= 0:
                continue
            change.claims_seen[(community, ref.content_hash)] = claim.waiting
            waiting = self._content.waiting_for(community, ref.content_hash)
            candidates = [w for w in waiting if w.post.key != key]
            if not candidates:
                continue  # the count is stale (nothing waits): the claim is released as counted
            chosen = candidates[0]
            # Members were told about this text when the original was published: not again.
            post = chosen.post.model_copy(update={"notify": False, "created_at": now, "updated_at": now})
            change.promote.append(
                Promotion(replace(chosen, post=post), previous_owner=ref.id, claim_waiting=claim.waiting)
            )
            self._promoted_outcome(outcomes, chosen, post, ref, now)
        change.other_outcomes.extend(outcomes.values())

    def _promoted_outcome(
        self,
        outcomes: dict[str, tuple[Outcome, str | None]],
        chosen: Waiting,
        post: Post,
        original: Post | PostRef,
        now: datetime,
    ) -> None:
        if post.key in outcomes:
            current, expected = outcomes[post.key]
        else:
            found = self._content.outcome(post.key)
            if found is None:
                return  # its first import is still running; its outcome will be written after
            current, expected = found.model_copy(deep=True), found.sequencer
        place = f"post {post.id} now takes the place of post {original.id} (from {original.key!r}), removed"
        current.processed_at = now
        if post.source is PostSource.EXPORT:
            current.post_ids = [*current.post_ids, post.id]
            counts = dict(current.counts)
            counts["published"] = counts.get("published", 0) + 1
            counts["duplicates"] = max(0, counts.get("duplicates", 0) - 1)
            current.counts = counts
            current.detail = f"{current.detail}; {place}" if current.detail else place
        else:
            current.status = OutcomeStatus.PUBLISHED
            current.post_ids = [post.id]
            current.duplicate_of = None
            current.detail = place
        outcomes[post.key] = (current, expected)

    # -- exports -------------------------------------------------------------------------------

    def _import_export(
        self, event: ObjectEvent, previous: Outcome | None, upload: UploadKey, data: bytes, budget: Budget
    ) -> IngestResult:
        """Resumable: posts are written group by group, each recorded as published by the key; a
        run that runs out of time records how far it got and raises :class:`Unfinished`, and the
        retry enriches and writes only what is not stored yet. The outcome comes last."""
        export = parse_export(data, self._limits)
        total = len(export.posts)
        record = self._content.key_record(event.key)
        progress = record.progress if _same_event(record.progress, event) else None
        if progress is not None and progress.runs >= MAX_UNFINISHED_RUNS:
            return self._give_up(event, previous, upload, record, progress, total, budget)
        try:
            return self._import_runs(event, previous, upload, export, record, progress, budget)
        except InvalidUpload:
            self._roll_back(event, self._content.key_record(event.key), budget)
            raise
        except (TransientError, ConcurrentUpdate):
            raise
        except Exception:
            self._roll_back(event, self._content.key_record(event.key), budget)
            raise

    def _import_runs(
        self,
        event: ObjectEvent,
        previous: Outcome | None,
        upload: UploadKey,
        export: Any,
        record: KeyRecord,
        progress: ImportProgress | None,
        budget: Budget,
    ) -> IngestResult:
        now = self._now()
        total = len(export.posts)
        removed = progress.removed if progress else 0
        # The export's posts by id (the id is derived from the text's fingerprint): the same text
        # twice in one export is one post.
        wanted: dict[str, tuple[Any, str]] = {}
        repeated = 0
        for item in export.posts:
            content_hash = self._fingerprint(item.text)
            post_id = upload.export_post_id(content_hash)
            if post_id in wanted:
                repeated += 1
            else:
                wanted[post_id] = (item, content_hash)
        missing = [pid for pid in wanted if pid not in record.published]
        claims = self._content.claims(upload.community, [wanted[pid][1] for pid in missing])
        to_store: list[str] = []  # enriched and written now: new posts, or new waiting duplicates
        created: set[str] = set()
        legacy: set[str] = set()  # stored before the key's own records existed: kept as they are
        for pid in missing:
            claim = claims.get(wanted[pid][1])
            if claim is not None and claim.owner == pid:
                legacy.add(pid)
                continue
            if claim is not None and pid in record.waiting:
                continue  # already waiting for its original
            to_store.append(pid)
        waited: set[str] = set()
        stopped = False
        for start in range(0, len(to_store), GROUP):
            if not budget.enough():
                stopped = True
                break
            creates: list[Change] = []
            for pid in to_store[start : start + GROUP]:
                item, content_hash = wanted[pid]
                # Page order: the export lists the oldest post first and the newest last.
                at = now - timedelta(milliseconds=total - item.position)
                post = _make_post(
                    upload,
                    PostInput(text=item.text, notify=False),
                    self._enrich(item.text, fmt=upload.fmt),
                    1,
                    at,
                    at,
                    position=item.position,
                    correlation_id=event.correlation_id,
                    loc=f"line {item.line}",
                )
                claim = claims.get(content_hash)
                if claim is not None and claim.owner != pid:
                    creates.append(Change(wait=[Waiting(post, event.sequencer, now.isoformat())]))
                    waited.add(pid)
                else:
                    creates.append(Change(create_posts=[post], since=event.sequencer))
                    created.add(pid)
            for change in self._pack(creates):
                # A guard that fails (a concurrent delivery stored it, or another key took the
                # text meanwhile) means deciding again on fresh reads; what is stored is skipped.
                self._content.commit(change)
        stale = [ref for pid, ref in record.published.items() if pid not in wanted]
        stale += self._legacy_refs(upload, previous, record, wanted)
        stale_waits = [ref for pid, ref in record.waiting.items() if pid not in wanted]
        if not stopped:
            removed_now, stopped = self._take_down(event.key, stale, stale_waits, budget)
            removed += removed_now
        if stopped:
            runs = (progress.runs if progress else 0) + 1
            self._content.commit(
                Change(progress=(event.key, ImportProgress(event.sequencer, runs=runs, removed=removed)))
            )
            stored = sum(1 for pid in wanted if pid in record.published or pid in created)
            raise Unfinished(
                f"{event.key}: {stored:,} of {len(wanted):,} posts stored when the function's time ran "
                f"out (run {runs} of at most {MAX_UNFINISHED_RUNS + 1}); the retry goes on from there"
            )
        kept = [pid for pid in wanted if pid in record.published or pid in created or pid in legacy]
        published = (
            0
            if event.reprocess
            else sum(1 for pid in kept if pid in created or record.created_by.get(pid) == event.sequencer)
        )
        duplicates = repeated + sum(1 for pid in wanted if pid in waited or pid in record.waiting)
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
            "removed": removed,
        }
        outcome.detail = (
            f"{export.profile.name}: {published} new, {len(kept) - published} unchanged, "
            f"{duplicates} duplicate, {removed} removed"
        )
        final = Change(
            outcome=outcome,
            expect_sequencer=_sequencer(previous),
            profile=(upload.community, export.profile),
            clear_progress=event.key,
        )
        try:
            self._content.commit(final)
        except ConcurrentUpdate:
            self._undo_if_deleted_meanwhile(event, budget)
            raise
        return IngestResult(outcome)

    def _legacy_refs(
        self, upload: UploadKey, previous: Outcome | None, record: KeyRecord, wanted: dict[str, Any]
    ) -> list[PostRef]:
        """Posts an outcome lists that the key's own records do not (written before they existed)."""
        ids = [pid for pid in (previous.post_ids if previous else []) if pid not in record.published]
        ids = [pid for pid in ids if pid not in wanted]
        if not ids:
            return []
        return [_ref(p) for p in self._content.posts(upload.community, ids).values()]

    def _give_up(
        self,
        event: ObjectEvent,
        previous: Outcome | None,
        upload: UploadKey,
        record: KeyRecord,
        progress: ImportProgress,
        total: int,
        budget: Budget,
    ) -> IngestResult:
        """All or nothing: an export that did not fit in the runs it had is removed and rejected."""
        stored = sum(1 for since in record.created_by.values() if since == event.sequencer)
        self._roll_back(event, record, budget)
        problem = InvalidUpload.one(
            "posts",
            f"the export's {total:,} posts could not be stored within the function's time limit in "
            f"{progress.runs + 1} runs ({stored:,} were stored, and removed again); split it into "
            "smaller exports",
        )
        return self._reject(event, previous, problem, community=upload.community)

    def _roll_back(self, event: ObjectEvent, record: KeyRecord, budget: Budget) -> None:
        """Remove what this event (and no earlier one) stored for the key."""
        mine = [record.published[pid] for pid, since in record.created_by.items() if since == event.sequencer]
        _, stopped = self._take_down(event.key, mine, [], budget)
        if stopped:
            raise Unfinished(f"{event.key}: removing the posts of an import that cannot be finished")

    def _undo_if_deleted_meanwhile(self, event: ObjectEvent, budget: Budget) -> None:
        """A newer event won the race; if it deleted the key, whatever we stored meanwhile goes too."""
        newer = self._content.outcome(event.key)
        if newer is not None and newer.status is OutcomeStatus.DELETED:
            record = self._content.key_record(event.key)
            self._take_down(event.key, list(record.published.values()), list(record.waiting.values()), budget)

    # -- writing in as few transactions as fit -------------------------------------------------------

    def _pack(self, units: Iterable[Change], last: Change | None = None) -> list[Change]:
        """Merge ``units`` (and ``last``, which goes in the final one) into changes that each fit
        one atomic write. A unit is never split."""
        changes: list[Change] = []
        current = Change()
        for unit in [*units, last] if last is not None else units:
            merged = _merge(current, unit)
            if current.is_empty() or self._content.fits(merged):
                current = merged
            else:
                changes.append(current)
                current = unit
        if not current.is_empty():
            changes.append(current)
        return changes

    # -- deletes and rejections ------------------------------------------------------------------

    def _take_down(
        self,
        key: str,
        refs: Sequence[Post | PostRef],
        waits: Sequence[PostRef],
        budget: Budget,
        last: Change | None = None,
    ) -> tuple[int, bool]:
        """Delete ``refs`` (each text passed to a duplicate waiting for it) and let ``waits`` go,
        in as few transactions as fit, ``last`` with the final one. (removed, stopped early)."""
        # One read of the claims for all of them; then one unit per post with its promotion, and
        # each promoted key's rewritten outcome with the last of that key's promotions.
        handed = Change()
        self._hand_over(handed, key, refs)
        by_text = {(p.waiting.post.community, p.waiting.post.content_hash): p for p in handed.promote}
        last_of_key = {p.waiting.post.key: p for p in handed.promote}
        outcomes = {o.key: (o, expected) for o, expected in handed.other_outcomes}
        units: list[Change] = []
        for ref in refs:
            unit = Change(delete_posts=[ref])
            text = (ref.community, ref.content_hash)
            if text in handed.claims_seen:
                unit.claims_seen[text] = handed.claims_seen[text]
            promotion = by_text.get(text)
            if promotion is not None:
                unit.promote.append(promotion)
                promoted_key = promotion.waiting.post.key
                if last_of_key[promoted_key] is promotion and promoted_key in outcomes:
                    unit.other_outcomes.append(outcomes[promoted_key])
            units.append(unit)
        units += [Change(unwait=[w]) for w in waits]
        promoted = [p.waiting.post for unit in units for p in unit.promote]
        if promoted and last is not None and last.outcome is not None:
            taken = ", ".join(f"post {p.id} from {p.key!r}" for p in promoted[:20])
            more = f" and {len(promoted) - 20:,} more" if len(promoted) > 20 else ""
            last.outcome.detail = (
                f"{last.outcome.detail}; duplicates waiting for the same text take its place: {taken}{more}"
            )
        removed = 0
        changes = self._pack(units, last)
        for index, change in enumerate(changes):
            if index < len(changes) - 1 and not budget.enough():
                return removed, True
            self._content.commit(change)
            removed += len(change.delete_posts)
        return removed, False

    def _delete(
        self, event: ObjectEvent, previous: Outcome | None, upload: UploadKey, budget: Budget
    ) -> IngestResult:
        """Everything the key ever published goes, whatever its last outcome said."""
        gone = Change()
        if upload.kind is UploadKind.POST:
            found = self._content.lookup(upload.community, [upload.post_id], [], key=event.key)
            refs: list[Post | PostRef] = list(found.posts.values())
            waits = list(found.waiting.values())
            for post in found.posts.values():
                gone = self._variants_go(upload, post, found.revisions.get(post.id, 0))
        else:
            record = self._content.key_record(event.key)
            refs = [*record.published.values(), *self._legacy_refs(upload, previous, record, {})]
            waits = list(record.waiting.values())
        outcome = self._outcome(
            event, OutcomeStatus.DELETED, community=upload.community, post_ids=[r.id for r in refs]
        )
        outcome.detail = f"{len(refs)} post(s) removed" if refs else "nothing was published from this key"
        if waits:
            outcome.detail += f"; {len(waits)} duplicate(s) no longer wait for their original"
        if gone.delete_variants:
            outcome.detail += f"; with its variants {', '.join(lang for _, _, lang in gone.delete_variants)}"
        last = _merge(
            gone, Change(outcome=outcome, expect_sequencer=_sequencer(previous), clear_progress=event.key)
        )
        _, stopped = self._take_down(event.key, refs, waits, budget, last=last)
        if stopped:
            raise Unfinished(
                f"{event.key}: the function's time ran out while removing its posts; the retry goes on"
            )
        return IngestResult(outcome)

    def _variants_go(self, upload: UploadKey, post: Post, revision: int) -> Change:
        """The part of deleting an original that removes its variants and lets its stem go."""
        change = Change(post_revisions={(post.community, post.id): revision})
        variants = self._content.variants(post.community, post.id)
        change.delete_variants = [(post.community, post.id, lang) for lang in sorted(variants)]
        stem = self._content.stem(upload.community, upload.stem_id)
        if stem is not None and stem.post_id == post.id:
            change.stems.append(
                StemChange(upload.community, upload.stem_id, upload.stem, owner=post.id, release=True)
            )
        return change

    def _reject(
        self,
        event: ObjectEvent,
        previous: Outcome | None,
        exc: InvalidUpload,
        community: str | None,
        fault: BaseException | None = None,
        extra: Change | None = None,
        variant: str | None = None,
    ) -> IngestResult:
        problems = bounds.recordable(exc.problems)
        errors = [p.as_dict() for p in problems]
        outcome = self._outcome(event, OutcomeStatus.REJECTED, community=community)
        outcome.variant = variant
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
        change = Change(outcome=outcome, expect_sequencer=_sequencer(previous))
        self._content.commit(_merge(extra, change) if extra is not None else change)
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


def _same_event(progress: ImportProgress | None, event: ObjectEvent) -> bool:
    return progress is not None and progress.sequencer == event.sequencer


def _ref(post: Post) -> PostRef:
    return PostRef(post.community, post.id, post.content_hash, post.key)


def _merge(a: Change, b: Change) -> Change:
    """One change doing both (the single-valued parts of ``b`` win when set)."""
    return Change(
        outcome=b.outcome or a.outcome,
        expect_sequencer=b.expect_sequencer if b.outcome is not None else a.expect_sequencer,
        create_posts=[*a.create_posts, *b.create_posts],
        update_posts=[*a.update_posts, *b.update_posts],
        delete_posts=[*a.delete_posts, *b.delete_posts],
        release_hashes=[*a.release_hashes, *b.release_hashes],
        profile=b.profile or a.profile,
        since=b.since or a.since,
        wait=[*a.wait, *b.wait],
        refresh_wait=[*a.refresh_wait, *b.refresh_wait],
        unwait=[*a.unwait, *b.unwait],
        promote=[*a.promote, *b.promote],
        other_outcomes=[*a.other_outcomes, *b.other_outcomes],
        claims_seen={**a.claims_seen, **b.claims_seen},
        progress=b.progress or a.progress,
        clear_progress=b.clear_progress or a.clear_progress,
        post_revisions={**a.post_revisions, **b.post_revisions},
        put_variants=[*a.put_variants, *b.put_variants],
        delete_variants=[*a.delete_variants, *b.delete_variants],
        post_variants=[*a.post_variants, *b.post_variants],
        stems=[*a.stems, *b.stems],
        settings=b.settings or a.settings,
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
    variants: dict[str, VariantSummary] | None = None,
    translation_window_s: int | None = None,
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
        variants=dict(variants or {}),
        translations=list(post_input.translations),
        translation_window_s=translation_window_s,
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


_VARIANT_VOLATILE = {"version", "created_at", "updated_at", "correlation_id", "pending", "post_id"}


def _same_variant(old: Variant, new: Variant) -> bool:
    return old.model_dump(exclude=_VARIANT_VOLATILE) == new.model_dump(exclude=_VARIANT_VOLATILE)


def _lang(upload: UploadKey) -> str:
    if upload.lang is None:
        raise ValueError(f"{upload.key!r} is not a variant key")
    return upload.lang


def _original(upload: UploadKey, context: VariantContext) -> Post | None:
    """The post a variant belongs to: the one holding the stem, else (an original stored before
    stems were recorded) the first stored of the candidate keys, in the formats' order."""
    if context.stem is not None and context.stem.post_id is not None:
        return context.posts.get(context.stem.post_id)
    for post_id in upload.original_ids().values():
        if post_id in context.posts:
            return context.posts[post_id]
    return None


def _variant_warnings(upload: UploadKey, post_input: PostInput, enrichment: Enrichment) -> list[str]:
    lang = _lang(upload)
    warnings = []
    detected = enrichment.language
    if detected and detected != primary(lang):
        warnings.append(
            f"the text reads as {detected!r}, not {lang!r} as the key says; stored as the {lang} variant"
        )
    if post_input.lang is not None and primary(post_input.lang) != primary(lang):
        warnings.append(
            f"lang {post_input.lang!r} is ignored: the key names the variant's language, {lang!r}"
        )
    if post_input.translations or post_input.translation_window is not None:
        warnings.append("translations and translation_window are the original's to say: ignored on a variant")
    return warnings


def _translations_wanted(post_input: PostInput) -> int | None:
    """Check the variants an editor says are coming (known codes, a window of at most 24 h) and
    return the window in seconds."""
    problems = [
        Problem("translations", f"unknown language code {code!r}: use ISO 639-1 codes (fr, ar, pt-br)")
        for code in post_input.translations
        if not is_known_language(code)
    ]
    window_s = None
    if post_input.translation_window is not None:
        value = post_input.translation_window
        window_s = int(value[:-1]) * _WINDOW_UNITS[value[-1]]
        if window_s > MAX_TRANSLATION_WINDOW_S:
            problems.append(
                Problem(
                    "translation_window", f"{value!r} is longer than 24 h: the fan-out waits at most 24 h"
                )
            )
    if problems:
        raise InvalidUpload(problems)
    return window_s


def parse_settings(data: bytes, limits: IngestLimits) -> CommunitySettings:
    """``communities/<community>.json``: the community's settings, every field checked."""
    text = decode_text(data, limit=limits.max_post_bytes, what="settings file")
    try:
        settings = CommunitySettings.model_validate_json(text)
    except ValidationError as exc:
        raise InvalidUpload(
            [
                Problem(".".join(str(p) for p in err["loc"]) or "settings", err["msg"])
                for err in exc.errors(include_url=False)
            ]
        ) from None
    codes = [("default_language", settings.default_language)] if settings.default_language else []
    codes += [("machine_translations", code) for code in settings.machine_translations]
    problems = [
        Problem(loc, f"unknown language code {code!r}: use ISO 639-1 codes (fr, ar, pt-br)")
        for loc, code in codes
        if not is_known_language(code)
    ]
    if problems:
        raise InvalidUpload(problems)
    return settings
