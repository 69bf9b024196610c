"""Shared pieces of the export, takedown and duplicate tests: export files, a Lambda context whose
time runs out, and AWS failing part-way through an import."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.faults import Fault
from tests.integration.conftest import LambdaContext, Stack, sqs_lambda_event


def export_text(posts: list[str], name: str = "Safe Routes") -> str:
    """A community page export: the posts, then the profile block."""
    return (
        "\n\n".join(posts)
        + f"\nScan QR code to join Community\n{name}\nHelp on the move.\n12K Members\nCreated In 2021\n"
    )


def notices(count: int, start: int = 0) -> list[str]:
    return [
        f"Notice {i}: the clinic of district {i} opens at {i % 12 + 1} o'clock, bring papers number {i * 7}."
        for i in range(start, start + count)
    ]


class ShortContext(LambdaContext):
    """Lambda's context for an invocation with little time: every look at the clock finds
    ``step_ms`` less left, so a run stops at the same point however fast the machine is."""

    def __init__(self, budget_ms: int, step_ms: int = 1000) -> None:
        super().__init__()
        self.left = budget_ms
        self.step = step_ms

    def get_remaining_time_in_millis(self) -> int:
        self.left = max(0, self.left - self.step)
        return self.left


def invoke_with(stack: Stack, messages: list[dict[str, Any]], context: LambdaContext) -> set[str]:
    """One invocation with ``context``; deletes the messages that did not fail, returns the failed ids."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    try:
        response = stack.handler.handler(sqs_lambda_event(messages, stack.queue_arn), context)
    except BatchProcessingError:
        return {m["MessageId"] for m in messages}  # every record failed: Lambda returns them all
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return failed


@contextmanager
def dynamodb_fails_after(transactions: int) -> Iterator[None]:
    """The handler's DynamoDB client loses its connection after ``transactions`` TransactWriteItems
    calls (what a function killed by its timeout, or a network fault, leaves behind)."""
    from botocore.exceptions import EndpointConnectionError

    from herald.core import aws

    client = aws.client("dynamodb")
    fault = Fault(f"DynamoDB unreachable after {transactions} TransactWriteItems calls")
    seen = 0

    def fail(**_: Any) -> None:
        nonlocal seen
        seen += 1
        if seen > transactions:
            fault.fire()
            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    handler_id = f"fail-{uuid.uuid4()}"
    client.meta.events.register("before-call.dynamodb.TransactWriteItems", fail, unique_id=handler_id)
    try:
        yield
    finally:
        client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", unique_id=handler_id)


def table_items(stack: Stack, prefix: str) -> list[dict[str, Any]]:
    """Every item of the content table whose partition starts with ``prefix`` (a scan, for checks)."""
    items: list[dict[str, Any]] = []
    for page in stack.ddb.get_paginator("scan").paginate(TableName=stack.table):
        items += [i for i in page["Items"] if i["pk"]["S"].startswith(prefix)]
    return items
