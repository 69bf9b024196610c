"""The local cloud at a real community's sizes: ingest throughput as stored data grows, and memory.

Two measurements, each against a reference taken in the same run:

* **Throughput with data stored.** ``singles`` single posts are uploaded at once to a local cloud
  (:class:`herald_tools.localcloud.LocalCloud` in this process: moto's server, every function in
  its environments, the event sources: the site and the fan-out run) that already stores
  ``stored`` posts (exports of 500, ingested first), and the time until every upload has its
  outcome gives posts per second. The same posts go through the ingest handler in process
  (:class:`herald_tools.bench.aws_calls.BenchCloud`, moto's in-process mock, the handler driven as
  Lambda drives it) with the same posts stored. Done
  for each size in ``stored_sizes`` (100 and 5,000): the local cloud's throughput at the largest
  over the smallest shows whether the cost per upload grows with what is stored (goal: within 1.5x).
  ``--ingest-only`` runs the ingest function alone (its queue's event source, no site, no fan-out).
* **``herald local`` under a real load.** A ``herald local`` process (the CLI, as a user starts it)
  gets an export of ``export_posts`` posts and ``singles`` single posts at once; measured: the time
  until every upload has its outcome, the time until it settles (its status: nothing queued,
  running or unread on the content stream), and the peak memory of
  the whole process tree (``herald local`` and its function workers; resident set summed over the
  processes, sampled from /proc every 0.2 s; goal: under 1.5 GB).

    python -m herald_tools.bench.local_cloud [--stored 100 5000] [--singles 100]
                                             [--export-posts 3000] [--local-singles 500] [--ingest-only]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from herald_tools.bench import report
from herald_tools.bench.aws_calls import repo_root

STORED_COMMUNITY = "bench-stored"
SINGLES_COMMUNITY = "bench-posts"
EXPORT_KEY = f"exports/{STORED_COMMUNITY}/page.txt"
#: Posts per export of the posts stored first: each one is stored within the function's time.
STORE_CHUNK = 500
#: The one function the throughput measurement runs with ``--ingest-only``. By default it runs every
#: function: the publisher reads only the newest archive pages of a batch of new posts, so what the
#: site costs a batch no longer grows with what is stored (see docs/local-cloud.md).
INGEST = "IngestFunction"
BEGIN = "<!-- bench:local_cloud:begin (rewritten by `python -m herald_tools.bench --only local_cloud`) -->"
END = "<!-- bench:local_cloud:end -->"


# -- memory of a process tree ----------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def proc_kib(pid: int | str, path: str, field: str) -> int:
    """A KiB figure of ``/proc/<pid>/<path>`` (``field`` e.g. ``"VmRSS:"``); 0 if it cannot be read."""
    try:
        with open(f"/proc/{pid}/{path}", encoding="ascii") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_memory(root: int) -> dict[str, int]:
    """The processes under ``root`` (itself included): their count, summed RSS and PSS in KiB."""
    tree = _children()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(tree.get(pid, []))
    return {
        "processes": len(pids),
        "rss_kib": sum(proc_kib(pid, "status", "VmRSS:") for pid in pids),
        "pss_kib": sum(proc_kib(pid, "smaps_rollup", "Pss:") for pid in pids),
    }


class PeakMemory:
    """Samples :func:`tree_memory` of ``pid`` in a thread; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = {"processes": 0, "rss_kib": 0, "pss_kib": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = tree_memory(self.pid)
            for name, value in sample.items():
                self.peak[name] = max(self.peak[name], value)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


# -- waiting for outcomes --------------------------------------------------------------------------


def wait_for_outcomes(ddb: Any, table: str, keys: Sequence[str], timeout: float) -> float:
    """Seconds until every key in ``keys`` has its outcome item (polled with BatchGetItem)."""
    started = time.perf_counter()
    missing = list(dict.fromkeys(keys))
    while missing:
        found: set[str] = set()
        for start in range(0, len(missing), 100):
            request = {
                table: {
                    "Keys": [
                        {"pk": {"S": f"UPLOAD#{k}"}, "sk": {"S": "OUTCOME"}}
                        for k in missing[start : start + 100]
                    ],
                    "ProjectionExpression": "pk",
                }
            }
            while request:
                response = ddb.batch_get_item(RequestItems=request)
                found |= {item["pk"]["S"][len("UPLOAD#") :] for item in response["Responses"].get(table, [])}
                request = response.get("UnprocessedKeys") or {}
        missing = [k for k in missing if k not in found]
        if not missing:
            break
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{len(missing)} of {len(keys)} uploads have no outcome after {timeout:.0f} s")
        time.sleep(0.2)
    return time.perf_counter() - started


def wait_until_idle(status_url: str, timeout: float, quiet_s: float = 5.0) -> float:
    """Seconds until ``herald local`` reports nothing going on (its status endpoint, which answers
    :meth:`herald_tools.localcloud.LocalCloud.busy`: running invocations, queued, in-flight or
    delayed messages, the content stream's unread records) and stays so for ``quiet_s`` seconds."""
    import urllib.request

    started = time.perf_counter()
    quiet_since: float | None = None
    reasons: list[str] = []
    while True:
        now = time.perf_counter()
        if now - started > timeout:
            raise TimeoutError(f"herald local still busy after {timeout:.0f} s: " + "; ".join(reasons))
        with urllib.request.urlopen(status_url, timeout=30) as response:
            reasons = json.loads(response.read())["busy"]
        if reasons:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= quiet_s:
            return quiet_since - started
        time.sleep(0.5)


def posts_stored(ddb: Any, table: str) -> int:
    """How many posts the content table holds (a counted scan, every page)."""
    count = 0
    for page in ddb.get_paginator("scan").paginate(
        TableName=table,
        Select="COUNT",
        FilterExpression="#t = :post",
        ExpressionAttributeNames={"#t": "type"},
        ExpressionAttributeValues={":post": {"S": "post"}},
    ):
        count += page["Count"]
    return count


def outcome_of(ddb: Any, table: str, key: str) -> dict[str, Any]:
    """An upload's outcome: its status, and the detail of a rejection."""
    item = ddb.get_item(
        TableName=table, Key={"pk": {"S": f"UPLOAD#{key}"}, "sk": {"S": "OUTCOME"}}, ConsistentRead=True
    ).get("Item", {})
    errors = item.get("errors", {}).get("L", [])
    detail = "; ".join(str(e.get("M", {}).get("message", {}).get("S", "")) for e in errors)
    return {"status": item.get("status", {}).get("S"), "detail": detail or None}


def store_exports(texts: Sequence[str]) -> list[tuple[str, bytes]]:
    """``texts`` as exports of :data:`STORE_CHUNK` posts each: (key, body)."""
    from herald_tools.bench.corpus import export_text

    return [
        (
            f"exports/{STORED_COMMUNITY}/page-{i // STORE_CHUNK:03d}.txt",
            export_text(list(texts[i : i + STORE_CHUNK])),
        )
        for i in range(0, len(texts), STORE_CHUNK)
    ]


# -- throughput with data stored -------------------------------------------------------------------


def posts_needed(stored_sizes: Sequence[int], singles: int, export_posts: int, local_singles: int) -> int:
    """Corpus posts for :func:`measure`: the stored posts or the export are taken from its end, the
    single posts from its start, so no text is in both."""
    return max(*stored_sizes, export_posts) + max(singles, local_singles)


def _single_keys(count: int) -> list[str]:
    return [f"posts/{SINGLES_COMMUNITY}/post-{i:04d}.json" for i in range(count)]


def _in_process(stored_texts: list[str], singles: list[bytes]) -> dict[str, Any]:
    """The ingest handler in this process on moto's mock: the exports stored, then the singles."""
    import warnings

    from herald_tools.bench.aws_calls import BenchCloud

    with warnings.catch_warnings(), BenchCloud() as cloud:
        warnings.simplefilter("ignore", UserWarning)  # Powertools: "No application metrics to publish"
        cloud.load()
        for key, body in store_exports(stored_texts):
            cloud.put(key, body)
        cloud.drain()
        stored = posts_stored(cloud.session.client("dynamodb"), cloud.resources.content_table)
        started = time.perf_counter()
        for key, body in zip(_single_keys(len(singles)), singles, strict=True):
            cloud.put(key, body)
        cloud.drain()
        seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "posts_per_s": round(len(singles) / seconds, 1),
        "posts_stored": stored,
    }


