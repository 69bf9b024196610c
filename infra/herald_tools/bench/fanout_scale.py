"""The fan-out of one post to a large community, end to end on this machine, and what it would cost on AWS.

* **Members**: ``members`` web members of one community written into the members table on moto
  in-process (``BatchWriteItem``: the member items as :func:`member_item` writes them, each one's
  subscription claim and the shard counters a join keeps), each with a subscription of a loopback
  push service in a child process that checks VAPID, decrypts every message and answers after a
  fixed ``latency_s`` (its handler threads wait in parallel, so requests are never serialised).
* **Planner**: the planner function's own ``default_planner()`` (functions/fanout_planner/app.py,
  with the function's environment from template.yaml and the real DynamoDB and SQS adapters on
  moto) starts the post (``FanoutPlanner.start``, what the publisher's release job calls) and plans
  every shard job it queues, page by page, until the planner queue is empty.
* **Senders**: ``senders`` instances of the push sender's own ``default_delivery()``
  (functions/push_sender/app.py: the real ``DynamoDeliveryLedger``, the real ``WebPushChannel`` and
  its VAPID key from SSM, ``SENDER_IN_FLIGHT`` from the template) run concurrently, one thread each
  (after one alone, for the CPU per push);
  each takes the push jobs the planner queued (read off the push job queue) and calls
  ``PushDelivery.handle(job, remaining)`` with the function's timeout as the time left, until the
  queue is empty (the jobs the senders queue themselves included).
* **Counts**: a botocore hook on Herald's clients counts every AWS call by operation, for the
  planner and for the senders apart, with the items of each batch or transaction and the request
  units DynamoDB would bill (items' sizes estimated from the requests and the answers). The bench's
  own calls (writing the members, reading the queues) use another client and are not counted.
* **CPU per push**: the process's CPU time, less what moto spends answering (measured inside moto's
  request handler, per thread), divided by the pushes, while one sender runs alone (as one Lambda
  instance: its own threads, no other sender in the process) on the first ``probe_jobs`` jobs after
  a first one that warms it; the same for the whole sending phase too. Against the bare encryption
  floor and pywebpush measured in the same run (:func:`herald_tools.bench.webpush.run_webpush_bench`).
* **On AWS**: :func:`extrapolate` turns the measured costs per push and per member into the time to
  the last push and the AWS charges per post for 222,000 and 10,000,000 members, at the sender's
  memory, threads and concurrency in template.yaml and the prices in :data:`PRICES`.

    python -m herald_tools.bench.fanout_scale [--members 100000] [--latency-ms 50] [--senders 16] [--quick]
    python -m herald_tools.bench --only fanout_scale [--quick]   # the same, its block in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import math
import multiprocessing
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from herald_tools.bench import report
from herald_tools.bench.aws_calls import BASE_ENV, CallCounter, patched_env, repo_root

REGION = "us-east-1"
COMMUNITY = "harbour-line"
POST_ID = "5f1c0e9a7b3d2c4e6a80"
DEFAULT_MEMBERS = 100_000
QUICK_MEMBERS = 2_000
DEFAULT_LATENCY_S = 0.05
DEFAULT_SENDERS = 16
TARGETS = (222_000, 10_000_000)

BEGIN = "<!-- bench:fanout_scale:begin (rewritten by `python -m herald_tools.bench --only fanout_scale`) -->"
END = "<!-- bench:fanout_scale:end -->"

#: AWS list prices, us-east-1, as published on these pages (written down 2026-12-02; DynamoDB's
#: on-demand prices are those in force since 1 November 2024). Lambda's is the x86 price per GB-s;
#: the template's arm64 functions pay $0.0000133334, so the Lambda figures here are an upper bound.
PRICES: dict[str, dict[str, Any]] = {
    "lambda_gb_s": {"usd": 0.0000166667, "source": "https://aws.amazon.com/lambda/pricing/"},
    "lambda_request": {"usd": 0.20 / 1e6, "source": "https://aws.amazon.com/lambda/pricing/"},
    "dynamodb_wru": {"usd": 0.625 / 1e6, "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/"},
    "dynamodb_rru": {"usd": 0.125 / 1e6, "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/"},
    "sqs_request": {"usd": 0.40 / 1e6, "source": "https://aws.amazon.com/sqs/pricing/"},
}
PRICES_DATE = "2026-12-02"
#: SQS bills each 64 KB chunk of a request's payload as one request.
SQS_CHUNK_BYTES = 64 * 1024
#: Lambda gives a function one vCPU at 1,769 MB, and CPU in proportion below that.
LAMBDA_MB_PER_VCPU = 1769
#: What one DynamoDB or SQS call takes from Lambda (round trip), for the planner's page time.
AWS_CALL_S = 0.01

_WRITES = ("PutItem", "UpdateItem", "DeleteItem")
_apps = itertools.count()


# ---------------------------------------------------------------------------------------------------
# The push service: a child process, a fixed latency per request


def _slow_service_class() -> type:
    from herald_tools.localcloud.pushservice import LocalPushService

    class SlowPushService(LocalPushService):
        """A :class:`LocalPushService` whose every push is answered ``latency_s`` after it arrived."""

        latency_s = 0.0

        def _accept(self, sid: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
            time.sleep(self.latency_s)  # this handler thread waits; the others go on
            answer: tuple[int, dict[str, str], dict[str, Any]] = super()._accept(sid, headers, body)
            return answer

    return SlowPushService


def _serve(conn: Any, latency_s: float) -> None:
    """The child: the push service, and answers to the parent's requests on ``conn``."""
    service = _slow_service_class()()
    service.latency_s = latency_s
    with service:
        conn.send(service.origin)
        while True:
            try:
                request = conn.recv()
            except EOFError:  # the parent is gone
                return
            if request[0] == "subscribe":
                conn.send([service.new_subscription() for _ in range(request[1])])
            elif request[0] == "tally":
                _, sids, post_id = request
                conn.send(_tally(service, sids, post_id))
            elif request[0] == "reset":
                service.reset()
                conn.send(True)
            else:
                conn.send(True)
                return


