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

import base64
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.core.aws import DynamoTable, as_conflict, as_transient, error_code, from_item
from herald.core.errors import ConcurrentUpdate, TransientError
from herald.members.rules import Member, Preferences, b64url_bytes, subscription_id

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from herald.members.counting import Step, Tally

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


def claim_item(member: Member, subscription_id: str, now: float) -> dict[str, Any]:
    """The claim item of one of the member's subscriptions, as a join writes it."""
    return {
        **claim_key(member.community, subscription_id),
        "member_id": {"S": member.member_id},
        "community": {"S": member.community},
        "type": {"S": "claim"},
        "claimed_at": {"N": str(int(now))},
    }


# -- the member item -------------------------------------------------------------------------------
#
# A member item is written compactly, so that one with a long push endpoint, a device and its
# preferences stays under 1 KB (1 write unit per copy: the table's and gsi1's). Community, member id
# and shard are in the keys and nowhere else. The short attributes:
#
#   h  token hash         B 32 bytes (S: the text, if it is not lowercase hex)
#   s  subscription ids   L of B 32 bytes each, in order (an S element: one that is not lowercase hex)
#   e  web push endpoint  S; without its tail when ``t`` is there
#   t  endpoint tail      B: the endpoint's last run of base64url characters (a multiple of 4), decoded
#   k  p256dh, a  auth    B (S: the text, if it is not unpadded base64url)
#   d  device             S ``<platform>:<token>``
#   n  endpoint ARN       S
#   l  languages          S, the 2-letter codes one after another (absent: none)
#   o  topics             S, space-separated (absent: none)
#   m  muted              BOOL true (absent: false)
#   q  quiet hours        S ``<start> <end> <timezone>``
#   j  joined at          N seconds since the epoch, to the microsecond (S: ISO 8601, if naive)
#   u  updated at         as ``j``; absent when it equals ``j``
#
# Items written before this layout (``token_hash``, ``subscriptions``, ``web_push``, ``device``,
# ``endpoint_arn``, ``preferences``, ``joined_at``, ``updated_at``, and ``community``/``shard``/``type``
# beside the keys) are read field by field: each field from its short attribute if the item has it,
# else from its old one. Updates write short attributes and remove the old ones they replace.

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_B64_TAIL = re.compile(r"[A-Za-z0-9_-]+\Z")
#: An endpoint tail shorter than this is kept as text (binary saves a quarter, less than it is worth).
_MIN_PACKED_TAIL = 16
#: The old item's attributes, each replaced by short ones.
LEGACY_ATTRIBUTES = (
    "token_hash",
    "subscriptions",
    "web_push",
    "device",
    "endpoint_arn",
    "preferences",
    "joined_at",
    "updated_at",
    "community",
    "member_id",
    "shard",
    "type",
)
#: What a web push subscription, a device and preferences are written as (new and old attributes).
WEB_PUSH_ATTRIBUTES = ("e", "t", "k", "a", "web_push")
DEVICE_ATTRIBUTES = ("d", "n", "device", "endpoint_arn")
PREFERENCE_ATTRIBUTES = ("l", "o", "m", "q")


def _hex_value(value: str) -> dict[str, Any]:
    return {"B": bytes.fromhex(value)} if _HEX64.fullmatch(value) else {"S": value}


def _hex_text(value: dict[str, Any]) -> str:
    return bytes(value["B"]).hex() if "B" in value else str(value["S"])


def _b64_value(value: str) -> dict[str, Any]:
    """Unpadded base64url as its bytes; anything else (padded, say) as the text itself."""
    try:
        raw = b64url_bytes(value)
    except ValueError:
        return {"S": value}
    return {"B": raw} if _b64(raw) == value else {"S": value}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64_text(value: dict[str, Any]) -> str:
    return _b64(bytes(value["B"])) if "B" in value else str(value["S"])


def _time_value(moment: datetime) -> dict[str, Any]:
    if moment.utcoffset() is None:
        return {"S": moment.isoformat()}  # naive: kept as written
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    seconds, fraction = divmod(micros, 1_000_000)
    text = f"{seconds}.{fraction:06d}".rstrip("0").rstrip(".")
    return {"N": text}


def _time(value: dict[str, Any]) -> datetime:
    if "S" in value:
        return datetime.fromisoformat(str(value["S"]))
    micros = int(Decimal(str(value["N"])) * 1_000_000)
    return _EPOCH + timedelta(microseconds=micros)


