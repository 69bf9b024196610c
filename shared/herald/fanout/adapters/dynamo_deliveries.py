"""The deliveries table: fan-out ledger, push jobs (a lease and the progress of each), per-post statistics.

=====================  ===========================================  =========================
item                   pk                                           sk
=====================  ===========================================  =========================
fan-out ledger         ``F#<community>#<post_id>``                  ``FANOUT`` (follow-up ``FANOUT#<lang>``)
statistics             ``F#<community>#<post_id>``                  ``STATS``
planned page           ``F#<community>#<post_id>``                  ``PAGE[#<lang>]#<shard>#<after>``
push job               ``J#<community>#<post_id>#<job_id>``         ``JOB``
=====================  ===========================================  =========================

A push job's item is its lease and its progress (:class:`herald.fanout.service.JobLease`): ``state``
(``sending``, ``released``, ``deferred``, ``done``), the claim's ``token`` and ``lease_until``,
``attempts`` (claims since the job's last progress), ``done`` (a bitmap of the members finished,
:func:`herald.fanout.rules.done_bits`), the job's statistics so far (``n_sent``, ``n_failed``, ...)
and, when members failed or were pruned, why (``failures``: member, channel, detail; at most 10).
Its key holds the job id, so one post's jobs spread over the table's partitions. Every item carries
``expires_at`` (TTL): push jobs 30 days, the rest 180 days. Implements
:class:`herald.fanout.service.DeliveryLedger`.
"""

from __future__ import annotations

import secrets
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.core.aws import DynamoTable, as_transient, error_code, from_item
from herald.fanout.rules import DeliveryStats, PostSummary, done_bits, done_from_bits
from herald.fanout.service import JobLease, Progress

RECORD_TTL_S = 30 * 24 * 3600
LEDGER_TTL_S = 180 * 24 * 3600
_FAILED = "ConditionalCheckFailedException"


def fanout_pk(community: str, post_id: str) -> str:
    return f"F#{community}#{post_id}"


def _wave(post: PostSummary) -> str:
    """The ledger's mark of a follow-up fan-out (a variant that came after the first push): its own
    start and pages beside the first push's; nothing for the first push (the keys it always had)."""
    return "" if post.follow_up is None else f"#{post.follow_up}"


def ledger_sk(post: PostSummary) -> str:
    return f"FANOUT{_wave(post)}"


def job_key(post: PostSummary, job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"J#{post.community}#{post.post_id}#{job_id}"}, "sk": {"S": "JOB"}}