def _through_local_cloud(
    stored_texts: list[str], singles: list[bytes], timeout: float, functions: Sequence[str] | None = (INGEST,)
) -> dict[str, Any]:
    """A LocalCloud in this process running ``functions`` (None: every one) with moto's server, their
    environments and event sources: the exports stored and settled, then the singles at once."""
    from herald_tools.localcloud import LocalCloud

    root = repo_root()
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCloud(
            root / "template.yaml",
            project_root=root,
            logs=Path(tmp) / "functions.log",
            functions=None if functions is None else list(functions),
        ) as cloud,
    ):
        cloud.start(port=0, api_port=0, site_port=0)
        s3, ddb = cloud.client("s3"), cloud.client("dynamodb")
        bucket, table = cloud.resources.uploads_bucket, cloud.resources.content_table
        started = time.perf_counter()
        exports = store_exports(stored_texts)
        for key, body in exports:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        wait_for_outcomes(ddb, table, [key for key, _ in exports], timeout)
        cloud.wait_until_idle(timeout=timeout)
        store_s = time.perf_counter() - started
        stored = posts_stored(ddb, table)
        keys = _single_keys(len(singles))
        started = time.perf_counter()
        for key, body in zip(keys, singles, strict=True):
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        wait_for_outcomes(ddb, table, keys, timeout)
        outcomes_s = time.perf_counter() - started  # from the first upload, as in process
        cloud.wait_until_idle(timeout=timeout)
        settled_s = time.perf_counter() - started
    return {
        "seconds": round(outcomes_s, 2),
        "posts_per_s": round(len(singles) / outcomes_s, 1),
        "settled_s": round(settled_s, 2),
        "store_s": round(store_s, 1),
        "posts_stored": stored,
    }