def _endpoint_attributes(endpoint: str) -> dict[str, Any]:
    """``e`` (and ``t``): the endpoint, its long base64url tail as bytes. A tail of a multiple of 4
    characters decodes to bytes that encode back to exactly those characters."""
    match = _B64_TAIL.search(endpoint)
    tail = match.group() if match else ""
    tail = tail[len(tail) % 4 :]
    if len(tail) < _MIN_PACKED_TAIL:
        return {"e": {"S": endpoint}}
    return {"e": {"S": endpoint[: len(endpoint) - len(tail)]}, "t": {"B": b64url_bytes(tail)}}


def _preference_attributes(preferences: Preferences) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if preferences.languages:
        attributes["l"] = {"S": "".join(preferences.languages)}
    if preferences.topics:
        attributes["o"] = {"S": " ".join(preferences.topics)}
    if preferences.muted:
        attributes["m"] = {"BOOL": True}
    if preferences.quiet_hours is not None:
        quiet = preferences.quiet_hours
        attributes["q"] = {"S": f"{quiet.start} {quiet.end} {quiet.timezone}"}
    return attributes


def member_item(member: Member) -> dict[str, Any]:
    """The member's item (the one encoder; :func:`decode_member` reads it back)."""
    item: dict[str, Any] = {
        **member_key(member.community, member.member_id),
        "gsi1pk": {"S": members_partition(member.community, member.shard)},
        "gsi1sk": {"S": member.member_id},
        "h": _hex_value(member.token_hash),
        "s": {"L": [_hex_value(s) for s in member.subscriptions]},
        "j": _time_value(member.joined_at),
    }
    if _time_value(member.updated_at) != item["j"]:
        item["u"] = _time_value(member.updated_at)
    if member.web_push is not None:
        item.update(_endpoint_attributes(member.web_push.endpoint))
        item["k"] = _b64_value(member.web_push.keys.p256dh)
        item["a"] = _b64_value(member.web_push.keys.auth)
    if member.device is not None:
        item["d"] = {"S": f"{member.device.platform}:{member.device.token}"}
    if member.endpoint_arn is not None:
        item["n"] = {"S": member.endpoint_arn}
    item.update(_preference_attributes(member.preferences))
    return item


#: The member's token hash is the one given (``h``, or an old item's ``token_hash``).
TOKEN_GUARD = "attribute_exists(pk) AND (h = :h OR token_hash = :oh)"


def _token_guard_values(token_hash: str) -> dict[str, Any]:
    return {":h": _hex_value(token_hash), ":oh": {"S": token_hash}}