#: The statistics a push job keeps until it ends (``n_<name>`` on its item).
_COUNTED = ("sent", "failed", "pruned", "retried", "auth_failures")


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
                    "sk": {"S": ledger_sk(post)},
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
                old = _old_item(exc) or self._get(fanout_pk(post.community, post.post_id), ledger_sk(post))
                return str((old or {}).get("state", {}).get("S", "planning"))
            raise as_transient(exc, "starting a fan-out") from exc
        except BotoCoreError as exc:
            raise as_transient(exc, "starting a fan-out") from exc
        return "new"

    def planned(self, post: PostSummary, now: float) -> None:
        self._update(
            {"pk": {"S": fanout_pk(post.community, post.post_id)}, "sk": {"S": ledger_sk(post)}},
            "SET #s = :s, planned_at = :t",
            {":s": {"S": "planned"}, ":t": _n(now)},
            "recording a planned fan-out",
        )

    def _page_key(self, post: PostSummary, shard: int, after: str | None) -> dict[str, Any]:
        return {
            "pk": {"S": fanout_pk(post.community, post.post_id)},
            "sk": {"S": f"PAGE{_wave(post)}#{shard}#{after or '^'}"},
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

    # -- push jobs --------------------------------------------------------------------------------

    def defer_job(self, post: PostSummary, job_id: str, size: int, now: float) -> bool:
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={
                    **job_key(post, job_id),
                    "state": {"S": "deferred"},
                    "attempts": _n(0),
                    "size": _n(size),
                    "deferred": {"BOOL": True},
                    "updated_at": _n(now),
                    "expires_at": _n(now + RECORD_TTL_S),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == _FAILED:
                return False
            raise as_transient(exc, "recording a deferral") from exc
        except BotoCoreError as exc:
            raise as_transient(exc, "recording a deferral") from exc
        return True

    def claim_job(self, post: PostSummary, job_id: str, size: int, now: float, lease_s: float) -> JobLease:
        token = secrets.token_hex(8)
        try:
            response = self.ddb.update_item(
                TableName=self.table,
                Key=job_key(post, job_id),
                UpdateExpression=(
                    "SET #s = :sending, #tok = :tok, #lease = :lease, #size = :size, "
                    "#att = if_not_exists(#att, :zero) + :one, #up = :now, #exp = :exp"
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR #s IN (:released, :deferred) "
                    "OR (#s = :sending AND #lease < :now)"
                ),
                ExpressionAttributeNames={
                    "#s": "state",
                    "#tok": "token",
                    "#lease": "lease_until",
                    "#size": "size",
                    "#att": "attempts",
                    "#up": "updated_at",
                    "#exp": "expires_at",
                },
                ExpressionAttributeValues={
                    ":sending": {"S": "sending"},
                    ":released": {"S": "released"},
                    ":deferred": {"S": "deferred"},
                    ":tok": {"S": token},
                    ":lease": {"N": f"{now + lease_s:.3f}"},
                    ":size": _n(size),
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
                raise as_transient(exc, "claiming a push job") from exc
            old = _old_item(exc)
            if old is None:
                key = job_key(post, job_id)
                old = self._get(key["pk"]["S"], key["sk"]["S"], consistent=True) or {}
            if old.get("state", {}).get("S") == "sending":
                return JobLease("busy", until=float(old.get("lease_until", {}).get("N", now)))
            return JobLease("done")
        except BotoCoreError as exc:
            raise as_transient(exc, "claiming a push job") from exc
        old = response.get("Attributes") or {}
        bits = old.get("done", {}).get("B", b"")
        counted = DeliveryStats()
        for name in _COUNTED:
            setattr(counted, name, int(old.get(f"n_{name}", {}).get("N", "0")))
        return JobLease(
            "again" if old else "new",
            token=token,
            done=done_from_bits(bits, size),
            counted=counted,
            attempts=int(old.get("attempts", {}).get("N", "0")) + 1,
            deferred=bool(old.get("deferred", {}).get("BOOL", False)),
        )

    def checkpoint(self, post: PostSummary, job_id: str, progress: Progress, now: float) -> bool:
        state, failures = progress.state, progress.failures
        names = {
            "#s": "state",
            "#tok": "token",
            "#done": "done",
            "#up": "updated_at",
            "#lease": "lease_until",
        }
        values: dict[str, Any] = {
            ":state": {"S": state},
            ":sending": {"S": "sending"},
            ":tok": {"S": progress.lease.token},
            ":done": {"B": done_bits(progress.done, progress.size)},
            ":now": _n(now),
        }
        sets = ["#s = :state", "#done = :done", "#up = :now"]
        if failures:
            names["#why"] = "failures"
            values[":why"] = {
                "L": [
                    {"M": {"member": {"S": m}, "channel": {"S": c}, "detail": {"S": d[:300]}}}
                    for m, c, d in failures
                ]
            }
            sets.append("#why = :why")
        for name in _COUNTED:
            names[f"#n_{name}"] = f"n_{name}"
            values[f":n_{name}"] = _n(getattr(progress.counted, name))
            sets.append(f"#n_{name} = :n_{name}")
        names["#att"] = "attempts"
        if state == "sending":
            # Progress: of the claims since, only this one (if it dies, the next claim knows).
            values[":lease"] = {"N": f"{now + progress.lease_s:.3f}"}
            values[":one"] = _n(1)
            sets += ["#lease = :lease", "#att = :one"]
            expression = "SET " + ", ".join(sets)
        else:
            values[":zero"] = _n(0)
            sets.append("#att = :zero")  # a clean end: the count of unfinished claims starts again
            expression = "SET " + ", ".join(sets) + " REMOVE #lease"
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=job_key(post, job_id),
                UpdateExpression=expression,
                ConditionExpression="#tok = :tok AND #s = :sending",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == _FAILED:
                return False
            raise as_transient(exc, "recording a push job's progress") from exc
        except BotoCoreError as exc:
            raise as_transient(exc, "recording a push job's progress") from exc
        return True

    def job(self, post: PostSummary, job_id: str) -> dict[str, Any] | None:
        """A push job's item as plain values (for reports and tests)."""
        key = job_key(post, job_id)
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
