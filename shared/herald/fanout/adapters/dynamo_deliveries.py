"""The deliveries table: fan-out ledger, per-(post, member, channel) delivery records, per-post statistics.

=====================  ===========================================  =========================
item                   pk                                           sk
=====================  ===========================================  =========================
fan-out ledger         ``F#<community>#<post_id>``                  ``FANOUT``
statistics             ``F#<community>#<post_id>``                  ``STATS``
planned page           ``F#<community>#<post_id>``                  ``PAGE#<shard>#<after>``
delivery record        ``D#<community>#<post_id>#<member_id>``      ``web`` / ``fcm`` / ``apns``
=====================  ===========================================  =========================

Every item carries ``expires_at`` (TTL): delivery records 30 days, the rest 180 days. Implements
:class:`herald.fanout.service.DeliveryLedger`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.core.aws import DynamoTable, as_transient, error_code, from_item
from herald.fanout.rules import DeliveryStats, PostSummary, Target
from herald.fanout.service import Claim, FinalState

RECORD_TTL_S = 30 * 24 * 3600
LEDGER_TTL_S = 180 * 24 * 3600
_FAILED = "ConditionalCheckFailedException"


def fanout_pk(community: str, post_id: str) -> str:
    return f"F#{community}#{post_id}"


def record_key(post: PostSummary, target: Target) -> dict[str, Any]:
    return {
        "pk": {"S": f"D#{post.community}#{post.post_id}#{target.member_id}"},
        "sk": {"S": target.channel},
    }


def _n(value: float | int) -> dict[str, str]:
    return {"N": str(int(value))}


class DynamoDeliveryLedger(DynamoTable):
    # -- the fan-out ledger -----------------------------------------------------------------------

    def begin(self, post: PostSummary, now: float) -> str:
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": fanout_pk(post.community, post.post_id)},
                    "sk": {"S": "FANOUT"},
                    "state": {"S": "planning"},
                    "community": {"S": post.community},
                    "post_id": {"S": post.post_id},
                    "started_at": _n(now),
                    "expires_at": _n(now + LEDGER_TTL_S),
                },
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == _FAILED:
                old = _old_item(exc) or self._get(fanout_pk(post.community, post.post_id), "FANOUT")
                return str((old or {}).get("state", {}).get("S", "planning"))
            raise as_transient(exc, "starting a fan-out") from exc
        except BotoCoreError as exc:
            raise as_transient(exc, "starting a fan-out") from exc
        return "new"

    def planned(self, post: PostSummary, now: float) -> None:
        self._update(
            {"pk": {"S": fanout_pk(post.community, post.post_id)}, "sk": {"S": "FANOUT"}},
            "SET #s = :s, planned_at = :t",
            {":s": {"S": "planned"}, ":t": _n(now)},
            "recording a planned fan-out",
        )

    def _page_key(self, post: PostSummary, shard: int, after: str | None) -> dict[str, Any]:
        return {
            "pk": {"S": fanout_pk(post.community, post.post_id)},
            "sk": {"S": f"PAGE#{shard}#{after or '^'}"},
        }

    def page_done(self, post: PostSummary, shard: int, after: str | None) -> bool:
        key = self._page_key(post, shard, after)
        return self._get(key["pk"]["S"], key["sk"]["S"]) is not None

    def mark_page(self, post: PostSummary, shard: int, after: str | None, now: float) -> None:
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={
                    **self._page_key(post, shard, after),
                    "at": _n(now),
                    "expires_at": _n(now + LEDGER_TTL_S),
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "recording a planned page") from exc

    # -- delivery records -------------------------------------------------------------------------

    def defer(self, post: PostSummary, found: Sequence[Target], now: float) -> int:
        created = 0
        for target in found:
            try:
                self.ddb.put_item(
                    TableName=self.table,
                    Item={
                        **record_key(post, target),
                        "state": {"S": "deferred"},
                        "attempts": _n(0),
                        "not_before": _n(target.not_before or now),
                        "updated_at": _n(now),
                        "expires_at": _n(now + RECORD_TTL_S),
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
                created += 1
            except ClientError as exc:
                if error_code(exc) != _FAILED:
                    raise as_transient(exc, "recording a deferral") from exc
            except BotoCoreError as exc:
                raise as_transient(exc, "recording a deferral") from exc
        return created

    def claim(self, post: PostSummary, target: Target, attempt: int, now: float, lease_s: float) -> Claim:
        """Claim the record and count the attempt in it (``attempts``: claims so far, this one
        included); ``attempt`` is the job's, kept as ``job_attempt`` for the record's reader."""
        try:
            response = self.ddb.update_item(
                TableName=self.table,
                Key=record_key(post, target),
                UpdateExpression=(
                    "SET #s = :sending, lease_until = :lease, job_attempt = :a, "
                    "attempts = if_not_exists(attempts, :zero) + :one, "
                    "updated_at = :now, expires_at = :exp"
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR #s IN (:deferred, :retry) "
                    "OR (#s = :sending AND lease_until < :now)"
                ),
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":sending": {"S": "sending"},
                    ":deferred": {"S": "deferred"},
                    ":retry": {"S": "retry"},
                    ":lease": {"N": f"{now + lease_s:.3f}"},
                    ":a": _n(attempt),
                    ":zero": _n(0),
                    ":one": _n(1),
                    ":now": {"N": f"{now:.3f}"},
                    ":exp": _n(now + RECORD_TTL_S),
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != _FAILED:
                raise as_transient(exc, "claiming a delivery") from exc
            old = _old_item(exc)
            if old is None:
                key = record_key(post, target)
                old = self._get(key["pk"]["S"], key["sk"]["S"], consistent=True) or {}
            state = old.get("state", {}).get("S")
            if state == "sending":
                return Claim("busy", float(old.get("lease_until", {}).get("N", now)))
            return Claim("done")
        except BotoCoreError as exc:
            raise as_transient(exc, "claiming a delivery") from exc
        old = response.get("Attributes") or {}
        attempts = int(old.get("attempts", {}).get("N", "0")) + 1
        return Claim("again" if old else "new", attempt=attempts)

    def finish(self, post: PostSummary, target: Target, state: FinalState, now: float, detail: str) -> None:
        values: dict[str, Any] = {":s": {"S": state}, ":t": _n(now)}
        expression = "SET #s = :s, updated_at = :t REMOVE lease_until"
        if detail:
            values[":d"] = {"S": detail[:300]}
            expression = "SET #s = :s, updated_at = :t, detail = :d REMOVE lease_until"
        self._update(record_key(post, target), expression, values, "recording a delivery")

    def release(self, post: PostSummary, target: Target, attempt: int, now: float) -> None:
        # The record keeps its count of attempts; the next claim adds one.
        self._update(
            record_key(post, target),
            "SET #s = :s, updated_at = :t REMOVE lease_until",
            {":s": {"S": "retry"}, ":t": _n(now)},
            "recording a retry",
        )

    def record(self, post: PostSummary, target: Target) -> dict[str, Any] | None:
        """A delivery record as plain values (for reports and tests)."""
        key = record_key(post, target)
        item = self._get(key["pk"]["S"], key["sk"]["S"], consistent=True)
        if item is None:
            return None
        return from_item(item)

    # -- statistics -------------------------------------------------------------------------------

    def add_stats(self, post: PostSummary, stats: DeliveryStats, now: float) -> None:
        counters = stats.counters()
        if not counters:
            return
        names = {f"#{k}": k for k in counters}
        values: dict[str, Any] = {f":{k}": _n(v) for k, v in counters.items()}
        values[":t"] = _n(now)
        values[":exp"] = _n(now + LEDGER_TTL_S)
        values[":c"] = {"S": post.community}
        values[":p"] = {"S": post.post_id}
        adds = ", ".join(f"#{k} :{k}" for k in counters)
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": fanout_pk(post.community, post.post_id)}, "sk": {"S": "STATS"}},
                UpdateExpression=(
                    f"ADD {adds} SET updated_at = :t, expires_at = :exp, community = :c, post_id = :p"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "adding delivery statistics") from exc

    def stats(self, community: str, post_id: str) -> dict[str, int] | None:
        """The post's delivery statistics (targeted, sent, failed, pruned, deferred), None before any."""
        item = self._get(fanout_pk(community, post_id), "STATS")
        if item is None:
            return None
        return {name: int(item.get(name, {}).get("N", "0")) for name in DeliveryStats.FIELDS}

    # -- plumbing ---------------------------------------------------------------------------------

    def _get(self, pk: str, sk: str, consistent: bool = False) -> dict[str, Any] | None:
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
        return self.get_item(key, consistent=consistent, what="reading the deliveries table")

    def _update(self, key: dict[str, Any], expression: str, values: dict[str, Any], what: str) -> None:
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression=expression,
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=values,
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, what) from exc


def _old_item(exc: ClientError) -> dict[str, Any] | None:
    """The item a failed condition saw (``ReturnValuesOnConditionCheckFailure="ALL_OLD"``), if sent."""
    item = exc.response.get("Item")
    return item if isinstance(item, dict) else None
