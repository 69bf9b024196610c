"""Joins, repeat joins and leaves through the API handler on in-process moto, and the member
counter behind them: what each asks of the members table against the least a correct design
needs, how long each takes here, and the count at the end.

The template's resources are provisioned inside ``mock_aws`` with
:mod:`herald_tools.localcloud.moto_patches` (as the local cloud and the other benches run moto: a
transaction copies the items it touches, not the tables); each request is an API Gateway REST
proxy event handed to ``herald.api.app.handle``, one after another (the burst: one execution
environment answering as fast as it can). :class:`TableMeter`, hooked on the handler's DynamoDB
client, counts the calls, the items each writes and their write units as DynamoDB bills them, and
the time spent inside the calls (moto's here): the rest of a request's time is the handler's own.
For speed, a bare ``put_item`` per join on the same moto in the same run.

Then the member counter function (``functions/member_counter``) reads the members table's stream
as its event source in template.yaml gives it (the local cloud's poller, in process): its calls
and write units per 1,000 joins, and the count at the end against the members in the table.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from herald_tools.bench.aws_calls import BASE_ENV, patched_env, repo_root

COMMUNITY = "bench-community"
#: The least a correct join needs: its subscription's claim and its member, each written once
#: under a condition (2 calls; one transaction of both would be 1 call at twice the units), 3 write
#: units with the member's gsi1 entry (items under 1 KB); the community check is a read, kept per
#: execution environment.
LEAST_JOIN = {"write_calls": 2, "items_written": 2, "write_units": 3}
#: The least a leave needs: the member and its claim deleted (the member's delete guarded by the
#: token's hash, answering with the claims to delete), 3 write units with the gsi1 entry.
LEAST_LEAVE = {"write_calls": 2, "items_written": 2, "write_units": 3}
_WRITE_OPS = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
}  # (and TransactWriteItems; Herald makes no BatchWriteItem here)


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


class TableMeter:
    """The requests one client makes, and on one table: calls by operation, items written, and
    write units as DynamoDB bills them: 1 per KB (or part) of the item, the larger of the item
    before and after for a put or a delete, twice that inside a transaction, and the ``gsi1``
    entry of a member item once more (the index projects the whole item); a write whose condition
    fails is billed too. The item before is read with ``peek``, a client nothing counts.
    Also the time spent inside the client's calls (serialising aside: moto's work here, the round
    trip on AWS), so the handler's own time is the rest.
    """

    def __init__(self, table: str, peek: Any) -> None:
        self.table = table
        self.peek = peek
        self.calls: Counter[str] = Counter()
        self.items = 0
        self.write_units = 0
        self.in_calls_s = 0.0
        self.in_calls_cpu_s = 0.0  # this thread's CPU inside the calls (moto's, in process)
        self.metering_s = 0.0  # the meter's own time (the peeks), taken out of what is timed
        self.metering_cpu_s = 0.0
        self._started: tuple[float, float] | None = None

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.dynamodb", self._on_params)
        client.meta.events.register("before-call.dynamodb", self._on_call)
        client.meta.events.register("after-call.dynamodb", self._on_answer)

    def detach(self, client: Any) -> None:
        client.meta.events.unregister("before-parameter-build.dynamodb", self._on_params)
        client.meta.events.unregister("before-call.dynamodb", self._on_call)
        client.meta.events.unregister("after-call.dynamodb", self._on_answer)

    def reset(self) -> None:
        self.calls.clear()
        self.items = self.write_units = 0
        self.in_calls_s = self.in_calls_cpu_s = self.metering_s = self.metering_cpu_s = 0.0

    def _on_call(self, **_: Any) -> None:
        self._started = time.perf_counter(), time.thread_time()

    def _on_answer(self, **_: Any) -> None:
        if self._started is not None:
            wall, cpu = self._started
            self.in_calls_s += time.perf_counter() - wall
            self.in_calls_cpu_s += time.thread_time() - cpu
            self._started = None

    def _on_params(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        started, cpu = time.perf_counter(), time.thread_time()
        self.calls[model.name] += 1  # on any table (a join's community check is on the content table)
        if model.name == "TransactWriteItems":
            writes = [next(iter(entry.items())) for entry in params.get("TransactItems", [])]
            writes = [(kind, body) for kind, body in writes if body.get("TableName") == self.table]
            self.items += len(writes)
            self.write_units += sum(2 * self._units(kind, body) for kind, body in writes)
        elif model.name in _WRITE_OPS and params.get("TableName") == self.table:
            self.items += 1
            self.write_units += self._units(model.name.removesuffix("Item"), params)
        self.metering_s += time.perf_counter() - started
        self.metering_cpu_s += time.thread_time() - cpu

    def _units(self, kind: str, body: dict[str, Any]) -> int:
        """Write units of one Put, Update, Delete (or ConditionCheck) on the table, its index too."""
        from herald_tools.bench.fanout_scale import item_bytes

        if kind == "ConditionCheck":
            return 1
        key = body.get("Key") or {name: body["Item"][name] for name in ("pk", "sk")}
        before = self.peek.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        after = body.get("Item") if kind == "Put" else None
        size = max(item_bytes(after or {}), item_bytes(before or {}))
        units = _units_of(size)
        indexed = after if after is not None and "gsi1pk" in after else before
        if kind == "Update" and before is not None:
            indexed = before  # (the member updates Herald makes keep the index keys)
        if indexed is not None and "gsi1pk" in indexed:
            units += _units_of(item_bytes(after if after is not None else indexed))
        return units


def _units_of(size: int) -> int:
    return max(1, -(-size // 1024))


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


def _count_from_stream(root: Path, table: str, shards: int) -> dict[str, Any]:
    """The member counter over the stream so far, as template.yaml's event source runs it."""
    import importlib.util
    import sys
    import uuid

    import boto3

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

    client = boto3.client("dynamodb", region_name="us-east-1")
    meter = TableMeter(table, boto3.client("dynamodb", region_name="us-east-1"))
    meter.attach(client)
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
    meter.reset()

    class Context:
        function_name = "MemberCounterFunction"
        function_version = "$LATEST"
        memory_limit_in_mb = 128
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:MemberCounterFunction"
        aws_request_id = "bench"

    batches: list[int] = []

    class Worker:
        name = "MemberCounterFunction"

        class spec:  # the poller reads .spec.arn
            arn = "arn:aws:lambda:us-east-1:123456789012:function:MemberCounterFunction"

        def invoke(self, event: dict[str, Any], timeout: float | None = None) -> InvocationResult:
            batches.append(len(event["Records"]))
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
    meter.detach(client)
    return {
        "batches": batches,
        "calls": dict(sorted(meter.calls.items())),
        "items": meter.items,
        "write_units": meter.write_units,
        "seconds": elapsed,
        "filtered": poller.filtered,
    }


