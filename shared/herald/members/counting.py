"""The member count from the members table's stream: what each stream record changes.

Pure: no AWS. The member counter function (``functions/member_counter``) reads a batch of the
stream's records (only member items reach it: its ``FilterCriteria``), turns them into changes of
the counter shards here (a member image is read by the member item's one decoder,
:func:`herald.members.adapters.dynamo_members.member_shard`), and the member store adds each
shard's change once (:meth:`herald.members.adapters.dynamo_members.DynamoMemberStore.add_counts`).

A record counts what its images say changed, never what its event name says: a member item that
appeared (a new image of a member, no old one) is +1 on the new image's shard, one that disappeared
(an old image, no new one) is -1 on the old image's shard, a rewrite (both images) is 0 (or -1/+1
if the shard changed, which Herald never does). A record with neither image, or images of
something else, changes nothing; so does a record written again for the same change (moto gives
two ``INSERT`` records for an ``UpdateItem`` that creates an item: the second has an old image).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import Field

from herald.core.settings import Settings
from herald.members.adapters.dynamo_members import member_shard

#: A counter shard: (community, shard).
ShardKey = tuple[str, int]


@dataclass(frozen=True)
class Step:
    """One stream record's change of one counter shard; ``record`` is the record's ``eventID``
    (unique in the stream, the same when the record is delivered again)."""

    record: str
    delta: int


@dataclass
class Tally:
    """What a batch changes: each counter shard's steps, in stream order."""

    steps: dict[ShardKey, list[Step]] = field(default_factory=dict)
    records: int = 0
    ignored: int = 0


def record_changes(record: Mapping[str, Any]) -> list[tuple[ShardKey, int]]:
    """The counter changes of one Lambda DynamoDB stream record: member appeared +1, gone -1."""
    ddb = record.get("dynamodb") or {}
    old = member_shard(ddb.get("OldImage"))
    new = member_shard(ddb.get("NewImage"))
    if old == new:
        return []
    changes: list[tuple[ShardKey, int]] = []
    if old is not None:
        changes.append((old, -1))
    if new is not None:
        changes.append((new, +1))
    return changes


def tally(records: Iterable[Mapping[str, Any]]) -> Tally:
    """The batch's changes per counter shard, in the records' order."""
    result = Tally()
    for record in records:
        event_id = str(record.get("eventID") or "")
        if not event_id:
            result.ignored += 1
            continue
        result.records += 1
        changes = record_changes(record)
        if not changes:
            result.ignored += 1
        for key, delta in changes:
            result.steps.setdefault(key, []).append(Step(event_id, delta))
    return result


# ----------------------------------------------------------------------------- the counter function


class CounterSettings(Settings):
    """The member counter function's environment (template.yaml's ``MemberCounterFunction``)."""

    members_table: str
    member_counter_shards: int = Field(default=32, ge=1, le=1000)


@dataclass(frozen=True)
class CountReport:
    """What one batch came to: records read, records that changed no count, counter writes made."""

    records: int
    ignored: int
    writes: int


class CountStore(Protocol):
    def add_counts(self, tally: Tally) -> int: ...


def count_batch(store: CountStore, records: Iterable[Mapping[str, Any]]) -> CountReport:
    """Count one stream batch: each counter shard's change added once (``store.add_counts``).

    Raises when a write fails: the event source gives the whole batch again, and what was counted
    of it already is not counted twice."""
    found = tally(records)
    writes = store.add_counts(found)
    return CountReport(found.records, found.ignored, writes)
