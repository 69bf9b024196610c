"""Web Push sending rate: Herald's sender against the bare encryption floor and pywebpush's ``webpush()``.

All three run in this process on one sending thread, on the same payload, interleaved round by
round after a warm-up, and push to the same :class:`LocalPushService` on loopback — which runs
**in this process too**, in its own threads: on a 2-core machine it mostly takes the other core,
but its threads share the interpreter lock with the sender, so each HTTP round trip also waits for
the service to check the VAPID token and decrypt the message. Both HTTP clients pay that alike.
``service_process=True`` runs the same service in a child process instead (no shared lock), which
is closer to a remote push service.

* ``floor``: what every message costs at least: a new ephemeral P-256 key, ECDH with the
  subscriber's key, HKDF and AES-128-GCM (``herald.fanout.channels.webpush.encrypt``), no HTTP, no VAPID.
* ``herald``: ``WebPushSender.send``: the endpoint's cached verdict, encryption, the cached VAPID
  header, one POST on a pooled keep-alive connection to the checked address, the outcome classified.
* ``herald_in_flight``: ``WebPushSender.send_many``: a window of ``subscriptions`` messages in flight
  at once on the sending thread (one event loop over the pooled connections), as the push sender
  sends a checkpoint window.
* ``pywebpush``: ``pywebpush.webpush(subscription, data, vapid_private_key=…, vapid_claims={…})``
  as its README shows it: a fresh claims dict per call (it writes ``aud`` and ``exp`` into it), the
  key as a base64url string, no session given, so it signs a new JWT and opens a new connection per
  message.

``cpu_us_per_push`` is the sending thread's own CPU time (``time.thread_time``): the service's
work is not in it. ``per_s`` is wall clock. ``ratios.herald_cpu_per_floor`` is the sender's CPU per
push over the floor's, the goal being at most ``CPU_GOAL_PER_FLOOR`` (``herald_cpu_within_goal``).

    python -m herald_tools.bench.webpush [n] [--process]
"""

from __future__ import annotations

import contextlib
import gc
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from herald.fanout.channels.payload import Notification, encode
from herald.fanout.channels.vapid import VapidSigner, b64url_decode, b64url_encode, generate_vapid_key
from herald.fanout.channels.webpush import WebPushSender, encrypt
from herald.members.endpoints import EndpointPolicy
from herald_tools.localcloud.pushservice import LocalPushService

SUBJECT = "mailto:bench@herald.example"
#: "Fan-out at internet scale": the sender's CPU per push at most 3x the bare encryption floor.
CPU_GOAL_PER_FLOOR = 3.0


def _notification() -> Notification:
    """A typical notification: a title and a 200-character excerpt, Arabic and emoji included."""
    excerpt = ("وصلت القافلة إلى الميناء صباح اليوم 🚢 والجميع بخير، شكراً لكل من ساعد 🙏 " * 4)[:199] + "…"
    post_id = "5f1c0e9a7b3d2c4e6a80"
    return Notification(
        title="وصلت القافلة إلى الميناء 🚢",
        body=excerpt,
        url=f"https://herald.example/harbour-line/p/{post_id}",
        post_id=post_id,
        community="harbour-line",
        tag=f"post-{post_id}",
        lang="ar",
    )


