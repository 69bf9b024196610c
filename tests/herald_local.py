"""``herald local --json`` in a subprocess, as a user starts it: every port chosen free (0)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERALD = [sys.executable, "-m", "herald_tools.cli"]
FREE_PORTS = ["--port", "0", "--api-port", "0", "--site-port", "0"]


@contextlib.contextmanager
def herald_local(
    *extra: str, env: dict[str, str], stop_timeout: float = 60
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """The process and its ready line; stopped with Ctrl-C (SIGINT) on leaving, killed if it does not
    end within ``stop_timeout`` (then the timeout is raised: no process is left behind)."""
    process = subprocess.Popen(
        [*HERALD, "local", *extra, *FREE_PORTS, "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process, json.loads(process.stdout.readline())
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
