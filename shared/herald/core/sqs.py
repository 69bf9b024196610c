"""Lambda's SQS record as a pydantic model: the base of the queue functions' record models.

The same fields and types as Powertools' parser model (``SqsRecordModel`` in
``aws_lambda_powertools.utilities.parser.models``), defined here because importing that one runs
the parser package's ``__init__`` (its ``parse`` and ``event_parser`` and their helpers, about
45 ms of a handler's import) for three small models. ``tests/unit/test_coldstart_imports.py``
compares the two models' schemas, so the copy cannot drift from Powertools' without a test failing.
Powertools' batch processor takes either: it validates a record with ``model.model_validate``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

__all__ = ["SqsAttributesModel", "SqsMsgAttributeModel", "SqsRecordModel"]


class SqsAttributesModel(BaseModel):
    ApproximateReceiveCount: str
    ApproximateFirstReceiveTimestamp: datetime
    MessageDeduplicationId: str | None = None
    MessageGroupId: str | None = None
    SenderId: str
    SentTimestamp: datetime
    SequenceNumber: str | None = None
    AWSTraceHeader: str | None = None
    DeadLetterQueueSourceArn: str | None = None


class SqsMsgAttributeModel(BaseModel):
    stringValue: str | None = None
    binaryValue: str | None = None
    stringListValues: list[str] = []
    binaryListValues: list[str] = []
    dataType: str


if TYPE_CHECKING:
    # The type checker sees Powertools' class: BatchProcessor's ``model`` is typed with it.
    from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
else:

    class SqsRecordModel(BaseModel):
        """One record of Lambda's SQS event; a subclass narrows ``body`` (``Json[Model]``)."""

        messageId: str
        receiptHandle: str
        body: str | type[BaseModel] | BaseModel
        attributes: SqsAttributesModel
        messageAttributes: dict[str, SqsMsgAttributeModel]
        md5OfBody: str
        md5OfMessageAttributes: str | None = None
        eventSource: Literal["aws:sqs"]
        eventSourceARN: str
        awsRegion: str
