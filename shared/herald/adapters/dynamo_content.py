"""Posts, communities, duplicate claims and upload outcomes in one DynamoDB table.

Items (``pk`` / ``sk``; ``gsi1pk`` / ``gsi1sk`` for listings):

=====================  ====================  ==================  ====================================
item                   pk                    sk                  gsi1 (pk / sk)
=====================  ====================  ==================  ====================================
community profile      ``C#<community>``     ``PROFILE``         ``COMMUNITIES`` / ``<community>``
post                   ``C#<community>``     ``POST#<id>``       ``FEED#<community>`` / ``<pinned>#<at>#<id>``
duplicate claim        ``C#<community>``     ``HASH#<sha256>``   -
upload outcome         ``UPLOAD#<key>``      ``OUTCOME``         ``OUTCOMES`` / ``<processed_at>#<key>``
=====================  ====================  ==================  ====================================

Implements :class:`herald.domain.ports.ContentStore`. Every write goes through one
``TransactWriteItems`` whose conditions are the change's guards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.adapters.aws import DynamoTable, as_domain_error, error_code
from herald.domain import limits as bounds
from herald.domain.errors import ConcurrentUpdate
from herald.domain.models import Community, CommunityProfile, Outcome, Post
from herald.domain.ports import Change

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

GSI1 = "gsi1"
_CONFLICT_REASONS = frozenset({"ConditionalCheckFailed", "TransactionConflict"})


def _serializer():  # type: ignore[no-untyped-def]
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


def _deserializer():  # type: ignore[no-untyped-def]
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    ser = _serializer()
    return {k: ser.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    de = _deserializer()
    out = {k: de.deserialize(v) for k, v in item.items()}
    return {k: _plain(v) for k, v in out.items()}


def _plain(value: Any) -> Any:
    """Decimals back to ints (Herald stores no fractions), recursively."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def community_pk(community: str) -> str:
    return f"C#{community}"


def post_key(community: str, post_id: str) -> dict[str, Any]:
    return {"pk": {"S": community_pk(community)}, "sk": {"S": f"POST#{post_id}"}}


def hash_key(community: str, content_hash: str) -> dict[str, Any]:
    return {"pk": {"S": community_pk(community)}, "sk": {"S": f"HASH#{content_hash}"}}


def upload_key(key: str) -> dict[str, Any]:
    return {"pk": {"S": f"UPLOAD#{key}"}, "sk": {"S": "OUTCOME"}}


def profile_key(community: str) -> dict[str, Any]:
    return {"pk": {"S": community_pk(community)}, "sk": {"S": "PROFILE"}}


def feed_sort_key(post: Post) -> str:
    at = (post.publish_at or post.created_at).astimezone(UTC).isoformat(timespec="milliseconds")
    return f"{1 if post.pinned else 0}#{at}#{post.id}"


def post_item(post: Post) -> dict[str, Any]:
    values = post.model_dump(mode="json", exclude_none=True)
    values.update(
        pk=community_pk(post.community),
        sk=f"POST#{post.id}",
        gsi1pk=f"FEED#{post.community}",
        gsi1sk=feed_sort_key(post),
        type="post",
    )
    return to_item(values)


def outcome_item(outcome: Outcome) -> dict[str, Any]:
    values = outcome.model_dump(mode="json", exclude_none=True)
    values.update(
        pk=f"UPLOAD#{outcome.key}",
        sk="OUTCOME",
        gsi1pk="OUTCOMES",
        # Within DynamoDB's 1,024-byte sort key even for a key over Herald's bound (its rejection).
        gsi1sk=bounds.sort_key(values["processed_at"], outcome.key),
        type="outcome",
    )
    return to_item(values)


