"""Event source mappings: pollers that feed queues and streams to the functions.

:class:`SqsPoller` does what Lambda's SQS event source mapping does: long-poll the queue,
build the SQS event, invoke the function, delete what succeeded; up to the function's
concurrency (or ``ScalingConfig.MaximumConcurrency``) batches at once, one batch in flight per
message group of a FIFO queue.  With
``ReportBatchItemFailures`` only the messages not named in ``batchItemFailures`` are
deleted; if the function fails, none is.  Failed messages reappear after the queue's
visibility timeout, and the queue's redrive policy moves them to the dead-letter queue
after ``maxReceiveCount`` receives.  Locally, ``retry_visibility_timeout`` (seconds) can
shorten the wait before a failed message reappears, so retries and the DLQ arrive quickly.

:class:`DynamoDBStreamPoller` reads a table's stream shard by shard from a checkpoint and
invokes the function with Lambda's DynamoDB event; a failed batch is retried (halved with
``BisectBatchOnFunctionError``, from the lowest failed record with ``batchItemFailures``) until it
succeeds or ``MaximumRetryAttempts`` is exhausted, then skipped with an on-failure record.

Both apply the mapping's ``FilterCriteria`` (:mod:`.event_filters`) before batching, as Lambda
does: a message the filters drop is deleted from its queue, a stream record they drop is counted
as processed (the checkpoint moves past it), and neither reaches the function.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from .event_filters import RecordFilter, sqs_filter_view
from .functions import InvocationResult
from .provision import EventSourceSpec, FunctionSpec
from .template import REGION

log = logging.getLogger(__name__)


class Invoker(Protocol):
    """What a poller invokes: a function's :class:`~.functions.WorkerPool` (or one worker)."""

    spec: FunctionSpec

    @property
    def name(self) -> str: ...

    def invoke(self, event: Any, timeout: float | None = None) -> InvocationResult: ...


