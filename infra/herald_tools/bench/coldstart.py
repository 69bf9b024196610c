"""One cold start of the ingest handler on in-process moto: ``python -m herald_tools.bench.coldstart ROOT``.

Sets up the template's resources and two uploaded posts (not timed), then times the import of the
handler's module, its first invocation (one record: the clients, the settings and the enrichment's
models are created) and a second invocation (one record, everything warm). moto has already
loaded boto3 and botocore, so the import time here is the function's own modules only.

Before the timed part the set-up's objects (moto, its backends and tables, the bench's clients)
are collected and frozen out of the garbage collector (``gc.freeze()``): a Lambda process has
no mock cloud in its heap, and otherwise every full collection the handler's allocations set off
walks moto's objects too (one during the first record cost about 80 ms here).
Prints one line ``BENCH-RESULT {json}``.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path

from herald_tools.bench.aws_calls import BenchCloud
from herald_tools.bench.corpus import build_corpus


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else None
    bodies = [p.body for p in build_corpus(3, samples=False)]
    with BenchCloud(root, quiet=False) as cloud:
        cloud.put("posts/bench-cold/first.json", bodies[0])
        first = cloud.receive(1)
        cloud.put("posts/bench-cold/second.json", bodies[1])
        second = cloud.receive(1)
        assert len(first) == 1 and len(second) == 1, "expected one message per upload"
        rss_before = _status_kb("VmRSS")
        gc.collect()
        gc.freeze()
        start = time.perf_counter()
        cloud.load()
        imported = time.perf_counter()
        cloud.invoke(first)
        first_done = time.perf_counter()
        cloud.invoke(second)
        second_done = time.perf_counter()
        rss_after = _status_kb("VmRSS")
        gc.unfreeze()
        if cloud.failures:
            raise SystemExit(f"the handler reported {cloud.failures} failed record(s)")
    result = {
        "import_ms": (imported - start) * 1e3,
        "first_record_ms": (first_done - imported) * 1e3,
        "warm_record_ms": (second_done - first_done) * 1e3,
        "rss_added_mib": (rss_after - rss_before) / 1024,
    }
    print("BENCH-RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