def _per(meter: TableMeter, n: int) -> dict[str, Any]:
    """Calls, items and write units per request of a phase of ``n`` requests."""
    return {
        "calls": {k: round(v / n, 2) for k, v in sorted(meter.calls.items())},
        "write_calls": round(sum(v for k, v in meter.calls.items() if k in _WRITE_OPS) / n, 2),
        "items_written": round(meter.items / n, 2),
        "write_units": round(meter.write_units / n, 2),
    }


def run_members_bench(joins: int = 1000, repeats: int = 100, root: Path | None = None) -> dict[str, Any]:
    """``joins`` new joins through the API handler (the burst), ``repeats`` repeat joins of members
    with their tokens, leaves of a tenth of the members, then the counter over the stream."""
    import boto3
    from moto import mock_aws

    from herald.api import app as api_app
    from herald.content.models import CommunityProfile
    from herald.core import aws
    from herald.ingest.adapters.dynamo_content import DynamoContentStore
    from herald.ingest.ports import Change
    from herald_tools.localcloud import moto_patches
    from herald_tools.localcloud.provision import provision

    root = root or repo_root()
    rng = random.Random(1)
    quiet = {**BASE_ENV, "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
    with contextlib.ExitStack() as stack:
        stack.enter_context(patched_env(quiet))
        stack.enter_context(mock_aws())
        # moto as the local cloud runs it: a transaction copies the items it touches, not the tables.
        if moto_patches.install():
            stack.callback(moto_patches.uninstall)
        session = boto3.Session(region_name="us-east-1")
        resources = provision(root / "template.yaml", session)
        env = {k: str(v) for k, v in resources.functions["ApiFunction"].environment.items()}
        env.pop("POWERTOOLS_LOG_LEVEL", None)
        if not resources.resources["MemberTokenSecret"].created:
            session.client("secretsmanager").create_secret(
                Name=env["MEMBER_TOKEN_SECRET_ARN"], SecretString="bench-" + "k" * 58
            )
        stack.enter_context(patched_env(env))
        aws.client.cache_clear()
        api_app.configure(None)
        stack.callback(aws.client.cache_clear)
        stack.callback(api_app.configure, None)
        table = env["MEMBERS_TABLE"]
        ddb = aws.client("dynamodb")
        DynamoContentStore(env["CONTENT_TABLE"], ddb).commit(
            Change(profile=(COMMUNITY, CommunityProfile(name="Bench", members=222_000)))
        )
        meter = TableMeter(table, session.client("dynamodb"))
        meter.attach(ddb)
        bodies = [_body(rng, n) for n in range(joins)]
        api_app.handle(_event(_body(rng, -1)), None)  # warm: settings, secret, app, the community

        def timed(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, float]]:
            meter.reset()
            cpu, started = time.thread_time(), time.perf_counter()
            answers = [api_app.handle(event, None) for event in events]
            wall = time.perf_counter() - started - meter.metering_s
            cpu = time.thread_time() - cpu - meter.metering_cpu_s
            n = len(events)
            return answers, {
                "per_s": round(n / wall, 1),
                "ms": round(1000 * wall / n, 2),
                "ms_in_dynamodb": round(1000 * meter.in_calls_s / n, 2),
                # The handler's own work (Herald, Powertools, pydantic, building the requests): the
                # CPU this thread spent outside the calls, so other load on the machine adds nothing.
                "handler_cpu_ms": round(1000 * (cpu - meter.in_calls_cpu_s) / n, 2),
            }

        answers, join_time = timed([_event(b) for b in bodies])
        join = _per(meter, joins)
        statuses = Counter(a["statusCode"] for a in answers)
        made = [(bodies[i], json.loads(a["body"])) for i, a in enumerate(answers) if a["statusCode"] == 201]
        picks = rng.sample(made, min(repeats, len(made)))
        repeat_answers, repeat_time = timed([_event(body, member["token"]) for body, member in picks])
        repeat = _per(meter, len(picks))
        leaves = max(1, joins // 10)
        leave_answers, leave_time = timed(
            [_leave_event(m["member_id"], m["token"]) for _, m in made[:leaves]]
        )
        leave = _per(meter, leaves)
        meter.detach(ddb)
        shards = int(env["MEMBER_COUNTER_SHARDS"])
        counter = _count_from_stream(root, table, shards)
        members = api_app.services().members.count(COMMUNITY)
        store = api_app.services().members
        in_table = sum(len(list(store.members(COMMUNITY, s))) for s in range(shards))

        raw = session.client("dynamodb")
        raw.describe_table(TableName=table)  # the client's first call loads its service model
        started = time.perf_counter()
        for n in range(joins):
            raw.put_item(TableName=table, Item={"pk": {"S": f"BENCH#{n}"}, "sk": {"S": "X"}, "n": {"N": "1"}})
        put_s = time.perf_counter() - started
    ok = {"join": 201, "repeat": 200, "leave": 204}
    errors = {
        "join": sum(n for code, n in statuses.items() if code != ok["join"]),
        "repeat": sum(1 for a in repeat_answers if a["statusCode"] != ok["repeat"]),
        "leave": sum(1 for a in leave_answers if a["statusCode"] != ok["leave"]),
    }
    return {
        "joins": joins,
        "repeats": len(picks),
        "leaves": leaves,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "join": {**join, **join_time},
        "repeat": {**repeat, **repeat_time},
        "leave": {**leave, **leave_time},
        "least": {"join": LEAST_JOIN, "leave": LEAST_LEAVE},
        "baseline_put_item_per_s": round(joins / put_s, 1),
        "join_time_vs_put_item": round(join_time["ms"] / (1000 * put_s / joins), 2),
        "counter": {
            "batches": counter["batches"],
            "records": sum(counter["batches"]),
            "calls": counter["calls"],
            "items": counter["items"],
            "write_units": counter["write_units"],
            "seconds": round(counter["seconds"], 2),
            "write_units_per_1000_joins": round(1000 * counter["write_units"] / joins, 1),
        },
        "counted": members,
        "members_in_table": in_table,
        "members_expected": 1 + len(made) - leaves,  # the warm-up join's member too
        "count_exact": members == in_table == 1 + len(made) - leaves,
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    print(json.dumps(run_members_bench(), indent=2))
