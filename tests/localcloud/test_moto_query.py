"""moto's DynamoDB Query as the local cloud runs it: a Query reads its partition, not the table.

The same random scenario (puts, updates that move items between index partitions, deletes, batch
writes, committed and cancelled transactions, and queries in between: on the table, a local index,
global indexes with and without a sort key, sort-key conditions, both directions, Limit and
ExclusiveStartKey paging, filters, projections, counts, errors) runs on moto's own code and on the
patched one, and every answer must be the same. The cost is counted (attribute value comparisons
a Query makes), never timed.
"""

from __future__ import annotations

import random
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from .test_moto_patches import REGION, moto

PKS = [f"p{i}" for i in range(6)]
GPKS = ["g0", "g1", "g2", "g3"]


def make_tables(ddb: Any) -> None:
    attr = lambda name, kind="S": {"AttributeName": name, "AttributeType": kind}  # noqa: E731
    schema = lambda *keys: [  # noqa: E731
        {"AttributeName": name, "KeyType": kind} for name, kind in zip(keys, ("HASH", "RANGE"), strict=False)
    ]
    ddb.create_table(
        TableName="feed",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=schema("pk", "sk"),
        AttributeDefinitions=[attr("pk"), attr("sk"), attr("gpk"), attr("gsk"), attr("n", "N"), attr("tag")],
        GlobalSecondaryIndexes=[
            {"IndexName": "by_g", "KeySchema": schema("gpk", "gsk"), "Projection": {"ProjectionType": "ALL"}},
            {"IndexName": "by_n", "KeySchema": schema("n"), "Projection": {"ProjectionType": "KEYS_ONLY"}},
            {
                "IndexName": "by_pk",
                "KeySchema": schema("pk", "gsk"),
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["tag"]},
            },
        ],
        LocalSecondaryIndexes=[
            {"IndexName": "by_tag", "KeySchema": schema("pk", "tag"), "Projection": {"ProjectionType": "ALL"}}
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    ddb.create_table(
        TableName="flat",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=schema("pk"),
        AttributeDefinitions=[attr("pk"), attr("gpk"), attr("gsk")],
        GlobalSecondaryIndexes=[
            {"IndexName": "by_g", "KeySchema": schema("gpk", "gsk"), "Projection": {"ProjectionType": "ALL"}},
        ],
    )


def random_item(rng: random.Random, table: str) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": rng.choice(PKS)}, "body": {"S": "x" * rng.randint(0, 40)}}
    if table == "feed":
        item["sk"] = {"S": f"s{rng.randint(0, 24):02d}"}
        if rng.random() < 0.6:
            item["n"] = {"N": str(rng.randint(0, 3))}
        if rng.random() < 0.7:
            item["tag"] = {"S": rng.choice(["a", "b", "c", "d"])}
    else:
        item["pk"] = {"S": f"{item['pk']['S']}-{rng.randint(0, 30)}"}
    if rng.random() < 0.8:
        item["gpk"] = {"S": rng.choice(GPKS)}
        item["gsk"] = {"S": f"{rng.randint(0, 9)}"}  # repeats: ties broken by the table's key
    return item


def item_key(item: dict[str, Any]) -> dict[str, Any]:
    return {name: item[name] for name in ("pk", "sk") if name in item}


def random_query(rng: random.Random) -> dict[str, Any]:
    table = rng.choice(["feed", "feed", "flat"])
    values: dict[str, Any] = {}
    if table == "flat":
        index, hash_name, sort_name = "by_g", "gpk", "gsk"
    else:
        index, hash_name, sort_name = rng.choice(
            [
                (None, "pk", "sk"),
                ("by_g", "gpk", "gsk"),
                ("by_n", "n", None),
                ("by_pk", "pk", "gsk"),
                ("by_tag", "pk", "tag"),
            ]
        )
    if hash_name == "n":
        values[":h"] = {"N": str(rng.randint(0, 4))}
    else:
        pool = [*GPKS, "g9"] if hash_name == "gpk" else [*PKS, "p9"]
        values[":h"] = {"S": rng.choice(pool)}
        if table == "flat" and hash_name == "pk":
            values[":h"] = {"S": f"{values[':h']['S']}-{rng.randint(0, 30)}"}
    condition = f"{hash_name} = :h"
    if sort_name and rng.random() < 0.6:
        low = {"sk": f"s{rng.randint(0, 24):02d}", "gsk": str(rng.randint(0, 9)), "tag": rng.choice("abcd")}[
            sort_name
        ]
        high = low + "~"
        op = rng.choice(["=", "<", "<=", ">", ">=", "between", "begins_with"])
        values[":lo"] = {"S": low}
        if op == "between":
            values[":hi"] = {"S": high}
            condition += f" AND {sort_name} BETWEEN :lo AND :hi"
        elif op == "begins_with":
            values[":lo"] = {"S": low[:1]}
            condition += f" AND begins_with({sort_name}, :lo)"
        else:
            condition += f" AND {sort_name} {op} :lo"
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": rng.random() < 0.5,
    }
    if index:
        request["IndexName"] = index
    if rng.random() < 0.5:
        request["Limit"] = rng.randint(1, 6)
    if rng.random() < 0.3 and index != "by_n":
        request["FilterExpression"] = "attribute_exists(body) AND size(body) > :size"
        values[":size"] = {"N": str(rng.randint(0, 30))}
    if rng.random() < 0.2:
        request["Select"] = "COUNT"
    elif rng.random() < 0.2 and index != "by_n":
        request["ProjectionExpression"] = "pk, body"
    return request


