"""The ingest rules of IngestService, on the in-memory bucket and content store (tests/fakes):
publish, edit, the same content again, duplicates held back and taking their original's place,
rejections that keep the original, out-of-order events, and an export imported over several runs.
No AWS, no moto, no sockets."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from herald.content.models import Enrichment, OutcomeStatus
from herald.core.errors import ConcurrentUpdate, RequestRefused
from herald.enrichment.pipeline import enrich
from herald.ingest.layout import derive_post_id
from herald.ingest.ports import Change
from herald.ingest.service import GROUP, IngestService, Unfinished
from tests.fakes.ingest import MemoryContent, MemoryObjects

A, B = "posts/demo/a.txt", "posts/demo/b.md"
TEXT = "Vaccination is free for every child under five."


class Clock:
    """A clock that moves a second on every look."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


class Rig:
    def __init__(self) -> None:
        self.objects = MemoryObjects()
        self.content = MemoryContent()
        self.enriched: list[str] = []
        self.service = IngestService(self.objects, self.content, enricher=self._enrich, clock=Clock())

    def _enrich(self, text: str, **options: Any) -> Enrichment:
        self.enriched.append(text)
        return enrich(text, **options)

    def put(self, key: str, data: bytes | str) -> Any:
        return self.service.handle(self.objects.put(key, data))

    def delete(self, key: str) -> Any:
        return self.service.handle(self.objects.delete(key))

    def texts(self, community: str = "demo") -> list[str]:
        return sorted(p.text for p in self.content.community_posts(community))

    def post_count(self, community: str = "demo") -> int:
        found = self.content.community(community)
        assert found is not None
        return found.posts


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_a_new_key_is_published_once(rig: Rig) -> None:
    event = rig.objects.put(A, "The clinic opens at 8. #health")
    result = rig.service.handle(event)
    outcome = result.outcome
    assert outcome is not None and outcome.status is OutcomeStatus.PUBLISHED
    post_id = derive_post_id("demo", A)
    assert outcome.post_ids == [post_id] and outcome.sequencer == event.sequencer
    [post] = rig.content.community_posts("demo")
    assert (post.id, post.key, post.version, post.hashtags) == (post_id, A, 1, ["health"])
    assert rig.content.outcome(A) == outcome
    assert rig.post_count() == 1
    # its key's record lists it, created by this event
    record = rig.content.key_record(A)
    assert list(record.published) == [post_id] and record.created_by[post_id] == event.sequencer


def test_an_edit_is_a_new_version_of_the_same_post(rig: Rig) -> None:
    rig.put(A, "The clinic opens at 8.")
    [first] = rig.content.community_posts("demo")
    outcome = rig.put(A, "The clinic opens at 9.").outcome
    assert outcome.status is OutcomeStatus.UPDATED and outcome.detail == "version 2"
    [post] = rig.content.community_posts("demo")
    assert (post.id, post.version, post.text) == (first.id, 2, "The clinic opens at 9.")
    assert post.created_at == first.created_at and post.updated_at > first.updated_at
    assert rig.post_count() == 1
    # the old text's claim went with it: another key may publish it now
    assert rig.put("posts/demo/c.txt", "The clinic opens at 8.").outcome.status is OutcomeStatus.PUBLISHED


def test_the_same_content_again_keeps_the_version(rig: Rig) -> None:
    rig.put(A, "The clinic opens at 8.")
    [before] = rig.content.community_posts("demo")
    outcome = rig.put(A, "The clinic opens at 8.\n").outcome
    assert outcome.status is OutcomeStatus.UPDATED
    assert outcome.detail == "content unchanged; version 1 kept"
    [after] = rig.content.community_posts("demo")
    assert after == before
    # only the outcome was written
    last = rig.content.commits[-1]
    assert last.outcome is not None and not (last.create_posts or last.update_posts or last.delete_posts)


