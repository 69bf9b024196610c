"""Member counter: the members table's stream to the community member counts.

Each batch of the stream (member items only: the event source's ``FilterCriteria``) is turned into
one change per counter shard ``N#<community>#<shard>`` (a member item that appeared +1, one that
disappeared -1, from what the records' images say: :mod:`herald.members.counting`), and each
shard's change is added once, however often the batch is delivered
(:meth:`herald.members.adapters.dynamo_members.DynamoMemberStore.add_counts`). A failed write fails
the batch: the event source gives it again, whole and in order.

Metrics: ``MemberCountChanges`` (records that changed a count) and ``MemberCountWrites`` (counter
writes made) per batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit

from herald.core.metrics import Metrics
from herald.core.observability import traced
from herald.core.runtime import Lazy
from herald.members.counting import CounterSettings, count_batch

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from herald.members.adapters.dynamo_members import DynamoMemberStore

logger = Logger()
metrics = Metrics()


def default_store() -> DynamoMemberStore:
    from herald.members.adapters.dynamo_members import DynamoMemberStore

    settings = CounterSettings.from_env()
    return DynamoMemberStore(settings.members_table, settings.member_counter_shards)


#: Built on the first batch; ``configure(factory)`` swaps it (tests, benchmarks).
store: Lazy[DynamoMemberStore] = Lazy(default_store)
configure = store.configure


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def _handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = count_batch(store(), event.get("Records") or [])
    metrics.add_metric("MemberCountChanges", MetricUnit.Count, report.records - report.ignored)
    metrics.add_metric("MemberCountWrites", MetricUnit.Count, report.writes)
    logger.info(
        "counted",
        extra={"records": report.records, "ignored": report.ignored, "writes": report.writes},
    )
    return {"records": report.records, "writes": report.writes}


#: The entry point template.yaml names; traced only when the stack turns tracing on.
handler = traced(_handler)
