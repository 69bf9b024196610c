"""One cold start of the ingest handler: ``python -m herald_tools.bench.coldstart [ROOT] [--built]``.

Sets up the template's resources and two uploaded posts (not timed), then times the import of the
handler's module, its first invocation (one record: the clients, the settings and the enrichment's
models are created) and a second invocation (one record, everything warm), each as wall time and
as the CPU time of the process (``time.process_time``), which a busy machine disturbs far less.

By default the handler runs in this process, on in-process moto. moto has already loaded boto3
and botocore there, so the import time is the function's own modules only; and the CPU time of
each record includes moto's work on its requests. Before the timed part the set-up's objects
(moto, its backends and tables, the bench's clients) are collected and frozen out of the garbage
collector (``gc.freeze()``): a Lambda process has no mock cloud in its heap, and otherwise every
full collection the handler's allocations set off walks moto's objects too (one during the first
record cost about 80 ms here).

``--process``: moto runs as a server on a free loopback port in this process, and the handler in
a fresh process of its own (the checkout's ``functions/ingest`` and ``shared`` on the venv's
Python), as Lambda runs it: its figures are the function's alone, boto3's import on the first
record included, moto's work not (it is another process's CPU). ``--built [TWIN]`` does the same
from the host twin of the built artefacts (default ``.aws-sam/build-host``, ``make build-host``):
the twin's Lambda Python with ``-S``, and nothing on its path but the function's artifact and the
layer, so the layer's pruned boto3, pydantic and emoji are what is timed: what ships.

Prints one line ``BENCH-RESULT {json}``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from herald_tools.bench.aws_calls import BASE_ENV, FUNCTION, BenchCloud, sqs_event
from herald_tools.bench.corpus import build_corpus

#: The function's process in ``--process`` and ``--built``: imports ``app``, handles the two events
#: of the file named by argv[1], prints its timings. Standard library only (a built function's path
#: holds nothing of the checkout).
DRIVER = """
import gc, importlib, json, sys, time

def status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

class Context:
    aws_request_id = "bench-coldstart"
    function_name = "IngestFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = "512"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:IngestFunction"
    log_group_name = log_stream_name = ""
    identity = client_context = tenant_id = None
    def get_remaining_time_in_millis(self):
        return 60000

with open(sys.argv[1]) as f:
    events = json.load(f)
marks = []
def mark():
    marks.append((time.perf_counter(), time.process_time()))
rss_before = status_kb("VmRSS")
mark()
app = importlib.import_module("app")
mark()
failures = len(app.handler(events[0], Context()).get("batchItemFailures") or [])
mark()
failures += len(app.handler(events[1], Context()).get("batchItemFailures") or [])
mark()
names = ("import", "first_record", "warm_record")
result = {}
for name, (a, b) in zip(names, zip(marks, marks[1:])):
    result[name + "_ms"] = (b[0] - a[0]) * 1e3
    result[name + "_cpu_ms"] = (b[1] - a[1]) * 1e3
result["rss_added_mib"] = (status_kb("VmRSS") - rss_before) / 1024
result["failures"] = failures
modules = ("boto3", "botocore", "pydantic", "emoji", "herald")
result["loaded_from"] = {m: getattr(sys.modules.get(m), "__file__", None) for m in modules}
print("BENCH-RESULT " + json.dumps(result), flush=True)
"""


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def in_process(root: Path | None) -> dict[str, Any]:
    """Import and two records of the handler in this process, on in-process moto."""
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
        marks = [(time.perf_counter(), time.process_time())]
        cloud.load()
        marks.append((time.perf_counter(), time.process_time()))
        cloud.invoke(first)
        marks.append((time.perf_counter(), time.process_time()))
        cloud.invoke(second)
        marks.append((time.perf_counter(), time.process_time()))
        rss_after = _status_kb("VmRSS")
        gc.unfreeze()
        if cloud.failures:
            raise SystemExit(f"the handler reported {cloud.failures} failed record(s)")
    result: dict[str, Any] = {}
    for name, (a, b) in zip(
        ("import", "first_record", "warm_record"), itertools.pairwise(marks), strict=True
    ):
        result[f"{name}_ms"] = (b[0] - a[0]) * 1e3
        result[f"{name}_cpu_ms"] = (b[1] - a[1]) * 1e3
    result["rss_added_mib"] = (rss_after - rss_before) / 1024
    return result


def function_process(root: Path | None, twin_dir: Path | None) -> dict[str, Any]:
    """Import and two records of the handler in a process of its own, against moto's server: from
    the checkout on this Python, or from the host twin in ``twin_dir`` on its Lambda Python."""
    bodies = [p.body for p in build_corpus(3, samples=False)]
    with BenchCloud(root, quiet=False, server=True) as cloud, tempfile.TemporaryDirectory() as tmp:
        cloud.put("posts/bench-cold/first.json", bodies[0])
        first = cloud.receive(1)
        cloud.put("posts/bench-cold/second.json", bodies[1])
        second = cloud.receive(1)
        assert len(first) == 1 and len(second) == 1, "expected one message per upload"
        events = [sqs_event(m, cloud.queue_arn) for m in (first, second)]
        events_file = Path(tmp, "events.json")
        events_file.write_text(json.dumps(events), encoding="utf-8")
        driver = Path(tmp, "herald_bench_coldstart_driver.py")
        driver.write_text(DRIVER, encoding="utf-8")
        if twin_dir is not None:
            from herald_tools.built import load_twin

            twin = load_twin(twin_dir)
            code_dir = twin.root / FUNCTION
            command = [twin.python, "-S", str(driver), str(events_file)]
            path = [str(code_dir), str(twin.root / "HeraldLayer" / "python")]
        else:
            code_dir = cloud.root / "functions" / "ingest"
            command = [sys.executable, str(driver), str(events_file)]
            path = [str(code_dir), str(cloud.root / "shared")]
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update(BASE_ENV)
        env.update(cloud.resources.functions[FUNCTION].environment)
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(path),
                # As on Lambda, whose /opt and /var/task are read-only: a built layer without
                # bytecode is compiled on every cold start (and the twin stays as built).
                "PYTHONDONTWRITEBYTECODE": "1",
                "AWS_ENDPOINT_URL": str(cloud.endpoint_url),
                "LAMBDA_TASK_ROOT": str(code_dir),
                "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            }
        )
        done = subprocess.run(command, cwd=code_dir, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"the function's process failed ({done.returncode}):\n{done.stderr[-4000:]}")
    line = next((x for x in reversed(done.stdout.splitlines()) if x.startswith("BENCH-RESULT ")), None)
    if line is None:
        raise SystemExit(
            f"the function's process printed no result:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH-RESULT "))
    if result.pop("failures"):
        raise SystemExit("the handler reported failed record(s)")
    result["mode"] = "built" if twin_dir is not None else "process"
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m herald_tools.bench.coldstart", description=__doc__.split("\n")[0]
    )
    parser.add_argument("root", nargs="?", type=Path, help="the checkout (default: found from here)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--process", action="store_true", help="the handler in a process of its own, from the checkout"
    )
    mode.add_argument(
        "--built",
        nargs="?",
        type=Path,
        const=Path(".aws-sam/build-host"),
        metavar="TWIN",
        help="the handler in a process of its own, from the host twin (default .aws-sam/build-host)",
    )
    args = parser.parse_args(argv)
    if args.built is not None:
        twin = args.built if args.built.is_absolute() or args.root is None else args.root / args.built
        result = function_process(args.root, twin)
    elif args.process:
        result = function_process(args.root, None)
    else:
        result = in_process(args.root)
    print("BENCH-RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
