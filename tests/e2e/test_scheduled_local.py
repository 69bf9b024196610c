"""A scheduled post on the local cloud: every function in its own worker process, fed by the template's
event sources; the push reaches the member's browser only after the post's page, the community page
and the feeds were written."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from herald.members.rules import Member, Preferences, WebPushSubscription, subscription_id
from herald_tools.localcloud import LocalCloud
from tests.e2e.settle import wait_for

ROOT = Path(__file__).resolve().parents[2]
COMMUNITY = "harbour"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with LocalCloud(ROOT / "template.yaml", project_root=ROOT, logs=io.StringIO()).start(port=0) as running:
        yield running


def _join(cloud: LocalCloud) -> Member:
    from herald.members.adapters.dynamo_members import DynamoMemberStore

    assert cloud.push_service is not None
    env = cloud.resources.functions["ApiFunction"].environment
    shards = int(env["MEMBER_COUNTER_SHARDS"])
    member_id = uuid.uuid4().hex
    web_push = WebPushSubscription.model_validate(cloud.push_service.new_subscription())
    now = datetime.now(UTC)
    member = Member(
        community=COMMUNITY,
        member_id=member_id,
        shard=int(member_id[:8], 16) % shards,
        token_hash="0" * 64,
        subscriptions=[subscription_id(web_push=web_push)],
        web_push=web_push,
        preferences=Preferences(),
        joined_at=now,
        updated_at=now,
    )
    DynamoMemberStore(str(env["MEMBERS_TABLE"]), shards, cloud.client("dynamodb")).create(member)
    return member


def test_a_scheduled_post_is_pushed_after_its_page_and_feeds_are_published(cloud: LocalCloud) -> None:
    assert cloud.push_service is not None
    s3 = cloud.client("s3")
    uploads, site = cloud.ready_info()["uploads_bucket"], str(cloud.outputs["SiteBucketName"])
    # Every function started once (cold starts take seconds here): the wait below is the schedule's.
    s3.put_object(Bucket=uploads, Key=f"posts/{COMMUNITY}/hello.txt", Body=b"Hello all.")
    cloud.wait_until_idle(timeout=90)
    _join(cloud)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    key = f"posts/{COMMUNITY}/later.json"
    body = {"text": "The market moves to the square on Sunday.", "publish_at": at.isoformat()}
    s3.put_object(Bucket=uploads, Key=key, Body=json.dumps(body).encode())

    def pushed() -> Any:
        got = [d for d in cloud.push_service.received() if isinstance(d.json, dict)]
        return got[0] if got else None  # the member joined after hello: only the scheduled post

    delivery = wait_for("the scheduled post's push", pushed, cloud)
    post_id = str(delivery.json["post_id"])
    assert delivery.received_at >= at.timestamp()

    listing = s3.list_objects_v2(Bucket=site, Prefix=f"{COMMUNITY}/")["Contents"]
    written = {o["Key"].removeprefix(f"{COMMUNITY}/"): o["LastModified"].timestamp() for o in listing}
    for path in (f"posts/{post_id}/index.html", "index.html", "feed.atom", "feed.json"):
        assert path in written, path
        assert written[path] <= delivery.received_at, (path, written[path], delivery.received_at)

    def read(path: str) -> str:
        return str(s3.get_object(Bucket=site, Key=f"{COMMUNITY}/{path}")["Body"].read().decode())

    assert f"posts/{post_id}/" in read("index.html")
    assert f"/posts/{post_id}/" in read("feed.atom")
    assert any(i["id"].endswith(f"/posts/{post_id}/") for i in json.loads(read("feed.json"))["items"])
