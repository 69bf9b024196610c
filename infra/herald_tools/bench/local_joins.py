"""Joins from concurrent clients through a real local cloud's HTTP API: latency, timeouts, the count.

``herald local``'s cloud is started from template.yaml (moto's server, the local API Gateway, every
function in its worker pool); a community's profile is stored; then ``clients`` threads send
``joins`` join requests over HTTP, as many browsers would, each with a client timeout of 30 s.
Each join carries a new subscription of the local push service, as the local pages' join button
does: its endpoint is on loopback, so the API's check of where the endpoint's host resolves needs
no DNS (a made-up host would time the resolver out, 5 s, under concurrent lookups here).
Measured: p50, p99 and the slowest latency, requests that timed out or got no valid answer, the
statuses, the member count read back (it must be exact), the cold starts and resident memory of
the API function's environments.

    python -m herald_tools.bench.local_joins [--joins 600] [--clients 32] [--concurrency N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from herald_tools.bench import report
from herald_tools.bench.aws_calls import repo_root
from herald_tools.bench.local_cloud import proc_kib

COMMUNITY = "bench-joins"
CLIENT_TIMEOUT_SECONDS = 30.0
API_FUNCTION = "ApiFunction"


def _bodies(cloud: Any, n: int, seed: int) -> list[bytes]:
    """``n`` join bodies, each a new subscription of the local push service, some with preferences."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(n):
        body: dict[str, Any] = {"web_push": cloud.push_service.new_subscription(cloud.vapid_public_key)}
        if rng.random() < 0.5:
            body["languages"] = rng.sample(["en", "fr", "ar", "es"], rng.randint(1, 2))
        bodies.append(json.dumps(body).encode())
    return bodies


def _join(url: str, body: bytes) -> tuple[float, int | str]:
    """(seconds, HTTP status or what went wrong) of one join."""
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT_SECONDS) as response:
            response.read()
            outcome: int | str = response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        outcome = exc.code
    except TimeoutError:
        outcome = "timeout"
    except urllib.error.URLError as exc:
        outcome = "timeout" if isinstance(exc.reason, TimeoutError) else f"error: {exc.reason}"
    except OSError as exc:
        outcome = f"error: {exc}"
    return time.perf_counter() - started, outcome


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def count_lags(answered: Sequence[float], samples: Sequence[tuple[float, int]]) -> list[float]:
    """How far behind the joins each read of the count was: for a read at ``t`` that counted ``c``
    joins, the time since the first join it did not count was answered (0 when it counted every
    join answered by then). ``answered``: when each join was answered, in order."""
    done = sorted(answered)
    lags = []
    for at, counted in samples:
        missing = done[max(0, counted) :]
        lags.append(max(0.0, at - missing[0]) if missing and missing[0] <= at else 0.0)
    return lags


SAMPLE_EVERY_S = 0.25
SETTLE_LIMIT_S = 60.0


def measure(
    joins: int = 600,
    clients: int = 32,
    *,
    concurrency: int | None = None,
    seed: int = 13,
    root: Path | None = None,
) -> dict[str, Any]:
    """Run the local cloud, join ``joins`` members from ``clients`` threads, read the count back."""
    import io

    from herald.content.models import CommunityProfile
    from herald.ingest.adapters.dynamo_content import DynamoContentStore
    from herald.ingest.ports import Change
    from herald_tools.localcloud import LocalCloud

    root = root or repo_root()
    logs = io.StringIO()  # the functions' output is not part of the measure
    kwargs: dict[str, Any] = {} if concurrency is None else {"concurrency": concurrency}
    with LocalCloud(root / "template.yaml", project_root=root, logs=logs, **kwargs) as cloud:
        started = time.perf_counter()
        cloud.start(port=0, api_port=0, site_port=0)
        start_s = time.perf_counter() - started
        assert cloud.api_url is not None
        content_table = cloud.resources.content_table
        DynamoContentStore(content_table, cloud.client("dynamodb")).commit(
            Change(profile=(COMMUNITY, CommunityProfile(name="Bench joins", members=0)))
        )
        bodies = _bodies(cloud, joins, seed)
        base = f"{cloud.api_url}/communities/{COMMUNITY}"
        with urllib.request.urlopen(base, timeout=CLIENT_TIMEOUT_SECONDS) as response:
            before = json.loads(response.read())["members"]
        url = f"{base}/members"

        results: list[tuple[float, int | str]] = []
        answered: list[float] = []  # when each join was answered 201
        samples: list[tuple[float, int]] = []  # (when, joins counted) of each read of the count
        lock = threading.Lock()
        peak = 0
        running = 0
        done = threading.Event()

        def one(body: bytes) -> None:
            nonlocal peak, running
            with lock:
                running += 1
                peak = max(peak, running)
            outcome = _join(url, body)
            with lock:
                running -= 1
                results.append(outcome)
                if outcome[1] == 201:
                    answered.append(time.perf_counter())

        def counted() -> int:
            with urllib.request.urlopen(base, timeout=CLIENT_TIMEOUT_SECONDS) as response:
                return int(json.loads(response.read())["members"]) - before

        def watch() -> None:
            # The count as a page reads it, during the burst and until it holds every join.
            limit = None
            while True:
                with contextlib.suppress(OSError):  # a read that failed is no sample
                    members = counted()
                    # Timed when its answer came: the count was read at that moment or before, so
                    # the lag is never understated (a read waiting for an environment adds to it).
                    samples.append((time.perf_counter(), members))
                at = time.perf_counter()
                if done.is_set():
                    limit = limit or at + SETTLE_LIMIT_S
                    if (samples and samples[-1][1] >= len(answered)) or at > limit:
                        return
                time.sleep(SAMPLE_EVERY_S)

        watcher = threading.Thread(target=watch, daemon=True)
        started = time.perf_counter()
        watcher.start()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, bodies))
        wall_s = time.perf_counter() - started
        done.set()
        watcher.join()
        last_answer = max(answered, default=started)
        exact_at = next((at for at, c in samples if at >= last_answer and c >= len(answered)), None)
        lags = count_lags(answered, samples)

        cloud.wait_until_idle()  # the member counter has read the members table's stream
        with urllib.request.urlopen(base, timeout=CLIENT_TIMEOUT_SECONDS) as response:
            after = json.loads(response.read())["members"]
        pool_info = cloud.pool(API_FUNCTION)
        # 0: the environment is gone (a live process never has an empty resident set).
        rss = [kib / 1024 for kib in (proc_kib(pid, "status", "VmRSS:") for pid in pool_info.pids) if kib]
        environments = len(pool_info.workers)
        pool_size = pool_info.max_size
        cold_starts = pool_info.cold_starts
    latencies = [seconds for seconds, _ in results]
    outcomes = Counter(str(outcome) for _, outcome in results)
    created = outcomes.get("201", 0)
    return {
        "joins": joins,
        "clients": clients,
        "pool_size": pool_size,
        "environments": environments,
        "cold_starts": cold_starts,
        "start_s": round(start_s, 2),
        "wall_s": round(wall_s, 2),
        "joins_per_s": round(joins / wall_s, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 1),
        "max_ms": round(1000 * max(latencies), 1),
        "timeouts": outcomes.get("timeout", 0),
        # Anything but a 2xx answer or a timeout: 4xx/5xx statuses and broken connections.
        "errors": sum(n for k, n in outcomes.items() if k != "timeout" and not k.startswith("2")),
        "statuses": dict(sorted(outcomes.items())),
        "members_expected": before + created,
        "members_counted": after,
        "count_exact": after == before + created,
        "worker_rss_mb": round(statistics.mean(rss), 1) if rss else None,
        "count_reads": len(samples),
        "count_lag_p50_s": round(statistics.median(lags), 2) if lags else None,
        "count_lag_max_s": round(max(lags), 2) if lags else None,
        "count_exact_after_s": None if exact_at is None else round(exact_at - last_answer, 2),
        "cpu_count": os.cpu_count(),
    }


