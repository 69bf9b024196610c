"""The fan-out marker of a post: which languages its pushes went out in, decided once.

The publisher starts a post's first push (at once, or once the translations it names came or their
window ended) and a follow-up per language that came after it (:mod:`herald.site.publisher`). Each
start is recorded here first, with a conditional write, so whichever of the post's stream record
and its window's wake-up gets there first decides the languages, and no language is pushed twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from herald.content.keys import community_pk
from herald.core.aws import DynamoTable, as_transient, error_code
from herald.core.errors import TransientError

ATTEMPTS = 4

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
                # No ReturnValuesOnConditionCheckFailure: the role may write this item's attributes
                # and read it, and the repeat that reads it again is rare.
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                old = self.get_item(
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
