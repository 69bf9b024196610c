"""Time of a large export through the ingest handler, on moto, within the function's timeout.

Inside ``mock_aws()`` (a :class:`herald_tools.bench.aws_calls.BenchCloud`: moto as the local cloud
runs it, with :mod:`herald_tools.localcloud.moto_patches`, so a transaction copies the items it
touches and no table, and the S3 events of :mod:`herald_tools.localcloud.s3_fidelity`), the
template's resources are provisioned, an export of ``posts`` posts from the bench corpus is
uploaded, and the handler gets its message as Lambda's SQS event source mapping gives it, with a
Lambda context whose deadline is the template's ``Timeout`` for the ingest function from the
moment of the call. A run that stops before the deadline fails the record; the same message is
then given again (as SQS would), until it succeeds. Then the same file again (everything stored:
nothing enriched), and the export's removal.

    python -m herald_tools.bench.exports [--posts 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from herald_tools.bench.aws_calls import FUNCTION, BenchCloud, sqs_event


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


def measure(texts: Sequence[str], posts: int = 5000) -> dict[str, Any]:
    """The export of the first ``posts`` of ``texts``: its upload, the same file again, its removal."""
    from herald_tools.bench.corpus import export_text

    if len(texts) < posts:
        raise ValueError(f"need {posts} texts, got {len(texts)}")
    with BenchCloud() as cloud:
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
    moto = "moto_patches: a transaction copies the items it touches, no table"
    return {"posts": posts, "bytes": len(body), "timeout_s": timeout_s, "moto": moto, "scenarios": scenarios}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m herald_tools.bench.exports", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    import warnings

    from herald_tools.bench.corpus import DEFAULT_SEED, build_corpus

    corpus = build_corpus(args.posts, args.seed if args.seed is not None else DEFAULT_SEED)
    texts = [json.loads(p.body)["text"] for p in corpus]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        print(json.dumps(measure(texts, args.posts), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
