"""Fan-out planner: published posts to push jobs, from the planner queue.

* a ``release`` job (sent by the publisher once the post's page, the community page and the feeds
  are written, so a push never points at a page that is not there yet): the fan-out is recorded
  once in the deliveries ledger and planned from the community's member count per shard; shards
  counted 0 are skipped (an empty community: no page read, no job), a small community's shards
  have their first pages read in parallel and planned into push jobs right there, a larger one's
  get one ``shard`` job each (:class:`herald.fanout.service.FanoutPlanner`);
* a ``shard`` job pages one shard (``PLANNER_PAGE_SIZE`` members), packs the members the post is for
  into push jobs (``MEMBERS_PER_JOB`` each) and queues the next page of the shard, as the start
  does for a first page that has more after it.

Metrics: ``FanOutsStarted`` per fan-out started; ``FanOutMembersPaged`` and ``PushJobsQueued`` for
every start and every shard page (the members read and the push jobs queued by it); ``ShardJobsQueued``
for the planner jobs a start or a page queued (the shards of a larger community, a next page).

Each record's body is parsed into its job (:mod:`herald.fanout.jobs`) by Powertools' batch processor;
a body that is not a planner job fails that record alone (a partial batch failure), like any fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from herald.core.metrics import Metrics
from herald.core.observability import traced
from herald.core.runtime import Lazy

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from herald.fanout.records import PlannerJobRecord
    from herald.fanout.service import FanoutPlanner

logger = Logger()
metrics = Metrics()


def default_queue_processor() -> BatchProcessor:
    from herald.fanout.records import PlannerJobRecord

    return BatchProcessor(event_type=EventType.SQS, model=PlannerJobRecord)


#: Built on the first invocation, with the record models (``herald.fanout.records``).
queue_processor: Lazy[BatchProcessor] = Lazy(default_queue_processor)


def default_planner() -> FanoutPlanner:
    from herald.fanout.adapters.dynamo_deliveries import DynamoDeliveryLedger
    from herald.fanout.adapters.sqs_jobs import SqsJobQueue
    from herald.fanout.service import FanoutPlanner
    from herald.fanout.settings import PlannerSettings
    from herald.ingest.adapters.dynamo_content import DynamoContentStore
    from herald.members.adapters.dynamo_members import DynamoMemberStore

    settings = PlannerSettings.from_env()
    return FanoutPlanner(
        ledger=DynamoDeliveryLedger(settings.deliveries_table),
        members=DynamoMemberStore(settings.members_table, settings.member_counter_shards),
        planner_queue=SqsJobQueue(settings.planner_queue_url),
        push_queue=SqsJobQueue(settings.push_job_queue_url),
        content=DynamoContentStore(settings.content_table),
        site_url=settings.public_site_url,
        shards=settings.member_counter_shards,
        page_size=settings.planner_page_size,
        members_per_job=settings.members_per_job,
        max_delay_s=settings.max_delay_seconds,
    )


#: Built on the first record; ``configure(factory)`` swaps it (tests, benchmarks).
planner: Lazy[FanoutPlanner] = Lazy(default_planner)
configure = planner.configure


def job_record_handler(record: PlannerJobRecord) -> None:
    job = record.body
    logger.set_correlation_id(job.post.correlation_id)
    result = planner().on_job(job)
    if job.kind in ("release", "post") and result.what == "planned":
        metrics.add_metric(name="FanOutsStarted", unit=MetricUnit.Count, value=1)
    if result.what in ("planned", "page"):
        metrics.add_metric(name="FanOutMembersPaged", unit=MetricUnit.Count, value=result.members)
        metrics.add_metric(name="PushJobsQueued", unit=MetricUnit.Count, value=result.jobs)
        if result.planner_jobs:
            metrics.add_metric(name="ShardJobsQueued", unit=MetricUnit.Count, value=result.planner_jobs)
    logger.info(
        f"planner job: {result.what}",
        extra={
            "kind": job.kind,
            "shard": getattr(job, "shard", None),
            "jobs": result.jobs,
            "targets": result.targets,
            "members": result.members,
            "shards_paged": result.shards,
            "planner_jobs": result.planner_jobs,
        },
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def _handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=job_record_handler, processor=queue_processor(), context=context
    )


#: The entry point template.yaml names; traced only when the stack turns tracing on.
handler = traced(_handler)