BEGIN = "<!-- bench:local_joins:begin (rewritten by `python -m herald_tools.bench --only local_joins`) -->"
END = "<!-- bench:local_joins:end -->"


def update_doc(path: Path, section: str, header: str) -> None:
    """Replace this bench's block in ``path`` (appended if missing); the rest of the page is kept."""
    title = "### Joins from concurrent clients through `herald local`"
    report.write_block(path, BEGIN, END, f"{title}\n\n{header}\n\n{section}")


def render(result: dict[str, Any]) -> list[str]:
    """The lines of the docs/benchmarks.md block."""
    r = result
    return [
        f"{r['joins']} joins from {r['clients']} concurrent clients over HTTP through `herald local`'s "
        f"API ({r['pool_size']} execution environments of the API function at most, "
        f"{r['environments']} started):",
        "",
        "| p50 | p99 | slowest | joins/s | timeouts (30 s) | other errors | member count |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {r['p50_ms']:.0f} ms | {r['p99_ms']:.0f} ms | {r['max_ms']:.0f} ms | {r['joins_per_s']} | "
        f"{r['timeouts']} | {r['errors']} | {r['members_counted']} of {r['members_expected']} "
        f"({'exact' if r['count_exact'] else 'WRONG'}) |",
        "",
        f"Statuses: {r['statuses']}. Resident memory per environment of the API function: "
        f"{r['worker_rss_mb']} MB. Start of the whole local cloud: {r['start_s']} s.",
        "",
        *_lag_lines(r),
        f"With {r['clients']} clients at {r['joins_per_s']} joins/s a join spends "
        f"{1000 * r['clients'] / r['joins_per_s']:.0f} ms in the system on average (Little's law): "
        f"most of the latency is the wait for one of the {r['pool_size']} environments, which share "
        f"the machine's {r['cpu_count']} cores with moto's server.",
    ]


def _lag_lines(r: dict[str, Any]) -> list[str]:
    if r.get("count_reads") is None:
        return []
    settled = r["count_exact_after_s"]
    after = f"{settled:.2f} s after the last join was answered" if settled is not None else "not within 60 s"
    return [
        f"The count as a page reads it (`GET /communities/{{id}}`, {r['count_reads']} reads every "
        f"{SAMPLE_EVERY_S} s during the burst and after): behind the joins answered by "
        f"{r['count_lag_p50_s']:.2f} s at the median read, {r['count_lag_max_s']:.2f} s at most (the "
        "time from the answer of the first join a read did not count to the read's own answer, so a "
        "read's wait for an environment counts as lag); exact "
        f"{after} (the local member counter: the stream polled every 0.2 s, batches of up to 1 s).",
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m herald_tools.bench.local_joins")
    parser.add_argument("--joins", type=int, default=600)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=None)
    args = parser.parse_args(argv)
    result = measure(args.joins, args.clients, concurrency=args.concurrency)
    print(json.dumps(result, indent=2))
    print("\n".join(render(result)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