def stored_throughput(
    texts: Sequence[str],
    bodies: Sequence[bytes],
    stored_sizes: Sequence[int] = (100, 5000),
    singles: int = 100,
    timeout: float = 1800.0,
    *,
    publisher: bool = True,
) -> dict[str, Any]:
    """Ingest throughput of ``singles`` posts with each of ``stored_sizes`` posts already stored;
    the local cloud runs every function, or the ingest function alone without ``publisher``."""
    if len(texts) < max(stored_sizes) or len(bodies) < singles:
        raise ValueError("not enough posts in the corpus")
    rows = []
    for stored in stored_sizes:
        stored_texts = list(texts[-stored:])  # the singles are the first bodies: no text in both
        posts = list(bodies[:singles])
        local = _through_local_cloud(stored_texts, posts, timeout, None if publisher else (INGEST,))
        handler = _in_process(stored_texts, posts)
        rows.append(
            {
                "stored": stored,
                "local": local,
                "in_process": handler,
                "local_over_in_process": round(local["posts_per_s"] / handler["posts_per_s"], 2),
            }
        )
    smallest, largest = rows[0], rows[-1]
    return {
        "singles": singles,
        "functions": "all" if publisher else "ingest",
        "rows": rows,
        # Throughput with the fewest posts stored over throughput with the most: 1.0 is flat.
        "local_slowdown": round(smallest["local"]["posts_per_s"] / largest["local"]["posts_per_s"], 2),
        "in_process_slowdown": round(
            smallest["in_process"]["posts_per_s"] / largest["in_process"]["posts_per_s"], 2
        ),
    }


# -- herald local under load -----------------------------------------------------------------------