def test_a_duplicate_is_held_back_and_takes_the_place_of_its_deleted_original(rig: Rig) -> None:
    original = rig.put(A, TEXT).outcome
    duplicate = rig.put(B, f"---\ntitle: Free vaccination\ntags: [health]\n---\n{TEXT}").outcome
    assert duplicate.status is OutcomeStatus.DUPLICATE
    assert duplicate.duplicate_of == original.post_ids[0] and duplicate.post_ids == []
    assert rig.texts() == [TEXT] and rig.post_count() == 1
    [waiting] = rig.content.waiting_for(
        "demo", rig.content.posts("demo", original.post_ids)[original.post_ids[0]].content_hash
    )
    assert waiting.post.key == B

    deleted = rig.delete(A).outcome
    assert deleted.status is OutcomeStatus.DELETED and B in deleted.detail
    promoted = rig.content.outcome(B)
    assert promoted is not None and promoted.status is OutcomeStatus.PUBLISHED
    assert promoted.duplicate_of is None and "now takes the place of post" in promoted.detail
    [post] = rig.content.community_posts("demo")
    assert post.key == B and post.id == promoted.post_ids[0]
    assert (post.title, post.tags, post.format) == ("Free vaccination", ["health"], "md")
    assert post.notify is False, "members were told about this text with the original"
    assert rig.post_count() == 1
    assert rig.content.waiting_for("demo", post.content_hash) == []
    # the promoted post is its key's own: deleting it removes it, and nothing is left behind
    rig.delete(B)
    assert rig.texts() == [] and rig.post_count() == 0
    assert rig.content.published == {} and rig.content.waiting_refs == {} and rig.content.text_claims == {}


def test_a_rejected_upload_keeps_its_original_and_the_post_published_before(rig: Rig) -> None:
    key = "posts/demo/notice.json"
    rig.put(key, json.dumps({"text": "Registration opens on Monday.", "tags": ["school"]}))
    [before] = rig.content.community_posts("demo")
    broken = b'{"text": "Registration opens on Tuesday.", "tags": "school"'
    outcome = rig.put(key, broken).outcome
    assert outcome.status is OutcomeStatus.REJECTED
    assert outcome.errors == [
        {"loc": "line 1", "message": "not valid JSON: Expecting ',' delimiter (column 60)"}
    ]
    # the original bytes beside the reasons
    assert outcome.rejected_copy == f"rejected/{key}"
    assert rig.objects.body(f"rejected/{key}") == broken
    report = json.loads(rig.objects.body(f"rejected/{key}.error.json") or b"")
    assert report["errors"] == outcome.errors and report["original"] == f"rejected/{key}"
    # the post published earlier stays as it was
    assert list(rig.content.community_posts("demo")) == [before] and rig.post_count() == 1


def test_an_older_event_changes_nothing(rig: Rig) -> None:
    older = rig.objects.put(A, "The clinic opens at 8.")
    newer = rig.objects.put(A, "The clinic opens at 9.")
    assert rig.service.handle(newer).outcome.status is OutcomeStatus.PUBLISHED
    late = rig.service.handle(older)
    assert late.outcome is None and late.note.startswith("superseded")
    # a redelivery of the applied event is superseded too
    assert rig.service.handle(newer).outcome is None
    assert rig.texts() == ["The clinic opens at 9."] and rig.post_count() == 1
    assert rig.content.outcome(A).sequencer == newer.sequencer


def test_a_change_that_loses_the_race_is_decided_again_on_fresh_reads(rig: Rig) -> None:
    first = rig.objects.put(A, "The clinic opens at 8.")
    newer = rig.objects.put(A, "The clinic opens at 9.")

    def newer_lands_first(change: Change) -> None:
        rig.content.before_commit = None
        assert rig.service.handle(newer).outcome.status is OutcomeStatus.PUBLISHED

    rig.content.before_commit = newer_lands_first
    result = rig.service.handle(first)
    assert result.outcome is None and result.note.startswith("superseded")
    assert rig.texts() == ["The clinic opens at 9."] and rig.post_count() == 1


def _export_of(texts: list[str]) -> str:
    return (
        "\n\n".join(texts) + "\nScan QR code to join Community\nSafe Routes\nHelp on the move.\n12K Members\n"
    )


def _export(count: int) -> str:
    return _export_of(
        [f"Notice {i}: the clinic of district {i} opens at {i % 12 + 1} o'clock." for i in range(count)]
    )


def _running_out(after: int) -> Callable[[], float]:
    """Seconds left in an invocation that has time for ``after`` groups of posts, then none."""
    left: Iterator[float] = iter([600.0] * after + [1.0] * 1000)
    return lambda: next(left)


