"""Members, subscription claims and sharded member counters in one DynamoDB table.

=====================  ===================================  ==========  ====================================
item                   pk                                   sk          gsi1 (pk / sk)
=====================  ===================================  ==========  ====================================
member                 ``M#<community>#<member_id>``        ``MEMBER``  ``MEMBERS#<community>#<shard>`` / id
subscription claim     ``S#<community>#<subscription id>``  ``CLAIM``   -
counter shard          ``N#<community>#<shard>``            ``COUNT``   -
=====================  ===================================  ==========  ====================================

A join is one ``TransactWriteItems``: put the member (``attribute_not_exists``), put each claim
(``attribute_not_exists``), ``ADD n 1`` on the member's shard. A leave is the reverse, guarded by
the member's token hash. No item is written by every join: the counter is spread over the shards
(see docs/members.md for the capacity arithmetic). Implements :class:`herald.members.ports.MemberStore`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.core.aws import DynamoTable, as_conflict, as_transient, error_code, from_item, to_item
from herald.core.errors import ConcurrentUpdate
from herald.members.rules import Member, subscription_id

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

GSI1 = "gsi1"


def member_key(community: str, member_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"M#{community}#{member_id}"}, "sk": {"S": "MEMBER"}}


def claim_key(community: str, subscription_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"S#{community}#{subscription_id}"}, "sk": {"S": "CLAIM"}}


def shard_key(community: str, shard: int) -> dict[str, Any]:
    return {"pk": {"S": f"N#{community}#{shard}"}, "sk": {"S": "COUNT"}}


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


def _member(item: dict[str, Any]) -> Member:
    values = from_item(item)
    for key in ("pk", "sk", "type", "gsi1pk", "gsi1sk"):
        values.pop(key, None)
    return Member.model_validate(values)


class DynamoMemberStore(DynamoTable):
    def __init__(self, table_name: str, shards: int = 32, dynamodb: DynamoDBClient | None = None) -> None:
        super().__init__(table_name, dynamodb)
        self.shards = shards

    # -- reads -----------------------------------------------------------------------------------

    def claims(self, community: str, subscription_ids: Sequence[str]) -> dict[str, str]:
        owners: dict[str, str] = {}
        for sid in dict.fromkeys(subscription_ids):
            item = self._get(claim_key(community, sid), consistent=True)
            if item is not None:
                owners[sid] = str(item["member_id"]["S"])
        return owners

    def member(self, community: str, member_id: str) -> Member | None:
        item = self._get(member_key(community, member_id), consistent=True)
        return _member(item) if item else None

    def count(self, community: str) -> int:
        keys = [shard_key(community, s) for s in range(self.shards)]
        items = self._batch_get(keys, consistent=False)
        return sum(int(item.get("n", {}).get("N", "0")) for item in items)

    def shard_counts(self, community: str) -> dict[int, int]:
        """Each shard's member count (a shard without a counter item: 0), read consistently in one
        ``BatchGetItem``: a join or a leave writes its member and its shard's count in one
        transaction, so a shard counted 0 has no member (:class:`herald.fanout.service.MemberDirectory`)."""
        keys = [shard_key(community, s) for s in range(self.shards)]
        counts = dict.fromkeys(range(self.shards), 0)
        for item in self._batch_get(keys, consistent=True):
            counts[int(item["pk"]["S"].rsplit("#", 1)[1])] = int(item.get("n", {}).get("N", "0"))
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
        member is removed and taken off the count (a member is someone Herald can push to). False if
        there was nothing to remove."""
        for _ in range(4):
            member = self.member(community, member_id)
            if member is None or subscription not in member.subscriptions:
                return False
            if [s for s in member.subscriptions if s != subscription]:
                return self._prune_one(member, subscription)
            try:
                items = self._removal(member, only_subscription=subscription)
                self._transact(items, f"pruning a dead member of {community}")
            except ConcurrentUpdate:
                continue  # rejoined with another subscription, left, or a busy shard: decide again
            return True
        return False

    def _removal(
        self, member: Member, *, only_subscription: str | None = None, token_hash: str | None = None
    ) -> list[dict[str, Any]]:
        """The transaction that ends a membership: the member, its claims, its count."""
        condition = "attribute_exists(pk)"
        values: dict[str, Any] = {}
        if token_hash is not None:
            condition += " AND token_hash = :h"
            values[":h"] = {"S": token_hash}
        if only_subscription is not None:
            # Only while this is still the member's one subscription (a rejoin may have added one).
            condition += " AND size(subscriptions) = :one AND contains(subscriptions, :s)"
            values[":one"] = {"N": "1"}
            values[":s"] = {"S": only_subscription}
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": member_key(member.community, member.member_id),
                    "ConditionExpression": condition,
                    **({"ExpressionAttributeValues": values} if values else {}),
                }
            }
        ]
        items += [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": claim_key(member.community, sid),
                    "ConditionExpression": "attribute_not_exists(pk) OR member_id = :m",
                    "ExpressionAttributeValues": {":m": {"S": member.member_id}},
                }
            }
            for sid in member.subscriptions
        ]
        items.append(self._count(member.community, member.shard, -1))
        return items

    def _prune_one(self, member: Member, subscription: str) -> bool:
        community, member_id = member.community, member.member_id
        removes: list[str] = []
        if member.web_push is not None and subscription_id(web_push=member.web_push) == subscription:
            removes.append("web_push")
        if member.device is not None and subscription_id(device=member.device) == subscription:
            removes += ["device", "endpoint_arn"]
        remaining = [s for s in member.subscriptions if s != subscription]
        update = "SET subscriptions = :l" + (f" REMOVE {', '.join(removes)}" if removes else "")
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": member_key(community, member_id),
                    "UpdateExpression": update,
                    "ConditionExpression": "attribute_exists(pk) AND contains(subscriptions, :s)",
                    "ExpressionAttributeValues": {
                        ":l": {"L": [{"S": s} for s in remaining]},
                        ":s": {"S": subscription},
                    },
                }
            },
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": claim_key(community, subscription),
                    "ConditionExpression": "attribute_not_exists(pk) OR member_id = :m",
                    "ExpressionAttributeValues": {":m": {"S": member_id}},
                }
            },
        ]
        try:
            self._transact(items, f"pruning a subscription of {community}")
        except ConcurrentUpdate:
            return False  # pruned, left or rejoined meanwhile: nothing more to do
        return True

    # -- writes ----------------------------------------------------------------------------------

    def create(self, member: Member) -> None:
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": member_item(member),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        items += [self._claim(member, sid) for sid in member.subscriptions]
        items.append(self._count(member.community, member.shard, +1))
        self._transact(items, f"a join of {member.community}")

    def refresh(self, member: Member, new_claims: Sequence[str]) -> None:
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": member_item(member),
                    "ConditionExpression": "attribute_exists(pk) AND #shard = :shard",
                    "ExpressionAttributeNames": {"#shard": "shard"},
                    "ExpressionAttributeValues": {":shard": {"N": str(member.shard)}},
                }
            }
        ]
        items += [self._claim(member, sid) for sid in new_claims]
        self._transact(items, f"a repeat join of {member.community}")

    def save_preferences(self, member: Member, expect_token_hash: str) -> bool:
        values = to_item(
            {
                ":p": member.preferences.model_dump(mode="json", exclude_none=True),
                ":u": member.updated_at.isoformat(),
                ":h": expect_token_hash,
            }
        )
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=member_key(member.community, member.member_id),
                UpdateExpression="SET preferences = :p, updated_at = :u",
                ConditionExpression="attribute_exists(pk) AND token_hash = :h",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise as_transient(exc, "saving preferences") from exc
        except BotoCoreError as exc:
            raise as_transient(exc, "saving preferences") from exc
        return True

    def remove(self, community: str, member_id: str, expect_token_hash: str) -> Member | None:
        member = self.member(community, member_id)
        if member is None or member.token_hash != expect_token_hash:
            return None
        items = self._removal(member, token_hash=expect_token_hash)
        try:
            self._transact(items, f"a leave of {community}")
        except ConcurrentUpdate as exc:
            if exc.guard_failed(0):  # the member's own item (the first): left meanwhile
                return None  # (a concurrent or retried leave)
            raise
        return member

    # -- plumbing --------------------------------------------------------------------------------

    def _claim(self, member: Member, subscription_id: str) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **claim_key(member.community, subscription_id),
                    "member_id": {"S": member.member_id},
                    "community": {"S": member.community},
                    "type": {"S": "claim"},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

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
                raise conflict from exc  # ``reasons``: each item's, the member's first
            raise as_transient(exc, what) from exc
        except BotoCoreError as exc:
            raise as_transient(exc, what) from exc

    def _get(self, key: dict[str, Any], consistent: bool) -> dict[str, Any] | None:
        return self.get_item(key, consistent=consistent, what="reading a member item")

    def _batch_get(self, keys: list[dict[str, Any]], consistent: bool) -> list[dict[str, Any]]:
        return self.batch_get_items(keys, consistent=consistent, what="reading the member counters")
