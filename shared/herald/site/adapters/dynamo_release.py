"""The release marker of a scheduled post: ``released_at`` on its item in the content table.

When a scheduled post's time comes, the publisher does not render it from the wake-up message: it
sets ``released_at`` (to the ``publish_at`` it releases) on the post item. The content table's stream
carries that change to the publisher's stream handler like any other change of the community, so the
post's page, the community page and the feeds are written in the community's stream order (never
overwritten by a publication running at the same time), and only after they are written does the
publisher start the fan-out.

The marker is the only attribute written here: an ingest edit replaces the item (and drops the
marker), which is right, since the edit's own stream record is published.

Which languages a post's fan-out pushed is the other marker, on an item of its own beside the post
(:mod:`herald.site.adapters.dynamo_fanout`), so an edit of the post does not drop it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError

from herald.content.keys import post_key
from herald.core.aws import DynamoTable, as_transient, error_code
from herald.core.errors import TransientError

ReleaseState = Literal["released", "already", "gone", "moved"]
ATTEMPTS = 4


def _epoch(value: str) -> float | None:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


class DynamoReleaseMarker(DynamoTable):
    """Sets a scheduled post's ``released_at`` once, if it is still scheduled for that time."""

    def release(self, community: str, post_id: str, publish_at: float) -> ReleaseState:
        """``released`` (the marker is set now), ``already`` (set before: a redelivered wake-up),
        ``gone`` (the post was deleted) or ``moved`` (an edit changed or removed ``publish_at``: the
        edit's own stream record takes it from there)."""
        key = post_key(community, post_id)
        for _ in range(ATTEMPTS):
            item = self.get_item(key, consistent=True, what="reading a scheduled post")
            if not item:
                return "gone"
            stored = (item.get("publish_at") or {}).get("S")
            at = _epoch(stored) if stored else None
            if stored is None or at is None or abs(at - publish_at) > 1e-3:
                return "moved"
            if (item.get("released_at") or {}).get("S") == stored:
                return "already"
            try:
                self.ddb.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET released_at = :at",
                    ConditionExpression=(
                        "publish_at = :at AND (attribute_not_exists(released_at) OR released_at <> :at)"
                    ),
                    ExpressionAttributeValues={":at": {"S": stored}},
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    continue  # an edit or another wake-up got there first: decide again on a fresh read
                raise as_transient(exc, "releasing a scheduled post") from exc
            except BotoCoreError as exc:
                raise as_transient(exc, "releasing a scheduled post") from exc
            return "released"
        raise TransientError(f"releasing post {post_id} of {community}: the item kept changing")
