"""Joins through the API handler on in-process moto: joins per second and DynamoDB writes per join.

The template's resources are provisioned inside ``mock_aws``; each join is an API Gateway REST
proxy event handed to ``herald.api.app.handle``. A ``before-call`` hook on the handler's DynamoDB
client counts the calls and the items each writes. Against: the least a correct join needs (one
transaction of 3 items: member, subscription claim, counter shard) and, for speed, a bare
``put_item`` per join on the same moto in the same run.
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
LEAST_ITEMS_PER_JOIN = 3  # member, claim, shard: one TransactWriteItems
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

            def count(model: Any, params: dict[str, Any], **_: Any) -> None:
                calls[model.name] += 1
                if model.name == "TransactWriteItems":
                    items[model.name] += len(params.get("TransactItems", []))
                elif model.name in _WRITE_OPS:
                    items[model.name] += 1

            ddb.meta.events.register("before-parameter-build.dynamodb", count)
            bodies = [_body(rng, n) for n in range(joins)]
            api_app.handle(_event(_body(rng, -1)), None)  # warm: settings, secret, app
            calls.clear()
            items.clear()
            started = time.perf_counter()
            answers = [api_app.handle(_event(b), None) for b in bodies]
            statuses = Counter(a["statusCode"] for a in answers)
            tokens = [json.loads(a["body"])["token"] for a in answers]
            join_s = time.perf_counter() - started
            join_calls, join_items = dict(calls), dict(items)
            calls.clear()
            items.clear()
            started = time.perf_counter()
            repeat_statuses = Counter(
                api_app.handle(_event(bodies[i], tokens[i]), None)["statusCode"]
                for i in rng.sample(range(joins), repeats)
            )
            repeat_s = time.perf_counter() - started
            repeat_calls = dict(calls)
            members = api_app.services().members.count(COMMUNITY)

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
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    print(json.dumps(run_members_bench(), indent=2))
