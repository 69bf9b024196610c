"""S3 event notifications as they arrive in an SQS message body (the boundary, in pydantic)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from herald.core.errors import HeraldError

SEQUENCER_WIDTH = 32
#: Top-level field of a message body S3 never sends: ``herald reprocess`` asks to run an event
#: again for the key's recorded sequencer and version (see ``IngestService.handle``).
REPROCESS_MARKER = "heraldReprocess"
#: Top-level field of the message ingest sends itself (with a delay) when a language variant waits
#: for its original: at that time, a variant still waiting is rejected.
VARIANT_CHECK_MARKER = "heraldVariantCheck"


class _S3Object(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str
    size: int | None = None
    e_tag: str | None = Field(default=None, alias="eTag")
    version_id: str | None = Field(default=None, alias="versionId")
    sequencer: str | None = None


class _S3Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str


class _S3Entity(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bucket: _S3Bucket
    object: _S3Object


class S3EventRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_source: str = Field(alias="eventSource")
    event_name: str = Field(alias="eventName")
    event_time: datetime = Field(alias="eventTime")
    s3: _S3Entity
    response_elements: dict[str, str] | None = Field(default=None, alias="responseElements")


class S3EventNotification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    records: list[S3EventRecord] = Field(alias="Records")


class S3TestEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event: Literal["s3:TestEvent"] = Field(alias="Event")
    bucket: str | None = Field(default=None, alias="Bucket")


class UnreadableEvent(HeraldError):
    """An SQS message that is not an S3 notification Herald understands."""


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """One object created or removed, with the key decoded and the sequencer comparable."""

    bucket: str
    key: str
    kind: Literal["created", "removed"]
    event_name: str
    sequencer: str
    event_time: datetime
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    #: Sent by ``herald reprocess``, not by S3: run again for the recorded sequencer and version.
    reprocess: bool = False
    #: S3's request id for the operation (``x-amz-request-id``), when the record carries it.
    request_id: str | None = None

    @property
    def correlation_id(self) -> str:
        """The id that follows this upload through Herald's logs, from ingest to the last push."""
        return f"s3-{self.request_id}" if self.request_id else f"s3-seq-{self.sequencer.lstrip('0')}"


class VariantCheck(BaseModel):
    """Ingest's own delayed message: is the variant ``key`` (as event ``sequencer`` left it) still
    waiting for its original at ``due``?"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str
    key: str
    sequencer: str
    version_id: str | None = None
    event_time: datetime
    due: datetime

    def body(self) -> str:
        return json.dumps({VARIANT_CHECK_MARKER: self.model_dump(mode="json")}, ensure_ascii=False)

    def event(self) -> ObjectEvent:
        """The upload event the check is about, as ingest saw it."""
        return ObjectEvent(
            bucket=self.bucket,
            key=self.key,
            kind="created",
            event_name="ObjectCreated:Put",
            sequencer=self.sequencer,
            event_time=self.event_time,
            version_id=self.version_id,
        )


def normalise_sequencer(sequencer: str | None, event_time: datetime) -> str:
    """S3 sequencers compare as hex strings once left-padded to the same length.

    Real S3 always sends one. Without it (a hand-made event) the event time stands in, which
    orders events a millisecond or more apart.
    """
    if sequencer:
        return sequencer.upper().rjust(SEQUENCER_WIDTH, "0")
    micros = int(event_time.astimezone(UTC).timestamp() * 1_000_000)
    return f"{micros:X}".rjust(SEQUENCER_WIDTH, "0")


def parse_message_body(body: str) -> list[ObjectEvent] | S3TestEvent | VariantCheck:
    """The object events in one SQS message body (S3 sends one record per message), or ingest's
    own check of a waiting variant."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise UnreadableEvent(f"message body is not JSON: {exc.msg}") from None
    if isinstance(document, dict) and document.get("Event") == "s3:TestEvent":
        return S3TestEvent.model_validate(document)
    if isinstance(document, dict) and VARIANT_CHECK_MARKER in document:
        try:
            return VariantCheck.model_validate(document[VARIANT_CHECK_MARKER])
        except ValidationError as exc:
            raise UnreadableEvent(f"not a variant check: {exc.errors()[0]['msg']}") from None
    try:
        notification = S3EventNotification.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UnreadableEvent(f"not an S3 event notification: {where}: {first['msg']}") from None
    reprocess = isinstance(document, dict) and document.get(REPROCESS_MARKER) is True
    events: list[ObjectEvent] = []
    for record in notification.records:
        if record.event_source != "aws:s3":
            raise UnreadableEvent(f"unexpected event source {record.event_source!r}")
        if record.event_name.startswith("ObjectCreated:"):
            kind: Literal["created", "removed"] = "created"
        elif record.event_name.startswith(("ObjectRemoved:", "LifecycleExpiration:")):
            kind = "removed"
        else:
            raise UnreadableEvent(f"unsupported event {record.event_name!r}")
        obj = record.s3.object
        events.append(
            ObjectEvent(
                bucket=record.s3.bucket.name,
                key=unquote_plus(obj.key),
                kind=kind,
                event_name=record.event_name,
                sequencer=normalise_sequencer(obj.sequencer, record.event_time),
                event_time=record.event_time,
                version_id=obj.version_id if obj.version_id not in (None, "", "null") else None,
                etag=obj.e_tag,
                size=obj.size,
                reprocess=reprocess and kind == "created",
                request_id=(record.response_elements or {}).get("x-amz-request-id"),
            )
        )
    return events