def member_shard(item: Mapping[str, Any] | None) -> tuple[str, int] | None:
    """(community, shard) of a member item or stream image (wire format), from its keys; None if it
    is not a member's."""
    if not item:
        return None
    pk = str((item.get("pk") or {}).get("S", ""))
    if not pk.startswith("M#") or (item.get("sk") or {}).get("S") != "MEMBER":
        return None
    try:
        community = pk[2:].rsplit("#", 1)[0]
        if "gsi1pk" in item:
            shard = int(str(item["gsi1pk"]["S"]).rsplit("#", 1)[1])
        else:  # (an image without its index key: the old layout's own attribute)
            shard = int(item["shard"]["N"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return community, shard


def decode_member(item: Mapping[str, Any]) -> Member:
    """The member of a member item, in the short layout or the old one (or, after an update of an
    old item, both: each field from its short attribute if there, else from its old one)."""
    where = member_shard(item)
    if where is None:
        raise ValueError(f"not a member item: {item.get('pk')!r}")
    community, shard = where
    old = from_item({name: item[name] for name in LEGACY_ATTRIBUTES if name in item})
    values: dict[str, Any] = {
        "community": community,
        "member_id": str(item["pk"]["S"]).rsplit("#", 1)[1],
        "shard": shard,
        "token_hash": _hex_text(item["h"]) if "h" in item else old.get("token_hash"),
        "subscriptions": (
            [_hex_text(s) for s in item["s"]["L"]] if "s" in item else old.get("subscriptions", [])
        ),
        "joined_at": _time(item["j"]) if "j" in item else old.get("joined_at"),
    }
    if "u" in item:
        values["updated_at"] = _time(item["u"])
    elif "updated_at" in old:
        values["updated_at"] = old["updated_at"]
    else:
        values["updated_at"] = values["joined_at"]
    if "e" in item:
        endpoint = str(item["e"]["S"]) + (_b64(bytes(item["t"]["B"])) if "t" in item else "")
        keys = {"p256dh": _b64_text(item["k"]), "auth": _b64_text(item["a"])}
        values["web_push"] = {"endpoint": endpoint, "keys": keys}
    elif "web_push" in old:
        values["web_push"] = old["web_push"]
    if "d" in item:
        platform, _, token = str(item["d"]["S"]).partition(":")
        values["device"] = {"platform": platform, "token": token}
    elif "device" in old:
        values["device"] = old["device"]
    if "n" in item:
        values["endpoint_arn"] = str(item["n"]["S"])
    elif "endpoint_arn" in old:
        values["endpoint_arn"] = old["endpoint_arn"]
    if "preferences" in old and not any(name in item for name in PREFERENCE_ATTRIBUTES):
        values["preferences"] = old["preferences"]
    else:
        values["preferences"] = _preferences(item)
    return Member.model_validate(values)


def _preferences(item: Mapping[str, Any]) -> Preferences:
    languages = str(item.get("l", {}).get("S", ""))
    topics = str(item.get("o", {}).get("S", ""))
    values: dict[str, Any] = {
        "languages": [languages[i : i + 2] for i in range(0, len(languages), 2)],
        "topics": topics.split(" ") if topics else [],
        "muted": bool(item.get("m", {}).get("BOOL", False)),
    }
    if "q" in item:
        start, end, timezone = str(item["q"]["S"]).split(" ", 2)
        values["quiet_hours"] = {"start": start, "end": end, "timezone": timezone}
    return Preferences.model_validate(values)


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
        return decode_member(item) if item else None

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
            yield decode_member(item)

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
        members = [decode_member(item) for item in response.get("Items", [])]
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
            # Only while this is still the member's one subscription (a rejoin may have added one);
            # in either layout (``s``, or an old item's ``subscriptions``).
            condition = (
                "attribute_exists(pk) AND ((size(s) = :one AND contains(s, :s))"
                " OR (size(subscriptions) = :one AND contains(subscriptions, :os)))"
            )
            values = {":one": {"N": "1"}, ":s": _hex_value(subscription), ":os": {"S": subscription}}
            if not self._delete_member(member, condition, values, f"pruning a dead member of {community}"):
                continue  # rejoined with another subscription, or left: decide again
            self._release(member, member.subscriptions)
            return True
        return False

    def _prune_one(self, member: Member, subscription: str) -> bool:
        community, member_id = member.community, member.member_id
        removes = ["subscriptions"]  # (an old item's list: ``s`` replaces it)
        if member.web_push is not None and subscription_id(web_push=member.web_push) == subscription:
            removes += WEB_PUSH_ATTRIBUTES
        if member.device is not None and subscription_id(device=member.device) == subscription:
            removes += DEVICE_ATTRIBUTES
        remaining = [s for s in member.subscriptions if s != subscription]
        pruned = self._guarded(
            self.ddb.update_item,
            f"pruning a subscription of {community}",
            Key=member_key(community, member_id),
            UpdateExpression=f"SET s = :l REMOVE {', '.join(removes)}",
            ConditionExpression="attribute_exists(pk) AND (contains(s, :s) OR contains(subscriptions, :os))",
            ExpressionAttributeValues={
                ":l": {"L": [_hex_value(s) for s in remaining]},
                ":s": _hex_value(subscription),
                ":os": {"S": subscription},
            },
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
                "attribute_exists(pk) AND gsi1pk = :g",
                {":g": {"S": members_partition(member.community, member.shard)}},
                what,
            )
        except Exception:  # (a process that dies leaves its claims: released later)
            self._release(member, new_claims)
            raise

    def save_preferences(self, member: Member, expect_token_hash: str) -> bool:
        given = _preference_attributes(member.preferences)
        values = {f":{name}": value for name, value in given.items()}
        values.update({":u": _time_value(member.updated_at), **_token_guard_values(expect_token_hash)})
        sets = ", ".join(f"{name} = :{name}" for name in [*given, "u"])
        # An old item's ``preferences`` and ``updated_at`` are replaced by the short attributes.
        removes = [name for name in PREFERENCE_ATTRIBUTES if name not in given] + [
            "preferences",
            "updated_at",
        ]
        return self._guarded(
            self.ddb.update_item,
            "saving preferences",
            Key=member_key(member.community, member.member_id),
            UpdateExpression=f"SET {sets} REMOVE {', '.join(removes)}",
            ConditionExpression=TOKEN_GUARD,
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
                ConditionExpression=TOKEN_GUARD,
                ExpressionAttributeValues=_token_guard_values(expect_token_hash),
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return None
            raise as_transient(exc, what) from exc
        except BotoCoreError as exc:
            raise as_transient(exc, what) from exc
        member = decode_member(response["Attributes"])
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