def paged(ddb: Any, request: dict[str, Any]) -> list[Any]:
    """Every page of a query (Items, counts, LastEvaluatedKey), following ExclusiveStartKey."""
    pages: list[Any] = []
    request = dict(request)
    while len(pages) < 200:
        try:
            answer = ddb.query(**request)
        except ClientError as exc:
            pages.append(
                {"error": exc.response["Error"]["Code"], "message": exc.response["Error"]["Message"]}
            )
            break
        answer.pop("ResponseMetadata")
        pages.append(answer)
        if "LastEvaluatedKey" not in answer:
            break
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    return pages


def write(ddb: Any, rng: random.Random) -> Any:
    """One random write; what it answered."""
    table = "feed" if rng.random() < 0.75 else "flat"
    item = random_item(rng, table)
    kind = rng.choices(["put", "update", "remove", "delete", "batch", "transact"], [5, 3, 1, 1, 1, 2])[0]
    try:
        if kind == "put":
            ddb.put_item(TableName=table, Item=item)
        elif kind == "update":  # moves the item to another index partition, or creates it
            ddb.update_item(
                TableName=f"arn:aws:dynamodb:{REGION}:123456789012:table/{table}"
                if rng.random() < 0.3
                else table,
                Key=item_key(item),
                UpdateExpression="SET gpk = :g, gsk = :s ADD hits :one",
                ExpressionAttributeValues={
                    ":g": {"S": rng.choice(GPKS)},
                    ":s": {"S": str(rng.randint(0, 9))},
                    ":one": {"N": "1"},
                },
            )
        elif kind == "remove":  # takes the item out of the index
            ddb.update_item(TableName=table, Key=item_key(item), UpdateExpression="REMOVE gpk")
        elif kind == "delete":
            ddb.delete_item(TableName=table, Key=item_key(item))
        elif kind == "batch":
            requests = [{"PutRequest": {"Item": random_item(rng, table)}} for _ in range(3)]
            keys = {
                str(r["PutRequest"]["Item"]["pk"]) + str(r["PutRequest"]["Item"].get("sk")) for r in requests
            }
            if len(keys) == 3:
                requests.append({"DeleteRequest": {"Key": item_key(random_item(rng, table))}})
                ddb.batch_write_item(RequestItems={table: requests})
        else:  # an update and a put, cancelled (and undone) when the put's item already exists
            other = random_item(rng, table)
            if item_key(other) == item_key(item):
                return "same key"
            ddb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": table,
                            "Key": item_key(item),
                            "UpdateExpression": "SET gpk = :g",
                            "ExpressionAttributeValues": {":g": {"S": rng.choice(GPKS)}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": table,
                            "Item": other,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
    except ClientError as exc:
        return [kind, exc.response["Error"]["Code"]]
    return kind


def scenario(seed: int, steps: int = 300) -> list[Any]:
    rng = random.Random(seed)
    ddb = boto3.client("dynamodb", region_name=REGION)
    make_tables(ddb)
    answers: list[Any] = []
    for step in range(steps):
        if step > 40 and rng.random() < 0.35:
            answers.append(paged(ddb, random_query(rng)))
        else:
            answers.append(write(ddb, rng))
    # What moto refuses stays refused: an unknown index, a key condition on a non-key attribute.
    answers.append(paged(ddb, {"TableName": "feed", "IndexName": "nope", **_on("gpk")}))
    answers.append(paged(ddb, {"TableName": "feed", "IndexName": "by_g", **_on("body")}))
    return answers


def _on(name: str) -> dict[str, Any]:
    return {"KeyConditionExpression": f"{name} = :h", "ExpressionAttributeValues": {":h": {"S": "g1"}}}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_queries_answer_as_moto_does(seed):
    with moto(patched=False):
        expected = scenario(seed)
    with moto(patched=True):
        got = scenario(seed)
    queries = [a for a in expected if isinstance(a, list) and a and isinstance(a[0], dict)]
    assert len(queries) > 60
    assert any(len(pages) > 2 for pages in queries)  # paging was exercised
    assert any(page.get("Count") for pages in queries for page in pages)  # and items were found
    assert got == expected


# -- cost -------------------------------------------------------------------------------------------

COMPARISONS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__")


def comparisons_per_query(
    others: int, monkeypatch: pytest.MonkeyPatch, *, patched: bool = True
) -> dict[str, int]:
    """Attribute value comparisons moto makes for queries of a 20-item partition, on the table and
    on a global index, with ``others`` items stored in other partitions."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    counts = {"n": 0}

    def counted(name: str) -> Any:
        original = getattr(DynamoType, name)

        def compare(self: Any, other: Any) -> Any:
            counts["n"] += 1
            return original(self, other)

        return compare

    with moto(patched):
        ddb = boto3.client("dynamodb", region_name=REGION)
        make_tables(ddb)
        rows = [
            {
                "pk": {"S": "target"},
                "sk": {"S": f"s{i:02d}"},
                "gpk": {"S": "g-target"},
                "gsk": {"S": str(i % 5)},
            }
            for i in range(20)
        ] + [
            {
                "pk": {"S": f"other-{i % 400}"},
                "sk": {"S": f"s{i:05d}"},
                "gpk": {"S": f"g{i % 7}"},
                "gsk": {"S": "1"},
            }
            for i in range(others)
        ]
        for start in range(0, len(rows), 25):
            ddb.batch_write_item(
                RequestItems={"feed": [{"PutRequest": {"Item": r}} for r in rows[start : start + 25]]}
            )
        queries = [
            {
                "KeyConditionExpression": "pk = :h AND sk > :lo",
                "ExpressionAttributeValues": {":lo": {"S": "s03"}},
            },
            {"IndexName": "by_g", "KeyConditionExpression": "gpk = :g", "ExpressionAttributeValues": {}},
        ]
        queries[0]["ExpressionAttributeValues"][":h"] = {"S": "target"}
        queries[1]["ExpressionAttributeValues"][":g"] = {"S": "g-target"}
        for query in queries:  # once before counting: the index's partitions are built at its first Query
            paged(ddb, {"TableName": "feed", **query})
        found = {}
        for query in queries:
            for name in COMPARISONS:
                monkeypatch.setattr(DynamoType, name, counted(name))
            counts["n"] = 0
            pages = paged(ddb, {"TableName": "feed", "Limit": 7, "ScanIndexForward": False, **query})
            monkeypatch.undo()
            found[query.get("IndexName", "table")] = counts["n"]
            assert sum(page["Count"] for page in pages) == (
                16 if "sk" in query["KeyConditionExpression"] else 20
            )
    return found


def test_a_query_costs_its_partition_not_the_table(monkeypatch):
    small = comparisons_per_query(50, monkeypatch)
    large = comparisons_per_query(3000, monkeypatch)
    assert small == large
    assert all(0 < n < 20 * 50 for n in small.values())  # tens per item of the partition, each page


def test_moto_alone_compares_every_item_of_the_table(monkeypatch):
    """The measure above can tell: moto's own Query compares every item of the table."""
    large = comparisons_per_query(3000, monkeypatch, patched=False)
    assert all(n > 3000 for n in large.values())
