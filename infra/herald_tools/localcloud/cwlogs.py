"""The functions' log lines into the local cloud's CloudWatch Logs, as Lambda ships them.

Each line a function writes goes to the log group ``/aws/lambda/<function name>`` (created on first
use, as Lambda does when the template declares none), in the log stream of the worker process that
wrote it (``YYYY/MM/DD/[$LATEST]<id>``, one per execution environment), so that
``aws logs tail /aws/lambda/<name>`` and ``FilterLogEvents`` work locally.

Off the hot path: :meth:`CloudWatchShipper.put` only appends to a bounded buffer; a background
thread sends ``PutLogEvents`` in batches (within the API's limits of 10,000 events and 1 MiB).
When the buffer is full, new lines are dropped and counted (the text log still has them).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MAX_BUFFERED = 20_000  # lines waiting to be sent; beyond this new ones are dropped
MAX_BATCH_EVENTS = 10_000  # PutLogEvents: at most 10,000 events ...
MAX_BATCH_BYTES = 1_048_576  # ... and 1 MiB, counting 26 bytes per event
MAX_EVENT_BYTES = 262_144 - 26  # one event
FLUSH_INTERVAL = 0.2  # seconds between sends while lines arrive


class CloudWatchShipper:
    """Buffers log lines and sends them to CloudWatch Logs from one background thread."""

    def __init__(self, client_factory: Callable[[], Any], *, max_buffered: int = MAX_BUFFERED) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._buffer: deque[tuple[str, str, int, str]] = deque()
        self._max_buffered = max_buffered
        self._cond = threading.Condition()
        self._closed = False
        self._in_flight = 0
        self._streams: set[tuple[str, str]] = set()
        self._groups: set[str] = set()
        self.dropped = 0
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="cloudwatch-logs", daemon=True)
        self._thread.start()

    def put(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None:
        """Queue one line; never blocks on the network."""
        when = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        with self._cond:
            if self._closed:
                return
            if len(self._buffer) >= self._max_buffered:
                self.dropped += 1
                return
            self._buffer.append((group, stream, when, message))
            self._cond.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued line is sent (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
            remaining = max(0.0, deadline - time.monotonic())
            return self._cond.wait_for(lambda: not self._buffer and not self._in_flight, timeout=remaining)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (within ``timeout``), then stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=timeout)
        if self.dropped:
            log.warning("CloudWatch Logs: %d line(s) dropped (the buffer was full)", self.dropped)

    # -- the thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._buffer or self._closed)
                if not self._buffer and self._closed:
                    return
                lines = list(self._buffer)
                self._buffer.clear()
                self._in_flight = len(lines)
            try:
                self._send(lines)
            except Exception as exc:  # the cloud is stopping, or moto refused: the text log has them
                log.debug("CloudWatch Logs: %d line(s) not sent: %s", len(lines), exc)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()
            if not self._closed:
                time.sleep(FLUSH_INTERVAL)  # let lines gather into batches

    def _send(self, lines: list[tuple[str, str, int, str]]) -> None:
        by_stream: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for group, stream, when, message in lines:
            data = message.encode("utf-8", "replace")
            if len(data) > MAX_EVENT_BYTES:
                message = data[:MAX_EVENT_BYTES].decode("utf-8", "ignore")
            by_stream.setdefault((group, stream), []).append({"timestamp": when, "message": message or " "})
        for (group, stream), events in by_stream.items():
            self._ensure_stream(group, stream)
            events.sort(key=lambda e: e["timestamp"])  # PutLogEvents wants them in order
            for batch in _batches(events):
                self.client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
                self.sent += len(batch)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _ensure_stream(self, group: str, stream: str) -> None:
        if (group, stream) in self._streams:
            return
        if group not in self._groups:
            with contextlib.suppress(self.client.exceptions.ResourceAlreadyExistsException):
                self.client.create_log_group(logGroupName=group)
            self._groups.add(group)
        with contextlib.suppress(self.client.exceptions.ResourceAlreadyExistsException):
            self.client.create_log_stream(logGroupName=group, logStreamName=stream)
        self._streams.add((group, stream))


def _batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for event in events:
        cost = len(event["message"].encode("utf-8")) + 26
        if batches[-1] and (len(batches[-1]) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(event)
        size += cost
    return [b for b in batches if b]