class DynamoContentStore(DynamoTable):
    ddb: DynamoDBClient

    # -- reads ---------------------------------------------------------------------------------

    def outcome(self, key: str) -> Outcome | None:
        item = self._get(upload_key(key))
        return Outcome.model_validate(item) if item else None

    def community(self, community: str) -> Community | None:
        item = self._get(profile_key(community))
        return _community(item) if item else None

    def posts(self, community: str, post_ids: Sequence[str]) -> dict[str, Post]:
        items = self._batch_get([post_key(community, pid) for pid in dict.fromkeys(post_ids)])
        return {item["id"]: Post.model_validate(item) for item in items}

    def lookup(
        self, community: str, post_ids: Sequence[str], hashes: Sequence[str]
    ) -> tuple[dict[str, Post], dict[str, str]]:
        keys = [post_key(community, pid) for pid in dict.fromkeys(post_ids)]
        keys += [hash_key(community, h) for h in dict.fromkeys(hashes)]
        posts: dict[str, Post] = {}
        owners: dict[str, str] = {}
        for item in self._batch_get(keys):
            if item.get("type") == "hash":
                owners[item["content_hash"]] = item["post_id"]
            else:
                posts[item["id"]] = Post.model_validate(item)
        return posts, owners

    def communities(self) -> Iterable[Community]:
        for item in self._query_gsi("COMMUNITIES"):
            yield _community(item)

    def community_posts(self, community: str) -> Iterable[Post]:
        for item in self._query_gsi(f"FEED#{community}", newest_first=True):
            yield Post.model_validate(item)

    def outcomes(self) -> Iterable[Outcome]:
        for item in self._query_gsi("OUTCOMES", newest_first=True):
            yield Outcome.model_validate(item)

    # -- writes --------------------------------------------------------------------------------

    def commit(self, change: Change) -> None:
        items = list(self._transaction(change))
        if not items:
            return
        try:
            self.ddb.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                reasons = {r.get("Code") for r in exc.response.get("CancellationReasons", [])}
                if reasons & _CONFLICT_REASONS:
                    raise ConcurrentUpdate(f"a guard failed: {sorted(r for r in reasons if r)}") from exc
            raise as_domain_error(exc, "committing a change") from exc
        except BotoCoreError as exc:
            raise as_domain_error(exc, "committing a change") from exc

    def _transaction(self, change: Change) -> Iterator[dict[str, Any]]:
        t = self.table
        post_delta: Counter[str] = Counter()
        if change.outcome is not None:
            put: dict[str, Any] = {"TableName": t, "Item": outcome_item(change.outcome)}
            if change.expect_sequencer is None:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                put["ConditionExpression"] = "#seq = :seq"
                put["ExpressionAttributeNames"] = {"#seq": "sequencer"}
                put["ExpressionAttributeValues"] = {":seq": {"S": change.expect_sequencer}}
            yield {"Put": put}
        for post in change.create_posts:
            yield {
                "Put": {
                    "TableName": t,
                    "Item": post_item(post),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            yield self._claim(post)
            post_delta[post.community] += 1
        for post, expected_version in change.update_posts:
            yield {
                "Put": {
                    "TableName": t,
                    "Item": post_item(post),
                    "ConditionExpression": "#v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(expected_version)}},
                }
            }
            yield self._claim(post)
        for post in change.delete_posts:
            yield {
                "Delete": {
                    "TableName": t,
                    "Key": post_key(post.community, post.id),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            }
            yield self._release(post.community, post.content_hash, post.id)
            post_delta[post.community] -= 1
        for community, content_hash, owner in change.release_hashes:
            yield self._release(community, content_hash, owner)
        communities = set(post_delta) | ({change.profile[0]} if change.profile else set())
        for community in sorted(communities):
            profile = change.profile[1] if change.profile and change.profile[0] == community else None
            update = _community_update(community, post_delta.get(community, 0), profile)
            if update is not None:
                yield {"Update": {"TableName": t, "Key": profile_key(community), **update}}

    def _claim(self, post: Post) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **hash_key(post.community, post.content_hash),
                    "post_id": {"S": post.id},
                    "content_hash": {"S": post.content_hash},
                    "type": {"S": "hash"},
                },
                "ConditionExpression": "attribute_not_exists(pk) OR post_id = :id",
                "ExpressionAttributeValues": {":id": {"S": post.id}},
            }
        }

    def _release(self, community: str, content_hash: str, owner: str) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self.table,
                "Key": hash_key(community, content_hash),
                "ConditionExpression": "attribute_not_exists(pk) OR post_id = :id",
                "ExpressionAttributeValues": {":id": {"S": owner}},
            }
        }

    # -- plumbing ------------------------------------------------------------------------------

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item = self.get_item(key, consistent=True, what="reading an item")
        return from_item(item) if item else None

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [from_item(i) for i in self.batch_get_items(keys, consistent=True, what="reading items")]

    def _query_gsi(self, partition: str, newest_first: bool = False) -> Iterator[dict[str, Any]]:
        params = {
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": {":p": {"S": partition}},
            "ScanIndexForward": not newest_first,
        }
        for item in self.query_items(params, what=f"listing {partition}"):
            yield from_item(item)


def _community(item: dict[str, Any]) -> Community:
    baseline = int(item.get("members_baseline", 0))
    return Community(
        id=item["id"],
        name=item.get("name") or item["id"],
        description=item.get("description"),
        verified=bool(item.get("verified", False)),
        members=baseline + int(item.get("member_delta", 0)),
        members_baseline=baseline,
        posts=int(item.get("post_count", 0)),
        created_year=item.get("created_year"),
        updated_at=item.get("profile_updated_at"),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _community_update(community: str, delta: int, profile: CommunityProfile | None) -> dict[str, Any] | None:
    """One UpdateItem on the community's profile item: its post counter, and the profile if given.

    The item may not exist yet (the first post of a community creates it, named after its id).
    """
    if not delta and profile is None:
        return None
    values: dict[str, Any] = {":id": community, ":gpk": "COMMUNITIES", ":zero": 0}
    sets = ["id = :id", "gsi1pk = :gpk", "gsi1sk = :id"]
    removes: list[str] = []
    if profile is None:
        sets += ["#n = if_not_exists(#n, :id)", "members_baseline = if_not_exists(members_baseline, :zero)"]
    else:
        values.update(
            {
                ":name": profile.name,
                ":verified": profile.verified,
                ":baseline": profile.members or 0,
                ":now": _now(),
            }
        )
        sets += [
            "#n = :name",
            "verified = :verified",
            "members_baseline = :baseline",
            "profile_updated_at = :now",
        ]
        for attr, value in (("description", profile.description), ("created_year", profile.created_year)):
            if value is None:
                removes.append(attr)
            else:
                values[f":{attr}"] = value
                sets.append(f"{attr} = :{attr}")
    if delta:
        values[":delta"] = delta
        expression = f"ADD post_count :delta SET {', '.join(sets)}"
    else:
        sets.append("post_count = if_not_exists(post_count, :zero)")
        expression = f"SET {', '.join(sets)}"
    if removes:
        expression += f" REMOVE {', '.join(removes)}"
    return {
        "UpdateExpression": expression,
        "ExpressionAttributeNames": {"#n": "name"},
        "ExpressionAttributeValues": to_item(values),
    }
