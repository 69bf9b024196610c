"""moto's DynamoDB answers as the local cloud serializes them: an item in one pass, not per member.

moto's JSON serializer walks each attribute of each item it answers through the AttributeValue
shape; patched, a map of AttributeValues in moto's own JSON form is written as it is (blobs
base64-encoded, as moto's walk does). The same scenario (items of every attribute type, nested,
empty, unicode, binary; read back by GetItem, Query on the table and on an index with paging,
Scan, BatchGetItem, TransactGetItems, PartiQL, the old and new values writes return, and the
stream's images) runs on moto's code and on the patched one, and the bytes of every answer must be
the same. The cost is counted (the serializer's steps per answer), never timed.
"""

from __future__ import annotations

import base64
import random
from typing import Any

import boto3
import pytest

from .test_moto_patches import REGION, moto

KINDS = ("S", "N", "B", "SS", "NS", "BS", "BOOL", "NULL", "L", "M")


def random_value(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    kind = rng.choice(KINDS if depth < 3 else KINDS[:-2])
    if kind == "S":
        return {"S": rng.choice(["", "plain", "ünïcödé ✓", 'quote " and \\ slash', "x" * rng.randint(1, 60)])}
    if kind == "N":
        return {"N": rng.choice(["0", "1", "-7", "3.25", "12345678901234567890", "1E+3", "-0.001"])}
    if kind == "B":
        return {"B": rng.randbytes(rng.randint(0, 24))}
    if kind == "SS":
        return {"SS": sorted({rng.choice(["a", "b", "ç", "d d", ""]) for _ in range(rng.randint(1, 4))})}
    if kind == "NS":
        return {"NS": sorted({str(rng.randint(-5, 500)) for _ in range(rng.randint(1, 4))})}
    if kind == "BS":
        return {"BS": list({rng.randbytes(rng.randint(1, 8)) for _ in range(rng.randint(1, 3))})}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "L":
        return {"L": [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]}
    return {"M": {f"m{i}": random_value(rng, depth + 1) for i in range(rng.randint(0, 3))}}


def random_item(rng: random.Random, i: int) -> dict[str, Any]:
    item = {"pk": {"S": f"p{i % 3}"}, "sk": {"S": f"s{i:03d}"}, "gpk": {"S": f"g{i % 2}"}}
    item.update({f"a{n}": random_value(rng) for n in range(rng.randint(1, 8))})
    if rng.random() < 0.3:
        item["bin"] = {"B": rng.randbytes(6)}
    return item


def make_table(ddb: Any) -> str:
    ddb.create_table(
        TableName="things",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gpk", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_g",
                "KeySchema": [
                    {"AttributeName": "gpk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return ddb.describe_table(TableName="things")["Table"]["LatestStreamArn"]


def scenario(seed: int) -> tuple[list[tuple[str, bytes]], list[Any]]:
    """Every answer's body (with its operation), and the stream's keys and images."""
    rng = random.Random(seed)
    ddb = boto3.client("dynamodb", region_name=REGION)
    bodies: list[tuple[str, bytes]] = []
    capture = lambda http_response, model, **_: bodies.append((model.name, http_response.content))  # noqa: E731
    stream_arn = make_table(ddb)
    ddb.meta.events.register("after-call.dynamodb", capture)
    items = [random_item(rng, i) for i in range(30)]
    for item in items:
        ddb.put_item(TableName="things", Item=item, ReturnValues="ALL_OLD")
    keys = [{"pk": item["pk"], "sk": item["sk"]} for item in items]
    for key in rng.sample(keys, 8):
        ddb.get_item(TableName="things", Key=key)
    for pk in ("p0", "p1", "p2"):
        request: dict[str, Any] = {
            "TableName": "things",
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": pk}},
            "Limit": 4,
        }
        while True:
            page = ddb.query(**request)
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    ddb.query(
        TableName="things",
        IndexName="by_g",
        KeyConditionExpression="gpk = :g",
        ExpressionAttributeValues={":g": {"S": "g1"}},
        ScanIndexForward=False,
        ProjectionExpression="pk, sk, a0, a1",
    )
    ddb.scan(TableName="things", Limit=11)
    ddb.scan(TableName="things")
    ddb.batch_get_item(RequestItems={"things": {"Keys": rng.sample(keys, 12)}})
    ddb.transact_get_items(TransactItems=[{"Get": {"TableName": "things", "Key": k}} for k in keys[:5]])
    ddb.execute_statement(Statement="SELECT * FROM things WHERE pk = 'p1'")
    for key in rng.sample(keys, 6):
        ddb.update_item(
            TableName="things",
            Key=key,
            UpdateExpression="SET a0 = :v, extra = :w",
            ExpressionAttributeValues={":v": random_value(rng), ":w": random_value(rng)},
            ReturnValues=rng.choice(["ALL_NEW", "ALL_OLD", "UPDATED_NEW", "UPDATED_OLD"]),
        )
    for key in keys[-3:]:
        ddb.delete_item(TableName="things", Key=key, ReturnValues="ALL_OLD")
    ddb.meta.events.unregister("after-call.dynamodb", capture)

    streams = boto3.client("dynamodbstreams", region_name=REGION)
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    images = [
        {k: r["dynamodb"].get(k) for k in ("Keys", "NewImage", "OldImage")} | {"event": r["eventName"]}
        for r in records
    ]
    return bodies, images


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_answers_are_the_bytes_moto_writes(seed):
    with moto(patched=False):
        expected = scenario(seed)
    with moto(patched=True):
        got = scenario(seed)
    bodies, images = expected
    assert len(bodies) > 60 and len(images) > 35
    assert any(b'"B": "' in body for _, body in bodies)  # blobs were answered, base64
    assert any(b'"BS": [' in body for _, body in bodies) and any(b'"M": {}' in body for _, body in bodies)
    assert got == expected


def test_a_blob_reads_back_as_written():
    """The base64 is moto's own: what a client wrote as bytes it reads back as those bytes."""
    with moto(patched=True):
        ddb = boto3.client("dynamodb", region_name=REGION)
        make_table(ddb)
        raw = bytes(range(256))
        item = {
            "pk": {"S": "p"},
            "sk": {"S": "s"},
            "gpk": {"S": "g"},
            "b": {"B": raw},
            "bs": {"BS": [raw[:3]]},
        }
        ddb.put_item(TableName="things", Item=item)
        got = ddb.get_item(TableName="things", Key={"pk": {"S": "p"}, "sk": {"S": "s"}})["Item"]
    assert got["b"] == {"B": raw} and got["bs"] == {"BS": [raw[:3]]}
    assert base64.b64decode(base64.b64encode(raw)) == raw


# -- cost -------------------------------------------------------------------------------------------


def serializer_steps(attributes: int, monkeypatch: pytest.MonkeyPatch, *, patched: bool = True) -> int:
    """The steps (``ResponseSerializer._serialize`` calls) moto takes to answer a Query of 200 items
    of ``attributes`` attributes each (strings, numbers, a list and a map among them)."""
    from moto.core.serialize import ResponseSerializer

    counts = {"n": 0}
    original = ResponseSerializer._serialize

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["n"] += 1
        return original(self, *args, **kwargs)

    with moto(patched):
        ddb = boto3.client("dynamodb", region_name=REGION)
        make_table(ddb)
        for i in range(200):
            item = {"pk": {"S": "p"}, "sk": {"S": f"s{i:03d}"}, "gpk": {"S": "g"}}
            for n in range(attributes):
                item[f"a{n}"] = [
                    {"S": f"text {n}"},
                    {"N": str(n)},
                    {"L": [{"S": "x"}, {"N": "1"}]},
                    {"M": {"k": {"BOOL": True}}},
                ][n % 4]
            ddb.put_item(TableName="things", Item=item)
        monkeypatch.setattr(ResponseSerializer, "_serialize", counted)
        answer = ddb.query(
            TableName="things", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}}
        )
        monkeypatch.undo()
    assert answer["Count"] == 200
    return counts["n"]


def test_an_item_costs_one_step_whatever_its_attributes(monkeypatch):
    few, many = serializer_steps(4, monkeypatch), serializer_steps(24, monkeypatch)
    assert few == many
    assert few <= 200 + 10  # one per item, a few for the answer itself


def test_moto_alone_steps_through_every_attribute(monkeypatch):
    """The measure above can tell: moto's own walk takes steps per attribute and member."""
    few = serializer_steps(4, monkeypatch, patched=False)
    many = serializer_steps(24, monkeypatch, patched=False)
    assert few > 200 * 4 * 2 and many > 200 * 24 * 2
