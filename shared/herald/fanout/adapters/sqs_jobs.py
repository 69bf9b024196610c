"""JSON jobs on an SQS queue, sent with ``SendMessageBatch``: 10 messages and 256 KiB at most per call.

A body is a job's JSON values (written as compact JSON) or its text ready (a job's ``as_json()``,
sent as it is). Every batch's ``Failed`` entries are sent again (with back-off) until none is left or
the attempts run out; then :class:`TransientError` is raised, so the caller's own message is retried
by SQS and nothing is lost (a job sent twice is harmless: deliveries are claimed per member).
Implements :class:`herald.fanout.service.JobQueue`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.content.limits import SQS_MAX_DELAY_S
from herald.core.aws import LazyClient, as_transient
from herald.core.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_ENTRIES = 10
#: SendMessageBatch's limit on the sum of the bodies (and of one body).
MAX_BATCH_BYTES = 256 * 1024
ATTEMPTS = 6


def _batches(bodies: Sequence[str]) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    size = 0
    for index, body in enumerate(bodies):
        length = len(body.encode("utf-8"))
        if length > MAX_BATCH_BYTES:
            raise ValueError(f"a job of {length} bytes is larger than an SQS message may be")
        if batch and (len(batch) == MAX_ENTRIES or size + length > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((index, body))
        size += length
    if batch:
        yield batch


class SqsJobQueue:
    def __init__(
        self,
        queue_url: str,
        sqs: SQSClient | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = ATTEMPTS,
    ) -> None:
        if not queue_url:
            raise ValueError("the queue URL is empty")
        self.queue_url = queue_url
        self._sqs = sqs
        self.sleep = sleep
        self.attempts = attempts

    sqs: LazyClient[SQSClient] = LazyClient("sqs")

    def send(self, bodies: Sequence[Mapping[str, Any] | str], delay_s: int = 0) -> None:
        texts = [
            b if isinstance(b, str) else json.dumps(b, ensure_ascii=False, separators=(",", ":"))
            for b in bodies
        ]
        delay = max(0, min(SQS_MAX_DELAY_S, int(delay_s)))
        for batch in _batches(texts):
            self._send_batch(batch, delay)

    def _send_batch(self, batch: list[tuple[int, str]], delay: int) -> None:
        pending = {str(index): body for index, body in batch}
        last_error = ""
        for attempt in range(self.attempts):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": i, "MessageBody": body, "DelaySeconds": delay} for i, body in pending.items()
            ]
            try:
                response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise as_transient(exc, "sending jobs") from exc
            failed = response.get("Failed") or []
            if not failed:
                return
            sender_faults = [f for f in failed if f.get("SenderFault")]
            if sender_faults:  # our request is wrong: sending it again will not help
                raise ValueError(f"SQS refused jobs: {sender_faults[:3]}")
            last_error = ", ".join(f"{f.get('Code')}: {f.get('Message')}" for f in failed[:3])
            pending = {str(f["Id"]): pending[str(f["Id"])] for f in failed}
            self.sleep(min(1.0, 0.05 * 2**attempt))
        raise TransientError(f"{len(pending)} job(s) not sent after {self.attempts} attempts: {last_error}")
