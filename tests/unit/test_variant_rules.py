"""The ingest rules of language variants on the in-memory bucket and content store (tests/fakes):
an original and a variant whose writes cross (each guard makes the loser decide again on fresh
reads, so neither misses the other), the check a waiting variant queues, and its expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from herald.content.models import OutcomeStatus
from herald.enrichment.pipeline import enrich
from herald.ingest.ports import Change
from herald.ingest.service import IngestService
from tests.fakes.ingest import MemoryChecks, MemoryContent, MemoryObjects

EN = "The clinic in the north district opens at eight in the morning from Monday to Friday."
EN_EDIT = "The clinic in the north district now opens at nine in the morning, from Monday to Saturday."
FR = "La clinique du quartier nord ouvre à huit heures du matin, du lundi au vendredi."
ORIGINAL, VARIANT = "posts/demo/clinic.txt", "posts/demo/clinic.fr.txt"


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


class Rig:
    def __init__(self, wait_s: float = 900) -> None:
        self.objects = MemoryObjects()
        self.content = MemoryContent()
        self.checks = MemoryChecks()
        self.clock = Clock()
        self.service = IngestService(
            self.objects,
            self.content,
            enricher=enrich,
            clock=self.clock,
            checks=self.checks,
            variant_wait_s=wait_s,
        )

    def once_before_commit(self, action: Callable[[], object], when: Callable[[Change], bool]) -> None:
        """Run ``action`` (another writer) once, just before the first commit ``when`` matches."""
        fired = False

        def hook(change: Change) -> None:
            nonlocal fired
            if not fired and when(change):
                fired = True
                action()

        self.content.before_commit = hook


def test_an_original_stored_while_a_variant_decides_to_wait_is_found_on_the_retry() -> None:
    rig = Rig()
    original = rig.objects.put(ORIGINAL, EN)
    rig.once_before_commit(lambda: rig.service.handle(original), when=lambda c: bool(c.stems))
    result = rig.service.handle(rig.objects.put(VARIANT, FR))
    assert result.outcome is not None and result.outcome.status is OutcomeStatus.PUBLISHED
    [post] = rig.content.community_posts("demo")
    assert set(post.variants) == {"fr"} and result.outcome.post_ids == [post.id]
    assert rig.content.pending_variants("demo", post.id) == [] and rig.checks.scheduled == []


def test_a_variant_that_waits_while_its_original_decides_is_adopted_on_the_retry() -> None:
    rig = Rig()
    variant = rig.objects.put(VARIANT, FR)
    rig.once_before_commit(lambda: rig.service.handle(variant), when=lambda c: bool(c.create_posts))
    result = rig.service.handle(rig.objects.put(ORIGINAL, EN))
    assert result.outcome is not None and result.outcome.status is OutcomeStatus.PUBLISHED
    [post] = rig.content.community_posts("demo")
    assert set(post.variants) == {"fr"}
    adopted = rig.content.outcome(VARIANT)
    assert adopted is not None and adopted.status is OutcomeStatus.PUBLISHED and adopted.post_ids == [post.id]
    [(check, _)] = rig.checks.scheduled
    assert rig.service.check_variant(check.model_copy(update={"due": rig.clock.at})).outcome is None


def test_an_edit_of_the_original_racing_a_variant_keeps_the_variant() -> None:
    rig = Rig()
    rig.service.handle(rig.objects.put(ORIGINAL, EN))
    variant = rig.objects.put(VARIANT, FR)
    rig.once_before_commit(lambda: rig.service.handle(variant), when=lambda c: bool(c.update_posts))
    rig.service.handle(rig.objects.put(ORIGINAL, EN_EDIT))
    [post] = rig.content.community_posts("demo")
    assert post.text == EN_EDIT and post.version == 2 and set(post.variants) == {"fr"}


def test_a_waiting_variant_queues_its_check_once_more_when_its_event_comes_again() -> None:
    rig = Rig(wait_s=3600)
    event = rig.objects.put(VARIANT, FR)
    rig.service.handle(event)
    rig.service.handle(event)  # redelivered: superseded, but the check is queued again
    assert [(c.key, c.due, delay) for c, delay in rig.checks.scheduled] == [
        (VARIANT, rig.clock.at + timedelta(hours=1), 3600.0)
    ] * 2
    outcome = rig.content.outcome(VARIANT)
    assert outcome is not None and outcome.status is OutcomeStatus.WAITING


def test_a_check_is_queued_again_until_due_then_rejects_the_variant() -> None:
    rig = Rig(wait_s=3600)
    rig.service.handle(rig.objects.put(VARIANT, FR))
    [(check, _)] = rig.checks.scheduled
    rig.clock.at += timedelta(minutes=15)  # SQS's longest delay: delivered before it is due
    assert rig.service.check_variant(check).outcome is None
    assert rig.checks.scheduled[-1] == (check, 2700.0)
    rig.clock.at += timedelta(minutes=45)
    result = rig.service.check_variant(check)
    assert result.outcome is not None and result.outcome.status is OutcomeStatus.REJECTED
    assert result.outcome.variant == "fr" and "did not arrive within 3600 s" in (result.outcome.detail or "")
    assert rig.content.variant_items == {} and rig.objects.body("rejected/" + VARIANT) == FR.encode()
    # the check again (a redelivery) changes nothing
    assert rig.service.check_variant(check).outcome is None
