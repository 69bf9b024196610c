"""Waiting on the local cloud in end-to-end tests: a condition checked again each time the local cloud
has settled a batch (its own activity signal), never a sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from herald_tools.localcloud.cloud import LocalCloud


def wait_for(what: str, check: Callable[[], Any], cloud: LocalCloud, timeout: float = 120.0) -> Any:
    """``check()``'s first truthy value; between tries, wait for the local cloud to settle a batch."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}; busy: {cloud.busy()}")
        cloud.wait_for_activity(timeout=0.5)
