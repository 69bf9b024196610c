"""The handlers' import (the cold start's share that is Herald's), in fresh processes.

``import app`` from ``functions/<name>`` (as Lambda imports it), for every function, is timed
against ``import boto3, pydantic`` (what any Python function on this stack imports), each in a
fresh interpreter with the function's environment, turn about, after one warm-up run each so the
``.pyc`` files exist. The time is taken inside the process around the import statement, so the
interpreter's own start-up is not in it; peak memory is the process's ``VmHWM``. The ingest
function's figures are also kept under ``app`` (with its ``-X importtime`` profile).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from herald_tools.bench.aws_calls import BASE_ENV, repo_root

IMPORTS = {
    "app": "import app",
    "baseline": "import boto3, pydantic",
    "interpreter": "pass",
}

#: Every function of template.yaml, by its folder under ``functions/``.
FUNCTIONS = ("ingest", "api", "fanout_planner", "push_sender", "publisher", "member_counter", "translator")

_PROBE = """
import time
t, c = time.perf_counter(), time.process_time()
{statement}
elapsed, cpu = time.perf_counter() - t, time.process_time() - c
import json, sys
with open("/proc/self/status") as status:
    fields = dict(line.split(":", 1) for line in status)
print(json.dumps({{
    "s": elapsed,
    "cpu_s": cpu,
    "hwm_kb": int(fields["VmHWM"].split()[0]),
    "boto3": "boto3" in sys.modules,
    "botocore": "botocore" in sys.modules,
    "pydantic": "pydantic" in sys.modules,
    "modules": len(sys.modules),
}}))
"""


def function_env(root: Path, function: str = "ingest") -> dict[str, str]:
    """A function's environment at import (names from template.yaml; values as on a dev stack,
    tracing off): the globals, the ingest function's own variables (the handlers read none of
    theirs at import) and the task root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "POWERTOOLS_"))}
    env.update(BASE_ENV)
    env.update(
        {
            "CONTENT_TABLE": "herald-dev-ContentTable",
            "UPLOADS_BUCKET": "herald-dev-uploads-123456789012-us-east-1",
            "MAX_POST_BYTES": "65536",
            "MAX_EXPORT_BYTES": "5242880",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "HERALD_STAGE": "dev",
            "HERALD_TRACING": "off",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "LAMBDA_TASK_ROOT": str(root / "functions" / function),
        }
    )
    return env


def _probe(statement: str, cwd: Path, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", _PROBE.format(statement=statement)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


def _result(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(done.stdout.strip().splitlines()[-1])


_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def heaviest_imports(stderr: str, module: str = "app", top: int = 8) -> list[dict[str, Any]]:
    """What ``module`` imports itself (one level down in ``-X importtime`` output, which lists a
    module's imports before the module), the most cumulative time first."""
    children: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if not match:
            continue
        depth = (len(match.group(3)) - 1) // 2
        if depth == 0:
            if match.group(4) == module:
                children.sort(key=lambda r: r["cumulative_ms"], reverse=True)
                return children[:top]
            children = []
        elif depth == 1:
            children.append({"module": match.group(4), "cumulative_ms": int(match.group(2)) / 1000})
    return []


def _summary(values: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ms": statistics.median(v["s"] for v in values) * 1e3,
        "runs_ms": [v["s"] * 1e3 for v in values],
        "cpu_ms": statistics.median(v["cpu_s"] for v in values) * 1e3,
        "hwm_mib": statistics.median(v["hwm_kb"] for v in values) / 1024,
        "modules": values[0]["modules"],
        "loads_boto3": values[0]["boto3"],
        "loads_botocore": values[0]["botocore"],
        "loads_pydantic": values[0]["pydantic"],
    }


def measure(
    runs: int = 7, root: Path | None = None, functions: tuple[str, ...] = FUNCTIONS
) -> dict[str, Any]:
    """Every function's ``import app`` and the baseline, ``runs`` fresh processes each, interleaved."""
    root = root or repo_root()
    cwd = root / "functions" / "ingest"
    env = function_env(root)
    # (label, statement, working directory, environment); "app" is the ingest function's import.
    probes = [(name, IMPORTS[name], cwd, env) for name in IMPORTS]
    probes += [
        (f"function:{f}", "import app", root / "functions" / f, function_env(root, f))
        for f in functions
        if f != "ingest"
    ]
    for _, statement, where, variables in probes:  # warm-up: compile the .pyc files
        _probe(statement, where, variables)
    samples: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in probes}
    for i in range(runs):
        for label, statement, where, variables in probes[i % len(probes) :] + probes[: i % len(probes)]:
            samples[label].append(_result(_probe(statement, where, variables)))
    profile = _probe(IMPORTS["app"], cwd, env, "-X", "importtime")
    out: dict[str, Any] = {"runs": runs}
    for name in IMPORTS:
        out[name] = _summary(samples[name])
    out["ratio"] = out["app"]["ms"] / out["baseline"]["ms"]
    out["memory_ratio"] = out["app"]["hwm_mib"] / out["baseline"]["hwm_mib"]
    out["heaviest"] = heaviest_imports(profile.stderr)
    out["functions"] = {}
    for f in functions:
        row = out["app"] if f == "ingest" else _summary(samples[f"function:{f}"])
        out["functions"][f] = {
            **row,
            "ratio": row["ms"] / out["baseline"]["ms"],
            "cpu_ratio": row["cpu_ms"] / out["baseline"]["cpu_ms"],
            "memory_ratio": row["hwm_mib"] / out["baseline"]["hwm_mib"],
        }
    out["worst_ratio"] = max(r["ratio"] for r in out["functions"].values())
    return out


# -- the first invocation, in a fresh process on in-process moto -------------------------------------


def first_invocation(runs: int = 3, root: Path | None = None) -> dict[str, Any]:
    """Import + first record, and a second record, in fresh processes (median of ``runs``)."""
    root = root or repo_root()
    samples = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-m", "herald_tools.bench.coldstart", str(root)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("BENCH-RESULT "))
        samples.append(json.loads(line.removeprefix("BENCH-RESULT ")))

    def med(name: str) -> float:
        return statistics.median(float(s[name]) for s in samples)

    out = {name: med(name) for name in samples[0]}
    out["runs"] = runs
    out["first_over_warm"] = out["first_record_ms"] / out["warm_record_ms"]
    out["first_minus_warm_ms"] = out["first_record_ms"] - out["warm_record_ms"]
    out["cold_over_warm"] = (out["import_ms"] + out["first_record_ms"]) / out["warm_record_ms"]
    return out
