"""A lost race on the content table (a cancelled TransactWriteItems) on the real local cloud.

moto answers the cancelled transaction by putting back a copy of the table taken before it, with
its own stream; the stream's consumers must go on with the writes that follow and see nothing of
the cancelled one: the post after the race is published and its fan-out planned, the lost one not.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from herald_tools.localcloud.cloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
COMMUNITY = "stream-race"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(ROOT / "template.yaml", project_root=ROOT, logs=io.StringIO()).start(port=0) as started:
        yield started


def upload(cloud: LocalCloud, name: str, text: str) -> str:
    """Upload a post, wait until the pipeline is idle, and return the post's id."""
    from herald.ingest.adapters.dynamo_content import DynamoContentStore

    key = f"posts/{COMMUNITY}/{name}"
    cloud.client("s3").put_object(Bucket=cloud.resources.uploads_bucket, Key=key, Body=text.encode())
    cloud.wait_until_idle(timeout=90)
    outcome = DynamoContentStore(cloud.resources.content_table, cloud.client("dynamodb")).outcome(key)
    assert outcome is not None and outcome.status == "published", outcome
    [post_id] = outcome.post_ids
    return post_id


def poll(cloud: LocalCloud, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        cloud.wait_for_activity(timeout=0.5)


def published(cloud: LocalCloud, post_id: str) -> bool:
    """The publisher wrote the post's page."""
    listing = cloud.client("s3").list_objects_v2(
        Bucket=cloud.outputs["SiteBucketName"], Prefix=f"{COMMUNITY}/"
    )
    return any(f"posts/{post_id}/" in o["Key"] for o in listing.get("Contents", []))


def planned(cloud: LocalCloud, post_id: str) -> bool:
    """The planner started the post's fan-out (its ledger item exists)."""
    item = cloud.client("dynamodb").get_item(
        TableName=cloud.outputs["DeliveriesTableName"],
        Key={"pk": {"S": f"F#{COMMUNITY}#{post_id}"}, "sk": {"S": "FANOUT"}},
        ConsistentRead=True,
    )
    return "Item" in item


def lose_a_race(cloud: LocalCloud, post_id: str) -> None:
    """What a lost race does: a transaction that writes a new notifying post, cancelled by its guard."""
    table = cloud.resources.content_table
    post = {
        "pk": {"S": f"C#{COMMUNITY}"},
        "sk": {"S": f"POST#{post_id}"},
        "type": {"S": "post"},
        "source": {"S": "post"},
        "notify": {"BOOL": True},
        "id": {"S": post_id},
        "community": {"S": COMMUNITY},
    }
    guard = {
        "TableName": table,
        "Key": {"pk": {"S": f"C#{COMMUNITY}"}, "sk": {"S": "PROFILE"}},
        "ConditionExpression": "attribute_not_exists(pk)",  # the community exists: the guard fails
    }
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        cloud.client("dynamodb").transact_write_items(
            TransactItems=[{"Put": {"TableName": table, "Item": post}}, {"ConditionCheck": guard}]
        )


def test_the_publisher_and_the_planner_go_on_after_a_cancelled_transaction(cloud: LocalCloud) -> None:
    first = upload(cloud, "first.txt", "The clinic in Beira opens at 9 on Monday.")
    poll(cloud, lambda: published(cloud, first) and planned(cloud, first), "the first post")

    lose_a_race(cloud, "lost0race0post")
    second = upload(cloud, "second.txt", "The food bank in Nairobi is open on Saturday too.")
    poll(cloud, lambda: published(cloud, second), "the publisher to publish the post after the race")
    poll(cloud, lambda: planned(cloud, second), "the planner to plan the post after the race")
    # Nothing of the cancelled transaction reached them.
    assert not published(cloud, "lost0race0post") and not planned(cloud, "lost0race0post")
    streams = [p for p in cloud.pollers if p.kind == "dynamodb"]
    assert any(p.worker.name.endswith("PublisherFunction") for p in streams)
    assert all(p.pending() is None for p in streams)
