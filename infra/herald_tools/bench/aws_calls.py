"""AWS calls the ingest handler makes per published post, on moto, against the least a design needs.

Inside moto's in-process ``mock_aws`` (with :mod:`herald_tools.localcloud.s3_fidelity`, so the
events carry ``sequencer`` and ``versionId`` as on S3, and :mod:`herald_tools.localcloud.moto_patches`,
as the local cloud runs moto), the template's resources are provisioned,
objects are uploaded with a client of the bench's own, and the handler is driven as Lambda's SQS
event source mapping drives it: batches of up to 10 messages from the ingest queue, each turned
into Lambda's SQS event. A ``before-call`` hook on the handler's own S3 and DynamoDB clients counts
every API call (``needs-retry`` counts the HTTP attempts); the bench's uploads are not counted.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

REGION = "us-east-1"
FUNCTION = "IngestFunction"

#: The environment the handler runs with besides the function's own (from the template).
BASE_ENV = {
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_METRICS_NAMESPACE": "Herald",
    "POWERTOOLS_SERVICE_NAME": "herald",
    "POWERTOOLS_TRACE_DISABLED": "1",
}

_app_names = itertools.count()


def repo_root() -> Path:
    """The checkout holding template.yaml and functions/ingest/app.py."""
    env = os.environ.get("HERALD_HOME")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[3]]
    for candidate in candidates:
        app = candidate / "functions" / "ingest" / "app.py"
        if (candidate / "template.yaml").is_file() and app.is_file():
            return candidate
    raise SystemExit("bench: cannot find template.yaml and functions/ingest/app.py; run from the checkout")


@contextlib.contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_app(root: Path) -> ModuleType:
    """functions/ingest/app.py as a fresh module under a unique name (the Lambda module ``app``)."""
    name = f"herald_bench_ingest_app_{next(_app_names)}"
    spec = importlib.util.spec_from_file_location(name, root / "functions" / "ingest" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def lambda_context() -> Any:
    from herald_tools.localcloud.worker import LambdaContext

    return LambdaContext(f"bench-{uuid.uuid4()}", deadline_ms=2**62)


def sqs_event(messages: Sequence[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Lambda's SQS event for messages from ReceiveMessage (the local cloud's builder if present)."""
    try:
        from herald_tools.localcloud.event_sources import sqs_record
    except ImportError:  # pragma: no cover - the local cloud always has it
        sqs_record = None
    records = []
    for m in messages:
        if sqs_record is not None:
            records.append(sqs_record(m, queue_arn, REGION))
            continue
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes") or {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


