"""The member counter function behind the members table's stream, in process on moto.

:class:`StreamCounter` drives ``functions/member_counter`` as Lambda's event source mapping does,
with the mapping template.yaml gives it (batch size, ``FilterCriteria``, retries): the local
cloud's :class:`~herald_tools.localcloud.event_sources.DynamoDBStreamPoller` reads moto's stream
shard by shard and hands each batch to the handler as Lambda's DynamoDB event. ``settle()`` polls
until every record is processed: then the counts are what the stream says they are.

``before`` lets a test crash the function (raise before the batch is counted, or after: counted
but answered as failed) or hand it a batch again, as the faults of Lambda's delivery do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herald_tools.localcloud.event_sources import DynamoDBStreamPoller
from herald_tools.localcloud.functions import InvocationResult
from herald_tools.localcloud.provision import EventSourceSpec
from herald_tools.localcloud.template import load_template_text
from tests.faults import Crash

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = "MemberCounterFunction"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:MemberCounterFunction"


def mapping_properties() -> dict[str, Any]:
    """The counter's event source in template.yaml, without the references only a stack resolves."""
    raw = load_template_text((ROOT / "template.yaml").read_text())
    events = raw["Resources"][FUNCTION]["Properties"]["Events"]
    [properties] = [e["Properties"] for e in events.values() if e["Type"] == "DynamoDB"]
    return {k: v for k, v in properties.items() if k not in ("Stream", "DestinationConfig")}


@dataclass
class _Spec:
    arn: str = FUNCTION_ARN


@dataclass
class CounterFunction:
    """The handler as one Lambda worker: an exception is a failed invocation."""

    handler: Callable[[dict[str, Any], Any], Any]
    context: Any
    name: str = FUNCTION
    spec: _Spec = field(default_factory=_Spec)
    #: Runs with each event before (``when="before"``) or after the handler; may raise (a crash).
    fault: Callable[[dict[str, Any], str], None] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, event: dict[str, Any], timeout: float | None = None) -> InvocationResult:
        self.events.append(event)
        request_id = uuid.uuid4().hex
        try:
            if self.fault is not None:
                self.fault(event, "before")
            result = self.handler(event, self.context)
            if self.fault is not None:
                self.fault(event, "after")
        except (Exception, Crash) as exc:  # what Lambda reports for a function error (or a crash)
            return InvocationResult(
                ok=False, request_id=request_id, error_type=type(exc).__name__, error_message=str(exc)
            )
        return InvocationResult(ok=True, request_id=request_id, result=result)


class StreamCounter:
    """The counter function fed from the members table's stream (see the module's docstring)."""

    def __init__(self, ddb: Any, streams: Any, table: str, shards: int = 32) -> None:
        from herald.members.adapters.dynamo_members import DynamoMemberStore
        from tests.integration.conftest import LambdaContext, load_handler

        handler = load_handler("member_counter")
        handler.configure(lambda: DynamoMemberStore(table, shards, dynamodb=ddb))
        self.handler = handler
        stream_arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.source = EventSourceSpec(
            function=FUNCTION,
            name="MemberStream",
            type="DynamoDB",
            properties=mapping_properties(),
            source_arn=stream_arn,
        )
        self.function = CounterFunction(handler.handler, LambdaContext())
        self.poller = DynamoDBStreamPoller(self.source, self.function, streams, retry_delay=0.0)

    def settle(self, max_polls: int = 1000) -> int:
        """Poll while the stream has records not processed; the records read."""
        self.poller.initialise()
        total = 0
        for _ in range(max_polls):
            if self.poller.pending() is None:
                return total
            total += self.poller.poll_once()
        raise AssertionError(f"the stream did not settle in {max_polls} polls")


def settle_api(api: Any) -> StreamCounter:
    """Settle the stream of an in-process API's members table (``tests.integration.conftest.Api``):
    one counter per API, its checkpoints kept between calls."""
    import boto3

    counter = getattr(api, "_stream_counter", None)
    if counter is None:
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        shards = int(api.environment["MEMBER_COUNTER_SHARDS"])
        counter = StreamCounter(api.ddb, streams, api.members_table, shards)
        api._stream_counter = counter
    counter.settle()
    return counter
