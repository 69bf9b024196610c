"""The fan-out queues' SQS records as pydantic models: what the planner and the sender validate.

Imported on a function's first record, not at its import: building these models (Lambda's SQS
record, the jobs inside) is the largest part of what the planner's and the sender's imports
would cost beyond ``import boto3, pydantic``, and a record needs them only when one comes.
"""

from __future__ import annotations

from pydantic import Json

from herald.core.sqs import SqsRecordModel
from herald.fanout.jobs import PlannerJob, PushJob

__all__ = ["PlannerJobRecord", "PushJobRecord"]


class PlannerJobRecord(SqsRecordModel):
    """An SQS record of the planner queue: its body is a planner job."""

    body: Json[PlannerJob]


class PushJobRecord(SqsRecordModel):
    """An SQS record of the push job queue: its body is a push job."""

    body: Json[PushJob]
