"""A push never arrives before the post's page exists: at ``publish_at`` (and for a post published at
once) the post page, the community page and both feeds are in the site bucket before the first push
job is queued.

The stack is the one template.yaml describes, on moto, wired as the template wires it: every function
is fed by exactly the event sources the template gives it (the content table's stream, its queues),
with the event JSON Lambda sends, on the real clock. The scheduler is adversarial: the publisher's
sources are served last, only when no other function has work, as if the publisher were always the
slowest consumer. After every invocation the test looks at the push job queue; the first time it
holds a job, it reads the site bucket. So the order is checked through the real outputs, whatever
the order the event sources happen to run in.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from herald.members.rules import Member, Preferences, WebPushSubscription, subscription_id
from tests.integration.conftest import REGION, ROOT, LambdaContext, load_handler

COMMUNITY = "harbour"


@dataclass
class Source:
    """One event source of one function, as template.yaml declares it."""

    function: str
    kind: str  # SQS or DynamoDB
    handler: ModuleType
    queue_url: str | None = None
    queue_arn: str | None = None
    batch_size: int = 10
    positions: dict[str, str] = field(default_factory=dict)  # stream shard -> last sequence number


@dataclass
class Site:
    """What the site bucket held for a post at one moment."""

    page: bool
    index: bool
    atom: bool
    json_feed: bool

    @property
    def complete(self) -> bool:
        return self.page and self.index and self.atom and self.json_feed


@dataclass
class Cloud:
    s3: Any
    sqs: Any
    ddb: Any
    streams: Any
    push: Any
    uploads: str
    site_bucket: str
    push_queue_url: str
    content_table: str
    env: dict[str, str]
    sources: list[Source]
    #: the post whose first push job is watched for, and the site as it was at that moment
    watched: str | None = None
    at_first_push_job: dict[str, Site] = field(default_factory=dict)

    # -- the event sources --------------------------------------------------------------------

    def _stream_batch(self, source: Source) -> list[dict[str, Any]]:
        from herald_tools.localcloud.event_sources import dynamodb_record

        arn = self.ddb.describe_table(TableName=self.content_table)["Table"]["LatestStreamArn"]
        records: list[dict[str, Any]] = []
        for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            sid = shard["ShardId"]
            after = source.positions.get(sid)
            kwargs: dict[str, Any] = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
                if after
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            iterator = self.streams.get_shard_iterator(StreamArn=arn, ShardId=sid, **kwargs)["ShardIterator"]
            got = self.streams.get_records(ShardIterator=iterator, Limit=source.batch_size)["Records"]
            if got:
                source.positions[sid] = got[-1]["dynamodb"]["SequenceNumber"]
                records += [dynamodb_record(r, arn) for r in got]
        return records

    def _run(self, source: Source, wait: int = 0) -> bool:
        """One batch of ``source`` through its function; False if it had nothing."""
        from herald_tools.localcloud.event_sources import sqs_record

        if source.kind == "DynamoDB":
            records = self._stream_batch(source)
            if not records:
                return False
            response = source.handler.handler({"Records": records}, LambdaContext())
            assert not (response or {}).get("batchItemFailures"), (source.function, response)
            return True
        assert source.queue_url is not None
        messages = self.sqs.receive_message(
            QueueUrl=source.queue_url,
            MaxNumberOfMessages=min(10, source.batch_size),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return False
        event = {"Records": [sqs_record(m, source.queue_arn or "") for m in messages]}
        response = source.handler.handler(event, LambdaContext())
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        assert not failed, (source.function, response)
        for m in messages:
            self.sqs.delete_message(QueueUrl=source.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return True

    def _delayed(self) -> list[Source]:
        waiting = []
        for source in self.sources:
            if source.queue_url is None:
                continue
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=source.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
            )["Attributes"]
            if int(attrs["ApproximateNumberOfMessagesDelayed"]):
                waiting.append(source)
        return waiting

    def settle(self, timeout: float = 60.0) -> None:
        """Serve the sources until nothing is left, not even a delayed message (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # The first source with work runs; the publisher's come last in the list.
            if any(self._observed(self._run(source)) for source in self.sources):
                continue
            delayed = self._delayed()
            if not delayed:
                return
            self._observed(self._run(delayed[0], wait=1))  # long poll: returns when the delay ends
        raise AssertionError("the stack did not settle")

    def _observed(self, ran: bool) -> bool:
        """After an invocation: the first time the push job queue holds a job (or a push went out),
        a snapshot of the watched post's site. (Counted, not received: a peek would count as a
        receive towards the queue's redrive policy.)"""
        if not ran:
            return False
        if self.watched is not None and self.watched not in self.at_first_push_job:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.push_queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if sum(int(v) for v in attrs.values()) or self.push.received():
                self.at_first_push_job[self.watched] = self.site(self.watched)
        return True

    # -- what the world sees ------------------------------------------------------------------

    def _read(self, key: str) -> str | None:
        try:
            return self.s3.get_object(Bucket=self.site_bucket, Key=key)["Body"].read().decode()
        except self.s3.exceptions.NoSuchKey:
            return None

    def site(self, post_id: str) -> Site:
        prefix = f"{COMMUNITY}/"
        index, atom, feed = (self._read(prefix + p) for p in ("index.html", "feed.atom", "feed.json"))
        return Site(
            page=self._read(f"{prefix}posts/{post_id}/index.html") is not None,
            index=index is not None and f"posts/{post_id}/" in index,
            atom=atom is not None and f"/posts/{post_id}/" in atom,
            json_feed=feed is not None
            and any(i["id"].endswith(f"/posts/{post_id}/") for i in json.loads(feed)["items"]),
        )

    def received(self) -> list[str]:
        return [str(d.json["post_id"]) for d in self.push.received()]

    # -- editors and members ------------------------------------------------------------------

    def post(self, name: str, text: str, **front: Any) -> str:
        key = f"posts/{COMMUNITY}/{name}.json"
        self.s3.put_object(Bucket=self.uploads, Key=key, Body=json.dumps({"text": text, **front}).encode())
        self.settle_ingest()
        from herald.ingest.adapters.dynamo_content import DynamoContentStore

        outcome = DynamoContentStore(self.content_table, self.ddb).outcome(key)
        assert outcome is not None and outcome.post_ids, outcome
        self.watched = str(outcome.post_ids[0])
        return self.watched

    def settle_ingest(self) -> None:
        ingest = [s for s in self.sources if s.function == "IngestFunction"]
        while any(self._run(s) for s in ingest):
            pass

    def join(self) -> Member:
        from herald.members.adapters.dynamo_members import DynamoMemberStore

        shards = int(self.env["MEMBER_COUNTER_SHARDS"])
        member_id = uuid.uuid4().hex
        web_push = WebPushSubscription.model_validate(self.push.new_subscription())
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
        DynamoMemberStore(self.env["MEMBERS_TABLE"], shards, self.ddb).create(member)
        return member


@pytest.fixture(name="cloud")
def cloud_fixture(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    from herald.core import aws
    from herald.fanout.channels.vapid import generate_vapid_key, private_key_pem
    from herald_tools.localcloud import s3_fidelity
    from herald_tools.localcloud.provision import provision
    from herald_tools.localcloud.pushservice import LocalPushService

    with mock_aws(), LocalPushService() as push:
        s3_fidelity.install()
        session = boto3.Session(region_name=REGION)
        resources = provision(ROOT / "template.yaml", session)
        served = ("IngestFunction", "PublisherFunction", "FanoutPlannerFunction", "PushSenderFunction")
        env: dict[str, str] = {}
        for lid in served:
            env.update({k: str(v) for k, v in resources.functions[lid].environment.items()})
        env["ALLOW_LOOPBACK_PUSH"] = "true"
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        session.client("ssm").put_parameter(
            Name=env["VAPID_KEY_PARAMETER"], Value=private_key_pem(generate_vapid_key()), Type="SecureString"
        )
        aws.client.cache_clear()
        modules = {
            "IngestFunction": "ingest",
            "PublisherFunction": "publisher",
            "FanoutPlannerFunction": "fanout_planner",
            "PushSenderFunction": "push_sender",
        }
        handlers = {lid: load_handler(name) for lid, name in modules.items()}
        _reset(handlers)
        sqs = session.client("sqs")
        sources: list[Source] = []
        # Exactly the event sources the template gives each function; the publisher's last.
        for lid in sorted(served, key=lambda f: f == "PublisherFunction"):
            for event in resources.functions[lid].events:
                if event.type not in ("SQS", "DynamoDB"):
                    continue
                sources.append(
                    Source(
                        function=lid,
                        kind=event.type,
                        handler=handlers[lid],
                        queue_url=event.queue_url,
                        queue_arn=event.source_arn if event.type == "SQS" else None,
                        batch_size=event.batch_size,
                    )
                )
        cloud = Cloud(
            s3=session.client("s3"),
            sqs=sqs,
            ddb=session.client("dynamodb"),
            streams=session.client("dynamodbstreams"),
            push=push,
            uploads=resources.uploads_bucket,
            site_bucket=str(resources.outputs["SiteBucketName"]),
            push_queue_url=str(resources.outputs["PushJobQueueUrl"]),
            content_table=resources.content_table,
            env=env,
            sources=sources,
        )
        cloud.settle_ingest()  # s3:TestEvent
        for source in sources:  # the streams from here on: what the test writes
            if source.kind == "DynamoDB":
                cloud._stream_batch(source)
        yield cloud
        _reset(handlers)
        aws.client.cache_clear()


def _reset(handlers: dict[str, ModuleType]) -> None:
    """Every function builds its clients again in the next mock (what each caches on first use)."""
    handlers["IngestFunction"].ingest_service.cache_clear()
    for lid in ("PublisherFunction", "FanoutPlannerFunction", "PushSenderFunction"):
        module = handlers[lid]
        if hasattr(module, "configure"):
            module.configure(None)
        for name in ("publisher", "planner", "web_sender"):
            cached = getattr(module, name, None)
            if hasattr(cached, "cache_clear"):
                cached.cache_clear()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def test_a_scheduled_post_is_on_the_site_before_its_first_push_job(cloud: Cloud) -> None:
    members = [cloud.join() for _ in range(3)]
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    post_id = cloud.post("later", "The market moves to the square on Sunday.", publish_at=_iso(at))
    cloud.settle(timeout=60)

    assert datetime.now(UTC) >= at
    assert cloud.received().count(post_id) == len(members)  # everyone, once
    assert cloud.at_first_push_job[post_id] == Site(page=True, index=True, atom=True, json_feed=True)


def test_a_post_published_at_once_is_on_the_site_before_its_first_push_job(cloud: Cloud) -> None:
    members = [cloud.join() for _ in range(2)]
    post_id = cloud.post("now", "Buses to the border are free this week.")
    cloud.settle(timeout=60)

    assert cloud.received().count(post_id) == len(members)
    assert cloud.at_first_push_job[post_id].complete, cloud.at_first_push_job[post_id]
