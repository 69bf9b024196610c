"""Event source mappings: pollers that feed queues and streams to the functions.

:class:`SqsPoller` does what Lambda's SQS event source mapping does: long-poll the queue,
build the SQS event, invoke the function, delete what succeeded.  With
``ReportBatchItemFailures`` only the messages not named in ``batchItemFailures`` are
deleted; if the function fails, none is.  Failed messages reappear after the queue's
visibility timeout, and the queue's redrive policy moves them to the dead-letter queue
after ``maxReceiveCount`` receives.  Locally, ``retry_visibility_timeout`` (seconds) can
shorten the wait before a failed message reappears, so retries and the DLQ arrive quickly.

:class:`DynamoDBStreamPoller` reads a table's stream shard by shard and invokes the
function with Lambda's DynamoDB event; a failed batch is retried (whole) until it succeeds
or ``MaximumRetryAttempts`` is exhausted.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from .functions import FunctionWorker, InvocationResult
from .provision import EventSourceSpec
from .template import REGION

log = logging.getLogger(__name__)


class EventSourcePoller:
    """Base: a daemon thread polling one source for one function."""

    kind = "?"

    def __init__(self, source: EventSourceSpec, worker: FunctionWorker) -> None:
        self.source = source
        self.worker = worker
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Event()  # set between receiving records and settling them
        self.batches = 0
        self.failures = 0
        self.last_error: str | None = None
        self.on_batch: Callable[[], None] | None = None  # called after each batch is settled

    def _settled(self) -> None:
        if self.on_batch is not None:
            self.on_batch()

    @property
    def name(self) -> str:
        return f"{self.worker.name}/{self.source.name}"

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"poller-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:
                if self._stop.is_set():
                    break
                self.last_error = repr(exc)
                log.warning("%s: polling failed: %s", self.name, exc)
                self._stop.wait(0.5)

    def poll_once(self) -> int:
        raise NotImplementedError

    def pending(self) -> str | None:
        """Why this source is not idle (a short description), or None."""
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# SQS
# --------------------------------------------------------------------------------------------


def sqs_record(message: dict[str, Any], queue_arn: str, region: str = REGION) -> dict[str, Any]:
    """One record of Lambda's SQS event, from a ReceiveMessage result message."""
    attributes = dict(message.get("Attributes") or {})
    ordered = {}
    for key in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"):
        if key in attributes:
            ordered[key] = attributes.pop(key)
    ordered.update(attributes)
    message_attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        entry: dict[str, Any] = {}
        if "StringValue" in value:
            entry["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            entry["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
        entry["stringListValues"] = list(value.get("StringListValues") or [])
        entry["binaryListValues"] = [
            base64.b64encode(v).decode() if isinstance(v, bytes) else v
            for v in value.get("BinaryListValues") or []
        ]
        entry["dataType"] = value["DataType"]
        message_attributes[name] = entry
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": ordered,
        "messageAttributes": message_attributes,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update(
        {
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
    )
    return record


def failed_message_ids(result: InvocationResult, batch_ids: list[str], report_failures: bool) -> set[str]:
    """Which messages of a batch failed, by Lambda's rules for SQS event sources."""
    if not result.ok:
        return set(batch_ids)
    if not report_failures:
        return set()
    response = result.result
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return set()  # an empty or null response is a success
    failures = response["batchItemFailures"]
    if not isinstance(failures, list):
        return set(batch_ids)
    ids = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or ident not in batch_ids:
            return set(batch_ids)  # an invalid identifier fails the whole batch
        ids.add(ident)
    return ids


class SqsPoller(EventSourcePoller):
    kind = "sqs"

    def __init__(
        self,
        source: EventSourceSpec,
        worker: FunctionWorker,
        sqs_client: Any,
        *,
        retry_visibility_timeout: int | None = None,
        wait_seconds: int = 1,
    ) -> None:
        super().__init__(source, worker)
        if not source.queue_url:
            raise ValueError(f"{source.function}/{source.name}: the queue does not exist locally")
        self.sqs = sqs_client
        self.queue_url = source.queue_url
        self.queue_arn = source.source_arn or ""
        self.retry_visibility_timeout = retry_visibility_timeout
        self.wait_seconds = wait_seconds
        if source.filter_criteria:
            log.warning("%s: FilterCriteria are not applied locally", self.name)

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        return self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def poll_once(self) -> int:
        batch_size = self.source.batch_size
        messages = self._receive(batch_size, self.wait_seconds)
        if not messages:
            return 0
        self._busy.set()
        try:
            # The batching window: keep gathering while messages keep coming, up to the batch size.
            window_end = time.monotonic() + self.source.maximum_batching_window
            while len(messages) < batch_size and time.monotonic() < window_end:
                more = self._receive(batch_size - len(messages), 0)
                if not more:
                    break
                messages.extend(more)
            self._process(messages)
            return len(messages)
        finally:
            self._busy.clear()
            self._settled()

    def _process(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(m, self.queue_arn) for m in messages]}
        result = self.worker.invoke(event)
        self.batches += 1
        ids = [m["MessageId"] for m in messages]
        failed = failed_message_ids(result, ids, self.source.report_batch_item_failures)
        if not result.ok:
            self.failures += 1
            self.last_error = f"{result.error_type}: {result.error_message}"
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        for chunk in _chunks(done, 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        if retry and self.retry_visibility_timeout is not None:
            for chunk in _chunks(retry, 10):
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {
                            "Id": str(i),
                            "ReceiptHandle": m["ReceiptHandle"],
                            "VisibilityTimeout": self.retry_visibility_timeout,
                        }
                        for i, m in enumerate(chunk)
                    ],
                )

    def pending(self) -> str | None:
        if self.busy:
            return f"{self.name}: a batch is being processed"
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        counts = {k: int(v) for k, v in attrs.items()}
        if any(counts.values()):
            return (
                f"{self.queue_url}: {counts['ApproximateNumberOfMessages']} visible, "
                f"{counts['ApproximateNumberOfMessagesNotVisible']} in flight, "
                f"{counts['ApproximateNumberOfMessagesDelayed']} delayed"
            )
        return None


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --------------------------------------------------------------------------------------------
# DynamoDB streams
# --------------------------------------------------------------------------------------------


