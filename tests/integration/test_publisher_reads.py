"""What the publisher reads per stream batch, counted in moto's DynamoDB: the same for a new post
appended to a community of 100, 1,000 or 5,000 posts (the newest archive pages), where reading
every post grows with the community."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.integration.conftest import REGION
from tests.unit.test_publisher_window import Bucket, make_post

TABLE = "content"
COMMUNITY = "harbour-line"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def ddb(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        attrs = [{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")]
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=attrs,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi1",
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        yield client


class Reads:
    """Calls and items of each DynamoDB read, from the client's own responses."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        client.meta.events.register("after-call.dynamodb", self._count)

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name not in ("Query", "GetItem", "BatchGetItem"):
            return
        self.calls[name] += 1
        if name == "Query":
            self.items[name] += len(parsed.get("Items", []))
        elif name == "GetItem":
            self.items[name] += 1 if parsed.get("Item") else 0
        else:
            self.items[name] += sum(len(v) for v in parsed.get("Responses", {}).values())

    def clear(self) -> None:
        self.calls.clear()
        self.items.clear()


def fill(client: Any, count: int) -> None:
    from herald.core.aws import to_item
    from herald.ingest.adapters.dynamo_content import post_item, profile_key

    items = [post_item(make_post(n, T0 + timedelta(minutes=n))) for n in range(1, count + 1)]
    for i in range(0, len(items), 25):
        client.batch_write_item(
            RequestItems={TABLE: [{"PutRequest": {"Item": it}} for it in items[i : i + 25]]}
        )
    profile = {
        **profile_key(COMMUNITY),
        **to_item({"id": COMMUNITY, "name": "Harbour Line", "post_count": count}),
    }
    client.put_item(TableName=TABLE, Item=profile)


def append(client: Any, n: int) -> str:
    """A new post, written with the profile's count as the content store writes them."""
    from herald.ingest.adapters.dynamo_content import post_item, profile_key

    post = make_post(n, T0 + timedelta(minutes=n))
    client.put_item(TableName=TABLE, Item=post_item(post))
    client.update_item(
        TableName=TABLE,
        Key=profile_key(COMMUNITY),
        UpdateExpression="ADD post_count :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    return post.id


def batch_reads(client: Any, count: int, *, window: bool) -> tuple[dict[str, int], dict[str, int]]:
    from herald.ingest.adapters.dynamo_content import DynamoContentStore
    from herald.site.publisher import CommunityChanges, PublisherSettings, SitePublisher
    from herald.site.render import PAGE_SIZE

    publisher = SitePublisher(
        DynamoContentStore(TABLE, client),
        None,
        Bucket(),
        PublisherSettings(content_table=TABLE, site_bucket="site"),
        clock=lambda: T0 + timedelta(days=30),
        window=window,
        page_size=PAGE_SIZE,
    )
    reads = Reads(client)
    pid = append(client, count + 1)
    publication = publisher.publish(CommunityChanges(COMMUNITY, before={pid: None}, written_at={pid: None}))
    assert f"posts/{pid}/index.html" in publication.written
    return dict(reads.calls), dict(reads.items)


@pytest.mark.parametrize("count", [100, 1000, 5000])
def test_a_new_post_reads_the_same_whatever_the_community_holds(ddb: Any, count: int) -> None:
    fill(ddb, count)
    calls, items = batch_reads(ddb, count, window=True)
    # The profile, the new post (consistently), one Query of the newest posts: two pages or fewer.
    assert calls == {"GetItem": 1, "BatchGetItem": 1, "Query": 1}
    assert items["Query"] <= 2 * 50 + 1
    full_calls, full_items = batch_reads(ddb, count + 1, window=False)
    assert full_items["Query"] == count + 2  # every post of the community, as read before
    print(f"\n{count} posts: windowed {calls} {items}; every post {full_calls} {full_items}")
