"""Ingest's own delayed messages on its queue (implements :class:`herald.ingest.ports.Checks`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from herald.core.aws import LazyClient, as_domain_error
from herald.ingest.events import VariantCheck

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: SQS delays a message at most 15 minutes; a longer wait is checked again at each delivery.
MAX_DELAY_S = 900


class SqsChecks:
    def __init__(self, queue_url: str, sqs: SQSClient | None = None) -> None:
        self._queue_url = queue_url
        self._sqs = sqs

    sqs: LazyClient[SQSClient] = LazyClient("sqs")

    def schedule(self, check: VariantCheck, delay_s: float) -> None:
        delay = max(0, min(MAX_DELAY_S, int(delay_s + 0.999)))
        try:
            self.sqs.send_message(QueueUrl=self._queue_url, MessageBody=check.body(), DelaySeconds=delay)
        except (ClientError, BotoCoreError) as exc:
            raise as_domain_error(exc, f"queueing the check of the waiting variant {check.key!r}") from exc
