"""The DynamoDB stream poller against moto's streams: checkpoints, cancelled transactions, retries.

The poller is driven one ``poll_once`` at a time (no thread), with a function that records what
it is handed and fails on purpose for some keys, so every assertion is about what reached it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from herald_tools.localcloud.event_sources import DynamoDBStreamPoller
from herald_tools.localcloud.functions import InvocationResult
from herald_tools.localcloud.provision import EventSourceSpec
from tests.faults import Fault

REGION = "us-east-1"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:changes"


@dataclass
class Spec:
    arn: str = FUNCTION_ARN


@dataclass
class RecordingFunction:
    """Stands in for a function worker: keeps every event; fails for keys that start with ``poison``.

    With ``partial`` it answers ``batchItemFailures`` naming the poison records instead of raising.
    """

    partial: bool = False
    name: str = "changes"
    spec: Spec = field(default_factory=Spec)
    events: list[list[str]] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)

    def invoke(self, event: dict[str, Any], timeout: float | None = None) -> InvocationResult:
        keys = [r["dynamodb"]["Keys"]["id"]["S"] for r in event["Records"]]
        self.events.append(keys)
        poison = [r for r in event["Records"] if r["dynamodb"]["Keys"]["id"]["S"].startswith("poison")]
        if poison and not self.partial:
            return InvocationResult(ok=False, request_id=uuid.uuid4().hex, error_type="RuntimeError")
        failures = [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in poison]
        first_failed = min((int(f["itemIdentifier"]) for f in failures), default=None)
        for record, key in zip(event["Records"], keys, strict=True):
            if first_failed is None or int(record["dynamodb"]["SequenceNumber"]) < first_failed:
                self.succeeded.append(key)
        return InvocationResult(ok=True, request_id=uuid.uuid4().hex, result={"batchItemFailures": failures})


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName="changes",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        sqs = boto3.client("sqs", region_name=REGION)
        yield {
            "ddb": ddb,
            "sqs": sqs,
            "streams": boto3.client("dynamodbstreams", region_name=REGION),
            "stream_arn": ddb.describe_table(TableName="changes")["Table"]["LatestStreamArn"],
            "dlq_url": sqs.create_queue(QueueName="changes-dlq")["QueueUrl"],
        }


def poller(aws: dict[str, Any], function: RecordingFunction, streams: Any = None, **properties: Any):
    source = EventSourceSpec(
        function="ChangesFunction",
        name="Changes",
        type="DynamoDB",
        properties={"StartingPosition": "LATEST", "BatchSize": 10, **properties},
        source_arn=aws["stream_arn"],
    )
    kwargs: dict[str, Any] = {"retry_delay": 0}
    if "DestinationConfig" in properties:
        kwargs["sqs_client"] = aws["sqs"]
    made = DynamoDBStreamPoller(source, function, streams or aws["streams"], **kwargs)  # type: ignore[arg-type]
    made.initialise()
    return made


def put(aws: dict[str, Any], *keys: str) -> None:
    for key in keys:
        aws["ddb"].put_item(TableName="changes", Item={"id": {"S": key}})


def lose_a_race(aws: dict[str, Any], taken: str, new: str) -> None:
    """A TransactWriteItems that puts ``new`` and is cancelled by a condition on ``taken``."""
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        aws["ddb"].transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "changes", "Item": {"id": {"S": new}}}},
                {
                    "Put": {
                        "TableName": "changes",
                        "Item": {"id": {"S": taken}},
                        "ConditionExpression": "attribute_not_exists(id)",
                    }
                },
            ]
        )


def drain(p: DynamoDBStreamPoller, polls: int = 5) -> None:
    for _ in range(polls):
        p.poll_once()


def test_a_cancelled_transaction_does_not_stop_the_poller(aws):
    function = RecordingFunction()
    p = poller(aws, function)
    put(aws, "first")
    drain(p)
    lose_a_race(aws, taken="first", new="lost")
    put(aws, "after")
    drain(p)
    put(aws, "later")
    drain(p)
    delivered = [k for event in function.events for k in event]
    assert delivered == ["first", "after", "later"]  # nothing of the cancelled transaction
    assert p.pending() is None


class ExpiringStreams(Fault):
    """moto's streams client whose iterators, once ``expire()`` is called, answer ExpiredIteratorException.

    That is what DynamoDB Streams answers for an iterator older than 15 minutes. ``expire()`` ages
    the iterators handed out so far and the next one (a read that came too late for it: the poller
    takes a fresh iterator for each read, so an old one alone would never be read).
    """

    def __init__(self, client: Any) -> None:
        super().__init__("GetRecords answering ExpiredIteratorException for the iterators handed out")
        self.client = client
        self.handed_out: set[str] = set()
        self.expired: set[str] = set()
        self.expire_next = False

    def expire(self) -> None:
        self.expired |= self.handed_out
        self.expire_next = True

    def describe_stream(self, **kwargs: Any) -> Any:
        return self.client.describe_stream(**kwargs)

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        response = self.client.get_shard_iterator(**kwargs)
        self.handed_out.add(response["ShardIterator"])
        if self.expire_next:
            self.expired.add(response["ShardIterator"])
            self.expire_next = False
        return response

    def get_records(self, ShardIterator: str, **kwargs: Any) -> Any:
        if ShardIterator in self.expired:
            self.fire()
            raise ClientError(
                {"Error": {"Code": "ExpiredIteratorException", "Message": "Iterator expired"}}, "GetRecords"
            )
        response = self.client.get_records(ShardIterator=ShardIterator, **kwargs)
        if response.get("NextShardIterator"):
            self.handed_out.add(response["NextShardIterator"])
        return response


def test_an_expired_iterator_does_not_stop_the_poller(aws):
    function = RecordingFunction()
    streams = ExpiringStreams(aws["streams"])
    p = poller(aws, function, streams=streams)
    put(aws, "before")
    drain(p, 2)
    streams.expire()
    put(aws, "after")
    drain(p, 3)
    assert [k for event in function.events for k in event] == ["before", "after"]


def test_a_failing_record_is_isolated_by_bisecting_then_skipped_with_an_on_failure_record(aws):
    function = RecordingFunction()
    p = poller(
        aws,
        function,
        MaximumRetryAttempts=3,
        BisectBatchOnFunctionError=True,
        DestinationConfig={
            "OnFailure": {"Type": "SQS", "Destination": "arn:aws:sqs:us-east-1:123456789012:changes-dlq"}
        },
    )
    put(aws, "a", "b", "poison-c", "d")
    p.poll_once()
    # Halved on each error: the records beside the poison one reach the function in a batch that succeeds.
    assert sorted(function.succeeded) == ["a", "b", "d"]
    assert ["poison-c"] in function.events
    assert p.skipped == 1
    [message] = aws["sqs"].receive_message(QueueUrl=aws["dlq_url"], MaxNumberOfMessages=10)["Messages"]
    note = json.loads(message["Body"])
    info = note["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["streamArn"] == aws["stream_arn"] and info["shardId"].startswith("shardId-")
    assert note["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert note["requestContext"]["functionArn"] == FUNCTION_ARN
    assert note["requestContext"]["approximateInvokeCount"] == 4  # the first try and 3 retries
    # The poller goes on with the next write.
    put(aws, "e")
    drain(p, 2)
    assert function.events[-1] == ["e"]


def test_batch_item_failures_retry_from_the_lowest_failed_record(aws):
    function = RecordingFunction(partial=True)
    p = poller(aws, function, MaximumRetryAttempts=1, FunctionResponseTypes=["ReportBatchItemFailures"])
    put(aws, "a", "poison-b", "c")
    p.poll_once()
    # a is checkpointed; poison-b and c are retried once, then skipped (no destination: counted, logged).
    assert function.events == [["a", "poison-b", "c"], ["poison-b", "c"]]
    assert p.skipped == 2
    put(aws, "d")
    drain(p, 2)
    assert function.events[-1] == ["d"]