@contextlib.contextmanager
def herald_local(log_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """``herald local --json`` on free ports; its ready line; stopped with SIGTERM afterwards."""
    root = repo_root()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(root / "shared"), str(root / "infra"), env.get("PYTHONPATH", "")]
    )
    command = [
        sys.executable,
        "-m",
        "herald_tools.cli",
        "local",
        "--port",
        "0",
        "--api-port",
        "0",
        "--site-port",
        "0",
        "--json",
        "--logs",
        str(log_path),
    ]
    with open(log_path.with_suffix(".stderr"), "w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"herald local exited ({process.wait()}); see {stderr.name}")
            yield process, json.loads(line)
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def under_load(
    texts: Sequence[str],
    bodies: Sequence[bytes],
    export_posts: int = 3000,
    singles: int = 500,
    timeout: float = 1800.0,
) -> dict[str, Any]:
    """An export of ``export_posts`` posts and ``singles`` single posts at once through ``herald local``."""
    import boto3

    from herald_tools.bench.corpus import export_text

    if len(texts) < export_posts or len(bodies) < singles:
        raise ValueError("not enough posts in the corpus")
    with tempfile.TemporaryDirectory() as tmp, herald_local(Path(tmp) / "functions.log") as (process, info):
        session = boto3.Session(region_name=info["region"], **info["credentials"])
        endpoint = info["endpoint_url"]
        s3, ddb = (session.client(s, endpoint_url=endpoint) for s in ("s3", "dynamodb"))
        bucket, table = info["uploads_bucket"], info["content_table"]
        idle = tree_memory(process.pid)
        keys = [EXPORT_KEY, *_single_keys(singles)]
        with PeakMemory(process.pid) as peak:
            started = time.perf_counter()
            s3.put_object(Bucket=bucket, Key=EXPORT_KEY, Body=export_text(list(texts[-export_posts:])))
            for key, body in zip(keys[1:], bodies[:singles], strict=True):
                s3.put_object(Bucket=bucket, Key=key, Body=body)
            uploaded_s = time.perf_counter() - started
            outcomes_s = wait_for_outcomes(ddb, table, keys, timeout) + uploaded_s
            settled_s = wait_until_idle(info["status_url"], timeout) + outcomes_s
        stored = posts_stored(ddb, table)
        export = outcome_of(ddb, table, EXPORT_KEY)
    return {
        "export_posts": export_posts,
        "singles": singles,
        "uploaded_s": round(uploaded_s, 1),
        "outcomes_s": round(outcomes_s, 1),
        "settled_s": round(settled_s, 1),
        "posts_stored": stored,
        "export_outcome": export,
        "idle_rss_mb": round(idle["rss_kib"] / 1024),
        "peak_rss_mb": round(peak.peak["rss_kib"] / 1024),
        "peak_pss_mb": round(peak.peak["pss_kib"] / 1024),
        "processes": peak.peak["processes"],
    }


# -- report ----------------------------------------------------------------------------------------


def _ran(stored: dict[str, Any]) -> str:
    """What the throughput measurement's local cloud ran, for the block's prose."""
    if stored.get("functions") == "all":
        return "every function in its environments, the event sources: the site and the fan-out too"
    return "the ingest function in its environments and its queue's event source"


def render(result: dict[str, Any]) -> list[str]:
    """The local cloud's block of docs/benchmarks.md."""
    out = ["### The local cloud at a community's sizes", ""]
    if "stored" in result:
        r = result["stored"]
        out += [
            f"{r['singles']} single posts uploaded at once, with posts already stored (exports of "
            f"{STORE_CHUNK} posts, ingested and settled first; the posts the table then held are counted): "
            "time until every upload has its outcome, and posts per second, through the local cloud (moto's "
            f"server, {_ran(r)}; *settled*: until "
            "nothing is queued, running or unread on the content stream) and "
            "through the ingest handler in process on moto's mock (the "
            "same posts).",
            "",
            "| posts stored (counted) | local cloud: s | posts/s | settled, s | in-process handler: s "
            "| posts/s | local over in-process |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in r["rows"]:
            local, handler = row["local"], row["in_process"]
            counted = local.get("posts_stored", row["stored"])
            out.append(
                f"| {row['stored']:,} ({counted:,}) | {local['seconds']} | {local['posts_per_s']} "
                f"| {local['settled_s']} | {handler['seconds']} | {handler['posts_per_s']} "
                f"| {row['local_over_in_process']} |"
            )
        first, last = r["rows"][0]["stored"], r["rows"][-1]["stored"]
        out += [
            "",
            f"Throughput with {first:,} stored over throughput with {last:,} stored (1.0 is flat; goal "
            f"≤ 1.5): local cloud **{r['local_slowdown']}**, in-process handler {r['in_process_slowdown']}.",
            "",
        ]
    if "herald_local" in result:
        r = result["herald_local"]
        out += [
            f"`herald local` (the CLI in a process of its own) given an export of {r['export_posts']:,} "
            f"posts and {r['singles']} single posts at once:",
            "",
            "| uploads sent | every outcome | settled | posts stored "
            "| peak memory, process tree (RSS / PSS) | processes | idle RSS |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {r['uploaded_s']} s | {r['outcomes_s']} s | {r['settled_s']} s | {r['posts_stored']:,} "
            f"| {r['peak_rss_mb']:,} / {r['peak_pss_mb']:,} MB | {r['processes']} | {r['idle_rss_mb']} MB |",
            "",
            f"The export's outcome: {r.get('export_outcome', {}).get('status')}"
            + (f" ({r['export_outcome']['detail']})" if r.get("export_outcome", {}).get("detail") else "")
            + ". Goal: peak memory under 1.5 GB. RSS counts pages the processes share once per process; "
            "PSS divides them among the processes.",
            "",
        ]
    return out


def update_doc(path: Path, section: str, header: str) -> None:
    """Replace this bench's block in ``path`` (appended if missing); the rest of the page is kept."""
    report.write_block(path, BEGIN, END, f"{header}\n\n{section}")


def measure(
    texts: Sequence[str],
    bodies: Sequence[bytes],
    *,
    stored_sizes: Sequence[int] = (100, 5000),
    singles: int = 100,
    export_posts: int = 3000,
    local_singles: int = 500,
    progress: Any = None,
    publisher: bool = True,
) -> dict[str, Any]:
    say = progress or (lambda message: None)
    say(f"local cloud: {singles} single posts with {', '.join(f'{s:,}' for s in stored_sizes)} posts stored")
    result: dict[str, Any] = {
        "stored": stored_throughput(texts, bodies, stored_sizes, singles, publisher=publisher)
    }
    say(
        f"local cloud: herald local with an export of {export_posts:,} posts and {local_singles} single posts"
    )
    result["herald_local"] = under_load(texts, bodies, export_posts, local_singles)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    from herald_tools.bench.__main__ import environment
    from herald_tools.bench.corpus import DEFAULT_SEED, build_corpus

    parser = argparse.ArgumentParser(
        prog="python -m herald_tools.bench.local_cloud", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--stored", type=int, nargs="+", default=[100, 5000])
    parser.add_argument("--singles", type=int, default=100)
    parser.add_argument("--export-posts", type=int, default=3000)
    parser.add_argument("--local-singles", type=int, default=500)
    parser.add_argument("--only", choices=("stored", "herald_local"))
    parser.add_argument(
        "--ingest-only",
        dest="publisher",
        action="store_false",
        help="the throughput measurement runs the ingest function alone (no site, no fan-out)",
    )
    parser.add_argument(
        "--publisher",
        dest="publisher",
        action="store_true",
        help="every function (the publisher, the fan-out) runs: the default",
    )
    parser.add_argument("--doc", type=Path, help="write the block into this page (e.g. docs/benchmarks.md)")
    args = parser.parse_args(argv)

    needed = posts_needed(args.stored, args.singles, args.export_posts, args.local_singles)
    corpus = build_corpus(needed, DEFAULT_SEED)
    texts = [json.loads(p.body)["text"] for p in corpus]
    bodies = [p.body for p in corpus]

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {
        "environment": environment("python -m herald_tools.bench.local_cloud"),
        "seed": DEFAULT_SEED,
    }
    started = time.perf_counter()
    if args.only in (None, "stored"):
        say(f"{args.singles} single posts with {args.stored} posts stored")
        results["stored"] = stored_throughput(
            texts, bodies, args.stored, args.singles, publisher=args.publisher
        )
        print(json.dumps(results["stored"]), file=sys.stderr, flush=True)
    if args.only in (None, "herald_local"):
        say(f"herald local: an export of {args.export_posts} posts and {args.local_singles} single posts")
        results["herald_local"] = under_load(texts, bodies, args.export_posts, args.local_singles)
        print(json.dumps(results["herald_local"]), file=sys.stderr, flush=True)
    results["environment"]["duration_s"] = time.perf_counter() - started
    section = "\n".join(render(results))
    if args.doc:
        update_doc(args.doc, section, report.run_line(results))
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
