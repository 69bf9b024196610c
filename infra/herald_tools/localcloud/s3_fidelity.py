"""Make moto's S3 event notifications look like the ones S3 sends.

moto's records lack ``sequencer``, ``versionId``, ``userIdentity``, ``requestParameters``
and ``responseElements``, and a DeleteObject on a versioned bucket (which creates a
delete marker) sends no event at all.  :func:`install` patches moto in this process:

* every record gets an 18-hex-digit ``sequencer``, strictly increasing in operation order
  (one process-wide counter seeded from the clock; all records of one operation share it);
* ``versionId`` when the bucket is versioned (the object's version, or the delete marker's);
* ``userIdentity``, ``requestParameters``, ``responseElements`` and the bucket's ``ownerIdentity``;
* ObjectRemoved records carry no ``size`` or ``eTag`` (as on S3);
* DeleteObject on a versioned bucket emits ``ObjectRemoved:DeleteMarkerCreated``, and deleting
  a specific version emits ``ObjectRemoved:Delete`` with that version's id.

Keys stay ``quote_plus``-encoded (spaces as ``+``), as S3 sends them.  The patch applies to
moto's in-process mock and to a moto server thread running in the same process.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

from moto.core.utils import iso_8601_datetime_with_milliseconds

from .patching import Patches

PRINCIPAL_ID = "AWS:AIDALOCALHERALDEXAMPLE"
OWNER_ID = "A3LOCALHERALDOWNER"
SOURCE_IP = "127.0.0.1"

_lock = threading.Lock()
_installed = False
_sequence = time.time_ns() // 1000  # microseconds since the epoch: < 2**56, fits 18 hex digits
_local = threading.local()


def next_sequencer() -> str:
    """A new sequencer: 18 upper-case hex digits, strictly increasing within the process."""
    global _sequence
    with _lock:
        _sequence += 1
        return f"{_sequence:018X}"


def _request_id() -> str:
    return secrets.token_hex(8).upper()


def _amz_id_2() -> str:
    import base64

    return base64.b64encode(secrets.token_bytes(48)).decode()


@contextlib.contextmanager
def _operation(**extra: Any) -> Iterator[dict[str, Any]]:
    """One S3 operation: all the records it sends share one sequencer and request id."""
    outer = getattr(_local, "op", None)
    op = {
        "sequencer": next_sequencer(),
        "request_id": _request_id(),
        "id_2": _amz_id_2(),
        **extra,
    }
    _local.op = op
    try:
        yield op
    finally:
        _local.op = outer


@contextlib.contextmanager
def _suppressed() -> Iterator[None]:
    outer = getattr(_local, "suppress", False)
    _local.suppress = True
    try:
        yield
    finally:
        _local.suppress = outer


def build_record(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
    """The ``Records`` body S3 sends for one event (``event_name`` like ``s3:ObjectCreated:Put``)."""
    op = getattr(_local, "op", None) or {
        "sequencer": next_sequencer(),
        "request_id": _request_id(),
        "id_2": _amz_id_2(),
    }
    short_name = event_name[3:] if event_name.startswith("s3:") else event_name
    obj: dict[str, Any] = {"key": quote_plus(key.name)}
    if not short_name.startswith("ObjectRemoved"):
        obj["size"] = key.size
        obj["eTag"] = key.etag.replace('"', "")
    if bucket.is_versioned:
        version_id = getattr(key, "version_id", None)
        if version_id and version_id != "null":
            obj["versionId"] = str(version_id)
    obj["sequencer"] = op["sequencer"]
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": bucket.region_name,
                "eventTime": iso_8601_datetime_with_milliseconds(),
                "eventName": short_name,
                "userIdentity": {"principalId": PRINCIPAL_ID},
                "requestParameters": {"sourceIPAddress": SOURCE_IP},
                "responseElements": {
                    "x-amz-request-id": op["request_id"],
                    "x-amz-id-2": op["id_2"],
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": notification_id,
                    "bucket": {
                        "name": bucket.name,
                        "ownerIdentity": {"principalId": OWNER_ID},
                        "arn": bucket.arn,
                    },
                    "object": obj,
                },
            }
        ]
    }


_applied = Patches()


def install() -> bool:
    """Patch moto's S3 notifications in this process (idempotent); True if this call patched."""
    global _installed
    with _lock:
        if _installed:
            return False
        _installed = True

    from moto.s3 import models, notifications

    original_send_event = notifications.send_event
    original_delete_object = models.S3Backend.delete_object

    def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        if getattr(_local, "suppress", False) or key is None:
            return
        if getattr(_local, "op", None) is not None:
            original_send_event(account_id, event_name, bucket, key)
            return
        with _operation():
            original_send_event(account_id, event_name, bucket, key)

    def get_s3_event(event_name: Any, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        return build_record(str(getattr(event_name, "value", event_name)), bucket, key, notification_id)

    def delete_object(
        self: Any,
        bucket_name: str,
        key_name: str,
        version_id: str | None = None,
        bypass: bool = False,
    ) -> tuple[bool, dict[str, Any]]:
        bucket = self.get_bucket(bucket_name)
        if not bucket.is_versioned:
            return original_delete_object(self, bucket_name, key_name, version_id, bypass)
        target = None
        if version_id is not None:
            for candidate in bucket.keys.getlist(key_name, []):
                if str(candidate.version_id) == str(version_id):
                    target = candidate
                    break
        with _suppressed():
            success, meta = original_delete_object(self, bucket_name, key_name, version_id, bypass)
        if not success:
            return success, meta
        if version_id is None:
            marker = bucket.keys.get(key_name)
            if isinstance(marker, models.FakeDeleteMarker):
                send_event(
                    self.account_id,
                    notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT,
                    bucket,
                    marker,
                )
        elif target is not None:
            send_event(
                self.account_id,
                notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_EVENT,
                bucket,
                target,
            )
        return success, meta

    _applied.replace(notifications, "send_event", send_event)
    _applied.replace(notifications, "_get_s3_event", get_s3_event)
    _applied.replace(models.S3Backend, "delete_object", delete_object)
    return True


def uninstall() -> None:
    """Restore moto's own notifications."""
    global _installed
    with _lock:
        if not _installed:
            return
        _applied.restore()
        _installed = False


def installed() -> bool:
    return _installed
