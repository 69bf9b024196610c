"""Ingest function: S3 object events (through SQS) to enriched posts and recorded outcomes.

Thin on purpose: parse the SQS records, hand each object event to the domain's IngestService,
report partial batch failures. Nothing heavy is built at import time: clients, settings and the
language model are created on the first record and reused while the environment lives.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from herald.core.metrics import Metrics
from herald.core.observability import traced

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from herald.ingest.service import IngestService

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)

_METRIC_NAMES = {
    "published": "PostsPublished",
    "updated": "PostsUpdated",
    "duplicate": "Duplicates",
    "deleted": "PostsDeleted",
    "rejected": "UploadsRejected",
    "waiting": "VariantsWaiting",
}


@cache
def ingest_service() -> IngestService:
    from herald.enrichment.pipeline import enrich
    from herald.ingest.adapters.dynamo_content import DynamoContentStore
    from herald.ingest.adapters.s3_objects import S3ObjectStore
    from herald.ingest.adapters.sqs_checks import SqsChecks
    from herald.ingest.service import IngestService
    from herald.ingest.settings import IngestSettings

    settings = IngestSettings.from_env()
    return IngestService(
        objects=S3ObjectStore(),
        content=DynamoContentStore(settings.content_table),
        enricher=enrich,
        limits=settings.limits,
        checks=SqsChecks(settings.ingest_queue_url) if settings.ingest_queue_url else None,
        variant_wait_s=settings.variant_wait_s,
    )


def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    from herald.ingest.events import S3TestEvent, VariantCheck, parse_message_body

    parsed = parse_message_body(record.body)
    if isinstance(parsed, S3TestEvent):
        logger.info(
            "S3 test event: the bucket's notifications reach this queue", extra={"bucket": parsed.bucket}
        )
        return
    service = ingest_service()
    if isinstance(parsed, VariantCheck):
        logger.append_keys(object_key=parsed.key, sequencer=parsed.sequencer)
        result = service.check_variant(parsed)
        if result.outcome is None:
            logger.info("variant check changed nothing", extra={"reason": result.note})
        else:
            logger.warning(
                "waiting variant rejected", extra={"detail": result.outcome.detail, "status": "rejected"}
            )
            metrics.add_metric(name=_METRIC_NAMES["rejected"], unit=MetricUnit.Count, value=1)
        logger.remove_keys(["object_key", "sequencer"])
        return
    for event in parsed:
        logger.set_correlation_id(event.correlation_id)
        logger.append_keys(object_key=event.key, sequencer=event.sequencer, post_id=None)
        # The invocation's time left: a long export stops before the timeout and resumes on retry.
        remaining = (lambda: lambda_context.get_remaining_time_in_millis() / 1000) if lambda_context else None
        result = service.handle(event, remaining)
        if result.outcome is None:
            logger.info(
                "event changed nothing", extra={"reason": result.note, "event_name": event.event_name}
            )
            metrics.add_metric(name="EventsSuperseded", unit=MetricUnit.Count, value=1)
            continue
        outcome = result.outcome
        logger.append_keys(post_id=",".join(outcome.post_ids[:20]) or None, community=outcome.community)
        if result.fault is not None:
            # A bug, not a bad file: the upload is rejected (and kept) so the queue goes on, and the
            # error is logged with its traceback and counted, which the IngestFaults alarm watches.
            logger.error(
                "internal error while ingesting an upload",
                exc_info=(type(result.fault), result.fault, result.fault.__traceback__),
            )
            metrics.add_metric(name="IngestFaults", unit=MetricUnit.Count, value=1)
        log = logger.warning if outcome.status == "rejected" else logger.info
        log(
            f"upload {outcome.status}",
            extra={
                "status": str(outcome.status),
                "detail": outcome.detail,
                "errors": outcome.errors,
                "duplicate_of": outcome.duplicate_of,
                "counts": outcome.counts or None,
                "variant": outcome.variant,
                "warnings": outcome.warnings or None,
            },
        )
        metrics.add_metric(name=_METRIC_NAMES[outcome.status], unit=MetricUnit.Count, value=1)
        if outcome.counts.get("published"):
            metrics.add_metric(
                name="ExportPostsPublished", unit=MetricUnit.Count, value=outcome.counts["published"]
            )
    logger.remove_keys(["object_key", "sequencer", "post_id", "community"])


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def _handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


#: The entry point template.yaml names; traced only when the stack turns tracing on.
handler = traced(_handler)
