"""Publisher function: the content table's stream to the public site in the site bucket.

Two event sources, one handler:

* the content table's stream: each record becomes a typed change once, here
  (``herald.content.adapters.dynamo_stream``: a post added, changed or removed, a community profile
  changed; records of other items are none), and the changes are grouped by community and published
  by ``herald.site.publisher`` (only what changed is rendered and uploaded); the records of a
  community that failed are reported as batch item failures, so the stream retries them. Once a
  community's files are written, the fan-out of each post that appears now is started (a
  ``release`` job on the planner's queue), and each post scheduled for later gets a wake-up on the
  schedule queue;
* the schedule queue: a wake-up that is due sets the post's release marker, whose stream record
  publishes the post (and only then starts its fan-out); one not due yet is queued again;
* a direct invocation ``{"v": 1, "kind": "republish", "community": "<id>"}`` (``herald republish``):
  the community's whole site rendered again with the current settings (after ``PublicSiteUrl``
  changed, say) and the bucket made to hold exactly it; it starts no fan-out. The answer is what it
  did: ``{"community", "mode": "full", "rendered", "written", "unchanged", "deleted", "url"}`` (the
  community's address the pages now carry); an unknown or malformed community raises
  :class:`RepublishRefused`.

Clients and settings are built on the first batch and reused while the environment lives.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from herald.core.metrics import Metrics
from herald.core.observability import traced
from herald.core.runtime import Lazy

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from herald.content.changes import ContentChange
    from herald.site.publisher import SitePublisher

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
queue_processor = BatchProcessor(event_type=EventType.SQS)


class PublishFailed(Exception):
    """The record's community could not be published in this batch (retried by the stream)."""


class RepublishRefused(ValueError):
    """A republish event names no community this stack has (or is not one)."""


REPUBLISH_KIND = "republish"


def default_publisher() -> SitePublisher:
    from herald.fanout.adapters.sqs_jobs import SqsJobQueue
    from herald.ingest.adapters.dynamo_content import DynamoContentStore
    from herald.members.adapters.dynamo_members import DynamoMemberStore
    from herald.site.adapters.dynamo_fanout import DynamoFanoutMarker
    from herald.site.adapters.dynamo_release import DynamoReleaseMarker
    from herald.site.adapters.dynamo_variants import DynamoVariantReader
    from herald.site.adapters.s3_site import S3SiteStore
    from herald.site.publisher import PublisherSettings, SitePublisher, demo_subscriptions

    settings = PublisherSettings.from_env()
    members = (
        DynamoMemberStore(settings.members_table, settings.member_counter_shards)
        if settings.members_table
        else None
    )
    return SitePublisher(
        DynamoContentStore(settings.content_table),
        members,
        S3SiteStore(settings.site_bucket),
        settings,
        clock=lambda: datetime.now(UTC),
        demo_subscription=(
            demo_subscriptions(settings.local_push_origin) if settings.herald_demo_subscriptions else None
        ),
        schedule=SqsJobQueue(settings.schedule_queue_url) if settings.schedule_queue_url else None,
        fanout=SqsJobQueue(settings.planner_queue_url) if settings.planner_queue_url else None,
        starts=DynamoFanoutMarker(settings.content_table),
        marker=DynamoReleaseMarker(settings.content_table),
        variants=DynamoVariantReader(settings.content_table),
    )


#: Built on the first record; ``configure(factory)`` swaps it (tests, benchmarks).
publisher: Lazy[SitePublisher] = Lazy(default_publisher)
configure = publisher.configure


def _correlation_ids(changes: Sequence[ContentChange], community: str) -> list[str]:
    """The uploads behind a publication: the correlation ids of the community's new post versions."""
    from herald.content.changes import CommunityProfileChanged
    from herald.content.models import Post

    found: list[str] = []
    for change in changes:
        after = change.after if not isinstance(change, CommunityProfileChanged) else None
        if change.community == community and isinstance(after, Post):
            cid = after.correlation_id
            if cid and cid not in found:
                found.append(cid)
    return found[:20]


def wakeup_handler(record: SQSRecord) -> None:
    body = json.loads(record.body)
    woken = publisher().wake(body)
    logger.info(
        f"scheduled post: {woken.what}",
        extra={"community": body.get("community"), "post_id": woken.post_id},
    )
    if woken.what == "released":
        metrics.add_metric(name="ScheduledPostsReleased", unit=MetricUnit.Count, value=1)


def republish(event: dict[str, Any]) -> dict[str, Any]:
    """The whole site of the event's community, rendered and synced again (no fan-out: no post is new)."""
    from herald.content.ids import is_community_id

    community = event.get("community")
    if event.get("v") != 1 or not isinstance(community, str) or not is_community_id(community):
        raise RepublishRefused(f"not a republish event of version 1 with a community id: {event!r:.200}")
    site = publisher()
    if (
        site.content.community(community) is None
        and next(iter(site.content.community_posts(community)), None) is None
    ):
        raise RepublishRefused(f"no community {community!r}: it has no profile and no posts")
    pub = site.publish_all(community)
    logger.info(
        "site republished",
        extra={
            "community": community,
            "rendered": pub.rendered,
            "written": pub.written[:50],
            "written_count": len(pub.written),
            "unchanged": pub.unchanged,
            "deleted": pub.deleted[:50],
        },
    )
    metrics.add_metric(name="SiteFilesWritten", unit=MetricUnit.Count, value=len(pub.written))
    metrics.add_metric(name="SiteFilesDeleted", unit=MetricUnit.Count, value=len(pub.deleted))
    return {
        "community": community,
        "mode": pub.mode,
        "rendered": pub.rendered,
        "written": pub.written,
        "unchanged": pub.unchanged,
        "deleted": pub.deleted,
        "url": site.settings.base_url(community),
    }


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def _handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse | dict[str, Any]:
    from herald.content.adapters.dynamo_stream import content_changes
    from herald.site.publisher import publish_changes

    if event.get("kind") == REPUBLISH_KIND:
        return republish(event)
    records = event.get("Records") or []
    if not records:
        return {"batchItemFailures": []}
    if records[0].get("eventSource") == "aws:sqs":
        return process_partial_response(
            event=event, record_handler=wakeup_handler, processor=queue_processor, context=context
        )
    changes = content_changes(records)  # the only reading of the records' images
    result = publish_changes(publisher(), changes)
    for pub in result.publications:
        logger.info(
            "site published",
            extra={
                "correlation_ids": _correlation_ids(changes, pub.community),
                "community": pub.community,
                "mode": pub.mode,
                "rendered": pub.rendered,
                "written": pub.written[:50],
                "written_count": len(pub.written),
                "unchanged": pub.unchanged,
                "deleted": pub.deleted[:50],
                "released": pub.released[:50],
                "scheduled": pub.scheduled[:50],
            },
        )
        metrics.add_metric(name="SiteFilesWritten", unit=MetricUnit.Count, value=len(pub.written))
        metrics.add_metric(name="SiteFilesDeleted", unit=MetricUnit.Count, value=len(pub.deleted))
        if pub.released:
            metrics.add_metric(name="FanOutsReleased", unit=MetricUnit.Count, value=len(pub.released))
    for community, error in result.errors.items():
        logger.error("site not published", extra={"community": community, "error": error})
        metrics.add_metric(name="SitePublishFailures", unit=MetricUnit.Count, value=1)
    failed = result.failed_event_ids

    def record_handler(record: DynamoDBRecord) -> None:
        if record.event_id in failed:
            raise PublishFailed(record.event_id)

    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


#: The entry point template.yaml names; traced only when the stack turns tracing on.
handler = traced(_handler)