def _time(fn: Callable[[int], None], count: int) -> tuple[float, float]:
    """(wall seconds, this thread's CPU seconds) for ``fn(0) … fn(count - 1)``."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.thread_time()
    for i in range(count):
        fn(i)
    return time.perf_counter() - wall, time.thread_time() - cpu


class _ChildService:
    """The push service in a child process, driven over its HTTP views."""

    def __init__(self, process: subprocess.Popen[str], origin: str) -> None:
        self.process = process
        self.origin = origin

    def _call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            self.origin + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def new_subscription(self) -> dict[str, Any]:
        return dict(self._call("POST", "/subscriptions"))

    def stats(self) -> dict[str, Any]:
        summary = self._call("GET", "/")
        return {k: summary[k] for k in ("received", "decrypted", "rejected", "faulted", "connections")}

    @property
    def connections(self) -> int:
        return int(self.stats()["connections"])


@contextlib.contextmanager
def _service(in_process: bool) -> Iterator[Any]:
    if in_process:
        with LocalPushService() as push:
            yield push
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "herald_tools.localcloud.pushservice"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        origin = json.loads(process.stdout.readline())["origin"]
        yield _ChildService(process, origin)
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the child stops when its stdin closes
        process.wait(timeout=10)


def run_webpush_bench(
    n: int = 2000,
    *,
    subscriptions: int = 50,
    rounds: int = 4,
    warmup: int = 50,
    service_process: bool = False,
) -> dict:
    """Measure the three cases on ``n`` messages each; see the module docstring for what each includes.

    ``service_process``: run the push service in a child process rather than in this one.
    """
    try:
        from pywebpush import webpush
    except ImportError:  # a dev dependency: without it the comparison is left out, not the bench
        webpush = None

    payload = encode(_notification())
    text = payload.decode("utf-8")
    key = generate_vapid_key()
    raw_key = b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))
    per_round = max(1, n // rounds)

    with _service(in_process=not service_process) as push:
        subs = [push.new_subscription() for _ in range(subscriptions)]
        keys = [(b64url_decode(s["keys"]["p256dh"]), b64url_decode(s["keys"]["auth"])) for s in subs]
        sender = WebPushSender(VapidSigner(key, SUBJECT), policy=EndpointPolicy(allow_loopback=True))
        failures: dict[str, int] = {"herald": 0, "herald_in_flight": 0, "pywebpush": 0}

        def floor(i: int) -> None:
            p256dh, auth = keys[i % subscriptions]
            encrypt(payload, p256dh, auth)

        def herald(i: int) -> None:
            if not sender.send(subs[i % subscriptions], payload, topic="5f1c0e9a7b3d2c4e6a80").ok:
                failures["herald"] += 1

        def herald_in_flight(i: int) -> None:
            # A window of ``subscriptions`` pushes in flight at once on this thread, as the push
            # sender sends a checkpoint window (``WebPushSender.send_many``).
            if i % subscriptions:
                return
            results = sender.send_many(
                subscriptions,
                lambda k: sender.prepare(subs[k], payload, topic="5f1c0e9a7b3d2c4e6a80"),
                in_flight=subscriptions,
            )
            failures["herald_in_flight"] += sum(1 for r in results if r is None or not r.ok)

        def py_webpush(i: int) -> None:
            assert webpush is not None
            response = webpush(
                subs[i % subscriptions],
                data=text,
                vapid_private_key=raw_key,
                vapid_claims={"sub": SUBJECT},
                ttl=86400,
            )
            if response.status_code != 201:
                failures["pywebpush"] += 1

        cases: dict[str, Callable[[int], None]] = {
            "floor": floor,
            "herald": herald,
            "herald_in_flight": herald_in_flight,
        }
        if webpush is not None:
            cases["pywebpush"] = py_webpush
        connections: dict[str, int] = {}
        for name, fn in cases.items():
            before = push.connections
            _time(fn, warmup)
            connections[name] = push.connections - before  # during warm-up only: a per-call figure
        walls: dict[str, list[float]] = {name: [] for name in cases}
        cpus: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                wall, cpu = _time(cases[name], per_round)
                walls[name].append(wall / per_round)
                cpus[name].append(cpu / per_round)
        stats = push.stats()
        sender.close()

    results: dict[str, Any] = {}
    for name in cases:
        wall = statistics.median(walls[name])
        results[name] = {
            "per_s": round(1 / wall, 1),
            "us_per_push": round(wall * 1e6, 1),
            "cpu_us_per_push": round(statistics.median(cpus[name]) * 1e6, 1),
            "runs_per_s": [round(1 / w, 1) for w in walls[name]],
        }
    results["herald"]["connections_for_warmup"] = connections["herald"]
    if "pywebpush" in results:
        results["pywebpush"]["connections_for_warmup"] = connections["pywebpush"]
    ratios = {
        "herald_vs_floor": round(results["herald"]["per_s"] / results["floor"]["per_s"], 3),
        "herald_vs_floor_cpu": round(
            results["floor"]["cpu_us_per_push"] / results["herald"]["cpu_us_per_push"], 3
        ),
        # The goal's measure: the sender's CPU per push as a multiple of the floor of this run
        # (medians), and round by round (each round runs both, so a noisy round is noisy for both).
        "herald_cpu_per_floor": round(
            results["herald"]["cpu_us_per_push"] / results["floor"]["cpu_us_per_push"], 2
        ),
        "herald_cpu_per_floor_by_round": [
            round(h / f, 2) for h, f in zip(cpus["herald"], cpus["floor"], strict=True)
        ],
        "herald_cpu_per_floor_goal": CPU_GOAL_PER_FLOOR,
        "herald_in_flight_cpu_per_floor": round(
            results["herald_in_flight"]["cpu_us_per_push"] / results["floor"]["cpu_us_per_push"], 2
        ),
    }
    ratios["herald_cpu_within_goal"] = ratios["herald_cpu_per_floor"] <= CPU_GOAL_PER_FLOOR
    if "pywebpush" in results:
        ratios["herald_vs_pywebpush"] = round(results["herald"]["per_s"] / results["pywebpush"]["per_s"], 2)
        ratios["herald_vs_pywebpush_cpu"] = round(
            results["pywebpush"]["cpu_us_per_push"] / results["herald"]["cpu_us_per_push"], 2
        )
    return {
        "messages_per_case": per_round * rounds,
        "warmup": warmup,
        "subscriptions": subscriptions,
        "payload_bytes": len(payload),
        "push_service": "LocalPushService on 127.0.0.1, "
        + ("in a child process" if service_process else "in this process (its own threads)"),
        "cases": results,
        "ratios": ratios,
        "failures": failures,
        "service": {k: v for k, v in stats.items() if k not in ("by_subscription", "subscriptions")},
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(json.dumps(run_webpush_bench(count, service_process="--process" in sys.argv), indent=2))
