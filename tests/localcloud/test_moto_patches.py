"""moto as the local cloud runs it: what a request costs does not grow with what is stored.

The conftest installs :mod:`herald_tools.localcloud.moto_patches` for the session, as ``herald
local`` does, so the tests that use plain ``mock_aws`` see what users get. The tests that compare
with moto's own code run the same scenario once without the patches and once with them.
Costs are counted (items copied, messages looked at, instances kept alive), never timed.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

REGION = "us-east-1"
ACCOUNT = "123456789012"


@contextlib.contextmanager
def moto(patched: bool) -> Iterator[None]:
    """``mock_aws`` with the patches in or out, as they were afterwards."""
    from herald_tools.localcloud import moto_patches

    was = moto_patches.installed()
    (moto_patches.install if patched else moto_patches.uninstall)()
    try:
        with mock_aws():
            yield
    finally:
        (moto_patches.install if was else moto_patches.uninstall)()


# -- DynamoDB ---------------------------------------------------------------------------------------


def make_table(ddb: Any, name: str = "posts", *, sort_key: bool = True) -> str:
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort_key:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attrs.append({"AttributeName": "sk", "AttributeType": "S"})
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=keys,
        AttributeDefinitions=attrs,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]


def key(pk: str, sk: str = "1") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def seed(ddb: Any, count: int, table: str = "posts") -> None:
    items = [
        {"PutRequest": {"Item": {**key(f"seed-{i:05d}"), "body": {"S": "x" * 200}}}} for i in range(count)
    ]
    for start in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={table: items[start : start + 25]})


def stream_records(streams: Any, stream_arn: str) -> list[dict[str, Any]]:
    """Every record on the stream, from the start, without the fields that differ run to run."""
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    out = []
    for record in records:
        ddb = dict(record["dynamodb"])
        ddb.pop("ApproximateCreationDateTime", None)
        ddb.pop("SizeBytes", None)  # moto's estimate counts the characters of that timestamp
        out.append({"eventName": record["eventName"], "dynamodb": ddb})
    return out


def everything(ddb: Any, table: str = "posts") -> list[dict[str, Any]]:
    items = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item.get("sk", {}).get("S", "")))


def outcome(call: Callable[[], Any]) -> dict[str, Any]:
    """What a call answers: its error code, message and cancellation reasons, or that it succeeded."""
    try:
        call()
    except ClientError as exc:
        return {
            "code": exc.response["Error"]["Code"],
            "message": exc.response["Error"]["Message"],
            "reasons": exc.response.get("CancellationReasons"),
        }
    return {"code": None}


def transaction_scenario() -> list[Any]:
    """Committed, cancelled and refused transactions; what each answered and what was left."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    stream_arn = make_table(ddb)
    make_table(ddb, "counters", sort_key=False)
    for pk, extra in (("a", {}), ("b", {"n": {"N": "5"}}), ("d", {})):
        ddb.put_item(TableName="posts", Item={**key(pk), "v": {"S": "one"}, **extra})
    ddb.put_item(TableName="counters", Item={"pk": {"S": "total"}, "n": {"N": "1"}})
    seen: list[Any] = []

    def write(items: list[dict[str, Any]]) -> None:
        seen.append(outcome(lambda: ddb.transact_write_items(TransactItems=items)))
        seen.append(everything(ddb))
        seen.append(everything(ddb, "counters"))
        seen.append(stream_records(streams, stream_arn))

    one = {":one": {"N": "1"}}
    # Committed: a put, an update, a delete, a condition check, across two tables.
    write(
        [
            {"Put": {"TableName": "posts", "Item": {**key("c"), "v": {"S": "new"}}}},
            {
                "Update": {
                    "TableName": "posts",
                    "Key": key("b"),
                    "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": one,
                }
            },
            {"Delete": {"TableName": "posts", "Key": key("a")}},
            {
                "ConditionCheck": {
                    "TableName": "posts",
                    "Key": key("d"),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": "counters",
                    "Key": {"pk": {"S": "total"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": one,
                }
            },
        ]
    )
    # Cancelled by a condition, after writes that come before it and with one after it.
    write(
        [
            {"Put": {"TableName": "posts", "Item": {**key("e"), "v": {"S": "lost"}}}},
            {
                "Update": {
                    "TableName": "posts",
                    "Key": key("b"),
                    "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": one,
                }
            },
            {"Delete": {"TableName": "posts", "Key": key("c")}},
            {
                "ConditionCheck": {
                    "TableName": "posts",
                    "Key": key("d"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Put": {
                    "TableName": "counters",
                    "Item": {"pk": {"S": "total"}, "n": {"N": "100"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
    )
    # Refused: two operations on one item (after a write on another).
    write(
        [
            {"Put": {"TableName": "posts", "Item": {**key("f"), "v": {"S": "lost"}}}},
            {"Put": {"TableName": "posts", "Item": {**key("d"), "v": {"S": "twice"}}}},
            {"Delete": {"TableName": "posts", "Key": key("d")}},
        ]
    )
    # An item whose update fails for another reason than its condition.
    write(
        [
            {"Put": {"TableName": "posts", "Item": {**key("g"), "v": {"S": "lost"}}}},
            {
                "Update": {
                    "TableName": "posts",
                    "Key": key("d"),
                    "UpdateExpression": "SET v = v + :one",
                    "ExpressionAttributeValues": one,
                }
            },
        ]
    )
    # Committed after all that: the stream goes on.
    write([{"Put": {"TableName": "posts", "Item": {**key("h"), "v": {"S": "last"}}}}])
    return seen


def test_transactions_answer_as_moto_does():
    with moto(patched=False):
        expected = transaction_scenario()
    with moto(patched=True):
        got = transaction_scenario()
    assert got == expected
    # The scenario does what it says: one commit, three kinds of refusal, one more commit.
    codes = [step["code"] for step in got[::4]]
    assert codes[0] is None and codes[-1] is None
    assert codes[1] == "TransactionCanceledException"
    assert got[4]["reasons"][3]["Code"] == "ConditionalCheckFailed"
    assert got[4]["reasons"][3]["Item"]["v"] == {"S": "one"}  # ReturnValuesOnConditionCheckFailure
    assert codes[2] == "ValidationException"


def test_a_cancelled_transaction_leaves_the_table_and_its_stream_in_place():
    from moto.dynamodb.models import dynamodb_backends

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        streams = boto3.client("dynamodbstreams", region_name=REGION)
        stream_arn = make_table(ddb)
        table = dynamodb_backends[ACCOUNT][REGION].tables["posts"]
        ddb.put_item(TableName="posts", Item=key("first"))
        shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )
        first = streams.get_records(ShardIterator=iterator["ShardIterator"])
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in first["Records"]] == ["first"]

        with pytest.raises(ClientError, match="TransactionCanceledException"):
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "posts", "Item": key("lost")}},
                    {
                        "Put": {
                            "TableName": "posts",
                            "Item": key("first"),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        ddb.put_item(TableName="posts", Item=key("after"))

        assert dynamodb_backends[ACCOUNT][REGION].tables["posts"] is table
        # The iterator taken before the cancelled transaction reads on: nothing of it, then the next write.
        later = streams.get_records(ShardIterator=first["NextShardIterator"])
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in later["Records"]] == ["after"]
        assert [i["pk"]["S"] for i in everything(ddb)] == ["after", "first"]


def items_copied_by_a_transaction(stored: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Item and table copies moto makes for a committed and for a cancelled transaction."""
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    counts = {"items": 0, "tables": 0}
    item_copy = Item.__deepcopy__

    def counted_item_copy(self: Any, memo: dict[int, Any]) -> Any:
        counts["items"] += 1
        return item_copy(self, memo)

    def counted_table_copy(self: Any, memo: dict[int, Any]) -> Any:
        counts["tables"] += 1
        clone = Table.__new__(Table)
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            setattr(clone, name, __import__("copy").deepcopy(value, memo))
        return clone

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        make_table(ddb)
        seed(ddb, stored)
        ddb.put_item(TableName="posts", Item={**key("post"), "n": {"N": "1"}})
        monkeypatch.setattr(Item, "__deepcopy__", counted_item_copy)
        monkeypatch.setattr(Table, "__deepcopy__", counted_table_copy, raising=False)
        update = {
            "Update": {
                "TableName": "posts",
                "Key": key("post"),
                "UpdateExpression": "SET n = n + :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": "posts", "Item": key("claim")}}, update]
        )
        taken = {
            "Put": {
                "TableName": "posts",
                "Item": key("claim"),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        with pytest.raises(ClientError, match="TransactionCanceledException"):
            ddb.transact_write_items(TransactItems=[update, taken])
        monkeypatch.undo()
        assert [i["n"]["N"] for i in everything(ddb) if i["pk"]["S"] == "post"] == ["2"]
    return counts


def test_a_transaction_copies_the_items_it_touches_not_the_tables(monkeypatch):
    small = items_copied_by_a_transaction(10, monkeypatch)
    large = items_copied_by_a_transaction(5000, monkeypatch)
    assert small == large
    assert small["tables"] == 0
    assert small["items"] <= 8  # the few items touched, and moto's own copy for an update


def live(cls: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is cls)


def test_reads_and_receives_do_not_keep_their_copies_alive():
    from moto.dynamodb.models.dynamo_type import Item
    from moto.sqs.models import Message

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        make_table(ddb)
        seed(ddb, 20)
        items_before = live(Item)
        for _ in range(30):
            ddb.query(
                TableName="posts",
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "seed-00003"}},
            )
            ddb.scan(TableName="posts")
        assert live(Item) <= items_before  # each result was a copy of the stored items

        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        messages_before = live(Message)
        for round_ in range(20):
            sqs.send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"{round_}-{i}"} for i in range(10)]
            )
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
            )
        assert live(Message) <= messages_before  # all 200 were deleted


# -- SQS --------------------------------------------------------------------------------------------


def sqs_scenario() -> list[Any]:
    """Sends, receives, visibility changes and deletes, with the queue's attributes after each."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    fifo = sqs.create_queue(
        QueueName="jobs.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    names: dict[str, str] = {}
    seen: list[Any] = []

    def attributes(queue: str = url, names_: list[str] | None = None) -> None:
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names_ or ["All"])["Attributes"]
        for stamp in ("CreatedTimestamp", "LastModifiedTimestamp"):
            attrs.pop(stamp, None)
        seen.append(attrs)

    def receive(count: int, **kwargs: Any) -> list[dict[str, Any]]:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=count,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            **kwargs,
        ).get("Messages", [])
        for m in got:
            names.setdefault(m["MessageId"], f"m{len(names)}")
        seen.append([(names[m["MessageId"]], m["Body"], m["Attributes"]) for m in got])
        return got

    for i in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=f"job {i}")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    attributes()
    attributes(names_=["ApproximateNumberOfMessages", "QueueArn", "ApproximateNumberOfMessagesDelayed"])
    first = receive(2, VisibilityTimeout=30)
    attributes()
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)
    attributes(names_=["ApproximateNumberOfMessagesNotVisible"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[1]["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[1]["ReceiptHandle"])  # twice: no error
    seen.append(outcome(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")))
    seen.append(
        outcome(
            lambda: sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle="not-a-handle", VisibilityTimeout=5
            )
        )
    )
    seen.append(
        outcome(
            lambda: sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=43201
            )
        )
    )
    again = receive(3, VisibilityTimeout=30)
    # The first handle of a message received twice still deletes it (moto keeps every handle).
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    batch = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(again)]
        + [{"Id": "bogus", "ReceiptHandle": "not-a-handle"}],
    )
    seen.append(
        (sorted(s["Id"] for s in batch.get("Successful", [])), [f["Id"] for f in batch.get("Failed", [])])
    )
    attributes()
    seen.append(outcome(lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchThing"])))
    sqs.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")
    sqs.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")  # deduplicated
    attributes(fifo)
    return seen


def test_sqs_answers_as_moto_does():
    with moto(patched=False):
        expected = sqs_scenario()
    with moto(patched=True):
        got = sqs_scenario()
    assert got == expected
    assert got[0]["ApproximateNumberOfMessages"] == "4"
    assert got[0]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert got[-1]["ApproximateNumberOfMessages"] == "1"  # the FIFO queue's duplicate was dropped


def message_visits(waiting: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """How often moto looks at a message for one send, one receive of ten and their deletion."""
    from moto.sqs.models import Message

    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        for start in range(0, waiting, 10):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "MessageBody": f"job {start + i}"} for i in range(min(10, waiting - start))
                ],
            )
        visits = [0]
        for name in ("visible", "delayed"):
            getter = getattr(Message, name).fget

            def counted(self: Any, _getter: Callable[[Any], bool] = getter) -> bool:
                visits[0] += 1
                return _getter(self)

            monkeypatch.setattr(Message, name, property(counted))
        had = Message.had_receipt_handle

        def counted_had(self: Any, handle: str) -> bool:
            visits[0] += 1
            return had(self, handle)

        monkeypatch.setattr(Message, "had_receipt_handle", counted_had)

        sqs.send_message(QueueUrl=url, MessageBody="one more")
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
        deleted = sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
        )
        monkeypatch.undo()
        assert len(got) == 10 and len(deleted["Successful"]) == 10
    return visits[0]


def test_sqs_cost_per_message_does_not_grow_with_the_queue(monkeypatch):
    assert message_visits(50, monkeypatch) == message_visits(1000, monkeypatch)


def test_a_long_poll_on_an_empty_queue_still_waits_for_a_message():
    import threading

    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages") is None
        sender = threading.Timer(0.2, lambda: sqs.send_message(QueueUrl=url, MessageBody="late"))
        sender.start()
        try:
            got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages", [])
        finally:
            sender.join()
        assert [m["Body"] for m in got] == ["late"]


# -- where the patches are installed ---------------------------------------------------------------


def test_the_local_moto_server_runs_with_the_patches_and_takes_them_out():
    from moto.sqs.models import Queue

    from herald_tools.localcloud import moto_patches
    from herald_tools.localcloud.server import MotoServer

    moto_patches.uninstall()
    try:
        server = MotoServer(port=0)
        server.start()
        try:
            assert moto_patches.installed()
            ddb = boto3.client("dynamodb", region_name=REGION, endpoint_url=server.endpoint_url)
            make_table(ddb)
            ddb.put_item(TableName="posts", Item=key("first"))
            from moto.dynamodb.models import dynamodb_backends

            table = dynamodb_backends[ACCOUNT][REGION].tables["posts"]
            with pytest.raises(ClientError, match="TransactionCanceledException"):
                ddb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": "posts", "Item": key("lost")}},
                        {
                            "Put": {
                                "TableName": "posts",
                                "Item": key("first"),
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )
            assert dynamodb_backends[ACCOUNT][REGION].tables["posts"] is table
            server.reset()
        finally:
            server.stop()
        assert not moto_patches.installed()
        assert "ApproximateNumberOfMessages" in Queue("q", REGION, ACCOUNT).attributes  # moto's own again
    finally:
        moto_patches.install()


# -- DynamoDB Streams -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_shard_iterators_expire_after_15_minutes_instead_of_piling_up(monkeypatch):
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    from herald_tools.localcloud import moto_patches

    clock = Clock()
    monkeypatch.setattr(moto_patches, "time", clock)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        streams = boto3.client("dynamodbstreams", region_name=REGION)
        stream_arn = make_table(ddb)
        shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]

        def poll() -> tuple[str, str]:
            """What the local stream poller does each time: a fresh iterator, one read."""
            iterator = streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            return iterator, streams.get_records(ShardIterator=iterator)["NextShardIterator"]

        first, first_next = poll()
        ddb.put_item(TableName="posts", Item=key("a"))
        for _ in range(60):  # an hour of polls, one a minute
            clock.now += 60
            poll()
        kept = dynamodbstreams_backends[ACCOUNT][REGION].shard_iterators
        assert len(kept) <= 2 * 16  # the last 15 minutes' worth, not the hour's 122
        for old in (first, first_next):
            with pytest.raises(ClientError) as caught:
                streams.get_records(ShardIterator=old)
            assert caught.value.response["Error"]["Code"] == "ExpiredIteratorException"
        _, fresh = poll()
        records = streams.get_records(ShardIterator=fresh)["Records"]
        assert records == []  # the fresh iterator works (after the one record, read by poll)


SSM_SCRIPT = """
import json, sys
import boto3
from moto import mock_aws
from herald_tools.localcloud import moto_patches

moto_patches.install()
with mock_aws():
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/herald/local/a", Value="1", Type="String")
    ssm.put_parameter(Name="/herald/local/b", Value="2", Type="SecureString")
    found = ssm.get_parameters_by_path(Path="/herald", Recursive=True, WithDecryption=True)
    answers = {
        "by_path": sorted((p["Name"], p["Value"]) for p in found["Parameters"]),
        "ec2_after_parameters": "moto.ec2" in sys.modules,
    }
    # A command sent to targets looks up EC2's instances: moto.ec2 is imported then, and answers.
    command = ssm.send_command(
        Targets=[{"Key": "tag:role", "Values": ["web"]}], DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["true"]},
    )["Command"]
    answers["targets"] = command["Targets"]
    answers["ec2_after_command"] = "moto.ec2" in sys.modules
print(json.dumps(answers))
"""


def test_ssm_runs_without_moto_ec2_until_a_command_needs_it():
    """moto.ssm imports moto.ec2 (about 100 MB of tables) for one lookup; patched, it is imported
    when SendCommand first looks up instances, not before."""
    import json
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", SSM_SCRIPT], capture_output=True, text=True, check=True)
    answers = json.loads(child.stdout.strip().splitlines()[-1])
    assert answers["by_path"] == [["/herald/local/a", "1"], ["/herald/local/b", "2"]]
    assert answers["ec2_after_parameters"] is False
    assert answers["targets"] == [{"Key": "tag:role", "Values": ["web"]}]
    assert answers["ec2_after_command"] is True


def stream_scenario() -> list[Any]:
    """Writes of every attribute type (binary nested in a map too), read back from the stream."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = make_table(ddb)
    item = {
        **key("post"),
        "text": {"S": "Les inscriptions sont ouvertes — التسجيل مفتوح " * 20},
        "n": {"N": "12.5"},
        "blob": {"B": b"\x00\x01binary"},
        "tags": {"SS": ["a", "b"]},
        "nums": {"NS": ["1", "2"]},
        "meta": {"M": {"raw": {"B": b"\xff"}, "ok": {"BOOL": True}, "none": {"NULL": True}}},
        "list": {"L": [{"S": "x"}, {"N": "3"}, {"M": {"y": {"S": "z"}}}]},
    }
    ddb.put_item(TableName="posts", Item=item)
    ddb.update_item(
        TableName="posts",
        Key=key("post"),
        UpdateExpression="SET n = n + :one REMOVE tags",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    ddb.delete_item(TableName="posts", Key=key("post"))
    return stream_records(streams, arn)


def test_stream_records_read_as_moto_gives_them_and_are_kept_packed():
    from moto.dynamodb.models.table import StreamRecord

    with moto(patched=False):
        expected = stream_scenario()
    with moto(patched=True):
        got = stream_scenario()
        (record, *_) = list(StreamRecord.instances_tracked)
        packed = len(record.__dict__["_packed"])
        unpacked = deep_size(record.record)
    assert [r["eventName"] for r in got] == ["INSERT", "MODIFY", "REMOVE"]
    assert got[1]["dynamodb"]["OldImage"]["meta"] == got[1]["dynamodb"]["NewImage"]["meta"]
    assert got == expected
    assert packed * 5 < unpacked  # what a record holds: a fifth or less of moto's dicts


def deep_size(value: Any) -> int:
    import sys

    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k) + deep_size(v) for k, v in value.items())
    elif isinstance(value, list):
        size += sum(deep_size(v) for v in value)
    return size
