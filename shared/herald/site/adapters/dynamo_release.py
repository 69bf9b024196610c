"""The release marker of a scheduled post: ``released_at`` on its item in the content table.

When a scheduled post's time comes, the publisher does not render it from the wake-up message: it
sets ``released_at`` (to the ``publish_at`` it releases) on the post item. The content table's stream
carries that change to the publisher's stream handler like any other change of the community, so the
post's page, the community page and the feeds are written in the community's stream order (never
overwritten by a publication running at the same time), and only after they are written does the
publisher start the fan-out.

The marker is the only attribute written here: an ingest edit replaces the item (and drops the
marker), which is right, since the edit's own stream record is published.

:class:`DynamoFanoutMarker` is the other marker: which languages a post's fan-out pushed, on an item
of its own beside the post (``FANOUT#<post id>``), so an edit of the post does not drop it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from herald.content.keys import community_pk, post_key
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


# ----------------------------------------------------------------------------- the fan-out's start

StartState = Literal["started", "already"]
FollowUpState = Literal["started", "already", "not started"]
#: How long a post's fan-out marker is kept (the deliveries table's fan-out ledger lives as long).
FANOUT_MARKER_TTL_S = 180 * 24 * 3600


def fanout_marker_key(community: str, post_id: str) -> dict[str, Any]:
    """The fan-out marker's key: beside the post in its community's partition, never in the feed."""
    return {"pk": {"S": community_pk(community)}, "sk": {"S": f"FANOUT#{post_id}"}}


def _langs(value: Mapping[str, Any] | None) -> list[str]:
    return [str(v["S"]) for v in (value or {}).get("L", [])]


class DynamoFanoutMarker(DynamoTable):
    """Which languages a post was pushed in, decided once: the item ``C#<community>``/``FANOUT#<post>``
    of the content table (no index, no stream change: the stream adapter reads only posts and
    profiles). ``pushed``: every language pushed so far, in order; ``first``: the first push's;
    ``waves``: for each follow-up language, the languages pushed before it (whom it leaves out).

    Each write is conditional, so the first push starts once (the first of the post's stream record
    and its translation window's wake-up to get there) and each follow-up once per language; a
    repeat gets what the first recorded (``already``) and sends the same release again, which the
    planner's ledger finds planned."""

    def start_fanout(
        self, community: str, post_id: str, langs: Sequence[str], now: float
    ) -> tuple[StartState, list[str]]:
        """Record the first push in ``langs``: ``started``, or ``already`` with the languages recorded."""
        item = {
            **fanout_marker_key(community, post_id),
            "type": {"S": "fanout"},
            "first": {"L": [{"S": lang} for lang in langs]},
            "pushed": {"L": [{"S": lang} for lang in langs]},
            "waves": {"M": {}},
            "started_at": {"N": str(int(now))},
            "expires_at": {"N": str(int(now + FANOUT_MARKER_TTL_S))},
        }
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                response: Any = exc.response
                old = response.get("Item") or self.get_item(
                    fanout_marker_key(community, post_id), consistent=True, what="reading a fan-out marker"
                )
                return "already", _langs((old or {}).get("first"))
            raise as_transient(exc, "starting a post's fan-out") from exc
        except BotoCoreError as exc:
            raise as_transient(exc, "starting a post's fan-out") from exc
        return "started", list(langs)

    def follow_up(self, community: str, post_id: str, lang: str) -> tuple[FollowUpState, list[str]]:
        """Record a follow-up push in ``lang``: ``started`` with the languages pushed before it,
        ``already`` with those it recorded then, or ``not started`` (the post's first push has not
        started: the language goes with it)."""
        key = fanout_marker_key(community, post_id)
        for _ in range(ATTEMPTS):
            item = self.get_item(key, consistent=True, what="reading a fan-out marker")
            if not item:
                return "not started", []
            waves = (item.get("waves") or {}).get("M", {})
            if lang in waves:
                return "already", _langs(waves[lang])
            pushed = _langs(item.get("pushed"))
            if lang in pushed:
                return "already", pushed  # pushed by the first push
            try:
                self.ddb.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET waves.#l = :before, pushed = list_append(pushed, :l)",
                    ConditionExpression="attribute_not_exists(waves.#l) AND size(pushed) = :n",
                    ExpressionAttributeNames={"#l": lang},
                    ExpressionAttributeValues={
                        ":before": {"L": [{"S": p} for p in pushed]},
                        ":l": {"L": [{"S": lang}]},
                        ":n": {"N": str(len(pushed))},
                    },
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    continue  # another follow-up got there first: decide again on a fresh read
                raise as_transient(exc, "starting a follow-up push") from exc
            except BotoCoreError as exc:
                raise as_transient(exc, "starting a follow-up push") from exc
            return "started", pushed
        raise TransientError(f"a follow-up push of post {post_id} of {community}: the marker kept changing")
