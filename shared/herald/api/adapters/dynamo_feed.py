"""A community's feed, a page at a time, from the content table's ``FEED#<community>`` index partition.

The index sorts pinned posts first, then newest first (``gsi1sk = <pinned 1/0>#<time>#<id>``, read
backwards). Filters (topic, country, language) are a ``FilterExpression``; pages are filled by
reading on until ``limit`` posts or the end, so a page is short only at the end of the feed (or
when ``max_reads`` reads found too few matches: then the cursor goes on from where reading
stopped), or when the next post would take the page over a size (long posts). The cursor is
the index key of the last post returned, base64url JSON, checked on the way back in.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.content.models import Post
from herald.core.aws import DynamoTable, as_transient, from_item
from herald.members.rules import InvalidRequest

GSI1 = "gsi1"
_KEY_ATTRS = ("pk", "sk", "gsi1pk", "gsi1sk")
MAX_CURSOR_CHARS = 2048


def encode_cursor(key: dict[str, Any]) -> str:
    plain = {k: key[k]["S"] for k in _KEY_ATTRS}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str, community: str) -> dict[str, Any]:
    """The ExclusiveStartKey a cursor stands for; InvalidRequest (naming ``cursor``) if it is not one
    this feed gave out."""
    bad = InvalidRequest(("query", "cursor"), "not a cursor of this feed")
    if len(cursor) > MAX_CURSOR_CHARS:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        plain = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise bad from exc
    if not isinstance(plain, dict) or set(plain) != set(_KEY_ATTRS):
        raise bad
    if not all(isinstance(v, str) and v for v in plain.values()):
        raise bad
    if plain["gsi1pk"] != f"FEED#{community}" or plain["pk"] != f"C#{community}":
        raise bad
    if not plain["sk"].startswith("POST#"):
        raise bad
    return {k: {"S": v} for k, v in plain.items()}


class DynamoFeed(DynamoTable):
    def page(
        self,
        community: str,
        limit: int,
        cursor: str | None = None,
        topic: str | None = None,
        country: str | None = None,
        language: str | None = None,
        max_reads: int = 10,
        size: Callable[[Post], int] | None = None,
        max_bytes: int = 0,
    ) -> tuple[list[Post], str | None]:
        """Up to ``limit`` posts after ``cursor``, and the cursor of the next page (None at the end).

        With ``size`` (what a post costs in the response), a page also stops before the post that
        would take the total over ``max_bytes`` (it always holds one post, so paging goes on).
        """
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": {":p": {"S": f"FEED#{community}"}},
            "ScanIndexForward": False,
        }
        filters = []
        if topic:
            filters.append("contains(topics, :topic)")
            params["ExpressionAttributeValues"][":topic"] = {"S": topic}
        if country:
            filters.append("contains(countries, :country)")
            params["ExpressionAttributeValues"][":country"] = {"S": country}
        if language:
            filters.append("#lang = :lang")
            params["ExpressionAttributeValues"][":lang"] = {"S": language}
            params["ExpressionAttributeNames"] = {"#lang": "language"}
        if filters:
            params["FilterExpression"] = " AND ".join(filters)
        if cursor:
            params["ExclusiveStartKey"] = decode_cursor(cursor, community)
        found: list[dict[str, Any]] = []
        posts: list[Post] = []
        used = 0
        for _ in range(max_reads):
            params["Limit"] = min(100, (limit - len(found)) * (4 if filters else 1) + 1)
            try:
                response = self.ddb.query(**params)
            except (ClientError, BotoCoreError) as exc:
                raise as_transient(exc, f"reading the feed of {community}") from exc
            items = response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            for item in items:
                if len(found) == limit:
                    return posts, encode_cursor(found[-1])
                post = Post.model_validate(from_item(item))
                cost = size(post) if size is not None else 0
                if size is not None and posts and used + cost > max_bytes:
                    return posts, encode_cursor(found[-1])
                used += cost
                found.append(item)
                posts.append(post)
            if len(found) == limit:
                return posts, (encode_cursor(found[-1]) if last else None)
            if not last:
                return posts, None
            params["ExclusiveStartKey"] = last
        # Read enough for one request: go on from where reading stopped.
        return posts, encode_cursor(params["ExclusiveStartKey"])
