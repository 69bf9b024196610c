"""The Web Push sender against a hostile push service: time and memory of one request per misbehaviour.

One :class:`WebPushSender` (the defaults a Lambda function uses: a 15 s deadline, 64 KiB of answer
read at most) pushes to a :class:`LocalPushService` on loopback that answers

* ``ok``: 201, as a push service does (the reference);
* ``huge``: 500 with a 200 MB body, written as fast as the sender reads;
* ``trickle``: the whole answer (status line included) one byte every 2 s;
* ``trickle-body``: status and headers at once, then the body one byte every 2 s;
* ``hang``: nothing, the connection held open.

For each: wall-clock seconds of the request, the peak of Python allocations while it ran
(``tracemalloc``, the whole process: the service's threads included), the growth of the process's
resident memory (``VmRSS``), the bytes of the answer the sender read, and the result.

    python -m herald_tools.bench.hostile_push [--deadline 15] [--json]
    python -m herald_tools.bench --only hostile_push     # the same, its table written to docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

from herald.fanout.channels.payload import Notification, encode
from herald.fanout.channels.vapid import VapidSigner, generate_vapid_key
from herald.fanout.channels.webpush import DEFAULT_DEADLINE_S, WebPushSender
from herald.members.endpoints import EndpointPolicy
from herald_tools.bench import report
from herald_tools.bench.local_cloud import proc_kib
from herald_tools.localcloud.pushservice import LocalPushService

CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("ok", {}),
    ("huge", {"status": 500, "body_bytes": 200 * 1024 * 1024}),
    ("trickle", {"interval_s": 2.0}),
    ("trickle-body", {"status": 503, "interval_s": 2.0}),
    ("hang", {}),
)


BEGIN = "<!-- bench:hostile_push:begin (rewritten by `python -m herald_tools.bench --only hostile_push`) -->"
END = "<!-- bench:hostile_push:end -->"

#: What each case is, as the table says it.
LABELS = {
    "ok": "answers 201",
    "huge": "500 with a 200 MB body",
    "trickle": "the whole answer a byte every 2 s",
    "trickle-body": "headers, then the body a byte every 2 s",
    "hang": "no answer at all",
}


def _rss_bytes() -> int:
    return proc_kib("self", "status", "VmRSS:") * 1024


def run_hostile_push_bench(deadline_s: float = DEFAULT_DEADLINE_S) -> dict[str, Any]:
    """One request per case; a JSON-able dict (``cases``: mode -> measurements)."""
    payload = encode(
        Notification(
            title="Road closed",
            body="The north road is closed today.",
            url="https://herald.example/p/",
            post_id="0123456789abcdef0123",
            community="harbour",
            tag="post-0123456789abcdef0123",
        )
    )
    results: dict[str, Any] = {"deadline_s": deadline_s, "cases": {}}
    with LocalPushService() as push:
        sender = WebPushSender(
            VapidSigner(generate_vapid_key(), "mailto:bench@herald.example"),
            policy=EndpointPolicy(allow_loopback=True),
            deadline_s=deadline_s,
        )
        sender.send(push.new_subscription(), payload, topic="warm-up")  # imports, first connection
        for mode, options in CASES:
            subscription = push.new_subscription()
            if mode != "ok":
                push.misbehave(push.subscription_id(subscription), mode, **options)  # type: ignore[arg-type]
            rss_before = _rss_bytes()
            tracemalloc.start()
            started = time.perf_counter()
            result = sender.send(subscription, payload, topic="p")
            seconds = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            results["cases"][mode] = {
                "seconds": round(seconds, 3),
                "python_peak_bytes": peak,
                "rss_growth_bytes": max(0, _rss_bytes() - rss_before),
                "answer_bytes_read": result.response_bytes,
                "outcome": str(result.outcome),
                "status": result.status,
                "detail": result.detail[:120],
            }
        sender.close()
    return results


def _kib(n: int) -> str:
    return f"{n / 1024:,.0f} KiB"


def render(r: dict[str, Any]) -> list[str]:
    """The hostile push service section of docs/benchmarks.md."""
    out = [
        "### The Web Push sender against a hostile push service",
        "",
        f'One request per case, a deadline of {r["deadline_s"]:g} s; "Python peak" is `tracemalloc` for '
        "the whole process (the push service's threads included), \"RSS growth\" the process's `VmRSS` "
        "after the request against before.",
        "",
        "| the push service | time | Python peak | RSS growth | bytes of the answer read | result |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for mode, row in r["cases"].items():
        read = "–" if row["answer_bytes_read"] is None else f"{row['answer_bytes_read']:,}"
        status = "" if row["status"] is None else f" ({row['status']})"
        detail = str(row["detail"]).replace("|", "\\|")
        result = f"`{row['outcome']}`{status}" + (f", {detail}" if detail else "")
        out.append(
            f"| {LABELS.get(mode, mode)} | {row['seconds']:,.3f} s | {_kib(row['python_peak_bytes'])} | "
            f"{_kib(row['rss_growth_bytes'])} | {read} | {result} |"
        )
    return [*out, ""]


def update_doc(path: Path, section: str, header: str) -> None:
    """Replace this bench's block in ``path`` (appended if missing); the rest of the page is kept."""
    report.write_block(path, BEGIN, END, f"{header}\n\n{section}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = run_hostile_push_bench(args.deadline)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"deadline {results['deadline_s']:g} s")
    print(f"{'case':<13} {'s':>7} {'py peak KiB':>12} {'RSS +KiB':>9} {'read B':>8}  result")
    for mode, row in results["cases"].items():
        read = "-" if row["answer_bytes_read"] is None else f"{row['answer_bytes_read']:,}"
        print(
            f"{mode:<13} {row['seconds']:>7.3f} {row['python_peak_bytes'] / 1024:>12,.0f} "
            f"{row['rss_growth_bytes'] / 1024:>9,.0f} {read:>8}  "
            f"{row['outcome']} {row['status']}: {row['detail']}"
        )


if __name__ == "__main__":
    main()
