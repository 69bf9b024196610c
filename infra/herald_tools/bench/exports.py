"""Time of a large export through the ingest handler, on moto, within the function's timeout.

Inside ``mock_aws()`` (with :func:`herald_tools.bench.aws_calls.moto_transactions_copy_once`, so a
transaction costs moto one table copy instead of one per item, and the S3 events of
:mod:`herald_tools.localcloud.s3_fidelity`), the template's resources are provisioned, an export
of ``posts`` posts from the bench corpus is uploaded, and the handler gets its message as Lambda's
SQS event source mapping gives it, with a Lambda context whose deadline is the template's
``Timeout`` for the ingest function from the moment of the call. A run that stops before the
deadline fails the record; the same message is then given again (as SQS would), until it succeeds.
Then the same file again (everything stored: nothing enriched), and the export's removal.

    python -m herald_tools.bench.exports [--posts 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import copy as copy_module
import io
import json
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from herald_tools.bench.aws_calls import FUNCTION, BenchCloud, sqs_event


@contextlib.contextmanager
def moto_transactions_in_place() -> Iterator[None]:
    """Make moto's TransactWriteItems copy no table at all (for the "Herald's own time" run).

    Even once per call (``moto_transactions_copy_once``), the copy moto takes for a rollback is a
    copy of the whole table, so an import of N posts costs moto O(N²): at 15,000 items (posts,
    claims, published-by items) each transaction copies them all. DynamoDB's cost per transaction
    does not grow with the table. Without the copy a failed transaction would not be rolled back;
    in this single-threaded run none fails (every guard holds: the outcome's counts are checked).
    """
    from moto.dynamodb import models

    class _NoTableCopy:
        def __getattr__(self, name: str) -> Any:
            return getattr(copy_module, name)

        def deepcopy(self, value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, models.Table) else copy_module.deepcopy(value, memo)

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: Any) -> None:
        models.copy = _NoTableCopy()  # type: ignore[assignment]
        try:
            return original(self, transact_items)
        finally:
            models.copy = copy_module

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        models.DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]


def _deliver(
    cloud: BenchCloud, messages: list[dict[str, Any]], timeout_s: int, errors: list[str]
) -> list[float]:
    """Give ``messages`` to the handler until none fails; the seconds of each run."""
    from herald_tools.localcloud.worker import LambdaContext

    assert cloud.app is not None
    runs: list[float] = []
    while True:
        started = time.time()
        context = LambdaContext(f"bench-{uuid.uuid4()}", deadline_ms=int((started + timeout_s) * 1000))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                event = json.loads(json.dumps(sqs_event(messages, cloud.queue_arn)))
                response = cloud.app.handler(event, context)
                failed = bool(response.get("batchItemFailures"))
            except Exception as exc:  # every record failed: Powertools raises, Lambda returns the batch
                failed = True
                errors.append(f"{type(exc).__name__}: {str(exc)[-600:]}")
        runs.append(time.time() - started)
        if not failed or len(runs) >= 10:
            return runs


def measure(texts: Sequence[str], posts: int = 5000, in_place: bool = False) -> dict[str, Any]:
    """``in_place``: moto's transactions copy no table (see :func:`moto_transactions_in_place`)."""
    from herald_tools.bench.corpus import export_text

    if len(texts) < posts:
        raise ValueError(f"need {posts} texts, got {len(texts)}")
    # Entered first, so it is the innermost wrapper of moto's transactions (the bench's copy-once
    # wrapper around it still drops the model instances a transaction tracks).
    with moto_transactions_in_place() if in_place else contextlib.nullcontext(), BenchCloud() as cloud:
        cloud.load()
        cloud.instrument()
        timeout_s = cloud.resources.functions[FUNCTION].timeout
        key = "exports/bench-export/large.txt"
        body = export_text(list(texts[:posts]))
        scenarios: dict[str, Any] = {}
        for name, action in (
            ("first upload", lambda: cloud.put(key, body)),
            ("same file again", lambda: cloud.put(key, body)),
            ("removal", lambda: cloud.delete(key)),
        ):
            action()
            messages = cloud.receive()
            calls_before, _ = cloud.counter.snapshot()
            errors: list[str] = []
            runs = _deliver(cloud, messages, timeout_s, errors)
            cloud.sqs.delete_message_batch(
                QueueUrl=cloud.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            calls_after, _ = cloud.counter.snapshot()
            outcome = cloud.results[-1].outcome if cloud.results else None
            scenarios[name] = {
                "runs": len(runs),
                "seconds": [round(r, 2) for r in runs],
                "total_s": round(sum(runs), 2),
                "status": str(outcome.status) if outcome else None,
                "counts": dict(outcome.counts) if outcome else {},
                "errors": errors[-3:],
                "calls": {f"{svc}:{op}": n for (svc, op), n in sorted((calls_after - calls_before).items())},
            }
    moto = "no table copy per transaction" if in_place else "one table copy per transaction"
    return {"posts": posts, "bytes": len(body), "timeout_s": timeout_s, "moto": moto, "scenarios": scenarios}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m herald_tools.bench.exports", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--in-place", action="store_true", help="moto's transactions copy no table")
    args = parser.parse_args(argv)
    import warnings

    from herald_tools.bench.corpus import DEFAULT_SEED, build_corpus

    corpus = build_corpus(args.posts, args.seed if args.seed is not None else DEFAULT_SEED)
    texts = [json.loads(p.body)["text"] for p in corpus]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        print(json.dumps(measure(texts, args.posts, in_place=args.in_place), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