@dataclass
class CallCounter:
    """API calls (and HTTP attempts) by service and operation, on the clients it is attached to."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    attempts: int = 0

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call", self._on_call)
        client.meta.events.register("needs-retry", self._on_attempt)

    def _on_call(self, model: Any = None, **_: Any) -> None:
        self.calls[(model.service_model.service_name, model.name)] += 1

    def _on_attempt(self, **_: Any) -> None:
        self.attempts += 1

    def snapshot(self) -> tuple[Counter[tuple[str, str]], int]:
        return Counter(self.calls), self.attempts


class BenchCloud:
    """The template's resources on moto, the ingest handler, and a driver that plays Lambda."""

    def __init__(self, root: Path | None = None, *, quiet: bool = True, server: bool = False) -> None:
        self.root = root or repo_root()
        self.quiet = quiet
        #: moto as a server on a free loopback port (for a handler in another process), not in-process.
        self.server = server
        self.endpoint_url: str | None = None
        self._stack = contextlib.ExitStack()
        self.app: ModuleType | None = None
        self.counter = CallCounter()
        self.results: list[Any] = []  # IngestResult of every event the handler handled
        self.failures = 0

    # -- set-up ------------------------------------------------------------------------------------
    def __enter__(self) -> BenchCloud:
        import boto3
        import moto

        from herald_tools.localcloud import moto_patches, s3_fidelity
        from herald_tools.localcloud.provision import provision

        env = dict(BASE_ENV)
        if self.quiet:
            env["POWERTOOLS_LOG_LEVEL"] = "ERROR"
            env["POWERTOOLS_METRICS_DISABLED"] = "true"
        self._stack.enter_context(patched_env(env))
        if self.server:
            from herald_tools.localcloud.server import MotoServer

            moto_server = MotoServer(port=0)  # installs moto_patches and s3_fidelity itself
            self._stack.callback(moto_server.stop)
            self.endpoint_url = moto_server.start()
        else:
            self._stack.enter_context(moto.mock_aws())
            # moto as the local cloud runs it: a transaction copies the items it touches, not the tables.
            if moto_patches.install():
                self._stack.callback(moto_patches.uninstall)
            s3_fidelity.install()
        self.session = boto3.Session(region_name=REGION)
        self.resources = provision(self.root / "template.yaml", self.session, endpoint_url=self.endpoint_url)
        function_env = dict(self.resources.functions[FUNCTION].environment)
        if self.quiet:
            function_env.pop("POWERTOOLS_LOG_LEVEL", None)
        self._stack.enter_context(patched_env(function_env))
        self.bucket = self.resources.uploads_bucket
        self.queue_url = self.resources.ingest_queue_url
        self.queue_arn = self.resources.attr("IngestQueue", "Arn")
        self.s3 = self.session.client("s3", region_name=REGION, endpoint_url=self.endpoint_url)
        self.sqs = self.session.client("sqs", region_name=REGION, endpoint_url=self.endpoint_url)
        self._stack.callback(self._forget_clients)
        self._forget_clients()
        self.notes = self._allow_uploads()
        self.discard_waiting()  # S3's s3:TestEvent, sent when the notifications were configured
        return self

    def discard_waiting(self) -> int:
        """Delete every message on the ingest queue without delivering it."""
        dropped = 0
        while messages := self.receive():
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            dropped += len(messages)
        return dropped

    def _allow_uploads(self) -> list[str]:
        """moto applies the bucket policy's DenyInsecureTransport statement without evaluating its
        ``aws:SecureTransport`` condition, so every PutObject is refused; then the policy goes."""
        from botocore.exceptions import ClientError

        try:
            self.s3.put_object(Bucket=self.bucket, Key="bench-probe/allowed", Body=b"")
            return []
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 403:
                raise
        self.s3.delete_bucket_policy(Bucket=self.bucket)
        self.s3.put_object(Bucket=self.bucket, Key="bench-probe/allowed", Body=b"")
        return [
            "moto refused PutObject under the bucket policy (a Deny whose aws:SecureTransport "
            "condition it does not evaluate); the bench removed the policy from the mock"
        ]

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def _forget_clients(self) -> None:
        from herald.core import aws

        aws.client.cache_clear()
        if self.app is not None:
            self.app.ingest_service.cache_clear()

    def load(self) -> ModuleType:
        """Import the handler (as Lambda does, once per environment)."""
        self.app = load_app(self.root)
        self.app.ingest_service.cache_clear()
        return self.app

    def instrument(self) -> None:
        """Build the handler's service now and count the calls its clients make."""
        assert self.app is not None
        service = self.app.ingest_service()
        self.counter.attach(service._objects.s3)
        self.counter.attach(service._content.ddb)
        handle = service.handle

        def recording_handle(event: Any, *args: Any, **kwargs: Any) -> Any:
            result = handle(event, *args, **kwargs)
            self.results.append(result)
            return result

        service.handle = recording_handle

    # -- driving -----------------------------------------------------------------------------------
    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def receive(self, limit: int = 10) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=limit,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        return response.get("Messages", [])

    def invoke(self, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """One invocation of the handler with these messages; deletes them all afterwards."""
        assert self.app is not None
        event = sqs_event(messages, self.queue_arn)
        out = io.StringIO()
        with contextlib.redirect_stdout(out) if self.quiet else contextlib.nullcontext():
            response = self.app.handler(json.loads(json.dumps(event)), lambda_context())
        self.failures += len(response.get("batchItemFailures") or [])
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        return response

    def drain(self, batch_size: int = 10) -> int:
        """Deliver every message waiting on the ingest queue, ``batch_size`` per invocation."""
        delivered = 0
        while messages := self.receive(batch_size):
            self.invoke(messages)
            delivered += len(messages)
        return delivered


# -- scenarios ------------------------------------------------------------------------------------------

#: The least each kind of event needs, and why (see docs/benchmarks.md).
MINIMUM_SINGLE = 4  # GetObject + outcome GetItem + BatchGetItem (post, claim, waiting) + TransactWriteItems
#: an edit to new text also reads the old text's claim (a duplicate may wait to take its place)
MINIMUM_EDIT = 5
#: outcome GetItem + post read + its text's claim (a duplicate may wait for it) + TransactWriteItems
MINIMUM_DELETE = 4
MINIMUM_REJECT = 5  # GetObject + outcome GetItem + CopyObject + PutObject (report) + TransactWriteItems
#: TransactWriteItems limit; a new post is 3 items (post, claim, published-by item), +1 for the counter
TRANSACT_ITEMS = 100
BATCH_GET = 100  # BatchGetItem limit


def minimum_export(new_posts: int, total_posts: int) -> int:
    """GetObject + outcome read + one Query of what the key published + the claims of the posts it
    has not (100 keys a call) + creates (32 posts and the counter per transaction) + 1 transaction
    for the outcome with the profile. ``total_posts`` no longer matters: stored posts are not read."""
    reads = -(-new_posts // BATCH_GET)
    per_transaction = (TRANSACT_ITEMS - 2) // 3
    writes = -(-new_posts // per_transaction) if new_posts else 0
    return 3 + reads + writes + 1


@dataclass
class Scenario:
    name: str
    events: int
    posts: int  # posts published, updated, recorded as duplicate, deleted or rejected: the unit
    minimum: int  # calls, for the whole scenario
    calls: Counter[tuple[str, str]]
    attempts: int
    statuses: Counter[str]
    failures: int

    def as_dict(self) -> dict[str, Any]:
        total = sum(self.calls.values())
        return {
            "name": self.name,
            "events": self.events,
            "posts": self.posts,
            "calls": total,
            "attempts": self.attempts,
            "calls_per_post": total / self.posts if self.posts else None,
            "minimum": self.minimum,
            "minimum_per_post": self.minimum / self.posts if self.posts else None,
            "ratio": total / self.minimum if self.minimum else None,
            "by_operation": {f"{svc}:{op}": n for (svc, op), n in sorted(self.calls.items())},
            "statuses": dict(self.statuses),
            "failures": self.failures,
        }


def _run(cloud: BenchCloud, name: str, minimum: int, posts: int | None = None) -> Scenario:
    calls_before, attempts_before = cloud.counter.snapshot()
    results_before, failures_before = len(cloud.results), cloud.failures
    cloud.drain()
    calls_after, attempts_after = cloud.counter.snapshot()
    results = cloud.results[results_before:]
    statuses = Counter(str(r.outcome.status) if r.outcome else "superseded" for r in results)
    return Scenario(
        name=name,
        events=len(results),
        posts=posts if posts is not None else len(results),
        minimum=minimum,
        calls=calls_after - calls_before,
        attempts=attempts_after - attempts_before,
        statuses=statuses,
        failures=cloud.failures - failures_before,
    )


def measure(
    bodies: Sequence[bytes],
    singles: int = 200,
    export_posts: int = 200,
    edits: int = 50,
    duplicates: int = 50,
    deletes: int = 50,
    rejects: int = 20,
    root: Path | None = None,
) -> dict[str, Any]:
    """Run every scenario once on a fresh mock; calls per post, the minimum and the ratio for each."""
    from herald_tools.bench.corpus import export_text

    needed = singles + export_posts
    if len(bodies) < needed:
        raise ValueError(f"need {needed} posts, got {len(bodies)}")
    edits, duplicates, deletes = min(edits, singles), min(duplicates, singles), min(deletes, singles)
    texts = [json.loads(b)["text"] for b in bodies]
    scenarios: list[Scenario] = []
    with BenchCloud(root) as cloud:
        cloud.load()
        cloud.instrument()
        community = "bench-posts"
        keys = [f"posts/{community}/post-{i:04d}.json" for i in range(singles)]
        for key, body in zip(keys, bodies[:singles], strict=True):
            cloud.put(key, body)
        scenarios.append(_run(cloud, "new single post", MINIMUM_SINGLE * singles))

        for i in range(edits):
            document = json.loads(bodies[i])
            document["text"] += f"\n\nUpdate {i}: the times above have changed."
            cloud.put(keys[i], json.dumps(document, ensure_ascii=False).encode())
        scenarios.append(_run(cloud, "edit (new text, same key)", MINIMUM_EDIT * edits))

        for i in range(edits, edits + min(edits, singles - edits)):
            cloud.put(keys[i], bodies[i])
        scenarios.append(_run(cloud, "re-upload, same content", MINIMUM_SINGLE * min(edits, singles - edits)))

        for i in range(duplicates):
            source = bodies[singles - 1 - i]
            cloud.put(f"posts/{community}/copy-{i:04d}.json", source)
        scenarios.append(_run(cloud, "duplicate (same text, new key)", MINIMUM_SINGLE * duplicates))

        for i in range(deletes):
            cloud.delete(keys[i])
        scenarios.append(_run(cloud, "delete", MINIMUM_DELETE * deletes))

        broken = b'{"text": "Distribution schedule", "pinned": "yes", "location": "Amman"}'
        for i in range(rejects):
            cloud.put(f"posts/{community}/broken-{i:04d}.json", broken)
        scenarios.append(_run(cloud, "rejected upload", MINIMUM_REJECT * rejects))

        export = export_text(texts[singles : singles + export_posts])
        export_key = "exports/bench-export/page.txt"
        cloud.put(export_key, export)
        first = _run(cloud, "export, first upload", 0)
        created = first_published = _export_count(cloud, "published")
        first.posts = created
        first.minimum = minimum_export(created, export_posts)
        scenarios.append(first)

        cloud.put(export_key, export)
        again = _run(cloud, "export, same file again", minimum_export(0, export_posts))
        again.posts = export_posts
        scenarios.append(again)
    return {
        "notes": cloud.notes,
        "singles": singles,
        "export_posts": export_posts,
        "export_published": first_published,
        "scenarios": [s.as_dict() for s in scenarios],
        "minimum_rules": {
            "single": MINIMUM_SINGLE,
            "delete": MINIMUM_DELETE,
            "reject": MINIMUM_REJECT,
            "edit": MINIMUM_EDIT,
            "export": f"minimum_export(new, total) = 4 + ceil(new/{BATCH_GET}) + ceil(new/32)",
        },
    }


def _export_count(cloud: BenchCloud, field_name: str) -> int:
    for result in reversed(cloud.results):
        if result.outcome is not None and result.outcome.counts:
            return int(result.outcome.counts.get(field_name, 0))
    return 0