def _tally(service: Any, sids: Sequence[str], post_id: str) -> dict[str, Any]:
    """What the push service got: totals, pushes of the post per subscription, repeats, misses."""
    stats = service.stats()
    per_sid = Counter(
        d.subscription_id
        for d in service.received()
        if isinstance(d.json, dict) and d.json.get("post_id") == post_id
    )
    return {
        "received": stats["received"],
        "decrypted": stats["decrypted"],
        "rejected": stats["rejected"],
        "faulted": stats["faulted"],
        "connections": stats["connections"],
        "of_the_post": sum(per_sid.values()),
        "duplicates": sum(n - 1 for n in per_sid.values() if n > 1),
        "members_pushed_twice": sum(1 for n in per_sid.values() if n > 1),
        "missed": sum(1 for sid in sids if per_sid.get(sid, 0) == 0),
    }


class _ChildPushService:
    def __init__(self, latency_s: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, latency_s), daemon=True)
        self._process.start()
        self.origin: str = self._conn.recv()
        self.port = int(self.origin.rsplit(":", 1)[1])

    def call(self, *request: Any) -> Any:
        self._conn.send(request)
        return self._conn.recv()

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.call("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()


# ---------------------------------------------------------------------------------------------------
# Counting: calls by operation, items, request units; moto's own CPU


def item_bytes(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it: each attribute's name plus its value (in wire form)."""
    return sum(len(name.encode("utf-8")) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: Mapping[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode("utf-8"))
    if kind == "N":
        return (len(str(raw).strip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(raw) if isinstance(raw, bytes | bytearray) else len(str(raw)) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + item_bytes(raw)
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in raw)
    return sum(len(str(v).encode("utf-8")) for v in raw)  # SS, NS, BS


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


class PhaseCounter(CallCounter):
    """:class:`CallCounter` for concurrent callers, by phase (``phase``): calls by operation, the
    items of each write (a batch's or a transaction's one by one), DynamoDB's request units
    (sizes estimated from the request's items and the answer's), SQS's billed 64 KB chunks."""

    def __init__(self) -> None:
        super().__init__()
        self.phase = "setup"
        self._lock = threading.Lock()
        self.by_phase: dict[str, Counter[str]] = {}

    def attach(self, client: Any) -> None:
        super().attach(client)
        client.meta.events.register("before-parameter-build", self._on_params)
        client.meta.events.register("after-call", self._on_answer)

    def _add(self, **values: float) -> None:
        with self._lock:
            counts = self.by_phase.setdefault(self.phase, Counter())
            for name, value in values.items():
                counts[name] += value  # type: ignore[assignment]

    def _on_call(self, model: Any = None, **_: Any) -> None:
        with self._lock:
            self.calls[(model.service_model.service_name, model.name)] += 1
        self._add(**{f"{model.service_model.service_name}:{model.name}": 1})

    def _on_attempt(self, **_: Any) -> None:
        with self._lock:
            self.attempts += 1

    def _on_params(self, params: Any = None, model: Any = None, context: Any = None, **_: Any) -> None:
        service, op, p = model.service_model.service_name, model.name, params or {}
        if context is not None:
            context["bench_consistent"] = bool(p.get("ConsistentRead"))
        if service == "sqs":
            if op == "SendMessageBatch":
                size = sum(len(e["MessageBody"].encode("utf-8")) for e in p.get("Entries", []))
            else:
                size = len(str(p.get("MessageBody", "")).encode("utf-8"))
            self._add(sqs_billed=max(1, math.ceil(size / SQS_CHUNK_BYTES)))
            return
        if service != "dynamodb":
            return
        if op in _WRITES:
            size = item_bytes(p.get("Item") or p.get("Key") or {})
            size += sum(_value_bytes(v) for v in (p.get("ExpressionAttributeValues") or {}).values())
            self._add(writes=1, wru=_write_units(size))
        elif op == "BatchWriteItem":
            for requests in (p.get("RequestItems") or {}).values():
                for r in requests:
                    body = r.get("PutRequest", {}).get("Item") or r.get("DeleteRequest", {}).get("Key") or {}
                    self._add(writes=1, wru=_write_units(item_bytes(body)))
        elif op == "TransactWriteItems":
            for entry in p.get("TransactItems", []):
                ((kind, body),) = entry.items()
                if kind == "ConditionCheck":
                    self._add(wru=2 * _write_units(item_bytes(body.get("Key") or {})))
                    continue
                size = item_bytes(body.get("Item") or body.get("Key") or {})
                self._add(writes=1, wru=2 * _write_units(size))  # a transaction bills twice

    def _on_answer(self, model: Any = None, parsed: Any = None, context: Any = None, **_: Any) -> None:
        if model.service_model.service_name != "dynamodb" or not isinstance(parsed, dict):
            return
        consistent = bool((context or {}).get("bench_consistent"))
        op = model.name
        if op == "GetItem":
            self._add(rru=_read_units(item_bytes(parsed.get("Item") or {}), consistent))
        elif op in ("Query", "Scan"):
            size = sum(item_bytes(i) for i in parsed.get("Items", []))
            self._add(rru=_read_units(size, consistent))
        elif op == "BatchGetItem":
            for items in (parsed.get("Responses") or {}).values():
                for i in items:
                    self._add(rru=_read_units(item_bytes(i), consistent))
        elif op == "TransactGetItems":
            for r in parsed.get("Responses", []):
                self._add(rru=2 * _read_units(item_bytes(r.get("Item") or {}), True))

    def phase_counts(self, phase: str) -> Counter[str]:
        with self._lock:
            return Counter(self.by_phase.get(phase, Counter()))


class MotoCpu:
    """CPU seconds moto spends answering requests, summed over threads (its request handler timed
    with each thread's own CPU clock), so a measurement can leave out what AWS would do."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._original: Any = None

    def __enter__(self) -> MotoCpu:
        from moto.core.botocore_stubber import BotocoreStubber

        self._original = original = BotocoreStubber.process_request
        meter = self

        def process_request(stubber: Any, request: Any) -> Any:
            started = time.thread_time()
            try:
                return original(stubber, request)
            finally:
                spent = time.thread_time() - started
                with meter._lock:
                    meter.seconds += spent

        BotocoreStubber.process_request = process_request  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        BotocoreStubber.process_request = self._original  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------------
# The functions' own factories


def load_function(root: Path, name: str) -> ModuleType:
    """functions/<name>/app.py as a fresh module (each function's module is ``app`` in Lambda)."""
    module_name = f"herald_bench_{name}_app_{next(_apps)}"
    spec = importlib.util.spec_from_file_location(module_name, root / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def sender_factory(root: Path) -> Callable[[], Any]:
    """What the push sender builds per container: its ``default_delivery`` (so this follows the app)."""
    app = load_function(root, "push_sender")
    return app.default_delivery  # type: ignore[no-any-return]


def planner_factory(root: Path) -> Callable[[], Any]:
    app = load_function(root, "fanout_planner")
    return app.default_planner  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------------
# The run


def _post() -> Any:
    from herald.fanout.jobs import PostSummary

    return PostSummary(
        community=COMMUNITY,
        post_id=POST_ID,
        title="وصلت القافلة إلى الميناء 🚢",
        excerpt="The convoy reached the harbour this morning and everyone is safe. " * 3,
        url=f"https://herald.example/{COMMUNITY}/posts/{POST_ID}/",
        language="en",
    )


def _write_members(ddb: Any, table: str, subscriptions: Sequence[dict[str, Any]], shards: int) -> list[str]:
    """The members as joins leave them (member items, claims, shard counters), by BatchWriteItem;
    the member ids in order."""
    from herald.members.adapters.dynamo_members import claim_item, member_item, shard_key
    from herald.members.rules import Member, WebPushSubscription, subscription_id

    now = datetime.now(UTC)
    per_shard: Counter[int] = Counter()
    ids: list[str] = []
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        pending: dict[str, Any] = {table: list(batch)}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        batch.clear()

    for i, raw in enumerate(subscriptions):
        web = WebPushSubscription.model_validate(raw)
        member = Member(
            community=COMMUNITY,
            member_id=f"{i:032x}",
            shard=i % shards,
            token_hash="0" * 64,
            subscriptions=[subscription_id(web_push=web)],
            web_push=web,
            joined_at=now,
            updated_at=now,
        )
        ids.append(member.member_id)
        per_shard[member.shard] += 1
        items = [member_item(member)] + [claim_item(member, s, time.time()) for s in member.subscriptions]
        for item in items:
            batch.append({"PutRequest": {"Item": item}})
            if len(batch) == 25:
                flush()
    for shard, n in sorted(per_shard.items()):
        counter = {**shard_key(COMMUNITY, shard), "n": {"N": str(n)}}
        batch.append(
            {"PutRequest": {"Item": {**counter, "community": {"S": COMMUNITY}, "shard": {"N": str(shard)}}}}
        )
        if len(batch) == 25:
            flush()
    if batch:
        flush()
    return ids


def _drain(sqs: Any, url: str) -> list[str]:
    """Every message body on the queue (received and deleted by the bench's own client)."""
    bodies: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        bodies += [m["Body"] for m in got]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
        )


def _waiting(sqs: Any, url: str) -> int:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(n, 0)) for n in names)


def _dynamo_summary(counts: Counter[str], per: float) -> dict[str, Any]:
    ops = {k.split(":", 1)[1]: int(v) for k, v in sorted(counts.items()) if k.startswith("dynamodb:")}
    sqs = {k.split(":", 1)[1]: int(v) for k, v in sorted(counts.items()) if k.startswith("sqs:")}
    other = {
        k: int(v) for k, v in sorted(counts.items()) if ":" in k and not k.startswith(("dynamodb:", "sqs:"))
    }
    calls = sum(ops.values()) + sum(sqs.values()) + sum(other.values())
    return {
        "calls": calls,
        "calls_per_1000_members": round(calls / per * 1000, 2),
        "dynamodb": ops,
        "sqs": sqs,
        "other": other,
        "dynamodb_writes": int(counts["writes"]),
        "wru": int(counts["wru"]),
        "rru": round(float(counts["rru"]), 1),
        "sqs_billed_requests": int(counts["sqs_billed"]),
    }


def _stat(report_: Any, name: str) -> int:
    stats = getattr(report_, "stats", None)
    return int(getattr(stats, name, 0) or 0)


def run_fanout_scale(
    members: int = DEFAULT_MEMBERS,
    *,
    latency_s: float = DEFAULT_LATENCY_S,
    senders: int = DEFAULT_SENDERS,
    probe_jobs: int = 20,
    baseline_pushes: int = 2000,
    root: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole fan-out of one post to ``members`` members (see the module's docstring)."""
    import boto3
    from moto import mock_aws

    from herald.core import aws
    from herald.fanout.channels.vapid import generate_vapid_key, private_key_pem
    from herald.fanout.jobs import PushJob
    from herald_tools.localcloud import moto_patches
    from herald_tools.localcloud.provision import provision

    say = progress or (lambda message: None)
    root = root or repo_root()
    started = time.perf_counter()
    push = _ChildPushService(latency_s)
    results: dict[str, Any] = {"members": members, "latency_ms": latency_s * 1000, "senders": senders}
    try:
        say(f"fanout_scale: {members:,} subscriptions at the push service ({latency_s * 1000:g} ms per push)")
        subscriptions = push.call("subscribe", members)
        sids = [s["endpoint"].rsplit("/", 1)[1] for s in subscriptions]
        quiet = {**BASE_ENV, "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
        with contextlib.ExitStack() as stack:
            stack.enter_context(patched_env(quiet))
            stack.enter_context(mock_aws())
            if moto_patches.install():
                stack.callback(moto_patches.uninstall)
            aws.client.cache_clear()  # Herald's clients made afresh, on moto
            stack.callback(aws.client.cache_clear)
            session = boto3.Session(region_name=REGION)
            resources = provision(root / "template.yaml", session)
            planner_fn = resources.functions["FanoutPlannerFunction"]
            sender_fn = resources.functions["PushSenderFunction"]
            env = {**planner_fn.environment, **sender_fn.environment}
            env = {k: str(v) for k, v in env.items() if k != "POWERTOOLS_LOG_LEVEL"}
            env.update(ALLOW_LOOPBACK_PUSH="true", PUSH_ALLOWED_PORTS=str(push.port))
            stack.enter_context(patched_env(env))
            session.client("ssm").put_parameter(
                Name=env["VAPID_KEY_PARAMETER"],
                Value=private_key_pem(generate_vapid_key()),
                Type="SecureString",
            )
            ddb, sqs = session.client("dynamodb"), session.client("sqs")
            shards = int(env["MEMBER_COUNTER_SHARDS"])
            say(f"fanout_scale: writing {members:,} members into the members table on moto")
            t = time.perf_counter()
            _write_members(ddb, env["MEMBERS_TABLE"], subscriptions, shards)
            results["write_members_s"] = round(time.perf_counter() - t, 1)

            counter = PhaseCounter()
            for service in ("dynamodb", "sqs", "ssm"):
                counter.attach(aws.client(service))
            moto_cpu = stack.enter_context(MotoCpu())

            # -- the planner
            planner = planner_factory(root)()
            say("fanout_scale: planning")
            counter.phase = "planner"
            wall, cpu, moto0 = time.perf_counter(), time.process_time(), moto_cpu.seconds
            planner.start(_post())
            planner_jobs = 0
            while jobs := _drain(sqs, env["PLANNER_QUEUE_URL"]):
                for body in jobs:
                    planner.on_job(json.loads(body))
                    planner_jobs += 1
            planner_cpu = time.process_time() - cpu - (moto_cpu.seconds - moto0)
            results["planner"] = {
                **_dynamo_summary(counter.phase_counts("planner"), members),
                "planner_jobs": planner_jobs,
                "seconds_on_moto": round(time.perf_counter() - wall, 1),
                "cpu_ms_per_1000_members": round(planner_cpu / members * 1e6, 1),
                "moto_cpu_s": round(moto_cpu.seconds - moto0, 1),
            }
            counter.phase = "between"
            bodies = _drain(sqs, env["PUSH_JOB_QUEUE_URL"])
            targets = sum(len(PushJob.model_validate_json(b).targets) for b in bodies)
            results["push_jobs"] = len(bodies)
            results["push_job_bytes"] = sum(len(b.encode("utf-8")) for b in bodies)
            results["targets"] = targets

            # -- the senders
            say(f"fanout_scale: sending {len(bodies):,} push jobs ({targets:,} members), {senders} senders")
            make_delivery = sender_factory(root)
            deliveries = [make_delivery() for _ in range(senders)]
            timeout = float(sender_fn.timeout)
            work: queue.Queue[str] = queue.Queue()
            totals: Counter[str] = Counter()
            errors: list[str] = []
            lock = threading.Lock()

            def sender(delivery: Any, work: queue.Queue[str] = work) -> None:
                while True:
                    try:
                        body = work.get_nowait()
                    except queue.Empty:
                        return
                    job = PushJob.model_validate_json(body)  # what the handler's record model does
                    deadline = time.monotonic() + timeout
                    try:
                        got = delivery.handle(job, lambda end=deadline: end - time.monotonic())
                    except Exception as exc:  # a job that fails goes back to the queue in Lambda
                        with lock:
                            errors.append(f"{type(exc).__name__}: {exc}"[:200])
                        continue
                    with lock:
                        totals["jobs"] += 1
                        for name in ("sent", "failed", "pruned", "deferred", "retried"):
                            totals[name] += _stat(got, name)
                        for name in ("skipped", "requeued", "continued"):
                            totals[name] += int(getattr(got, name, 0) or 0)

            counter.phase = "senders"
            wall, cpu, moto0 = time.perf_counter(), time.process_time(), moto_cpu.seconds
            # First one sender alone, as one Lambda instance runs (its threads, no other sender in
            # the process): its first job warms it (the VAPID key, the connections), the next timed.
            probe = bodies[1 : 1 + max(0, min(probe_jobs, len(bodies) // 4))]
            alone: queue.Queue[str] = queue.Queue()
            alone.put(bodies[0])
            sender(deliveries[0], alone)
            for body in probe:
                alone.put(body)
            probe_cpu, probe_moto, probe_wall = time.process_time(), moto_cpu.seconds, time.perf_counter()
            sender(deliveries[0], alone)
            probe_wall = time.perf_counter() - probe_wall
            probe_moto = moto_cpu.seconds - probe_moto
            probe_cpu = time.process_time() - probe_cpu - probe_moto
            probe_pushes = sum(len(PushJob.model_validate_json(b).targets) for b in probe)
            for body in bodies[1 + len(probe) :]:
                work.put(body)
            rounds = 0
            while True:
                rounds += 1
                threads = [
                    threading.Thread(target=sender, args=(d,), name=f"sender-{i}")
                    for i, d in enumerate(deliveries)
                ]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                # Jobs the senders queued themselves (retries, continuations): read as Lambda would.
                counter.phase = "between"
                more = _drain(sqs, env["PUSH_JOB_QUEUE_URL"])
                counter.phase = "senders"
                if not more or rounds >= 5:
                    break
                for body in more:
                    work.put(body)
            send_wall = time.perf_counter() - wall
            send_moto = moto_cpu.seconds - moto0
            send_cpu = time.process_time() - cpu - send_moto
            counter.phase = "after"
            left = _waiting(sqs, env["PUSH_JOB_QUEUE_URL"])
            for d in deliveries:
                pool = getattr(d, "_pool", None)
                if pool is not None:
                    pool.shutdown(wait=False)
            say("fanout_scale: counting what the push service got")
            tally = push.call("tally", sids, POST_ID)
            pushes = tally["of_the_post"]
            results["senders_run"] = {
                **_dynamo_summary(counter.phase_counts("senders"), members),
                **{k: int(v) for k, v in totals.items()},
                "errors": errors[:5],
                "error_count": len(errors),
                "rounds": rounds,
                "left_on_queue": left,
                "seconds": round(send_wall, 1),
                "pushes_per_s": round(pushes / send_wall, 1) if send_wall else None,
                "process_cpu_s": round(send_cpu + send_moto, 1),
                "moto_cpu_s": round(send_moto, 1),
                "cpu_us_per_push_all": round(send_cpu / max(1, pushes) * 1e6, 1),
                "cpu_us_per_push": round(probe_cpu / max(1, probe_pushes) * 1e6, 1),
                "probe": {
                    "jobs": len(probe),
                    "pushes": probe_pushes,
                    "seconds": round(probe_wall, 2),
                    "cpu_s": round(probe_cpu, 2),
                    "moto_cpu_s": round(probe_moto, 2),
                },
                "threads_per_sender": int(env.get("SENDER_IN_FLIGHT", env.get("SENDER_THREADS", "8"))),
            }
            results["push_service"] = tally
            s = results["senders_run"]
            results["writes_per_push"] = round(s["dynamodb_writes"] / max(1, pushes), 3)
            results["deployment"] = _deployment(resources)
    finally:
        push.close()
    if baseline_pushes:
        say(f"fanout_scale: the encryption floor and pywebpush, {baseline_pushes} pushes each")
        from herald_tools.bench.webpush import run_webpush_bench

        web = run_webpush_bench(baseline_pushes)
        cases = web["cases"]
        cpu_us = results["senders_run"]["cpu_us_per_push"]
        results["baseline"] = {
            name: cases[name]["cpu_us_per_push"] for name in ("floor", "herald", "pywebpush") if name in cases
        }
        results["ratios"] = {
            f"vs_{name}": round(cpu_us / us, 2) for name, us in results["baseline"].items() if us
        }
    results["extrapolation"] = [asdict(e) for e in extrapolate(measured(results), TARGETS)]
    results["duration_s"] = round(time.perf_counter() - started, 1)
    return results


def _deployment(resources: Any) -> dict[str, Any]:
    """The sender's and the planner's sizes in template.yaml: memory, threads, batch, concurrency."""
    out: dict[str, Any] = {}
    for key, logical in (("sender", "PushSenderFunction"), ("planner", "FanoutPlannerFunction")):
        fn = resources.functions[logical]
        sqs_events = [e for e in fn.events if e.type == "SQS"]
        props = sqs_events[0].properties if sqs_events else {}
        out[key] = {
            "memory_mb": int(fn.memory_size),
            "timeout_s": int(fn.timeout),
            "batch_size": int(props.get("BatchSize", 10)),
            "max_concurrency": int((props.get("ScalingConfig") or {}).get("MaximumConcurrency", 1000)),
        }
    sender_env = resources.functions["PushSenderFunction"].environment
    # Web pushes in flight at once (on one thread); SENDER_THREADS when the template sets no more.
    out["sender"]["threads"] = int(sender_env.get("SENDER_IN_FLIGHT", sender_env.get("SENDER_THREADS", 8)))
    env = resources.functions["FanoutPlannerFunction"].environment
    out["planner"].update(
        shards=int(env["MEMBER_COUNTER_SHARDS"]),
        page_size=int(env["PLANNER_PAGE_SIZE"]),
        members_per_job=int(env["MEMBERS_PER_JOB"]),
    )
    return out


# ---------------------------------------------------------------------------------------------------
# The arithmetic: from the measured costs to a large fan-out on AWS


@dataclass(frozen=True)
class Measured:
    """Per member or per push, as measured, and the deployment's sizes."""

    sender_cpu_s_per_push: float
    planner_cpu_s_per_member: float
    pushes_per_member: float
    sender_wru_per_push: float
    sender_rru_per_push: float
    planner_wru_per_member: float
    planner_rru_per_member: float
    sqs_billed_per_member: float  # the SQS sends of planner and senders, in billed requests
    push_job_bytes_per_member: float
    planner_calls_per_member: float
    planner_fixed_jobs: int  # one shard job per shard (and the release)
    latency_s: float
    sender_memory_mb: int
    sender_threads: int
    sender_concurrency: int
    sender_batch_size: int
    planner_memory_mb: int
    planner_concurrency: int
    planner_batch_size: int
    shards: int
    page_size: int
    members_per_job: int


@dataclass(frozen=True)
class Extrapolated:
    members: int
    pushes: int
    sender_pushes_per_s_each: float
    sending_s: float
    planning_s: float
    last_push_s: float
    lambda_gb_s: float
    lambda_requests: int
    wru: float
    rru: float
    sqs_requests: float
    usd_lambda: float
    usd_dynamodb: float
    usd_sqs: float
    usd_total: float


def vcpu(memory_mb: int) -> float:
    """The share of a vCPU Lambda gives a function of ``memory_mb`` (one Python thread uses one at most)."""
    return min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)


def extrapolate(m: Measured, targets: Sequence[int] = TARGETS) -> list[Extrapolated]:
    """Time to the last push and AWS charges per post for each of ``targets`` members.

    * One sender sends a window of ``threads`` pushes at once (``SENDER_IN_FLIGHT``) on one thread:
      the window's pushes are prepared and their answers read one after another on that thread, so
      a window takes the push latency plus ``threads`` pushes' CPU time at the function's vCPU
      share, and a sender makes at most ``vcpu / cpu per push`` pushes a second in all:
      ``rate = min(threads / (latency + threads * cpu / vcpu), vcpu / cpu)``; ``concurrency``
      senders at once.
    * The planner pages the shards in parallel (up to its concurrency); a page costs its CPU at the
      planner's vCPU share plus :data:`AWS_CALL_S` per call. The senders start after the first page;
      the last push is at ``max(planning, first page + sending) + one job``.
    * Lambda: the senders' busy time (pushes / rate) and the planner's at their memory sizes, one
      request per batch of jobs. DynamoDB: the request units measured per push and per member.
      SQS: the sends measured per member, plus the event source mappings' receive and delete per
      batch (the receive billed per 64 KB of the batch's bodies).
    """
    out = []
    sender_vcpu, planner_vcpu = vcpu(m.sender_memory_mb), vcpu(m.planner_memory_mb)
    cpu = max(m.sender_cpu_s_per_push, 1e-9)
    rate = min(m.sender_threads / (m.latency_s + m.sender_threads * cpu / sender_vcpu), sender_vcpu / cpu)
    page_calls = m.planner_calls_per_member * m.page_size
    page_s = m.planner_cpu_s_per_member * m.page_size / planner_vcpu + page_calls * AWS_CALL_S
    for members in targets:
        pushes = round(members * m.pushes_per_member)
        sending_s = pushes / (rate * m.sender_concurrency)
        pages = max(m.shards, math.ceil(members / m.page_size))
        planning_s = math.ceil(pages / min(m.shards, m.planner_concurrency)) * page_s
        job_s = m.members_per_job / rate
        last_push_s = max(planning_s, page_s + sending_s) + job_s
        push_jobs = math.ceil(pushes / m.members_per_job)
        planner_jobs = pages + m.planner_fixed_jobs
        sender_gb_s = pushes / rate * m.sender_memory_mb / 1024
        planner_gb_s = pages * page_s * m.planner_memory_mb / 1024
        invocations = math.ceil(push_jobs / m.sender_batch_size) + math.ceil(
            planner_jobs / m.planner_batch_size
        )
        wru = pushes * m.sender_wru_per_push + members * m.planner_wru_per_member
        rru = pushes * m.sender_rru_per_push + members * m.planner_rru_per_member
        job_bytes = m.push_job_bytes_per_member * members
        batch_bytes = job_bytes / max(1, math.ceil(push_jobs / m.sender_batch_size))
        receives = math.ceil(push_jobs / m.sender_batch_size) * max(
            1, math.ceil(batch_bytes / SQS_CHUNK_BYTES)
        )
        receives += math.ceil(planner_jobs / m.planner_batch_size)
        deletes = math.ceil(push_jobs / m.sender_batch_size) + math.ceil(planner_jobs / m.planner_batch_size)
        sqs_requests = members * m.sqs_billed_per_member + receives + deletes
        usd_lambda = (sender_gb_s + planner_gb_s) * PRICES["lambda_gb_s"]["usd"] + invocations * PRICES[
            "lambda_request"
        ]["usd"]
        usd_dynamodb = wru * PRICES["dynamodb_wru"]["usd"] + rru * PRICES["dynamodb_rru"]["usd"]
        usd_sqs = sqs_requests * PRICES["sqs_request"]["usd"]
        out.append(
            Extrapolated(
                members=members,
                pushes=pushes,
                sender_pushes_per_s_each=round(rate, 1),
                sending_s=round(sending_s, 1),
                planning_s=round(planning_s, 1),
                last_push_s=round(last_push_s, 1),
                lambda_gb_s=round(sender_gb_s + planner_gb_s, 1),
                lambda_requests=invocations,
                wru=round(wru),
                rru=round(rru),
                sqs_requests=round(sqs_requests),
                usd_lambda=round(usd_lambda, 4),
                usd_dynamodb=round(usd_dynamodb, 4),
                usd_sqs=round(usd_sqs, 4),
                usd_total=round(usd_lambda + usd_dynamodb + usd_sqs, 4),
            )
        )
    return out


def measured(r: Mapping[str, Any]) -> Measured:
    """The inputs of :func:`extrapolate` from a run's results."""
    members, s, p, d = r["members"], r["senders_run"], r["planner"], r["deployment"]
    pushes = max(1, r["push_service"]["of_the_post"])
    return Measured(
        sender_cpu_s_per_push=s["cpu_us_per_push"] / 1e6,
        planner_cpu_s_per_member=p["cpu_ms_per_1000_members"] / 1e6,
        pushes_per_member=pushes / members,
        sender_wru_per_push=s["wru"] / pushes,
        sender_rru_per_push=s["rru"] / pushes,
        planner_wru_per_member=p["wru"] / members,
        planner_rru_per_member=p["rru"] / members,
        sqs_billed_per_member=(s["sqs_billed_requests"] + p["sqs_billed_requests"]) / members,
        push_job_bytes_per_member=r["push_job_bytes"] / members,
        planner_calls_per_member=p["calls"] / members,
        planner_fixed_jobs=d["planner"]["shards"] + 1,
        latency_s=r["latency_ms"] / 1000,
        sender_memory_mb=d["sender"]["memory_mb"],
        sender_threads=d["sender"]["threads"],
        sender_concurrency=d["sender"]["max_concurrency"],
        sender_batch_size=d["sender"]["batch_size"],
        planner_memory_mb=d["planner"]["memory_mb"],
        planner_concurrency=d["planner"]["max_concurrency"],
        planner_batch_size=d["planner"]["batch_size"],
        shards=d["planner"]["shards"],
        page_size=d["planner"]["page_size"],
        members_per_job=d["planner"]["members_per_job"],
    )


# ---------------------------------------------------------------------------------------------------
# The block in docs/benchmarks.md


def _ops(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "no calls"


def _duration(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"


def render(r: dict[str, Any]) -> list[str]:
    """The end-to-end fan-out section of docs/benchmarks.md."""
    s, p, t, d = r["senders_run"], r["planner"], r["push_service"], r["deployment"]
    members = r["members"]
    out = [
        "### Fan-out of one post, end to end",
        "",
        f"{members:,} web members on moto in-process (members, claims and shard counters written "
        "beforehand), one post started; the planner function's `default_planner()` plans every page, "
        f"{r['senders']} instances of the push sender's `default_delivery()` ({s['threads_per_sender']} "
        "web pushes in flight each on one thread, as in template.yaml) send every push job to a "
        "loopback push service in a child "
        f"process that checks VAPID, decrypts each push and answers {r['latency_ms']:g} ms after it "
        "arrived. AWS calls counted with a botocore hook on Herald's clients.",
        "",
        f"- Pushes of the post decrypted by the push service: **{t['of_the_post']:,}** of {members:,} "
        f"members (received {t['received']:,}, rejected {t['rejected']:,}); repeats at the push service "
        f"**{t['duplicates']:,}** (a push sent again after an attempt that got no answer in time: "
        f"{s['retried']:,} members retried; a repeat carries the post's `Topic`, so the service replaces "
        f"it and the person sees one notification), members missed **{t['missed']:,}**; jobs that raised: "
        f"{s['error_count']}.",
        f"- DynamoDB writes per push: **{r['writes_per_push']}** ({s['dynamodb_writes']:,} items written "
        f"by the senders; {p['dynamodb_writes']:,} by the planner).",
        f"- Planner: {p['calls']:,} AWS calls, **{p['calls_per_1000_members']} per 1,000 members** "
        f"({_ops(p['dynamodb'])}; {_ops(p['sqs'])}); {p['planner_jobs']:,} planner jobs, "
        f"{r['push_jobs']:,} push jobs; {p['cpu_ms_per_1000_members']} ms of CPU per 1,000 members "
        "(moto's own CPU left out).",
        f"- Senders: {s['calls']:,} AWS calls, **{s['calls_per_1000_members']} per 1,000 members** "
        f"({_ops(s['dynamodb'])}; {_ops(s['sqs'])}{'; ' + _ops(s['other']) if s['other'] else ''}).",
        f"- Sending took {s['seconds']:,.1f} s here ({s['pushes_per_s']:,.0f} pushes/s; the process's "
        f"CPU {s['process_cpu_s']:,.1f} s, of which moto {s['moto_cpu_s']:,.1f} s; "
        f"{s['cpu_us_per_push_all']:,.0f} µs per push without moto's, with {r['senders']} senders' "
        "threads in one process).",
    ]
    if "baseline" in r:
        b, q = r["baseline"], r["ratios"]
        out.append(
            f"- Sender CPU per push (one sender alone, {s['probe']['pushes']:,} pushes after a first job; "
            f"moto's CPU left out): **{s['cpu_us_per_push']:,.0f} µs**, "
            f"**{q.get('vs_floor', 0):.1f}×** the encryption floor ({b.get('floor', 0):,.0f} µs) and "
            f"{q.get('vs_pywebpush', 0):.2f}× pywebpush ({b.get('pywebpush', 0):,.0f} µs) in the same run "
            f"(`WebPushSender.send` alone: {b.get('herald', 0):,.0f} µs)."
        )
    sd = d["sender"]
    out += [
        "",
        f"On AWS (arithmetic in `fanout_scale.extrapolate`): senders of {sd['memory_mb']} MB "
        f"({vcpu(sd['memory_mb']):.2f} vCPU), {sd['threads']} pushes in flight, "
        f"{sd['max_concurrency']} at once "
        f"(template.yaml), the measured CPU per push at that vCPU share, {r['latency_ms']:g} ms per push; "
        f"{AWS_CALL_S * 1000:g} ms per AWS call of the planner; prices of {PRICES_DATE} (us-east-1: "
        "Lambda $0.0000166667 per GB-s and $0.20 per million requests, DynamoDB on-demand $0.625 per "
        "million write and $0.125 per million read request units, SQS $0.40 per million requests of "
        "64 KB).",
        "",
        "| members | pushes/s per sender | planning | last push | Lambda GB-s | DynamoDB WRU | "
        "Lambda $ | DynamoDB $ | SQS $ | per post |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in r["extrapolation"]:
        out.append(
            f"| {e['members']:,} | {e['sender_pushes_per_s_each']:,.0f} | {_duration(e['planning_s'])} | "
            f"{_duration(e['last_push_s'])} | {e['lambda_gb_s']:,.0f} | {e['wru']:,.0f} | "
            f"{e['usd_lambda']:.4f} | {e['usd_dynamodb']:.4f} | {e['usd_sqs']:.4f} | "
            f"**${e['usd_total']:.2f}** |"
        )
    return [*out, ""]


def update_doc(path: Path, section: str, header: str) -> None:
    """Replace this bench's block in ``path`` (appended if missing); the rest of the page is kept."""
    report.write_block(path, BEGIN, END, f"{header}\n\n{section}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_S * 1000)
    parser.add_argument("--senders", type=int, default=DEFAULT_SENDERS)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_MEMBERS:,} members")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    members = args.members or (QUICK_MEMBERS if args.quick else DEFAULT_MEMBERS)

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    results = run_fanout_scale(
        members,
        latency_s=args.latency_ms / 1000,
        senders=args.senders,
        baseline_pushes=400 if args.quick else 2000,
        progress=say,
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print("\n".join(render(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