def test_an_export_goes_on_across_runs_from_what_is_stored(rig: Rig) -> None:
    key = "exports/demo/page.txt"
    total = 2 * GROUP + 6
    event = rig.objects.put(key, _export(total))

    with pytest.raises(Unfinished):
        rig.service.handle(event, remaining=_running_out(after=1))
    # one group stored, how far it got recorded, no outcome yet
    record = rig.content.key_record(key)
    assert len(record.published) == GROUP and record.progress is not None and record.progress.runs == 1
    assert rig.content.outcome(key) is None and rig.post_count() == GROUP
    assert len(rig.enriched) == GROUP

    # the redelivery enriches and writes only the rest
    outcome = rig.service.handle(event).outcome
    assert len(rig.enriched) == total
    assert outcome.status is OutcomeStatus.PUBLISHED
    assert outcome.counts == {
        "posts": total,
        "published": total,
        "unchanged": 0,
        "duplicates": 0,
        "removed": 0,
    }
    assert len(outcome.post_ids) == total and rig.post_count() == total
    assert rig.content.key_record(key).progress is None
    community = rig.content.community("demo")
    assert community is not None and community.name == "Safe Routes" and community.members == 12_000
    # each post once, in page order
    posts = list(rig.content.community_posts("demo"))
    assert len({p.id for p in posts}) == total
    assert [p.position for p in posts] == list(reversed(range(total)))


def test_the_fake_store_writes_all_of_a_change_or_none_of_it(rig: Rig) -> None:
    rig.put(A, "The clinic opens at 8.")
    [post] = rig.content.community_posts("demo")
    outcome = rig.content.outcome(A)
    assert outcome is not None
    other = post.model_copy(update={"id": "f" * 20, "key": "posts/demo/z.txt", "content_hash": "0" * 64})
    # a second post is fine, but the post already exists: nothing of the change is written
    change = Change(create_posts=[other, post], since="1".zfill(32))
    items = rig.content.items()
    with pytest.raises(ConcurrentUpdate) as raised:
        rig.content.commit(change)
    assert "ConditionalCheckFailed" in raised.value.reasons and raised.value.reasons[0] == "None"
    assert rig.content.items() == items and rig.post_count() == 1
    # two operations on one item are refused, as DynamoDB refuses them
    with pytest.raises(RequestRefused):
        rig.content.commit(Change(create_posts=[other, other]))
    assert rig.content.items() == items


def test_an_original_edited_to_new_text_hands_its_old_text_to_the_duplicate(rig: Rig) -> None:
    rig.put(A, TEXT)
    rig.put("posts/demo/b.txt", TEXT)
    rig.put(A, "Vaccination is free for every child under twelve.")
    promoted = rig.content.outcome("posts/demo/b.txt")
    assert promoted is not None and promoted.status is OutcomeStatus.PUBLISHED
    assert rig.texts() == sorted([TEXT, "Vaccination is free for every child under twelve."])
    assert rig.post_count() == 2


def test_an_export_post_takes_the_place_of_a_deleted_single_post_and_goes_with_the_export(rig: Rig) -> None:
    key = "exports/demo/page.txt"
    texts = [f"Notice {i}: the clinic of district {i} opens at nine." for i in range(3)]
    rig.put(A, texts[0])
    counts = rig.put(key, _export_of(texts)).outcome.counts
    assert (counts["published"], counts["duplicates"]) == (2, 1) and rig.post_count() == 3
    rig.delete(A)
    outcome = rig.content.outcome(key)
    assert outcome is not None and len(outcome.post_ids) == 3
    assert (outcome.counts["published"], outcome.counts["duplicates"]) == (3, 0)
    assert {p.key for p in rig.content.community_posts("demo")} == {key}
    assert rig.texts() == sorted(texts) and rig.post_count() == 3
    rig.delete(key)
    assert rig.texts() == [] and rig.post_count() == 0


def test_a_reupload_of_an_export_removes_the_posts_it_no_longer_holds(rig: Rig) -> None:
    key = "exports/demo/page.txt"
    texts = [f"Notice {i}: the clinic of district {i} opens at nine." for i in range(4)]
    rig.put(key, _export_of(texts))
    enriched = len(rig.enriched)
    outcome = rig.put(key, _export_of(texts[1:])).outcome
    assert outcome.status is OutcomeStatus.UPDATED
    assert outcome.counts == {"posts": 3, "published": 0, "unchanged": 3, "duplicates": 0, "removed": 1}
    assert len(rig.enriched) == enriched, "posts already stored are not enriched again"
    assert rig.texts() == sorted(texts[1:]) and rig.post_count() == 3
