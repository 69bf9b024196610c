"""FilterCriteria applied as Lambda applies them: the template's own filters on real records,
the pattern operators, and the pollers dropping what the filters do not keep."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from herald.content.keys import post_key
from herald.ingest.adapters.dynamo_content import (
    hash_key,
    profile_key,
    progress_key,
    published_key,
    upload_key,
    waiting_key,
    waiting_ref_key,
)
from herald_tools.localcloud.event_filters import RecordFilter, sqs_filter_view
from herald_tools.localcloud.event_sources import DynamoDBStreamPoller, SqsPoller, dynamodb_record
from herald_tools.localcloud.functions import InvocationResult
from herald_tools.localcloud.provision import EventSourceSpec
from herald_tools.localcloud.template import load_template_text

from .conftest import PROJECT_TEMPLATE

REGION = "us-east-1"


def publisher_filters() -> dict[str, Any]:
    template = load_template_text(PROJECT_TEMPLATE.read_text(encoding="utf-8"))
    return template["Resources"]["PublisherFunction"]["Properties"]["Events"]["ContentStream"]["Properties"][
        "FilterCriteria"
    ]


def stream_record(keys: dict[str, Any], **image: Any) -> dict[str, Any]:
    item = {**keys, **{k: {"S": v} for k, v in image.items()}}
    raw = {
        "eventID": uuid.uuid4().hex,
        "eventName": "INSERT",
        "dynamodb": {
            "Keys": keys,
            "NewImage": item,
            "SequenceNumber": "1",
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    return dynamodb_record(raw, "arn:aws:dynamodb:us-east-1:123456789012:table/content/stream/x")


# The content table's record kinds, with the keys Herald's adapters write.
KEPT = {
    "post": post_key("c1", "p1"),
    "profile": profile_key("c1"),
}
DROPPED = {
    "outcome": upload_key("uploads/a.txt"),
    "dedup claim": hash_key("c1", "abc"),
    "published marker": published_key("uploads/a.txt", "p1"),
    "waiting duplicate": waiting_key("c1", "abc", "p2"),
    "waiting reference": waiting_ref_key("uploads/a.txt", "p2"),
    "import progress counter": progress_key("uploads/a.txt"),
}


@pytest.mark.parametrize("kind", sorted(KEPT))
def test_the_publisher_stream_keeps_posts_and_profiles(kind):
    assert RecordFilter(publisher_filters()).passes(stream_record(KEPT[kind]))


@pytest.mark.parametrize("kind", sorted(DROPPED))
def test_the_publisher_stream_drops_every_other_record(kind):
    assert not RecordFilter(publisher_filters()).passes(stream_record(DROPPED[kind]))


def test_no_filters_keep_everything():
    assert not RecordFilter(None)
    assert RecordFilter(None).passes(stream_record(DROPPED["outcome"]))
    assert RecordFilter({"Filters": []}).passes({"body": "x"})


def _passes(pattern: dict[str, Any], record: dict[str, Any]) -> bool:
    return RecordFilter({"Filters": [{"Pattern": json.dumps(pattern)}]}).passes(record)


def test_operators():
    rec = {"dynamodb": {"NewImage": {"kind": {"S": "Post"}, "n": 5, "sk": {"S": "POST#9"}}}}

    def img(**p: Any) -> dict[str, Any]:
        return {"dynamodb": {"NewImage": p}}

    assert _passes(img(kind={"S": ["Post"]}), rec) and not _passes(img(kind={"S": ["post"]}), rec)
    assert _passes(img(sk={"S": [{"prefix": "POST#"}]}), rec)
    assert not _passes(img(sk={"S": [{"prefix": "HASH#"}]}), rec)
    assert _passes(img(sk={"S": [{"suffix": "#9"}]}), rec) and not _passes(
        img(sk={"S": [{"suffix": "#8"}]}), rec
    )
    assert _passes(img(kind={"S": [{"anything-but": ["Outcome"]}]}), rec)
    assert not _passes(img(kind={"S": [{"anything-but": ["Post"]}]}), rec)
    assert _passes(img(n=[{"numeric": [">", 1, "<=", 5]}]), rec)
    assert not _passes(img(n=[{"numeric": [">", 5]}]), rec)
    # exists matches leaf values (an attribute's S, N...), as in EventBridge.
    assert _passes(img(kind={"S": [{"exists": True}]}), rec)
    assert not _passes(img(gone={"S": [{"exists": True}]}), rec)
    assert _passes(img(gone={"S": [{"exists": False}]}), rec)
    assert _passes(img(kind={"S": [{"equals-ignore-case": "POST"}]}), rec)
    assert not _passes(img(kind={"S": [{"equals-ignore-case": "PROFILE"}]}), rec)
    either = {"$or": [img(kind={"S": ["Profile"]}), img(sk={"S": [{"prefix": "POST#"}]})]}
    assert _passes(either, rec)
    assert not _passes({"$or": [img(kind={"S": ["Profile"]}), img(n=[{"numeric": ["<", 0]}])]}, rec)
    # Fields of one pattern must all match; any one of the filters is enough.
    assert not _passes(img(kind={"S": ["Post"]}, n=[0]), rec)
    two = {
        "Filters": [{"Pattern": json.dumps(img(n=[0]))}, {"Pattern": json.dumps(img(kind={"S": ["Post"]}))}]
    }
    assert RecordFilter(two).passes(rec)


def test_an_sqs_body_is_matched_as_json_when_it_is_json_else_as_a_string():
    json_rec = sqs_filter_view({"messageId": "1", "body": json.dumps({"kind": "upload", "size": 3})})
    text_rec = sqs_filter_view({"messageId": "2", "body": "upload"})
    assert _passes({"body": {"kind": ["upload"]}}, json_rec)
    assert not _passes({"body": {"kind": ["upload"]}}, text_rec)
    assert _passes({"body": ["upload"]}, text_rec)
    assert _passes({"body": {"size": [{"numeric": [">=", 3]}]}}, json_rec)


# ------------------------------------------------------------------------------------------
# The pollers
# ------------------------------------------------------------------------------------------


@dataclass
class Spec:
    arn: str = "arn:aws:lambda:us-east-1:123456789012:function:publisher"


@dataclass
class Recording:
    name: str = "publisher"
    spec: Spec = field(default_factory=Spec)
    events: list[list[dict[str, Any]]] = field(default_factory=list)

    def invoke(self, event: dict[str, Any], timeout: float | None = None) -> InvocationResult:
        self.events.append(event["Records"])
        return InvocationResult(ok=True, request_id=uuid.uuid4().hex, result=None)


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName="content",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield {
            "ddb": ddb,
            "sqs": boto3.client("sqs", region_name=REGION),
            "streams": boto3.client("dynamodbstreams", region_name=REGION),
            "stream_arn": ddb.describe_table(TableName="content")["Table"]["LatestStreamArn"],
        }


def stream_poller(aws: dict[str, Any], function: Recording, batch_size: int) -> DynamoDBStreamPoller:
    source = EventSourceSpec(
        function="PublisherFunction",
        name="ContentStream",
        type="DynamoDB",
        properties={
            "StartingPosition": "LATEST",
            "BatchSize": batch_size,
            "FilterCriteria": publisher_filters(),
        },
        source_arn=aws["stream_arn"],
    )
    made = DynamoDBStreamPoller(source, function, aws["streams"], retry_delay=0)  # type: ignore[arg-type]
    made.initialise()
    return made


def _sk(record: dict[str, Any]) -> str:
    return record["dynamodb"]["Keys"]["sk"]["S"]


def test_a_mixed_stream_reaches_the_publisher_with_only_posts_and_profiles(aws):
    function = Recording()
    p = stream_poller(aws, function, batch_size=3)
    written = []
    for i in range(4):  # each post comes with the records around it that the publisher ignores
        for keys in (
            upload_key(f"u{i}"),
            hash_key("c1", f"h{i}"),
            post_key("c1", f"p{i}"),
            progress_key(f"u{i}"),
        ):
            aws["ddb"].put_item(TableName="content", Item=keys)
            written.append(keys["sk"]["S"])
    aws["ddb"].put_item(TableName="content", Item=profile_key("c1"))
    aws["ddb"].put_item(TableName="content", Item=upload_key("last"))

    assert p.poll_once() > 0
    # Filtering comes before batching: the first batch is full of posts, not of whatever came first.
    assert [_sk(r) for r in function.events[0]] == ["POST#p0", "POST#p1", "POST#p2"]
    for _ in range(3):
        p.poll_once()
    delivered = [_sk(r) for event in function.events for r in event]
    assert delivered == ["POST#p0", "POST#p1", "POST#p2", "POST#p3", "PROFILE"]
    assert p.filtered == len(written) + 2 - 5
    # The checkpoint moved past the dropped records, the last of which came after every kept one.
    assert p.pending() is None
    assert p.poll_once() == 0 and len(function.events) == 2


def test_a_stream_of_dropped_records_moves_the_checkpoint_without_invoking(aws):
    function = Recording()
    p = stream_poller(aws, function, batch_size=10)
    for i in range(5):
        aws["ddb"].put_item(TableName="content", Item=upload_key(f"u{i}"))
    assert p.pending() is not None
    assert p.poll_once() == 5
    assert function.events == [] and p.filtered == 5 and p.pending() is None
    aws["ddb"].put_item(TableName="content", Item=post_key("c1", "p9"))
    p.poll_once()
    assert [[_sk(r) for r in e] for e in function.events] == [["POST#p9"]]


def test_sqs_messages_the_filters_drop_are_deleted_and_never_delivered(aws):
    url = aws["sqs"].create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    arn = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = EventSourceSpec(
        function="JobsFunction",
        name="Jobs",
        type="SQS",
        properties={
            "BatchSize": 10,
            "FilterCriteria": {"Filters": [{"Pattern": json.dumps({"body": {"kind": ["upload"]}})}]},
        },
        source_arn=arn,
        queue_url=url,
    )
    function = Recording()
    p = SqsPoller(source, function, aws["sqs"], wait_seconds=0)  # type: ignore[arg-type]
    bodies = [
        json.dumps({"kind": "upload", "n": 1}),
        "upload",
        json.dumps({"kind": "other"}),
        json.dumps({"kind": "upload", "n": 2}),
    ]
    for body in bodies:
        aws["sqs"].send_message(QueueUrl=url, MessageBody=body)
    messages = p._gather()
    assert len(messages) == 4
    p._process(messages)
    p._done()
    assert [[json.loads(r["body"])["n"] for r in e] for e in function.events] == [[1, 2]]
    assert p.filtered == 2
    assert p.pending() is None  # the dropped messages were deleted, not left to reappear
