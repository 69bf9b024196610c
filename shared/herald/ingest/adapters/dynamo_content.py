"""Posts, communities, duplicate claims and upload outcomes in one DynamoDB table.

Items (``pk`` / ``sk``; ``gsi1pk`` / ``gsi1sk`` for listings):

=====================  ====================  ==================  ====================================
item                   pk                    sk                  gsi1 (pk / sk)
=====================  ====================  ==================  ====================================
community profile      ``C#<community>``     ``PROFILE``         ``COMMUNITIES`` / ``<community>``
post                   ``C#<community>``     ``POST#<id>``       ``FEED#<community>`` / ``<pinned>#<at>#<id>``
duplicate claim        ``C#<community>``     ``HASH#<sha256>``   -
waiting duplicate      ``C#<community>``     ``DUP#<sha256>#<id>``  -
upload outcome         ``UPLOAD#<key>``      ``OUTCOME``         ``OUTCOMES`` / ``<processed_at>#<key>``
published by the key   ``KEY#<sha256(key)>`` ``PUB#<id>``        -
waiting, by the key    ``KEY#<sha256(key)>`` ``WAIT#<id>``       -
import progress        ``KEY#<sha256(key)>`` ``IMPORT``          -
language variant       ``C#<community>``     ``VAR#<id>#<lang>``  -
post stem              ``C#<community>``     ``STEM#<stem id>``  -
=====================  ====================  ==================  ====================================

A language variant is stored under its post's id, or, while its original is not stored yet
(``pending``), under the id of its stem (``posts/<community>/<name>``, see
:attr:`herald.ingest.layout.UploadKey.stem_id`). The stem item names the original that holds the
stem and counts the variants waiting for one: an original claims it only with the count it read,
a variant waits only while no original holds it, so neither can miss the other. A post item's
``variants_rev`` counts the writes of its ``variants`` map: every write of the post item is
guarded by it, so a variant and an edit of the original never undo each other.

A key's own partition is named by the hash of the key, so its DynamoDB keys stay short whatever
the object key's length (a partition key may hold 2,048 bytes, a sort key 1,024).

Implements :class:`herald.ingest.ports.ContentStore`. Every write goes through one
``TransactWriteItems`` whose conditions are the change's guards.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.content import limits as bounds
from herald.content.keys import community_pk, post_key, variant_key, variant_sort_key, variant_values
from herald.content.models import (
    Community,
    CommunityProfile,
    CommunitySettings,
    Outcome,
    Post,
    Variant,
    VariantOrigin,
)
from herald.core.aws import DynamoTable, as_conflict, as_domain_error, from_item, to_item
from herald.core.errors import ConcurrentUpdate
from herald.ingest.ports import (
    Change,
    Claim,
    ImportProgress,
    KeyRecord,
    Lookup,
    PostRef,
    Promotion,
    Stem,
    StemChange,
    VariantContext,
    VariantsOfPost,
    Waiting,
)

GSI1 = "gsi1"
#: TransactWriteItems: at most 100 items and 4 MB; a margin is kept on the size (our estimate
#: counts the JSON of the items, a little more than DynamoDB's own measure).
MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 3_500_000


def hash_key(community: str, content_hash: str) -> dict[str, Any]:
    return {"pk": {"S": community_pk(community)}, "sk": {"S": f"HASH#{content_hash}"}}


def upload_key(key: str) -> dict[str, Any]:
    return {"pk": {"S": f"UPLOAD#{key}"}, "sk": {"S": "OUTCOME"}}


def key_partition(key: str) -> str:
    """The partition of everything one object key has in the table, bounded in size."""
    return "KEY#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def published_key(key: str, post_id: str) -> dict[str, Any]:
    return {"pk": {"S": key_partition(key)}, "sk": {"S": f"PUB#{post_id}"}}


def waiting_ref_key(key: str, post_id: str) -> dict[str, Any]:
    return {"pk": {"S": key_partition(key)}, "sk": {"S": f"WAIT#{post_id}"}}


def progress_key(key: str) -> dict[str, Any]:
    return {"pk": {"S": key_partition(key)}, "sk": {"S": "IMPORT"}}


def waiting_key(community: str, content_hash: str, post_id: str) -> dict[str, Any]:
    return {"pk": {"S": community_pk(community)}, "sk": {"S": f"DUP#{content_hash}#{post_id}"}}


def profile_key(community: str) -> dict[str, Any]:
    return {"pk": {"S": community_pk(community)}, "sk": {"S": "PROFILE"}}


def stem_key(community: str, stem_id: str) -> dict[str, Any]:
    return {"pk": {"S": community_pk(community)}, "sk": {"S": f"STEM#{stem_id}"}}


#: Machine variants a post's variants map may be rewritten for before ``put_machine_variant`` gives up.
MACHINE_ATTEMPTS = 5


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
        self, community: str, post_ids: Sequence[str], hashes: Sequence[str], key: str | None = None
    ) -> Lookup:
        ids = list(dict.fromkeys(post_ids))
        keys = [post_key(community, pid) for pid in ids]
        keys += [hash_key(community, h) for h in dict.fromkeys(hashes)]
        if key is not None:
            keys += [waiting_ref_key(key, pid) for pid in ids]
        found = Lookup()
        for item in self._batch_get(keys):
            kind = item.get("type")
            if kind == "hash":
                found.claims[item["content_hash"]] = _claim(item)
            elif kind == "waiting-ref":
                found.waiting[item["post_id"]] = _ref(item)
            elif kind == "post":
                found.posts[item["id"]] = Post.model_validate(item)
                found.revisions[item["id"]] = int(item.get("variants_rev", 0))
        return found

    def variant_context(
        self, community: str, stem_id: str | None, candidate_ids: Sequence[str], lang: str
    ) -> VariantContext:
        ids = list(dict.fromkeys(candidate_ids))
        containers = [*ids, stem_id] if stem_id is not None else ids
        keys = [stem_key(community, stem_id)] if stem_id is not None else []
        keys += [post_key(community, pid) for pid in ids]
        keys += [variant_key(community, container, lang) for container in containers]
        found = VariantContext()
        for item in self._batch_get(keys):
            kind = item.get("type")
            if kind == "stem":
                found.stem = Stem(item.get("post_id"), item.get("key"), int(item.get("pending", 0)))
            elif kind == "post":
                found.posts[item["id"]] = Post.model_validate(item)
                found.revisions[item["id"]] = int(item.get("variants_rev", 0))
            elif kind == "variant":
                found.variants[item["post_id"]] = Variant.model_validate(item)
        return found

    def stem(self, community: str, stem_id: str) -> Stem | None:
        item = self._get(stem_key(community, stem_id))
        return Stem(item.get("post_id"), item.get("key"), int(item.get("pending", 0))) if item else None

    def pending_variants(self, community: str, stem_id: str) -> list[Variant]:
        return [v for v in self._variant_items(community, stem_id) if v.pending]

    def variants(self, community: str, post_id: str) -> dict[str, Variant]:
        return {v.lang: v for v in self._variant_items(community, post_id) if not v.pending}

    def _variant_items(self, community: str, container: str) -> list[Variant]:
        params = {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {
                ":p": {"S": community_pk(community)},
                ":s": {"S": variant_sort_key(container)},
            },
            "ConsistentRead": True,
        }
        items = self.query_items(params, what=f"reading the variants of {container}")
        return [Variant.model_validate(from_item(raw)) for raw in items]

    def community_settings(self, community: str) -> CommunitySettings:
        """The community's settings (the defaults when it uploaded none)."""
        item = self._get(profile_key(community))
        return CommunitySettings.model_validate((item or {}).get("settings") or {}, strict=False)

    def put_machine_variant(self, variant: Variant) -> bool:
        """Store a machine translation as the post's ``variant.lang`` variant, its summary in the
        post's ``variants`` in the same transaction. Never over a human variant (nor for a post that
        does not exist): returns False then. An older machine variant of the language is replaced."""
        if variant.origin is not VariantOrigin.MACHINE:
            raise ValueError(f"put_machine_variant takes machine variants, not {variant.origin}")
        for _ in range(MACHINE_ATTEMPTS):
            found = self.variant_context(variant.community, None, [variant.post_id], variant.lang)
            post = found.posts.get(variant.post_id)
            current = found.variants.get(variant.post_id)
            if post is None or (current is not None and current.origin is VariantOrigin.HUMAN):
                return False
            version = current.version + 1 if current is not None else 1
            stored = variant.model_copy(update={"pending": False, "version": version})
            change = Change(
                put_variants=[(stored, current.version if current is not None else None)],
                post_variants=[
                    VariantsOfPost(
                        post.community,
                        post.id,
                        {**post.variants, stored.lang: stored.summary()},
                        post.version,
                        found.revisions.get(post.id, 0),
                    )
                ],
            )
            try:
                self.commit(change)
            except ConcurrentUpdate:
                continue
            return True
        return False

    def claims(self, community: str, hashes: Sequence[str]) -> dict[str, Claim]:
        items = self._batch_get([hash_key(community, h) for h in dict.fromkeys(hashes)])
        return {item["content_hash"]: _claim(item) for item in items}

    def key_record(self, key: str) -> KeyRecord:
        record = KeyRecord()
        params = {
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": key_partition(key)}},
            "ConsistentRead": True,
        }
        for raw in self.query_items(params, what="reading what a key published"):
            item = from_item(raw)
            kind = item.get("type")
            if kind == "published":
                record.published[item["post_id"]] = _ref(item)
                record.created_by[item["post_id"]] = item.get("since")
            elif kind == "waiting-ref":
                record.waiting[item["post_id"]] = _ref(item)
            elif kind == "import":
                record.progress = ImportProgress(
                    sequencer=item.get("sequencer"),
                    runs=int(item.get("runs", 0)),
                    removed=int(item.get("removed", 0)),
                )
        return record

    def waiting_for(self, community: str, content_hash: str) -> list[Waiting]:
        params = {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {
                ":p": {"S": community_pk(community)},
                ":s": {"S": f"DUP#{content_hash}#"},
            },
            "ConsistentRead": True,
        }
        found = []
        for raw in self.query_items(params, what="reading waiting duplicates"):
            item = from_item(raw)
            found.append(
                Waiting(
                    post=Post.model_validate(item["post"]),
                    sequencer=item.get("sequencer"),
                    since=str(item.get("since", "")),
                )
            )
        return sorted(found, key=lambda w: (w.since, w.post.id))

    def communities(self) -> Iterable[Community]:
        for item in self._query_gsi("COMMUNITIES"):
            yield _community(item)

    def community_posts(self, community: str) -> Iterable[Post]:
        for item in self._query_gsi(f"FEED#{community}", newest_first=True):
            yield Post.model_validate(item)

    def newest_posts(self, community: str, page: int) -> Iterator[Post]:
        """The community's posts in the feed index's order, newest first: the pinned ones, then the
        others (those still scheduled first). Read lazily, ``page`` items per Query: a reader that
        stops early pays only for the pages it took."""
        params = {
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": {":p": {"S": f"FEED#{community}"}},
            "ScanIndexForward": False,
            "Limit": max(1, page),
        }
        for item in self.query_items(params, what=f"listing the newest of FEED#{community}"):
            yield Post.model_validate(from_item(item))

    def outcomes(self) -> Iterable[Outcome]:
        for item in self._query_gsi("OUTCOMES", newest_first=True):
            yield Outcome.model_validate(item)

    # -- writes --------------------------------------------------------------------------------

    def fits(self, change: Change) -> bool:
        items = list(self._transaction(change))
        size = len(json.dumps(items, ensure_ascii=False).encode())
        return len(items) <= MAX_TRANSACTION_ITEMS and size <= MAX_TRANSACTION_BYTES

    def commit(self, change: Change) -> None:
        items = list(self._transaction(change))
        if not items:
            return
        try:
            self.ddb.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            # A lost race (another writer got there first) is decided again on fresh reads.
            conflict = as_conflict(exc, "committing a change")
            if conflict is not None:
                raise conflict from exc  # ``reasons``: each item's, in the order sent
            raise as_domain_error(exc, "committing a change") from exc
        except BotoCoreError as exc:
            raise as_domain_error(exc, "committing a change") from exc

    def _transaction(self, change: Change) -> Iterator[dict[str, Any]]:
        t = self.table
        post_delta: Counter[str] = Counter()
        # A text whose claim passes to a waiting duplicate is not released as well.
        handed_over = {(p.waiting.post.community, p.waiting.post.content_hash) for p in change.promote}
        if change.outcome is not None:
            yield {"Put": _guarded_outcome(t, change.outcome, change.expect_sequencer)}
        for outcome, expected in change.other_outcomes:
            yield {"Put": _guarded_outcome(t, outcome, expected)}
        for post in change.create_posts:
            yield {
                "Put": {
                    "TableName": t,
                    "Item": post_item(post),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            yield self._claim(post)
            yield {"Put": {"TableName": t, "Item": _published_item(post, change.since)}}
            post_delta[post.community] += 1
        for post, expected_version in change.update_posts:
            item = post_item(post)
            revision = change.post_revisions.get((post.community, post.id))
            condition, values = "#v = :v", {":v": {"N": str(expected_version)}}
            if revision is not None:
                condition += f" AND {_REVISION_IS}"
                values[":rev"] = {"N": str(revision)}
                if revision:
                    item["variants_rev"] = {"N": str(revision)}
            yield {
                "Put": {
                    "TableName": t,
                    "Item": item,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": values,
                }
            }
            yield self._claim(post)
            yield self._remember_published(post, change.since)
        for ref in change.delete_posts:
            delete: dict[str, Any] = {
                "TableName": t,
                "Key": post_key(ref.community, ref.id),
                "ConditionExpression": "attribute_exists(pk)",
            }
            revision = change.post_revisions.get((ref.community, ref.id))
            if revision is not None:
                delete["ConditionExpression"] += f" AND {_REVISION_IS}"
                delete["ExpressionAttributeValues"] = {":rev": {"N": str(revision)}}
            yield {"Delete": delete}
            if (ref.community, ref.content_hash) not in handed_over:
                seen = change.claims_seen.get((ref.community, ref.content_hash), 0)
                yield self._release(ref.community, ref.content_hash, ref.id, seen)
            yield {"Delete": {"TableName": t, "Key": published_key(ref.key, ref.id)}}
            post_delta[ref.community] -= 1
        for community, content_hash, owner in change.release_hashes:
            if (community, content_hash) not in handed_over:
                seen = change.claims_seen.get((community, content_hash), 0)
                yield self._release(community, content_hash, owner, seen)
        for promotion in change.promote:
            yield from self._promote(promotion)
            post_delta[promotion.waiting.post.community] += 1
        for waiting in change.wait:
            yield from self._wait(waiting)
        for waiting in change.refresh_wait:
            yield self._waiting_record(waiting)
        for ref in change.unwait:
            yield from self._unwait(ref)
        if change.progress is not None:
            key, progress = change.progress
            item = {
                **progress_key(key),
                **to_item(
                    {
                        "type": "import",
                        "key": key,
                        "sequencer": progress.sequencer,
                        "runs": progress.runs,
                        "removed": progress.removed,
                    }
                ),
            }
            yield {"Put": {"TableName": t, "Item": item}}
        if change.clear_progress is not None:
            yield {"Delete": {"TableName": t, "Key": progress_key(change.clear_progress)}}
        yield from self._variant_writes(change)
        communities = set(post_delta) | ({change.profile[0]} if change.profile else set())
        for community in sorted(communities):
            profile = change.profile[1] if change.profile and change.profile[0] == community else None
            update = _community_update(community, post_delta.get(community, 0), profile)
            if update is not None:
                yield {"Update": {"TableName": t, "Key": profile_key(community), **update}}

    def _variant_writes(self, change: Change) -> Iterator[dict[str, Any]]:
        t = self.table
        for variant, expected in change.put_variants:
            put: dict[str, Any] = {"TableName": t, "Item": to_item(variant_values(variant))}
            if expected is None:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                put["ConditionExpression"] = "#v = :v"
                put["ExpressionAttributeNames"] = {"#v": "version"}
                put["ExpressionAttributeValues"] = {":v": {"N": str(expected)}}
            yield {"Put": put}
        for community, container, lang in change.delete_variants:
            yield {"Delete": {"TableName": t, "Key": variant_key(community, container, lang)}}
        for update in change.post_variants:
            yield {"Update": _post_variants_update(t, update)}
        for stem in change.stems:
            yield _stem_write(t, stem)
        if change.settings is not None:
            community, settings = change.settings
            values: dict[str, Any] = {":id": community}
            if settings is None:
                expression = "SET id = :id REMOVE settings"
            else:
                expression = "SET id = :id, settings = :s"
                values[":s"] = settings.model_dump(mode="json")
            yield {
                "Update": {
                    "TableName": t,
                    "Key": profile_key(community),
                    "UpdateExpression": expression,
                    "ExpressionAttributeValues": to_item(values),
                }
            }

    def _claim(self, post: Post) -> dict[str, Any]:
        # An update, not a put: the count of duplicates waiting for the text is kept.
        return {
            "Update": {
                "TableName": self.table,
                "Key": hash_key(post.community, post.content_hash),
                "UpdateExpression": "SET post_id = :id, content_hash = :h, #t = :hash",
                "ConditionExpression": "attribute_not_exists(pk) OR post_id = :id",
                "ExpressionAttributeNames": {"#t": "type"},
                "ExpressionAttributeValues": {
                    ":id": {"S": post.id},
                    ":h": {"S": post.content_hash},
                    ":hash": {"S": "hash"},
                },
            }
        }

    def _release(self, community: str, content_hash: str, owner: str, seen: int = 0) -> dict[str, Any]:
        # Never while more duplicates wait for the text than the decision saw: it must pass the
        # text on to one of them instead.
        return {
            "Delete": {
                "TableName": self.table,
                "Key": hash_key(community, content_hash),
                "ConditionExpression": (
                    "attribute_not_exists(pk) OR "
                    "(post_id = :id AND (attribute_not_exists(waiting) OR waiting <= :seen))"
                ),
                "ExpressionAttributeValues": {":id": {"S": owner}, ":seen": {"N": str(seen)}},
            }
        }

    def _remember_published(self, post: Post, since: str | None) -> dict[str, Any]:
        values = {":type": "published", ":key": post.key, ":c": post.community, ":id": post.id}
        values[":h"] = post.content_hash
        expression = "SET #t = :type, #k = :key, community = :c, post_id = :id, content_hash = :h"
        if since is not None:
            values[":since"] = since
            expression += ", since = if_not_exists(since, :since)"
        return {
            "Update": {
                "TableName": self.table,
                "Key": published_key(post.key, post.id),
                "UpdateExpression": expression,
                "ExpressionAttributeNames": {"#t": "type", "#k": "key"},
                "ExpressionAttributeValues": to_item(values),
            }
        }

    def _promote(self, promotion: Promotion) -> Iterator[dict[str, Any]]:
        waiting: Waiting = promotion.waiting
        post = waiting.post
        t = self.table
        created = {"TableName": t, "Item": post_item(post), "ConditionExpression": "attribute_not_exists(pk)"}
        yield {"Put": created}
        yield {
            "Update": {
                "TableName": t,
                "Key": hash_key(post.community, post.content_hash),
                "UpdateExpression": "SET post_id = :new, waiting = :left",
                "ConditionExpression": "post_id = :old AND waiting = :seen",
                "ExpressionAttributeValues": to_item(
                    {
                        ":new": post.id,
                        ":old": promotion.previous_owner,
                        ":seen": promotion.claim_waiting,
                        ":left": promotion.claim_waiting - 1,
                    }
                ),
            }
        }
        yield {"Put": {"TableName": t, "Item": _published_item(post, waiting.sequencer)}}
        yield {
            "Delete": {
                "TableName": t,
                "Key": waiting_key(post.community, post.content_hash, post.id),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        yield {"Delete": {"TableName": t, "Key": waiting_ref_key(post.key, post.id)}}

    def _waiting_record(self, waiting: Waiting) -> dict[str, Any]:
        post = waiting.post
        item = {
            **waiting_key(post.community, post.content_hash, post.id),
            **to_item(
                {
                    "type": "waiting",
                    "key": post.key,
                    "post": post.model_dump(mode="json", exclude_none=True),
                    "sequencer": waiting.sequencer,
                    "since": waiting.since,
                }
            ),
        }
        return {"Put": {"TableName": self.table, "Item": item}}

    def _wait(self, waiting: Waiting) -> Iterator[dict[str, Any]]:
        post = waiting.post
        t = self.table
        yield self._waiting_record(waiting)
        ref = {**waiting_ref_key(post.key, post.id), **_ref_values(post, "waiting-ref")}
        yield {"Put": {"TableName": t, "Item": ref, "ConditionExpression": "attribute_not_exists(pk)"}}
        # Counted on the text's claim, which must still be held by another post: a claim is only
        # released when no duplicate waits, so a waiting duplicate is never forgotten.
        yield {
            "Update": {
                "TableName": t,
                "Key": hash_key(post.community, post.content_hash),
                "UpdateExpression": "ADD waiting :one",
                "ConditionExpression": "attribute_exists(pk) AND post_id <> :self",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":self": {"S": post.id}},
            }
        }

    def _unwait(self, ref: PostRef) -> Iterator[dict[str, Any]]:
        t = self.table
        yield {
            "Delete": {
                "TableName": t,
                "Key": waiting_ref_key(ref.key, ref.id),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        yield {"Delete": {"TableName": t, "Key": waiting_key(ref.community, ref.content_hash, ref.id)}}
        yield {
            "Update": {
                "TableName": t,
                "Key": hash_key(ref.community, ref.content_hash),
                "UpdateExpression": "ADD waiting :minus",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":minus": {"N": "-1"}},
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


#: A post item's variants revision is still the one read (absent: 0, never written).
_REVISION_IS = "(attribute_not_exists(variants_rev) OR variants_rev = :rev)"


def _post_variants_update(table: str, update: VariantsOfPost) -> dict[str, Any]:
    variants = {lang: s.model_dump(mode="json", exclude_none=True) for lang, s in update.variants.items()}
    return {
        "TableName": table,
        "Key": post_key(update.community, update.post_id),
        "UpdateExpression": "SET variants = :m, variants_rev = :next",
        "ConditionExpression": f"attribute_exists(pk) AND #v = :v AND {_REVISION_IS}",
        "ExpressionAttributeNames": {"#v": "version"},
        "ExpressionAttributeValues": to_item(
            {
                ":m": variants,
                ":next": update.expected_revision + 1,
                ":v": update.expected_version,
                ":rev": update.expected_revision,
            }
        ),
    }


def _stem_write(table: str, stem: StemChange) -> dict[str, Any]:
    key = stem_key(stem.community, stem.stem_id)
    if stem.release:
        return {
            "Delete": {
                "TableName": table,
                "Key": key,
                "ConditionExpression": "attribute_not_exists(pk) OR post_id = :id",
                "ExpressionAttributeValues": to_item({":id": stem.owner}),
            }
        }
    if stem.owner is not None:
        return {
            "Update": {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "SET post_id = :id, #k = :key, stem = :stem, #t = :type, pending = :zero",
                "ConditionExpression": (
                    "(attribute_not_exists(post_id) OR post_id = :id) AND "
                    "(attribute_not_exists(pending) OR pending = :seen)"
                ),
                "ExpressionAttributeNames": {"#k": "key", "#t": "type"},
                "ExpressionAttributeValues": to_item(
                    {
                        ":id": stem.owner,
                        ":key": stem.owner_key,
                        ":stem": stem.stem,
                        ":type": "stem",
                        ":zero": 0,
                        ":seen": stem.expect_pending,
                    }
                ),
            }
        }
    return {
        "Update": {
            "TableName": table,
            "Key": key,
            "UpdateExpression": "SET stem = :stem, #t = :type ADD pending :delta",
            "ConditionExpression": "attribute_not_exists(post_id)",
            "ExpressionAttributeNames": {"#t": "type"},
            "ExpressionAttributeValues": to_item(
                {":stem": stem.stem, ":type": "stem", ":delta": stem.pending_delta}
            ),
        }
    }


def _guarded_outcome(table: str, outcome: Outcome, expect_sequencer: str | None) -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": table, "Item": outcome_item(outcome)}
    if expect_sequencer is None:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        put["ConditionExpression"] = "#seq = :seq"
        put["ExpressionAttributeNames"] = {"#seq": "sequencer"}
        put["ExpressionAttributeValues"] = {":seq": {"S": expect_sequencer}}
    return put


def _ref_values(post: Post, kind: str) -> dict[str, Any]:
    return to_item(
        {
            "type": kind,
            "key": post.key,
            "community": post.community,
            "post_id": post.id,
            "content_hash": post.content_hash,
        }
    )


def _published_item(post: Post, since: str | None) -> dict[str, Any]:
    item = {**published_key(post.key, post.id), **_ref_values(post, "published")}
    if since is not None:
        item["since"] = {"S": since}
    return item


def _ref(item: dict[str, Any]) -> PostRef:
    return PostRef(item["community"], item["post_id"], item["content_hash"], item["key"])


def _claim(item: dict[str, Any]) -> Claim:
    return Claim(owner=item["post_id"], waiting=int(item.get("waiting", 0)))


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
        settings=_settings(item.get("settings")),
    )


def _settings(stored: Any) -> CommunitySettings | None:
    """The profile's ``settings`` as stored (a map, JSON types; none: no upload)."""
    return None if stored is None else CommunitySettings.model_validate(stored, strict=False)


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
