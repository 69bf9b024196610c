"""``python -m herald_tools.bench``: measure, then rewrite the numbers in docs/benchmarks.md.

    python -m herald_tools.bench                 # every part: 15 to 30 minutes on 2 cores, see below
    python -m herald_tools.bench --quick         # small sizes, to try the bench itself
    python -m herald_tools.bench --only aws_calls --json results.json --no-doc

On 2 cores, going by the runs recorded in docs/benchmarks.md: throughput, imports, aws_calls,
site, members and fanout about 5 minutes together, worstcase about 2, hostile_push 41 s,
local_joins 28 s, local_cloud 7 to 20 minutes, fanout_scale (one post to 100,000 members) about
10 minutes with a lease per push job (a claim and a mark per member: about 30).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from herald_tools.bench import aws_calls, imports, report, throughput
from herald_tools.bench.corpus import DEFAULT_SEED, DEFAULT_SIZE, build_corpus

PARTS = (
    "throughput",
    "imports",
    "aws_calls",
    "site",
    "members",
    "fanout",
    "fanout_scale",
    "worstcase",
    "hostile_push",
    "local_cloud",
    "local_joins",
)
#: Parts that write a block of their own in docs/benchmarks.md instead of the numbers section, so
#: that running one of them alone does not wipe the others' numbers. Each is a module of this
#: package with ``render(result)`` and ``update_doc(path, block, run_line)``.
OWN_BLOCK = ("worstcase", "hostile_push", "local_cloud", "local_joins", "fanout_scale")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(command: str) -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "command": command,
    }


def run(
    parts: Sequence[str] = PARTS,
    *,
    posts: int = DEFAULT_SIZE,
    seed: int = DEFAULT_SEED,
    repeat: int = 5,
    first_call_runs: int = 3,
    import_runs: int = 7,
    cold_runs: int = 3,
    singles: int = 200,
    export_posts: int = 200,
    site_posts: int = 10_000,
    fanout_sizes: Sequence[int] = (5_000, 10_000, 20_000),
    fanout_scale_members: int = 100_000,
    member_joins: int = 1000,
    worstcase_sizes: Sequence[int] = (32 * 1024, 64 * 1024),
    hostile_deadline_s: float | None = None,
    local_stored: Sequence[int] = (100, 5_000),
    local_singles: int = 100,
    local_export_posts: int = 3_000,
    local_load_singles: int = 500,
    local_join_count: int = 600,
    local_join_clients: int = 32,
    command: str = "make bench",
    progress: Any = None,
) -> dict[str, Any]:
    """Run the chosen measurements; a JSON-able dict of everything (see report.render)."""
    say = progress or (lambda message: None)
    started = time.perf_counter()
    results: dict[str, Any] = {"environment": environment(command), "seed": seed}
    corpus = build_corpus(max(posts, singles + export_posts), seed)
    if "throughput" in parts:
        say(f"throughput: {posts} posts x {repeat} passes")
        results["throughput"] = throughput.measure(corpus[:posts], repeat, first_call_runs)
    if "imports" in parts:
        say(f"imports: {import_runs} fresh processes each")
        results["imports"] = imports.measure(import_runs)
        if cold_runs:
            say(f"first invocation: {cold_runs} fresh processes on moto")
            results["first_invocation"] = imports.first_invocation(cold_runs)
    if "aws_calls" in parts:
        say(f"aws calls: {singles} single posts, an export of {export_posts}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Powertools: "No application metrics to publish"
            results["aws_calls"] = aws_calls.measure(
                [p.body for p in corpus],
                singles=singles,
                export_posts=export_posts,
                edits=max(1, singles // 4),
                duplicates=max(1, singles // 4),
                deletes=max(1, singles // 4),
                rejects=max(1, singles // 10),
            )
    if "site" in parts:
        from herald_tools.bench.site import run_site_bench

        say(f"site: a community of {site_posts} posts, full and incremental renders")
        results["site"] = run_site_bench(site_posts, repeat=3, seed=seed)
    if "members" in parts:
        from herald_tools.bench.members import run_members_bench

        say(f"members: {member_joins} joins through the API handler on moto")
        results["members"] = run_members_bench(joins=member_joins, repeats=max(10, member_joins // 10))
    if "fanout" in parts:
        from herald_tools.bench.fanout import run_fanout_bench

        say("fanout: planner and sender calls per 1,000 members on moto, pushes/s per core")
        results["fanout"] = run_fanout_bench(fanout_sizes)
    if "fanout_scale" in parts:
        from herald_tools.bench.fanout_scale import run_fanout_scale

        say(f"fanout_scale: one post to {fanout_scale_members:,} members end to end, a loopback push service")
        results["fanout_scale"] = run_fanout_scale(
            fanout_scale_members, baseline_pushes=min(2000, fanout_scale_members), progress=say
        )
    if "worstcase" in parts:
        from herald_tools.bench import worstcase

        say(f"worstcase: each enrichment step on {len(worstcase.SHAPES)} hostile shapes and an ordinary post")
        results["worstcase"] = worstcase.measure(worstcase_sizes, repeat=min(repeat, 3), progress=say)
    if "hostile_push" in parts:
        from herald_tools.bench.hostile_push import run_hostile_push_bench

        # None: the sender's own deadline (15 s), what a Lambda function uses.
        deadline = {} if hostile_deadline_s is None else {"deadline_s": hostile_deadline_s}
        say("hostile_push: one Web Push request per misbehaving push service (about 45 s)")
        results["hostile_push"] = run_hostile_push_bench(**deadline)
    if "local_cloud" in parts:
        from herald_tools.bench import local_cloud

        needed = local_cloud.posts_needed(local_stored, local_singles, local_export_posts, local_load_singles)
        lc_corpus = corpus if len(corpus) >= needed else build_corpus(needed, seed)
        results["local_cloud"] = local_cloud.measure(
            [json.loads(p.body)["text"] for p in lc_corpus],
            [p.body for p in lc_corpus],
            stored_sizes=local_stored,
            singles=local_singles,
            export_posts=local_export_posts,
            local_singles=local_load_singles,
            progress=say,
        )
    if "local_joins" in parts:
        from herald_tools.bench import local_joins

        say(f"local_joins: {local_join_count} joins from {local_join_clients} clients, herald local's API")
        results["local_joins"] = local_joins.measure(local_join_count, local_join_clients)
    results["environment"]["duration_s"] = time.perf_counter() - started
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m herald_tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a check of the bench, not numbers")
    parser.add_argument("--posts", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--doc", type=Path, default=None, help="default: docs/benchmarks.md of the checkout")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite the doc")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--fanout-members", type=int, default=None, help="fanout_scale's community (100,000; --quick 2,000)"
    )
    args = parser.parse_args(argv)

    sizes: dict[str, Any] = {"posts": args.posts, "repeat": args.repeat}
    if args.quick:
        sizes = {
            "posts": 100,
            "repeat": 2,
            "first_call_runs": 1,
            "import_runs": 2,
            "cold_runs": 1,
            "singles": 20,
            "export_posts": 30,
            "site_posts": 300,
            "member_joins": 20,
            "fanout_sizes": (1_000, 2_000),
            "fanout_scale_members": 2_000,
            "worstcase_sizes": (4 * 1024, 8 * 1024),
            "hostile_deadline_s": 1.0,
            "local_stored": (10, 100),
            "local_singles": 10,
            "local_export_posts": 100,
            "local_load_singles": 20,
            "local_join_count": 60,
            "local_join_clients": 8,
        }
    if args.fanout_members:
        sizes["fanout_scale_members"] = args.fanout_members
    command = "python -m herald_tools.bench" + (" " + " ".join(argv) if argv else "")
    if argv is None:
        given = " ".join(sys.argv[1:])
        command = f"python -m herald_tools.bench {given}" if given else "make bench"

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    parts = args.only or PARTS
    results = run(parts, seed=args.seed, command=command, progress=say, **sizes)
    section = report.render(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    doc = args.doc or aws_calls.repo_root() / "docs" / "benchmarks.md"
    for part in OWN_BLOCK:
        if part in results:
            module = importlib.import_module(f"herald_tools.bench.{part}")
            block = "\n".join(module.render(results[part]))
            if not args.no_doc:
                module.update_doc(doc, block, report.run_line(results))
            print(block)
    if not args.no_doc and any(part not in OWN_BLOCK for part in parts):
        # A run of some of the numbers' parts keeps the others' subsections as they were.
        partial = any(part not in parts for part in PARTS if part not in OWN_BLOCK)
        report.update_doc(doc, section, partial=partial)
        say(f"wrote {doc}")
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
