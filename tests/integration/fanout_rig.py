"""The fan-out on moto: ingest, planner and sender driven with the event JSON Lambda sends, pushing to a
loopback push service; ports can be wrapped to inject faults.

* ``rig.upload(key, body)`` puts an object and runs ingest (S3 → SQS → ingest function);
* ``rig.drain()`` feeds the content table's stream to the publisher (Lambda's DynamoDB event), which
  writes the site and starts fan-outs, and the publisher's schedule queue, the planner queue and the
  push job queue to their functions (Lambda's SQS event, batches of up to 10), deleting what the
  function did not report failed, until nothing is left to do;
* ``rig.clock`` is the publisher's, planner's and sender's clock (quiet hours, leases, ``publish_at``).

Delays are capped at 0 here (``max_delay_s=0``): a job waiting for its time comes back at once and is
left in its queue by ``drain`` once a round changes nothing; the test moves the clock on and drains again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from herald.members.rules import Device, Member, Preferences, WebPushSubscription
from tests.faults import Crash
from tests.integration.conftest import REGION, ROOT, LambdaContext, load_handler
from tests.members import new_member

COMMUNITY = "harbour"


@dataclass
class FakeClock:
    now: float = field(default_factory=lambda: datetime(2025, 6, 2, 12, 0, tzinfo=UTC).timestamp())

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Rig:
    s3: Any
    sqs: Any
    ddb: Any
    streams: Any
    sns: Any
    bucket: str
    env: dict[str, str]
    push: Any
    clock: FakeClock
    ingest: ModuleType
    planner_app: ModuleType
    sender_app: ModuleType
    publisher_app: ModuleType
    fcm_arn: str
    vapid_public_key: str
    _positions: dict[str, str] = field(default_factory=dict)
    invocations: dict[str, int] = field(default_factory=dict)
    _stalled: dict[str, Any] = field(default_factory=dict)

    # -- the functions, with their ports (wrap them to inject faults) -----------------------------

    def ledger(self) -> Any:
        from herald.fanout.adapters.dynamo_deliveries import DynamoDeliveryLedger

        return DynamoDeliveryLedger(self.env["DELIVERIES_TABLE"], self.ddb)

    def members(self) -> Any:
        from herald.members.adapters.dynamo_members import DynamoMemberStore

        return DynamoMemberStore(self.env["MEMBERS_TABLE"], int(self.env["MEMBER_COUNTER_SHARDS"]), self.ddb)

    def queue(self, url_env: str) -> Any:
        from herald.fanout.adapters.sqs_jobs import SqsJobQueue

        return SqsJobQueue(self.env[url_env], self.sqs, sleep=lambda _s: None)

    def use_planner(self, wrap: Callable[[str, Any], Any] = lambda _name, port: port, **options: Any) -> None:
        from herald.fanout.service import FanoutPlanner
        from herald.ingest.adapters.dynamo_content import DynamoContentStore

        def build() -> FanoutPlanner:
            settings = {
                "shards": int(self.env["MEMBER_COUNTER_SHARDS"]),
                "page_size": 1000,
                "members_per_job": 100,
                "max_delay_s": 0,
                **options,
            }
            return FanoutPlanner(
                ledger=wrap("ledger", self.ledger()),
                members=wrap("members", self.members()),
                planner_queue=wrap("planner_queue", self.queue("PLANNER_QUEUE_URL")),
                push_queue=wrap("push_queue", self.queue("PUSH_JOB_QUEUE_URL")),
                content=DynamoContentStore(self.env["CONTENT_TABLE"], self.ddb),
                site_url=self.env["PUBLIC_SITE_URL"],
                clock=self.clock,
                **settings,
            )

        self.planner_app.configure(build)

    def use_publisher(
        self, wrap: Callable[[str, Any], Any] = lambda _name, port: port, *, max_delay_s: int = 0
    ) -> None:
        """The publisher composed as functions/publisher/app.py composes it (the rig's clients and
        clock; ``wrap`` may replace any port by name)."""
        from herald.ingest.adapters.dynamo_content import DynamoContentStore
        from herald.site.adapters.dynamo_fanout import DynamoFanoutMarker
        from herald.site.adapters.dynamo_release import DynamoReleaseMarker
        from herald.site.adapters.dynamo_variants import DynamoVariantReader
        from herald.site.adapters.s3_site import S3SiteStore
        from herald.site.publisher import PublisherSettings, SitePublisher

        def build() -> SitePublisher:
            settings = PublisherSettings.from_env({**self.env, "MAX_DELAY_SECONDS": str(max_delay_s)})
            return SitePublisher(
                DynamoContentStore(self.env["CONTENT_TABLE"], self.ddb),
                self.members(),
                wrap("site", S3SiteStore(self.env["SITE_BUCKET"], self.s3)),
                settings,
                clock=lambda: datetime.fromtimestamp(self.clock.now, UTC),
                schedule=wrap("schedule", self.queue("SCHEDULE_QUEUE_URL")),
                fanout=wrap("fanout", self.queue("PLANNER_QUEUE_URL")),
                marker=DynamoReleaseMarker(self.env["CONTENT_TABLE"], self.ddb),
                starts=wrap("starts", DynamoFanoutMarker(self.env["CONTENT_TABLE"], self.ddb)),
                variants=wrap("variants", DynamoVariantReader(self.env["CONTENT_TABLE"], self.ddb)),
            )

        self.publisher_app.configure(build)

    def use_sender(self, wrap: Callable[[str, Any], Any] = lambda _name, port: port, **options: Any) -> None:
        from herald.fanout.adapters.vapid_keys import VapidKeySource
        from herald.fanout.channels import Channels
        from herald.fanout.channels.mobile import MobileChannel
        from herald.fanout.channels.sns_mobile import PUBLISH_BOUND_S, SnsMobilePusher
        from herald.fanout.channels.vapid import VapidSigner
        from herald.fanout.channels.web import WebPushChannel
        from herald.fanout.channels.webpush import WebPushSender
        from herald.fanout.delivery import RetryPolicy
        from herald.fanout.service import PushDelivery
        from herald.members.endpoints import EndpointPolicy

        key = VapidKeySource(self.env["VAPID_KEY_PARAMETER"], ssm=boto3.client("ssm", region_name=REGION))
        # The loopback push service: allowed as the local cloud allows it (ALLOW_LOOPBACK_PUSH).
        policy = EndpointPolicy(allow_loopback=True)
        web = wrap("web", WebPushSender(VapidSigner(key(), self.env["VAPID_SUBJECT"]), policy=policy))
        mobile = wrap("mobile", SnsMobilePusher(self.sns))

        def build() -> PushDelivery:
            settings = {
                "policy": RetryPolicy(max_attempts=3, base_s=0.0),
                "lease_s": 60.0,
                "max_delay_s": 0,
                "threads": 4,
                **options,
            }
            return PushDelivery(
                ledger=wrap("ledger", self.ledger()),
                members=wrap("members", self.members()),
                push_queue=wrap("push_queue", self.queue("PUSH_JOB_QUEUE_URL")),
                channels=Channels(
                    [WebPushChannel(lambda: web), MobileChannel(lambda: mobile, bound_s=PUBLISH_BOUND_S)]
                ),
                clock=self.clock,
                **settings,
            )

        self.sender_app.configure(build)

    # -- members ----------------------------------------------------------------------------------

    def join(
        self,
        *,
        web: bool = True,
        device: str | None = None,
        community: str = COMMUNITY,
        shard: int | None = None,
        **preferences: Any,
    ) -> Member:
        """A member with a subscription of the push service (and/or a device endpoint on SNS)."""
        web_push = WebPushSubscription.model_validate(self.push.new_subscription()) if web else None
        dev = endpoint = None
        if device is not None:
            dev = Device(platform="fcm", token=device)
            endpoint = self.sns.create_platform_endpoint(PlatformApplicationArn=self.fcm_arn, Token=device)[
                "EndpointArn"
            ]
        return self.add(
            new_member(
                community,
                web_push=web_push,
                device=dev,
                endpoint_arn=endpoint,
                shard=shard,
                shards=int(self.env["MEMBER_COUNTER_SHARDS"]),
                preferences=Preferences.model_validate(preferences),
            )
        )

    def add(self, member: Member) -> Member:
        """Store ``member`` as a join would (one made with :func:`tests.members.new_member`)."""
        self.members().create(member)
        return member

    def sid(self, member: Member) -> str:
        assert member.web_push is not None
        return str(self.push.subscription_id(member.web_push.endpoint))

    def received_by(self, member: Member) -> list[str]:
        """The post ids the member's browser received, in order."""
        return [str(d.json["post_id"]) for d in self.push.received(self.sid(member))]

    def mobile_messages(self, member: Member) -> list[dict[str, Any]]:
        from moto.sns.models import sns_backends

        assert member.endpoint_arn is not None
        endpoint = sns_backends["123456789012"][REGION].platform_endpoints[member.endpoint_arn]
        return [json.loads(m) for m in endpoint.messages.values()]

    # -- uploads and the event sources ------------------------------------------------------------

    def upload(self, key: str, body: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode())
        self._drain_queue("INGEST_QUEUE_URL", self.ingest)

    def delete(self, key: str) -> None:
        """Delete an upload and run ingest on its event (the takedown)."""
        self.s3.delete_object(Bucket=self.bucket, Key=key)
        self._drain_queue("INGEST_QUEUE_URL", self.ingest)

    def post(self, name: str, text: str, *, community: str = COMMUNITY, **front: Any) -> str:
        """Upload a JSON post; its id."""
        self.upload(f"posts/{community}/{name}.json", json.dumps({"text": text, **front}))
        outcome = self.content().outcome(f"posts/{community}/{name}.json")
        assert outcome is not None and outcome.post_ids, outcome
        return str(outcome.post_ids[0])

    def content(self) -> Any:
        from herald.ingest.adapters.dynamo_content import DynamoContentStore

        return DynamoContentStore(self.env["CONTENT_TABLE"], self.ddb)

    def stream_records(self) -> list[dict[str, Any]]:
        """New records of the content table's stream, as Lambda's DynamoDB event records."""
        return read_stream(self.ddb, self.streams, self.env["CONTENT_TABLE"], self._positions)

    def feed_stream(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The stream's records to the publisher, which writes the site and starts the fan-outs."""
        self.invocations["stream"] = self.invocations.get("stream", 0) + 1
        response: dict[str, Any] = self.publisher_app.handler({"Records": records}, LambdaContext())
        return response

    def _receive(self, url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < 10:
            got = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10 - len(messages),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                break
            messages += got
        return messages

    def _drain_queue(self, env_name: str, app: ModuleType, rounds: int = 1000) -> int:
        """Invoke ``app`` with batches from the queue until it is empty (or a round changes nothing)."""
        from herald_tools.localcloud.event_sources import sqs_record

        url = self.env[env_name]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        handled = 0
        previous = self._stalled.get(env_name)
        for _ in range(rounds):
            messages = self._receive(url)
            if not messages:
                return handled
            signature = (self.clock.now, sorted(_comparable(m["Body"]) for m in messages))
            if signature == previous and not self._progress():
                self._stalled[env_name] = signature
                for m in messages:  # waiting for the clock: leave them for the test to move it on
                    self.sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
                return handled
            previous = signature
            event = {"Records": [sqs_record(m, arn) for m in messages]}
            self.invocations[env_name] = self.invocations.get(env_name, 0) + 1
            try:
                response = app.handler(event, LambdaContext())
                failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
            except Crash:
                failed = {m["MessageId"] for m in messages}  # the environment died: nothing is deleted
            if failed:
                previous = None  # a redelivery is not a job waiting for the clock
            for m in messages:
                if m["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            handled += len(messages)
        raise AssertionError(f"{env_name} did not drain in {rounds} rounds")

    _seen: int = 0

    def _progress(self) -> bool:
        count = len(self.push.received())
        moved = count != self._seen
        self._seen = count
        return moved

    def drain(self, *, max_rounds: int = 50) -> None:
        """Stream, planner queue, push queue, again, until a whole round has nothing to do."""
        for _ in range(max_rounds):
            busy = 0
            records = self.stream_records()
            if records:
                busy += 1
                for _attempt in range(20):
                    try:
                        response = self.feed_stream(records)
                    except Crash:
                        continue  # the stream source retries the batch
                    if not response.get("batchItemFailures"):
                        break
                else:
                    raise AssertionError("the stream batch kept failing")
            busy += self._drain_queue("SCHEDULE_QUEUE_URL", self.publisher_app)
            busy += self._drain_queue("PLANNER_QUEUE_URL", self.planner_app)
            busy += self._drain_queue("PUSH_JOB_QUEUE_URL", self.sender_app)
            if not busy:
                return
        raise AssertionError("the fan-out did not settle")

    def queued(self, env_name: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.env[env_name],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def stats(self, post_id: str, community: str = COMMUNITY) -> dict[str, int] | None:
        stats: dict[str, int] | None = self.ledger().stats(community, post_id)
        return stats


def read_stream(
    ddb: Any, streams: Any, table: str, positions: dict[str, str], limit: int = 1000
) -> list[dict[str, Any]]:
    """The records of ``table``'s stream after ``positions`` (shard -> the last sequence number read,
    moved on here), up to ``limit`` a shard, as Lambda's DynamoDB event records."""
    from herald_tools.localcloud.event_sources import dynamodb_record

    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        sid = shard["ShardId"]
        after = positions.get(sid)
        kwargs: dict[str, Any] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
            if after
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=sid, **kwargs)["ShardIterator"]
        got = streams.get_records(ShardIterator=iterator, Limit=limit)["Records"]
        if got:
            positions[sid] = got[-1]["dynamodb"]["SequenceNumber"]
            records += [dynamodb_record(r, arn) for r in got]
    return records


def _comparable(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict):
        data.pop("deferred_recorded", None)
        data.pop("job", None)
    return json.dumps(data, sort_keys=True)


@pytest.fixture(name="rig")
def rig_fixture(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    from herald.core import aws
    from herald.fanout.channels.vapid import generate_vapid_key, private_key_pem, public_key_b64
    from herald_tools.localcloud import s3_fidelity
    from herald_tools.localcloud.provision import provision
    from herald_tools.localcloud.pushservice import LocalPushService

    with mock_aws(), LocalPushService() as push:
        s3_fidelity.install()
        session = boto3.Session(region_name=REGION)
        sns = session.client("sns")
        fcm = sns.create_platform_application(
            Name="herald-test-fcm", Platform="GCM", Attributes={"PlatformCredential": "k"}
        )["PlatformApplicationArn"]
        # The site URL a deploy gives (empty, the template names the distribution moto makes up).
        parameters = {"FcmPlatformApplicationArn": fcm, "PublicSiteUrl": "https://herald.example"}
        resources = provision(ROOT / "template.yaml", session, parameters=parameters)
        env: dict[str, str] = {}
        for lid in ("IngestFunction", "PublisherFunction", "FanoutPlannerFunction", "PushSenderFunction"):
            env.update({k: str(v) for k, v in resources.functions[lid].environment.items()})
        env["INGEST_QUEUE_URL"] = resources.ingest_queue_url
        env["PLANNER_QUEUE_URL"] = str(resources.outputs["PlannerQueueUrl"])
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        key = generate_vapid_key()
        session.client("ssm").put_parameter(
            Name=env["VAPID_KEY_PARAMETER"], Value=private_key_pem(key), Type="SecureString"
        )
        aws.client.cache_clear()
        ingest = load_handler("ingest")
        ingest.ingest_service.cache_clear()
        rig = Rig(
            s3=session.client("s3"),
            sqs=session.client("sqs"),
            ddb=session.client("dynamodb"),
            streams=session.client("dynamodbstreams"),
            sns=sns,
            bucket=resources.uploads_bucket,
            env=env,
            push=push,
            clock=FakeClock(),
            ingest=ingest,
            planner_app=load_handler("fanout_planner"),
            sender_app=load_handler("push_sender"),
            publisher_app=load_handler("publisher"),
            fcm_arn=fcm,
            vapid_public_key=public_key_b64(key.public_key()),
        )
        rig._drain_queue("INGEST_QUEUE_URL", ingest)  # s3:TestEvent
        rig.stream_records()  # from here on: what the tests write
        rig.use_publisher()
        rig.use_planner()
        rig.use_sender()
        yield rig
        rig.publisher_app.configure(None)
        rig.planner_app.configure(None)
        rig.sender_app.configure(None)
        ingest.ingest_service.cache_clear()
        aws.client.cache_clear()


def by_member(rig: Rig, members: Sequence[Member]) -> Mapping[str, list[str]]:
    return {m.member_id: rig.received_by(m) for m in members if m.web_push is not None}