def _wire(value: Any) -> Any:
    """An attribute value as JSON: bytes (B, BS) back to base64, as in Lambda's event."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def dynamodb_record(record: dict[str, Any], stream_arn: str, region: str = REGION) -> dict[str, Any]:
    """One record of Lambda's DynamoDB stream event, from a GetRecords result record."""
    ddb = dict(record.get("dynamodb") or {})
    created = ddb.get("ApproximateCreationDateTime")
    if hasattr(created, "timestamp"):
        ddb["ApproximateCreationDateTime"] = int(created.timestamp())
    out = {
        "eventID": record.get("eventID") or uuid.uuid4().hex,
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion") or region,
        "dynamodb": _wire(ddb),
        "eventSourceARN": stream_arn,
    }
    if record.get("userIdentity"):
        out["userIdentity"] = record["userIdentity"]
    return out


class DynamoDBStreamPoller(EventSourcePoller):
    kind = "dynamodb"

    def __init__(
        self,
        source: EventSourceSpec,
        worker: FunctionWorker,
        streams_client: Any,
        *,
        retry_delay: float = 0.2,
    ) -> None:
        super().__init__(source, worker)
        if not source.source_arn:
            raise ValueError(f"{source.function}/{source.name}: no stream ARN")
        self.streams = streams_client
        self.stream_arn = source.source_arn
        self.retry_delay = retry_delay
        self._positions: dict[str, str | None] = {}  # shard id -> last processed sequence number
        self._iterators: dict[str, str | None] = {}
        self._initialised = False
        self._lock = threading.Lock()
        if source.filter_criteria:
            log.warning("%s: FilterCriteria are not applied locally", self.name)

    def _shards(self) -> list[str]:
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        return [s["ShardId"] for s in description.get("Shards", [])]

    def _iterator(self, shard: str, after: str | None, initial: bool) -> str | None:
        if after is not None:
            kwargs = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
        elif initial and self.source.starting_position == "LATEST":
            kwargs = {"ShardIteratorType": "LATEST"}
        else:
            kwargs = {"ShardIteratorType": "TRIM_HORIZON"}
        return self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard, **kwargs).get(
            "ShardIterator"
        )

    def initialise(self) -> None:
        """Fix the starting position (call before writes that must be seen with LATEST)."""
        with self._lock:
            if self._initialised:
                return
            for shard in self._shards():
                self._positions.setdefault(shard, None)
                self._iterators[shard] = self._iterator(shard, None, initial=True)
            self._initialised = True

    def poll_once(self) -> int:
        self.initialise()
        for shard in self._shards():
            if shard not in self._iterators:  # a new shard: read it from its start
                self._positions[shard] = None
                self._iterators[shard] = self._iterator(shard, None, initial=False)
        processed = 0
        for shard, iterator in list(self._iterators.items()):
            if iterator is None:
                continue
            response = self.streams.get_records(ShardIterator=iterator, Limit=self.source.batch_size)
            records = response.get("Records", [])
            next_iterator = response.get("NextShardIterator")
            if not records:
                self._iterators[shard] = next_iterator
                continue
            self._busy.set()
            try:
                if self._deliver(records):
                    self._positions[shard] = records[-1]["dynamodb"]["SequenceNumber"]
                    self._iterators[shard] = next_iterator
                else:  # retry the same batch on the next poll
                    self._iterators[shard] = self._iterator(shard, self._positions[shard], initial=False)
                    self._stop.wait(self.retry_delay)
            finally:
                self._busy.clear()
                self._settled()
            processed += len(records)
        if not processed:
            self._stop.wait(0.2)  # streams have no long poll
        return processed

    def _deliver(self, records: list[dict[str, Any]]) -> bool:
        """Invoke until success or retries are exhausted; True when the batch is done with."""
        event = {"Records": [dynamodb_record(r, self.stream_arn) for r in records]}
        attempts = 0
        while not self._stop.is_set():
            result = self.worker.invoke(event)
            self.batches += 1
            if result.ok and not self._partial_failure(result, records):
                return True
            self.failures += 1
            self.last_error = f"{result.error_type}: {result.error_message}" if not result.ok else "partial"
            attempts += 1
            limit = self.source.maximum_retry_attempts
            if limit >= 0 and attempts > limit:
                log.warning(
                    "%s: dropping a batch of %d records after %d attempts", self.name, len(records), attempts
                )
                self._on_failure(event)
                return True
            return False
        return False

    def _partial_failure(self, result: InvocationResult, records: list[dict[str, Any]]) -> bool:
        if not self.source.report_batch_item_failures or not isinstance(result.result, dict):
            return False
        return bool(result.result.get("batchItemFailures"))

    def _on_failure(self, event: dict[str, Any]) -> None:
        destination = ((self.source.properties.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        if destination:
            log.warning("%s: on-failure destination %s is not delivered locally", self.name, destination)
        log.debug("%s: dropped %s", self.name, json.dumps(event)[:500])

    def pending(self) -> str | None:
        if self.busy:
            return f"{self.name}: a batch is being processed"
        if not self._initialised:
            return None
        for shard in self._shards():
            after = self._positions.get(shard)
            if shard not in self._positions:
                iterator = self._iterator(shard, None, initial=False)
            elif after is None and self.source.starting_position == "LATEST":
                iterator = self._iterators.get(shard)
            else:
                iterator = self._iterator(shard, after, initial=False)
            if iterator is None:
                continue
            if self.streams.get_records(ShardIterator=iterator, Limit=1).get("Records"):
                return f"{self.stream_arn} ({shard}): records not yet processed"
        return None
