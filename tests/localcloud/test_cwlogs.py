"""Function log lines into CloudWatch Logs: batched within PutLogEvents' limits, bounded buffer."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
from moto import mock_aws

from herald_tools.localcloud.cwlogs import MAX_BATCH_EVENTS, CloudWatchShipper

GROUP = "/aws/lambda/herald-dev-IngestFunction"
STREAM = "2026/01/01/[$LATEST]0123456789abcdef"


def _events(logs: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": GROUP, "logStreamName": STREAM, "startFromHead": True}
    while True:
        page = logs.get_log_events(**kwargs)
        if not page["events"]:
            return events
        events += page["events"]
        kwargs["nextToken"] = page["nextForwardToken"]


def test_more_lines_than_one_put_holds_arrive_in_order() -> None:
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        shipper = CloudWatchShipper(lambda: logs)
        total = MAX_BATCH_EVENTS + 2_500  # more than one PutLogEvents call may carry
        start = int(time.time() * 1000) - total  # CloudWatch refuses events older than 14 days
        for i in range(total):
            shipper.put(GROUP, STREAM, f"line {i} ✓", timestamp_ms=start + i)
        shipper.put(GROUP, STREAM, "x" * 300_000, timestamp_ms=start + total)  # > one event
        shipper.close()
        events = _events(logs)
        assert [e["message"] for e in events[:total]] == [f"line {i} ✓" for i in range(total)]
        assert 0 < len(events[-1]["message"].encode()) <= 262_144 - 26  # cut to one event's size
        assert shipper.dropped == 0 and shipper.sent == total + 1


def test_a_full_buffer_drops_new_lines_and_counts_them() -> None:
    release = threading.Event()
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")

        def client() -> Any:
            release.wait(timeout=30)  # CloudWatch is slow to answer: lines pile up meanwhile
            return logs

        shipper = CloudWatchShipper(client, max_buffered=100)
        for i in range(1_000):
            shipper.put(GROUP, STREAM, f"line {i}")  # never blocks, whatever the backlog
        release.set()
        shipper.close()
        assert shipper.dropped > 0
        assert shipper.sent + shipper.dropped == 1_000
        assert len(_events(logs)) == shipper.sent
