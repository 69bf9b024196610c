"""Joins and leaves through the API handler on in-process moto, and the member counter behind them.

The template's resources are provisioned inside ``mock_aws``; each join or leave is an API Gateway
REST proxy event handed to ``herald.api.app.handle``. A ``before-call`` hook on the handler's
DynamoDB client counts the calls, the items each writes and their write units (1 per KB of an item
written outside a transaction, 2 inside one; the member's ``gsi1`` entry 1 more). Against: the
least a correct join needs (its subscription claim and its member, conditional: 2 items, 3 write
units with the index), the least a leave needs (the same deleted) and, for speed, a bare
``put_item`` per join on the same moto in the same run.

Then the member counter function (``functions/member_counter``) reads the members table's stream
as its event source in template.yaml gives it (the local cloud's poller, in process): its write
units per 1,000 joins, and the count at the end against the members in the table.
"""

from __future__ import annotations

import base64
import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from herald_tools.bench.aws_calls import BASE_ENV, patched_env, repo_root

COMMUNITY = "bench-community"
LEAST_ITEMS_PER_JOIN = 2  # claim and member, two conditional writes
LEAST_WRITE_UNITS_PER_JOIN = 3  # the two items < 1 KB, and the member's gsi1 entry
LEAST_ITEMS_PER_LEAVE = 2  # the member and its claim, deleted
_WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def _p256dh(rng: random.Random) -> bytes:
    """A browser's public key: a point on P-256 (the API checks the curve), from a random scalar."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = ec.derive_private_key(rng.randrange(1, 2**255), ec.SECP256R1())
    return private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _body(rng: random.Random, n: int) -> dict[str, Any]:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {
        "web_push": {
            "endpoint": f"https://push.example/bench/{n}",
            "keys": {"p256dh": b64(_p256dh(rng)), "auth": b64(rng.randbytes(16))},
        }
    }


def _event(body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:  # a repeat join presents the member's token
        headers["Authorization"] = f"Bearer {token}"

    path = f"/communities/{COMMUNITY}/members"
    return {
        "resource": "/communities/{id}/members",
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"id": COMMUNITY},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/communities/{id}/members",
            "httpMethod": "POST",
            "path": path,
            "stage": "bench",
            "requestId": "bench",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _units(item: dict[str, Any]) -> int:
    """Write units of an item written outside a transaction: 1 per KB (the wire JSON as its size)."""
    return max(1, -(-len(json.dumps(item)) // 1024))


def _write_units(name: str, params: dict[str, Any]) -> int:
    """Write units of one write request on the members table, its gsi1 entry included."""
    if name == "TransactWriteItems":
        total = 0
        for entry in params.get("TransactItems", []):
            [(_kind, body)] = entry.items()
            item = body.get("Item") or body.get("Key") or {}
            total += 2 * _units(item) + (1 if str(item.get("pk", {}).get("S", "")).startswith("M#") else 0)
        return total
    item = params.get("Item") or params.get("Key") or {}
    member = str(item.get("pk", {}).get("S", "")).startswith("M#")
    return _units(item) + (1 if member else 0)


def _leave_event(member_id: str, token: str) -> dict[str, Any]:
    event = _event({})
    path = f"/communities/{COMMUNITY}/members/{member_id}"
    event.update(
        resource="/communities/{id}/members/{member_id}",
        path=path,
        httpMethod="DELETE",
        body=None,
        pathParameters={"id": COMMUNITY, "member_id": member_id},
    )
    event["headers"] = {"Authorization": f"Bearer {token}"}
    event["multiValueHeaders"] = {"Authorization": [f"Bearer {token}"]}
    event["requestContext"] = {**event["requestContext"], "resourcePath": event["resource"], "path": path}
    event["requestContext"]["httpMethod"] = "DELETE"
    return event


def _count_from_stream(root: Path, ddb: Any, table: str, shards: int) -> dict[str, Any]:
    """The member counter over the stream so far, as template.yaml's event source runs it."""
    import importlib.util
    import sys
    import uuid

    from herald.members.adapters.dynamo_members import DynamoMemberStore
    from herald_tools.localcloud.event_sources import DynamoDBStreamPoller
    from herald_tools.localcloud.functions import InvocationResult
    from herald_tools.localcloud.provision import EventSourceSpec
    from herald_tools.localcloud.template import load_template_text

    spec = importlib.util.spec_from_file_location(
        "herald_function_member_counter", root / "functions" / "member_counter" / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    units: Counter[str] = Counter()

    def count(model: Any, params: dict[str, Any], **_: Any) -> None:
        units["calls:" + model.name] += 1
        if model.name in _WRITE_OPS:
            units["write_units"] += _write_units(model.name, params)

    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")
    client.meta.events.register("before-parameter-build.dynamodb", count)
    module.configure(lambda: DynamoMemberStore(table, shards, dynamodb=client))
    raw = load_template_text((root / "template.yaml").read_text())
    events = raw["Resources"]["MemberCounterFunction"]["Properties"]["Events"]
    [props] = [e["Properties"] for e in events.values() if e["Type"] == "DynamoDB"]
    source = EventSourceSpec(
        function="MemberCounterFunction",
        name="MemberStream",
        type="DynamoDB",
        properties={k: v for k, v in props.items() if k not in ("Stream", "DestinationConfig")},
        source_arn=client.describe_table(TableName=table)["Table"]["LatestStreamArn"],
    )

    class Context:
        function_name = "MemberCounterFunction"
        function_version = "$LATEST"
        memory_limit_in_mb = 128
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:MemberCounterFunction"
        aws_request_id = "bench"

    class Worker:
        name = "MemberCounterFunction"

        class spec:  # the poller reads .spec.arn
            arn = "arn:aws:lambda:us-east-1:123456789012:function:MemberCounterFunction"

        def invoke(self, event: dict[str, Any], timeout: float | None = None) -> InvocationResult:
            units["batches"] += 1
            units["records"] += len(event["Records"])
            return InvocationResult(
                ok=True, request_id=uuid.uuid4().hex, result=module.handler(event, Context())
            )

    poller = DynamoDBStreamPoller(
        source, Worker(), boto3.client("dynamodbstreams", region_name="us-east-1"), retry_delay=0.0
    )
    poller.initialise()
    started = time.perf_counter()
    while poller.pending() is not None:
        poller.poll_once()
    elapsed = time.perf_counter() - started
    module.configure(None)
    return {**units, "seconds": elapsed, "filtered": poller.filtered}


def run_members_bench(joins: int = 300, repeats: int = 60, root: Path | None = None) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from herald.api import app as api_app
    from herald.content.models import CommunityProfile
    from herald.core import aws
    from herald.ingest.adapters.dynamo_content import DynamoContentStore
    from herald.ingest.ports import Change
    from herald_tools.localcloud.provision import provision

    root = root or repo_root()
    rng = random.Random(1)
    with patched_env(BASE_ENV), mock_aws():
        session = boto3.Session(region_name="us-east-1")
        resources = provision(root / "template.yaml", session)
        env = {k: str(v) for k, v in resources.functions["ApiFunction"].environment.items()}
        if not resources.resources["MemberTokenSecret"].created:
            session.client("secretsmanager").create_secret(
                Name=env["MEMBER_TOKEN_SECRET_ARN"], SecretString="bench-" + "k" * 58
            )
        with patched_env(env):
            aws.client.cache_clear()
            api_app.configure(None)
            ddb = aws.client("dynamodb")
            DynamoContentStore(env["CONTENT_TABLE"], ddb).commit(
                Change(profile=(COMMUNITY, CommunityProfile(name="Bench", members=222_000)))
            )
            calls: Counter[str] = Counter()
            items: Counter[str] = Counter()

            units: Counter[str] = Counter()

            def count(model: Any, params: dict[str, Any], **_: Any) -> None:
                calls[model.name] += 1
                if model.name == "TransactWriteItems":
                    items[model.name] += len(params.get("TransactItems", []))
                elif model.name in _WRITE_OPS:
                    items[model.name] += 1
                if model.name in _WRITE_OPS:
                    units["write"] += _write_units(model.name, params)

            ddb.meta.events.register("before-parameter-build.dynamodb", count)
            bodies = [_body(rng, n) for n in range(joins)]
            api_app.handle(_event(_body(rng, -1)), None)  # warm: settings, secret, app
            calls.clear()
            items.clear()
            units.clear()
            started = time.perf_counter()
            answers = [api_app.handle(_event(b), None) for b in bodies]
            statuses = Counter(a["statusCode"] for a in answers)
            tokens = [json.loads(a["body"])["token"] for a in answers]
            join_s = time.perf_counter() - started
            join_calls, join_items, join_units = dict(calls), dict(items), units["write"]
            calls.clear()
            items.clear()
            started = time.perf_counter()
            repeat_statuses = Counter(
                api_app.handle(_event(bodies[i], tokens[i]), None)["statusCode"]
                for i in rng.sample(range(joins), repeats)
            )
            repeat_s = time.perf_counter() - started
            repeat_calls = dict(calls)
            member_ids = [json.loads(a["body"])["member_id"] for a in answers]
            leaves = max(1, joins // 10)
            calls.clear()
            items.clear()
            units.clear()
            leave_statuses = Counter(
                api_app.handle(_leave_event(member_ids[i], tokens[i]), None)["statusCode"]
                for i in range(leaves)
            )
            leave_calls, leave_items, leave_units = dict(calls), dict(items), units["write"]
            shards = int(env["MEMBER_COUNTER_SHARDS"])
            counter = _count_from_stream(root, ddb, env["MEMBERS_TABLE"], shards)
            members = api_app.services().members.count(COMMUNITY)
            store = api_app.services().members
            in_table = sum(len(list(store.members(COMMUNITY, s))) for s in range(shards))

            raw = session.client("dynamodb")
            started = time.perf_counter()
            for n in range(joins):
                raw.put_item(
                    TableName=env["MEMBERS_TABLE"],
                    Item={"pk": {"S": f"BENCH#{n}"}, "sk": {"S": "X"}, "n": {"N": "1"}},
                )
            put_s = time.perf_counter() - started
            api_app.configure(None)
            aws.client.cache_clear()
    writes = sum(v for k, v in join_calls.items() if k in _WRITE_OPS)
    written = sum(join_items.values())
    return {
        "joins": joins,
        "statuses": dict(statuses),
        "repeat_statuses": dict(repeat_statuses),
        "counted": members,
        "joins_per_s": round(joins / join_s, 1),
        "ms_per_join": round(1000 * join_s / joins, 2),
        "repeat_joins_per_s": round(repeats / repeat_s, 1),
        "baseline_put_item_per_s": round(joins / put_s, 1),
        "join_time_vs_put_item": round(join_s / put_s, 2),
        "dynamodb_calls_per_join": {k: round(v / joins, 2) for k, v in sorted(join_calls.items())},
        "dynamodb_write_calls_per_join": round(writes / joins, 2),
        "items_written_per_join": round(written / joins, 2),
        "items_written_vs_least": round(written / joins / LEAST_ITEMS_PER_JOIN, 2),
        "dynamodb_calls_per_repeat_join": {k: round(v / repeats, 2) for k, v in sorted(repeat_calls.items())},
        "write_units_per_join": round(join_units / joins, 2),
        "write_units_per_join_vs_least": round(join_units / joins / LEAST_WRITE_UNITS_PER_JOIN, 2),
        "leaves": leaves,
        "leave_statuses": dict(leave_statuses),
        "dynamodb_calls_per_leave": {k: round(v / leaves, 2) for k, v in sorted(leave_calls.items())},
        "items_written_per_leave": round(sum(leave_items.values()) / leaves, 2),
        "items_written_per_leave_vs_least": round(
            sum(leave_items.values()) / leaves / LEAST_ITEMS_PER_LEAVE, 2
        ),
        "write_units_per_leave": round(leave_units / leaves, 2),
        "counter_batches": counter.get("batches", 0),
        "counter_records": counter.get("records", 0),
        "counter_write_units": counter.get("write_units", 0),
        "counter_write_units_per_1000_joins": round(1000 * counter.get("write_units", 0) / joins, 1),
        "counter_calls": {k[6:]: v for k, v in sorted(counter.items()) if k.startswith("calls:")},
        "counter_seconds": round(counter.get("seconds", 0.0), 2),
        "members_in_table": in_table,
        "count_exact": members == in_table,
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    print(json.dumps(run_members_bench(), indent=2))
