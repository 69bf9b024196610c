"""Members, subscription claims and sharded member counters in one DynamoDB table.

==================  ===========================================  ===========  ==========================
item                pk                                           sk           gsi1 (pk / sk)
==================  ===========================================  ===========  ==========================
member              ``M#<community>#<member_id>``                ``MEMBER``   ``MEMBERS#<c>#<shard>`` / id
subscription claim  ``S#<community>#<subscription id>``          ``CLAIM``    -
counter shard       ``N#<community>#<shard>``                    ``COUNT``    -
count marker        ``L#<community>#<shard>#<stream event id>``  ``APPLIED``  -
==================  ===========================================  ===========  ==========================

A join is two conditional writes and no transaction: put each claim (``attribute_not_exists``),
then the member (``attribute_not_exists``), 3 write units with the member's ``gsi1`` entry. A leave
deletes the member (guarded by its token hash), then its claims. No join or leave writes a counter:
the member counter function counts from the table's stream (:meth:`DynamoMemberStore.add_counts`),
so no item is written by every join. A claim whose member does not hold it (a crash between the two
writes, a claim left by a leave that failed half way) is released by the next join that finds it,
once it is older than ``CLAIM_GRACE_S`` (a join still between its two writes is younger). See
docs/members.md for the capacity arithmetic. Implements :class:`herald.members.ports.MemberStore`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.core.aws import DynamoTable, as_conflict, as_transient, error_code, from_item, to_item
from herald.core.errors import ConcurrentUpdate, TransientError
from herald.members.counting import Step, Tally
from herald.members.rules import Member, subscription_id

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

GSI1 = "gsi1"
CONDITION_FAILED = "ConditionalCheckFailedException"

#: A claim younger than this whose member does not hold it may be a join between its two writes
#: (the claim, then the member); an older one is left over and released. Well above the API
#: function's timeout (10 s), so no join is still running when its claim is taken for left over.
CLAIM_GRACE_S = 60

#: How long a count marker is kept: a stream keeps its records 24 hours, no batch comes again after.
MARKER_TTL_S = 2 * 24 * 3600

#: Attempts of one counter write that conflicts with another batch's (then the batch is retried).
COUNT_ATTEMPTS = 8

log = logging.getLogger(__name__)


def member_key(community: str, member_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"M#{community}#{member_id}"}, "sk": {"S": "MEMBER"}}


def claim_key(community: str, subscription_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"S#{community}#{subscription_id}"}, "sk": {"S": "CLAIM"}}


def shard_key(community: str, shard: int) -> dict[str, Any]:
    return {"pk": {"S": f"N#{community}#{shard}"}, "sk": {"S": "COUNT"}}


def marker_key(community: str, shard: int, event_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"L#{community}#{shard}#{event_id}"}, "sk": {"S": "APPLIED"}}


def members_partition(community: str, shard: int) -> str:
    return f"MEMBERS#{community}#{shard}"


def member_item(member: Member) -> dict[str, Any]:
    values = member.model_dump(mode="json", exclude_none=True)
    values.update(
        pk=f"M#{member.community}#{member.member_id}",
        sk="MEMBER",
        type="member",
        gsi1pk=members_partition(member.community, member.shard),
        gsi1sk=member.member_id,
    )
    return to_item(values)


def claim_item(member: Member, subscription_id: str, now: float) -> dict[str, Any]:
    """The claim item of one of the member's subscriptions, as a join writes it."""
    return {
        **claim_key(member.community, subscription_id),
        "member_id": {"S": member.member_id},
        "community": {"S": member.community},
        "type": {"S": "claim"},
        "claimed_at": {"N": str(int(now))},
    }


def _member(item: dict[str, Any]) -> Member:
    values = from_item(item)
    for key in ("pk", "sk", "type", "gsi1pk", "gsi1sk"):
        values.pop(key, None)
    return Member.model_validate(values)


