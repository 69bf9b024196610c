"""Lambda's event filtering for event source mappings (``FilterCriteria``).

Each filter's ``Pattern`` is a JSON string in EventBridge pattern syntax, matched against a
record as Lambda sees it: a DynamoDB stream record with its ``dynamodb`` keys and images in
AttributeValue form; an SQS record with its ``body`` parsed when it is JSON (else matched as the
string). A record passes when any filter matches; a mapping without filters passes every record.
The matching itself is moto's EventBridge pattern matcher (``moto.events.models.EventPattern``:
exact values, ``prefix``, ``suffix``, ``anything-but``, ``numeric``, ``exists``,
``equals-ignore-case``, ``wildcard``, ``cidr``, ``$or``).
"""

from __future__ import annotations

import json
from typing import Any

from moto.events.models import EventPattern


class RecordFilter:
    """The filters of one event source mapping; :meth:`passes` says whether a record is kept."""

    def __init__(self, filter_criteria: dict[str, Any] | None) -> None:
        filters = (filter_criteria or {}).get("Filters") or []
        self.patterns = [EventPattern.load(f["Pattern"]) for f in filters if f.get("Pattern")]

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def passes(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` (in the shape of the function's event) matches any filter."""
        if not self.patterns:
            return True
        return any(pattern.matches_event(record) for pattern in self.patterns)


def sqs_filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """An SQS event record as Lambda's filters see it: a JSON ``body`` parsed, any other as is."""
    body = record.get("body")
    if not isinstance(body, str):
        return record
    try:
        parsed = json.loads(body)
    except ValueError:
        return record
    return {**record, "body": parsed}
