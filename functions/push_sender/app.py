"""Push sender: push jobs (a post and up to 100 members) to Web Push and to SNS mobile push.

One sender for every channel (:mod:`herald.fanout.channels`): a job's members carry ``c`` = ``web``,
``fcm`` or ``apns``, and each goes to the registered channel of that kind. The job is claimed in the
deliveries table (one lease per job) and its progress written every ``checkpoint_every`` members
(herald.fanout.service), so a redelivered, duplicated or retried job never pushes a post to a member
twice; a sender that dies repeats at most one window, each repeat replaced on the device. Each
channel's sender (Web Push: its VAPID signer, its token cache and its connection pool) is made on its
first push and lives as long as the container. Each record's body is parsed into a
:class:`herald.fanout.jobs.PushJob` by Powertools' batch processor; a body that is not one fails that
record alone (a partial batch failure).

Metrics per push service (``PushServiceAttempts``, ``PushServiceFailures`` with the dimension
``push_service``: ``fcm``, ``mozilla``, ``apple``, ``windows``, ``other``, ``sns``) let the alarm judge
push services, not endpoints: whatever a stranger's own endpoint answers lands under ``other``.

Each job is sent within the invocation's time: before each member the sender looks at the context's
remaining time, and with less than one push's bound plus a margin left (``reserve_s``) it releases
the job and sends it on as a continuation instead of running into the function's timeout.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from herald.core.metrics import Metrics
from herald.core.observability import traced
from herald.core.runtime import Lazy

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from herald.fanout.delivery import ServiceTally
    from herald.fanout.records import PushJobRecord
    from herald.fanout.service import PushDelivery

logger = Logger()
metrics = Metrics()


def default_processor() -> BatchProcessor:
    from herald.fanout.records import PushJobRecord

    return BatchProcessor(event_type=EventType.SQS, model=PushJobRecord)


#: Built on the first invocation, with the record models (``herald.fanout.records``).
processor: Lazy[BatchProcessor] = Lazy(default_processor)

#: Seconds kept in hand beyond the slowest single push: the job's checkpoint and statistics ``ADD``, the
#: retry and continuation sends (each a DynamoDB or SQS call with its own retries), and the batch's end.
RESERVE_MARGIN_S = 10.0


def default_delivery() -> PushDelivery:
    from herald.fanout.adapters.dynamo_deliveries import DynamoDeliveryLedger
    from herald.fanout.adapters.sqs_jobs import SqsJobQueue
    from herald.fanout.channels import registered
    from herald.fanout.delivery import RetryPolicy
    from herald.fanout.service import PushDelivery
    from herald.fanout.settings import SenderSettings
    from herald.members.adapters.dynamo_members import DynamoMemberStore

    settings = SenderSettings.from_env()
    # Every registered channel; each makes its sender (the VAPID key, its clients) on its first push.
    channels = registered()
    return PushDelivery(
        ledger=DynamoDeliveryLedger(settings.deliveries_table),
        members=DynamoMemberStore(settings.members_table),
        push_queue=SqsJobQueue(settings.push_job_queue_url),
        channels=channels,
        policy=RetryPolicy(max_attempts=settings.max_push_attempts),
        lease_s=settings.delivery_lease_seconds,
        max_delay_s=settings.max_delay_seconds,
        threads=settings.sender_threads,
        in_flight=settings.in_flight,
        checkpoint_every=settings.push_checkpoint_every,
        # The slowest one push of any channel (Web Push's deadline, the SNS client's bounds).
        reserve_s=channels.bound_s + RESERVE_MARGIN_S,
    )


#: Built on the first record; ``configure(factory)`` swaps it (tests, benchmarks).
delivery: Lazy[PushDelivery] = Lazy(default_delivery)
configure = delivery.configure


def record_handler(record: PushJobRecord, lambda_context: LambdaContext | None = None) -> None:
    job = record.body
    logger.set_correlation_id(job.post.correlation_id)
    logger.append_keys(post_id=job.post.post_id, community=job.post.community, job=job.job_id)
    # The invocation's time left: a job that would outlast it sends its unclaimed members on.
    remaining = (lambda: lambda_context.get_remaining_time_in_millis() / 1000) if lambda_context else None
    report = delivery().handle(job, remaining)
    stats = report.stats
    for name, value in (
        ("PushesSent", stats.sent),
        ("PushesFailed", stats.failed),
        ("PushesPruned", stats.pruned),
        ("PushesDeferred", stats.deferred),
        ("PushAuthFailures", stats.auth_failures),
        ("MobilePushAuthFailures", report.services.auth_failures.get("sns", 0)),
        ("PushesRetried", stats.retried),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    emit_service_metrics(report.services)
    if job.post.started_at is not None and report.deferred_until is None:
        elapsed_ms = max(0.0, (time.time() - job.post.started_at) * 1000)
        metrics.add_metric(name="FanOutDuration", unit=MetricUnit.Milliseconds, value=elapsed_ms)
    log = logger.warning if stats.auth_failures else logger.info
    log(
        "push job done",
        extra={
            "attempt": job.attempt,
            "members": len(job.targets),
            "stats": stats.counters(),
            "push_services": {s: {"attempts": a, "failures": f} for s, a, f in report.services.rows()},
            "skipped": report.skipped,
            "requeued": report.requeued,
            "continued": report.continued,
            "deferred_until": report.deferred_until,
            "checkpoints": report.checkpoints,
            "lease_lost": report.lost,
            "failures": [{"member": m, "channel": c, "detail": d} for m, c, d in report.failures],
        },
    )
    logger.remove_keys(["post_id", "community", "job"])


def emit_service_metrics(tally: ServiceTally) -> None:
    """One EMF document per push service the job tried: its attempts and failed attempts."""
    for service, attempts, failures in tally.rows():
        per_service = EphemeralMetrics()
        per_service.add_dimension(name="push_service", value=service)
        per_service.add_metric(name="PushServiceAttempts", unit=MetricUnit.Count, value=attempts)
        per_service.add_metric(name="PushServiceFailures", unit=MetricUnit.Count, value=failures)
        per_service.flush_metrics()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def _handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor(), context=context
    )


#: The entry point template.yaml names; traced only when the stack turns tracing on.
handler = traced(_handler)