class DynamoMemberStore(DynamoTable):
    def __init__(
        self,
        table_name: str,
        shards: int = 32,
        dynamodb: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(table_name, dynamodb)
        self.shards = shards
        self.clock = clock

    # -- reads -----------------------------------------------------------------------------------

    def claims(self, community: str, subscription_ids: Sequence[str]) -> dict[str, str]:
        """The claimed subscriptions' members; a claim left over (older than ``CLAIM_GRACE_S``, its
        member gone or not holding it) is released here and not answered."""
        owners: dict[str, str] = {}
        for sid in dict.fromkeys(subscription_ids):
            item = self._get(claim_key(community, sid), consistent=True)
            if item is not None and not self._left_over(community, sid, item):
                owners[sid] = str(item["member_id"]["S"])
        return owners

    def _left_over(self, community: str, sid: str, claim: dict[str, Any]) -> bool:
        claimed_at = float(claim.get("claimed_at", {}).get("N", "0"))  # older claims: made with their member
        if self.clock() - claimed_at < CLAIM_GRACE_S:
            return False
        owner = str(claim["member_id"]["S"])
        member = self.member(community, owner)
        if member is not None and sid in member.subscriptions:
            return False
        released = self._guarded(
            self.ddb.delete_item,
            "releasing a claim left over",
            Key=claim_key(community, sid),
            ConditionExpression="member_id = :m AND (attribute_not_exists(claimed_at) OR claimed_at = :t)",
            ExpressionAttributeValues={":m": {"S": owner}, ":t": claim.get("claimed_at", {"N": "0"})},
        )
        if not released:
            return False  # claimed again meanwhile: decide on a fresh read
        log.info("released a claim of %s whose member does not hold it", community)
        return True

    def member(self, community: str, member_id: str) -> Member | None:
        item = self._get(member_key(community, member_id), consistent=True)
        return _member(item) if item else None

    def count(self, community: str) -> int:
        keys = [shard_key(community, s) for s in range(self.shards)]
        items = self._batch_get(keys, consistent=False)
        return sum(int(item.get("n", {}).get("N", "0")) for item in items)

    def shard_counts(self, community: str) -> dict[int, int]:
        """Each shard's member count, read consistently in one ``BatchGetItem``, and a shard counted 0
        (or not at all) only when its ``gsi1`` partition has no member either.

        The counts come from the stream, a few seconds behind a burst: a shard whose first member
        joined a moment ago may still be counted 0. So a shard counted 0 is looked at (a ``Query``
        of one item, 0.5 read units; in parallel) and counted 1 if it has a member: a shard is
        skipped by the fan-out only when it is empty as the member pages see it
        (:class:`herald.fanout.service.MemberDirectory`)."""
        keys = [shard_key(community, s) for s in range(self.shards)]
        counts = dict.fromkeys(range(self.shards), 0)
        for item in self._batch_get(keys, consistent=True):
            counts[int(item["pk"]["S"].rsplit("#", 1)[1])] = int(item.get("n", {}).get("N", "0"))
        unsure = [s for s, n in counts.items() if n <= 0]
        if unsure:
            with ThreadPoolExecutor(max_workers=min(8, len(unsure))) as pool:
                found = pool.map(lambda s: self.members_page(community, s, None, 1)[0], unsure)
                for shard, members in zip(unsure, found, strict=True):
                    counts[shard] = max(counts[shard], len(members))
        return counts

    def members(self, community: str, shard: int) -> Iterator[Member]:
        params = {
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": {":p": {"S": members_partition(community, shard)}},
        }
        for item in self.query_items(params, what=f"listing the members of {community}"):
            yield _member(item)

    def members_page(
        self, community: str, shard: int, after: str | None, limit: int
    ) -> tuple[list[Member], str | None]:
        """One page of ``members(community, shard)``: up to ``limit`` members after member id ``after``,
        and the last id of the page (None when the shard has no more)."""
        partition = members_partition(community, shard)
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": {":p": {"S": partition}},
            "Limit": limit,
        }
        if after is not None:
            params["ExclusiveStartKey"] = {
                **member_key(community, after),
                "gsi1pk": {"S": partition},
                "gsi1sk": {"S": after},
            }
        try:
            response = self.ddb.query(**params)
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, f"listing the members of {community}") from exc
        members = [_member(item) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return members, (str(last["gsi1sk"]["S"]) if last else None)

    def prune_subscription(self, community: str, member_id: str, subscription: str) -> bool:
        """Remove a subscription the push service says is gone (the web push subscription or the device)
        and delete its claim. A member left without any subscription can never be reached again: the
        member is removed (and the counter function takes it off the count: a member is someone
        Herald can push to). False if there was nothing to remove."""
        for _ in range(4):
            member = self.member(community, member_id)
            if member is None or subscription not in member.subscriptions:
                return False
            if [s for s in member.subscriptions if s != subscription]:
                return self._prune_one(member, subscription)
            # Only while this is still the member's one subscription (a rejoin may have added one).
            condition = "attribute_exists(pk) AND size(subscriptions) = :one AND contains(subscriptions, :s)"
            values = {":one": {"N": "1"}, ":s": {"S": subscription}}
            if not self._delete_member(member, condition, values, f"pruning a dead member of {community}"):
                continue  # rejoined with another subscription, or left: decide again
            self._release(member, member.subscriptions)
            return True
        return False

    def _prune_one(self, member: Member, subscription: str) -> bool:
        community, member_id = member.community, member.member_id
        removes: list[str] = []
        if member.web_push is not None and subscription_id(web_push=member.web_push) == subscription:
            removes.append("web_push")
        if member.device is not None and subscription_id(device=member.device) == subscription:
            removes += ["device", "endpoint_arn"]
        remaining = [s for s in member.subscriptions if s != subscription]
        update = "SET subscriptions = :l" + (f" REMOVE {', '.join(removes)}" if removes else "")
        pruned = self._guarded(
            self.ddb.update_item,
            f"pruning a subscription of {community}",
            Key=member_key(community, member_id),
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk) AND contains(subscriptions, :s)",
            ExpressionAttributeValues={":l": {"L": [{"S": s} for s in remaining]}, ":s": {"S": subscription}},
        )
        if not pruned:
            return False  # pruned, left or rejoined meanwhile: nothing more to do
        self._release(member, [subscription])
        return True

    # -- writes ----------------------------------------------------------------------------------

    def create(self, member: Member) -> None:
        """Claim each subscription, then put the member: two conditional writes, no transaction.

        A claim already taken is a lost race (``ConcurrentUpdate``, the reasons laid out as the
        member, then its claims): the claims made are released. A crash between the claims and the
        member leaves claims without a member, which a later join finds and releases (``claims``).
        """
        what = f"a join of {member.community}"
        self._claim_all(member, member.subscriptions, what)
        try:
            self._put_member(member, "attribute_not_exists(pk)", {}, what)
        except Exception:  # (a process that dies leaves its claims: released later)
            self._release(member, member.subscriptions)
            raise

    def refresh(self, member: Member, new_claims: Sequence[str]) -> None:
        """A repeat join: claim ``new_claims``, then rewrite the member while it exists on its shard."""
        what = f"a repeat join of {member.community}"
        self._claim_all(member, new_claims, what)
        try:
            self._put_member(
                member,
                "attribute_exists(pk) AND #shard = :shard",
                {":shard": {"N": str(member.shard)}},
                what,
            )
        except Exception:  # (a process that dies leaves its claims: released later)
            self._release(member, new_claims)
            raise

    def save_preferences(self, member: Member, expect_token_hash: str) -> bool:
        values = to_item(
            {
                ":p": member.preferences.model_dump(mode="json", exclude_none=True),
                ":u": member.updated_at.isoformat(),
                ":h": expect_token_hash,
            }
        )
        return self._guarded(
            self.ddb.update_item,
            "saving preferences",
            Key=member_key(member.community, member.member_id),
            UpdateExpression="SET preferences = :p, updated_at = :u",
            ConditionExpression="attribute_exists(pk) AND token_hash = :h",
            ExpressionAttributeValues=values,
        )

    def remove(self, community: str, member_id: str, expect_token_hash: str) -> Member | None:
        """Delete the member (guarded by its token hash; the delete answers with the item it
        removed, so nothing is read first), then release its claims. A member already gone (a
        concurrent or retried leave) is None. The counter function takes it off the count."""
        what = f"a leave of {community}"
        try:
            response = self.ddb.delete_item(
                TableName=self.table,
                Key=member_key(community, member_id),
                ConditionExpression="attribute_exists(pk) AND token_hash = :h",
                ExpressionAttributeValues={":h": {"S": expect_token_hash}},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return None
            raise as_transient(exc, what) from exc
        except BotoCoreError as exc:
            raise as_transient(exc, what) from exc
        member = _member(response["Attributes"])
        self._release(member, member.subscriptions)
        return member

    # -- the member count, from the stream ------------------------------------------------------

    def add_counts(self, tally: Tally) -> int:
        """Add a stream batch's changes to the counter shards, each shard's once however often the
        batch is delivered (see ``_add``); the number of counter writes made."""
        return sum(self._add(community, shard, steps) for (community, shard), steps in tally.steps.items())

    def _add(self, community: str, shard: int, steps: list[Step]) -> int:
        """One shard's changes from one delivery, applied once.

        Each write is a transaction of two items: a marker named by the shard and the delivery's
        first record for that shard (``attribute_not_exists``, naming the last record it covers),
        and the ``ADD`` to the shard's count. A delivery of the same records again finds its
        marker: the records up to the marker's last are counted already, the ones after it (a
        retried batch that grew) are counted under a marker of their own.
        """
        writes = 0
        conflicts = 0
        while steps:
            delta = sum(s.delta for s in steps)
            if delta == 0:
                return writes  # nothing to add, nothing to remember
            first, last = steps[0].record, steps[-1].record
            items: list[dict[str, Any]] = [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **marker_key(community, shard, first),
                            "type": {"S": "count-marker"},
                            "last": {"S": last},
                            "delta": {"N": str(delta)},
                            "expires_at": {"N": str(int(self.clock()) + MARKER_TTL_S)},
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                self._count(community, shard, delta),
            ]
            try:
                self._transact(items, f"counting members of {community}")
                return writes + 1
            except ConcurrentUpdate as exc:
                if not exc.guard_failed(0):
                    conflicts += 1  # another batch on the same counter at once: try again
                    if conflicts >= COUNT_ATTEMPTS:
                        raise TransientError(f"counting members of {community}: still contended") from exc
                    time.sleep(min(0.5, 0.01 * 2**conflicts))
                    continue
            marker = self._get(marker_key(community, shard, first), consistent=True)
            applied = str(marker["last"]["S"]) if marker else None
            ids = [s.record for s in steps]
            if applied not in ids:
                return writes  # a part of a delivery counted before: nothing new
            steps = steps[ids.index(applied) + 1 :]
        return writes

    # -- plumbing --------------------------------------------------------------------------------

    def _guarded(self, write: Callable[..., Any], what: str, **params: Any) -> bool:
        """One conditional write (``put_item``, ``update_item``, ``delete_item`` of this table);
        False if its condition failed, any other error as :class:`TransientError`."""
        try:
            write(TableName=self.table, **params)
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise as_transient(exc, what) from exc
        except BotoCoreError as exc:
            raise as_transient(exc, what) from exc
        return True

    def _claim_all(self, member: Member, subscriptions: Sequence[str], what: str) -> None:
        claimed: list[str] = []
        for index, sid in enumerate(subscriptions):
            try:
                free = self._guarded(
                    self.ddb.put_item,
                    what,
                    Item=claim_item(member, sid, self.clock()),
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except TransientError:
                self._release(member, claimed)
                raise
            if not free:
                self._release(member, claimed)
                reasons = ["None"] * (1 + len(subscriptions))
                reasons[1 + index] = "ConditionalCheckFailed"
                raise ConcurrentUpdate(f"{what}: a subscription is claimed", reasons=reasons)
            claimed.append(sid)

    def _put_member(self, member: Member, condition: str, values: dict[str, Any], what: str) -> None:
        params: dict[str, Any] = {"Item": member_item(member), "ConditionExpression": condition}
        if values:
            params["ExpressionAttributeValues"] = values
            params["ExpressionAttributeNames"] = {"#shard": "shard"}
        if not self._guarded(self.ddb.put_item, what, **params):
            raise ConcurrentUpdate(f"{what}: the member's guard failed", reasons=["ConditionalCheckFailed"])

    def _delete_member(self, member: Member, condition: str, values: dict[str, Any], what: str) -> bool:
        """Delete the member item under ``condition``; False if the condition failed."""
        return self._guarded(
            self.ddb.delete_item,
            what,
            Key=member_key(member.community, member.member_id),
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )

    def _release(self, member: Member, subscriptions: Sequence[str]) -> None:
        """Delete the member's claims of ``subscriptions`` (a claim another member holds stays).

        Best effort: a claim left behind (a failure here, a crash) points at a member that does not
        hold it, and is released by the next join that finds it (``claims``)."""
        for sid in subscriptions:
            try:
                self.ddb.delete_item(
                    TableName=self.table,
                    Key=claim_key(member.community, sid),
                    ConditionExpression="attribute_not_exists(pk) OR member_id = :m",
                    ExpressionAttributeValues={":m": {"S": member.member_id}},
                )
            except (ClientError, BotoCoreError) as exc:
                log.warning(
                    "a claim of %s was not released (%s); a later join releases it", member.community, exc
                )

    def _count(self, community: str, shard: int, delta: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": shard_key(community, shard),
                "UpdateExpression": "ADD #n :d SET #c = :c, #s = :s",
                "ExpressionAttributeNames": {"#n": "n", "#c": "community", "#s": "shard"},
                "ExpressionAttributeValues": {
                    ":d": {"N": str(delta)},
                    ":c": {"S": community},
                    ":s": {"N": str(shard)},
                },
            }
        }

    def _transact(self, items: list[dict[str, Any]], what: str) -> None:
        try:
            self.ddb.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            conflict = as_conflict(exc, what)
            if conflict is not None:
                raise conflict from exc  # ``reasons``: the count marker's, then the counter's
            raise as_transient(exc, what) from exc
        except BotoCoreError as exc:
            raise as_transient(exc, what) from exc

    def _get(self, key: dict[str, Any], consistent: bool) -> dict[str, Any] | None:
        return self.get_item(key, consistent=consistent, what="reading a member item")

    def _batch_get(self, keys: list[dict[str, Any]], consistent: bool) -> list[dict[str, Any]]:
        return self.batch_get_items(keys, consistent=consistent, what="reading the member counters")