class EventSourcePoller:
    """Base: a daemon thread polling one source for one function."""

    kind = "?"

    def __init__(self, source: EventSourceSpec, worker: Invoker) -> None:
        self.source = source
        self.worker = worker
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Event()  # set between receiving records and settling them
        self.batches = 0
        self.failures = 0
        self.last_error: str | None = None
        self.on_batch: Callable[[], None] | None = None  # called after each batch is settled
        self.filtered = 0  # records dropped by the mapping's FilterCriteria

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
    """Lambda's SQS event source mapping, with up to :attr:`concurrency` batches at once.

    One thread receives (a long poll), gathers a batch over the batching window and hands it to
    a thread of its own, then receives again only while fewer than ``concurrency`` batches are in
    flight: a message is not received before an environment can take it, so its visibility
    timeout is spent running, as with Lambda's pollers. ``concurrency`` is the function's number
    of environments (``worker.max_size`` of a pool), lowered to ``ScalingConfig.MaximumConcurrency``
    when that is set.

    FIFO queues need nothing more: SQS hands out no message of a message group while an earlier
    one of that group is in flight (received, not yet deleted or visible again), so each group
    has at most one batch in flight and is processed in order, while other groups run in
    parallel, which is how Lambda scales a FIFO source (up to its number of active groups).
    """

    kind = "sqs"

    def __init__(
        self,
        source: EventSourceSpec,
        worker: Invoker,
        sqs_client: Any,
        *,
        retry_visibility_timeout: int | None = None,
        wait_seconds: int = 1,
        concurrency: int | None = None,
    ) -> None:
        super().__init__(source, worker)
        if not source.queue_url:
            raise ValueError(f"{source.function}/{source.name}: the queue does not exist locally")
        self.sqs = sqs_client
        self.queue_url = source.queue_url
        self.queue_arn = source.source_arn or ""
        self.retry_visibility_timeout = retry_visibility_timeout
        self.wait_seconds = wait_seconds
        limit = concurrency if concurrency is not None else int(getattr(worker, "max_size", 1))
        if source.maximum_concurrency is not None:
            limit = min(limit, source.maximum_concurrency)
        self.concurrency = max(1, limit)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._counts = threading.Lock()
        self._in_flight = 0  # batches received and not yet settled
        self._threads: set[threading.Thread] = set()
        self.peak = 0  # the most batches in flight at once
        self.filter = RecordFilter(source.filter_criteria)

    @property
    def busy(self) -> bool:
        return self._in_flight > 0

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        return self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def poll_once(self) -> int:
        """Receive one batch when a slot is free and start processing it; the messages received."""
        while not self._slots.acquire(timeout=0.2):
            if self._stop.is_set():
                return 0
        try:
            messages = [] if self._stop.is_set() else self._gather()
        except BaseException:
            self._slots.release()
            raise
        if not messages:
            self._slots.release()
            return 0
        thread = threading.Thread(
            target=self._run_batch, args=(messages,), name=f"batch-{self.name}", daemon=True
        )
        with self._counts:
            self._threads.add(thread)
        thread.start()
        return len(messages)

    def _gather(self) -> list[dict[str, Any]]:
        batch_size = self.source.batch_size
        messages = self._receive(batch_size, self.wait_seconds)
        if not messages:
            return []
        with self._counts:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        try:
            # The batching window: keep gathering while messages keep coming, up to the batch size.
            window_end = time.monotonic() + self.source.maximum_batching_window
            while len(messages) < batch_size and time.monotonic() < window_end:
                more = self._receive(batch_size - len(messages), 0)
                if not more:
                    break
                messages.extend(more)
        except BaseException:
            self._done()
            raise
        return messages

    def _done(self) -> None:
        with self._counts:
            self._in_flight -= 1
            self._threads.discard(threading.current_thread())

    def _run_batch(self, messages: list[dict[str, Any]]) -> None:
        try:
            self._process(messages)
        except Exception as exc:  # the messages come back after their visibility timeout
            if not self._stop.is_set():
                self.last_error = repr(exc)
                log.warning("%s: a batch failed: %s", self.name, exc)
        finally:
            self._done()
            self._slots.release()
            self._settled()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop receiving, then wait (up to ``timeout`` in all) for the batches in flight."""
        deadline = time.monotonic() + timeout
        super().stop(timeout)
        with self._counts:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _process(self, messages: list[dict[str, Any]]) -> None:
        records = [sqs_record(m, self.queue_arn) for m in messages]
        if self.filter:  # messages the filters drop are deleted, as Lambda does
            keep = [self.filter.passes(sqs_filter_view(r)) for r in records]
            dropped = [m for m, k in zip(messages, keep, strict=True) if not k]
            self._delete(dropped)
            with self._counts:
                self.filtered += len(dropped)
            messages = [m for m, k in zip(messages, keep, strict=True) if k]
            records = [r for r, k in zip(records, keep, strict=True) if k]
            if not messages:
                return
        event = {"Records": records}
        result = self.worker.invoke(event)
        with self._counts:
            self.batches += 1
            if not result.ok:
                self.failures += 1
        ids = [m["MessageId"] for m in messages]
        failed = failed_message_ids(result, ids, self.source.report_batch_item_failures)
        if not result.ok:
            self.last_error = f"{result.error_type}: {result.error_message}"
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        self._delete(done)
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

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for chunk in _chunks(messages, 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )

    def pending(self) -> str | None:
        if self.busy:
            return f"{self.name}: {self._in_flight} batch(es) being processed"
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
        "eventName": record.get("eventName"),
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
    """Lambda's DynamoDB stream event source mapping, shard by shard.

    The poller keeps a checkpoint per shard (the sequence number and event id of the last record
    it is done with) and reads each poll with a fresh shard iterator taken at that checkpoint, so
    no iterator outlives one read. moto replaces a table with a copy taken before a cancelled
    ``TransactWriteItems`` (its rollback), and an iterator kept across polls would stay on the
    discarded copy's stream for good (holding the cancelled writes' records and none after); on
    AWS, iterators expire after 15 minutes. When the record at the checkpoint is no longer the one
    processed (the stream under it was rewritten), the records from there on are new.

    A batch is handled as Lambda does: the function's error fails it whole (halved before the
    retry when ``BisectBatchOnFunctionError``), a ``batchItemFailures`` answer (with
    ``ReportBatchItemFailures``) checkpoints before the lowest failed sequence number and retries
    from there; after ``MaximumRetryAttempts`` retries of a record (-1: forever) its part of the
    batch is skipped and, when ``DestinationConfig.OnFailure`` names a queue, an on-failure record
    (shard and sequence-number range, not the records) is sent there. An error reading the stream
    is logged and the next poll reads from the checkpoint again.
    """

    kind = "dynamodb"

    def __init__(
        self,
        source: EventSourceSpec,
        worker: Invoker,
        streams_client: Any,
        *,
        sqs_client: Any = None,
        retry_delay: float = 0.2,
    ) -> None:
        super().__init__(source, worker)
        if not source.source_arn:
            raise ValueError(f"{source.function}/{source.name}: no stream ARN")
        self.streams = streams_client
        self.sqs = sqs_client
        self.stream_arn = source.source_arn
        self.retry_delay = retry_delay
        # shard id -> (sequence number, event id) of the last record done with; None: from the start
        self._positions: dict[str, tuple[str, str] | None] = {}
        self._initialised = False
        self._lock = threading.Lock()
        self.skipped = 0  # records given up on after their retries
        self.filter = RecordFilter(source.filter_criteria)

    def _shards(self) -> list[str]:
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        return [s["ShardId"] for s in description.get("Shards", [])]

    def _get_records(self, shard: str, kwargs: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        iterator = self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard, **kwargs).get(
            "ShardIterator"
        )
        if iterator is None:  # a closed shard
            return []
        return list(self.streams.get_records(ShardIterator=iterator, Limit=limit).get("Records", []))

    def _read(self, shard: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` records after the shard's checkpoint, from a fresh iterator."""
        return self._read_at(shard, self._positions.get(shard), limit)

    def _read_at(self, shard: str, position: tuple[str, str] | None, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` records after ``position`` (None: the shard's start), from a fresh iterator."""
        if position is None:
            return self._get_records(shard, {"ShardIteratorType": "TRIM_HORIZON"}, limit)
        sequence, event_id = position
        records = self._get_records(
            shard, {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": sequence}, limit + 1
        )
        if records and _sequence(records[0]) == sequence:
            if records[0].get("eventID") == event_id:
                return records[1:]
            log.warning(
                "%s: the record at %s (%s) is not the one processed; reading on from it",
                self.name,
                shard,
                sequence,
            )
        return records[:limit]

    def _end_of(self, shard: str) -> tuple[str, str] | None:
        """The shard's last record now (where LATEST starts), or None when it has none."""
        position = None
        records = self._get_records(shard, {"ShardIteratorType": "TRIM_HORIZON"}, 1000)
        while records:
            position = _sequence(records[-1]), str(records[-1].get("eventID"))
            records = self._get_records(
                shard, {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": position[0]}, 1000
            )
        return position

    def initialise(self) -> None:
        """Fix the starting position (call before writes that must be seen with LATEST)."""
        with self._lock:
            if self._initialised:
                return
            latest = self.source.starting_position == "LATEST"
            for shard in self._shards():
                self._positions.setdefault(shard, self._end_of(shard) if latest else None)
            self._initialised = True

    def poll_once(self) -> int:
        self.initialise()
        for shard in self._shards():
            self._positions.setdefault(shard, None)  # a new shard: read it from its start
        processed = 0
        for shard in list(self._positions):
            if self._stop.is_set():
                break
            try:
                records, last, read = self._gather(shard)
            except Exception as exc:  # a bad read of one shard must not hold up the others
                self.last_error = repr(exc)
                log.warning(
                    "%s: reading %s failed (next poll reads from the checkpoint): %s", self.name, shard, exc
                )
                continue
            if last is None:
                continue
            if not records:  # every record read was filtered out: the checkpoint moves past them
                self._checkpoint(shard, last)
                processed += read
                continue
            self._busy.set()
            try:
                if self._deliver(shard, records):
                    self._checkpoint(shard, last)  # past the filtered records after the last kept
            finally:
                self._busy.clear()
                self._settled()
            processed += read
        if not processed:
            self._stop.wait(0.2)  # streams have no long poll
        return processed

    def _gather(self, shard: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
        """A batch from the shard's checkpoint: (the records the filters keep, the last record
        read, how many were read).

        As on Lambda, filtering comes before batching: records are read on past the ones the
        filters drop until the batch holds ``BatchSize`` records or the shard has no more.
        """
        size = self.source.batch_size
        if not self.filter:
            records = self._read(shard, size)
            return records, (records[-1] if records else None), len(records)
        kept: list[dict[str, Any]] = []
        last: dict[str, Any] | None = None
        read = 0
        position = self._positions.get(shard)
        while len(kept) < size:
            records = self._read_at(shard, position, size - len(kept))
            if not records:
                break
            read += len(records)
            last = records[-1]
            position = _sequence(last), str(last.get("eventID"))
            kept.extend(r for r in records if self.filter.passes(dynamodb_record(r, self.stream_arn)))
        self.filtered += read - len(kept)
        return kept, last, read

    def _checkpoint(self, shard: str, record: dict[str, Any]) -> None:
        self._positions[shard] = _sequence(record), str(record.get("eventID"))

    def _deliver(self, shard: str, records: list[dict[str, Any]]) -> bool:
        """Invoke until every record is done with (succeeded or skipped), or the poller stops;
        whether every record was done with.

        Each part of the batch carries how many times its records have failed; a part that fails
        once more than ``MaximumRetryAttempts`` is skipped. Stopping leaves the checkpoint where
        it is: the rest is read again by the next poller.
        """
        limit = self.source.maximum_retry_attempts
        bisect = str(self.source.properties.get("BisectBatchOnFunctionError", False)).lower() == "true"
        parts: list[tuple[list[dict[str, Any]], int]] = [(records, 0)]
        while parts and not self._stop.is_set():
            part, failures = parts.pop(0)
            failed_at, result, whole = self._invoke(part)
            if failed_at is None:
                self._checkpoint(shard, part[-1])
                continue
            if failed_at:
                self._checkpoint(shard, part[failed_at - 1])
            rest, failures = part[failed_at:], failures + 1
            self.failures += 1
            if limit >= 0 and failures > limit:
                self._skip(shard, rest, result, failures)
                self._checkpoint(shard, rest[-1])
                continue
            if bisect and whole and len(rest) > 1:
                half = len(rest) // 2
                parts[0:0] = [(rest[:half], failures), (rest[half:], failures)]
            else:
                parts.insert(0, (rest, failures))
            self._stop.wait(self.retry_delay)
        return not parts

    def _invoke(self, part: list[dict[str, Any]]) -> tuple[int | None, InvocationResult, bool]:
        """(index of the first record to retry or None, the result, whether the whole part failed)."""
        event = {"Records": [dynamodb_record(r, self.stream_arn) for r in part]}
        result = self.worker.invoke(event)
        self.batches += 1
        if not result.ok:
            self.last_error = f"{result.error_type}: {result.error_message}"
            return 0, result, True
        failed = _failed_stream_index(result, part) if self.source.report_batch_item_failures else None
        if failed is None:
            return None, result, False
        index, whole = failed
        self.last_error = "batchItemFailures: " + (
            "invalid" if whole else f"from record {index + 1} of {len(part)}"
        )
        return index, result, whole

    def _skip(
        self, shard: str, records: list[dict[str, Any]], result: InvocationResult, attempts: int
    ) -> None:
        """Give up on ``records``: count them and send the on-failure record if there is a destination."""
        self.skipped += len(records)
        log.warning(
            "%s: skipping %d record(s) of %s (%s to %s) after %d attempts: %s",
            self.name,
            len(records),
            shard,
            _sequence(records[0]),
            _sequence(records[-1]),
            attempts,
            self.last_error,
        )
        destination = ((self.source.properties.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        if not destination:
            return
        note = on_failure_record(
            records,
            shard=shard,
            stream_arn=self.stream_arn,
            function_arn=self.worker.spec.arn,
            result=result,
            attempts=attempts,
        )
        if not str(destination).startswith("arn:aws:sqs:") or self.sqs is None:
            log.warning("%s: on-failure destination %s is not served locally", self.name, destination)
            return
        try:
            queue_url = self.sqs.get_queue_url(QueueName=str(destination).rsplit(":", 1)[1])["QueueUrl"]
            self.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(note))
        except Exception as exc:  # the records stay skipped, as on AWS when the destination refuses
            log.warning("%s: could not send the on-failure record to %s: %s", self.name, destination, exc)

    def pending(self) -> str | None:
        if self.busy:
            return f"{self.name}: a batch is being processed"
        if not self._initialised:
            return None
        for shard in self._shards():
            if self._read(shard, 1):
                return f"{self.stream_arn} ({shard}): records not yet processed"
        return None


def _sequence(record: dict[str, Any]) -> str:
    return str((record.get("dynamodb") or {}).get("SequenceNumber", ""))


def _failed_stream_index(result: InvocationResult, records: list[dict[str, Any]]) -> tuple[int, bool] | None:
    """Where a stream batch must be retried from, by Lambda's rules for ``batchItemFailures``.

    None: the batch succeeded (no response, no or an empty list). ``(0, True)``: the whole batch
    failed (an identifier that is empty or not a sequence number of the batch, a malformed list).
    Otherwise ``(index, False)``, the failed record with the lowest sequence number: Lambda
    checkpoints before it and retries from it.
    """
    response = result.result
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return None
    failures = response["batchItemFailures"]
    if not isinstance(failures, list):
        return 0, True
    index = {_sequence(r): i for i, r in enumerate(records)}
    found = []
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or str(ident) not in index:
            return 0, True
        found.append(index[str(ident)])
    return min(found), False


def on_failure_record(
    records: list[dict[str, Any]],
    *,
    shard: str,
    stream_arn: str,
    function_arn: str,
    result: InvocationResult,
    attempts: int,
) -> dict[str, Any]:
    """Lambda's on-failure invocation record for skipped stream records (where they are, not what)."""

    def arrival(record: dict[str, Any]) -> str | None:
        created = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
        if hasattr(created, "astimezone"):
            return created.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if isinstance(created, int | float):
            return (
                datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            )
        return None

    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if not result.ok:
        response["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": result.request_id,
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": _sequence(records[0]),
            "endSequenceNumber": _sequence(records[-1]),
            "approximateArrivalOfFirstRecord": arrival(records[0]),
            "approximateArrivalOfLastRecord": arrival(records[-1]),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
