"""DynamoDB's isolation for moto: one DynamoDB (and DynamoDB Streams) request at a time.

moto's DynamoDB backend has no isolation between threads, and its server runs each request in a
thread of its own. With several execution environments calling it at once, two transactions can
both pass the same ``attribute_not_exists`` (two members for one subscription), a cancelled
transaction's rollback can undo another request's writes to the same items, and a transaction that
copies a table while another request writes to it fails with "dictionary changed size during
iteration" (a 500). DynamoDB serializes conflicting requests (a transaction is isolated from every
other write to its items); :func:`install` serializes moto's DynamoDB requests in this process,
which gives that isolation (and more: every request is), at the price of a lock moto's work is
mostly under anyway (the server is one Python process).

The lock is taken around each request's action in moto's response handlers (``call_action``), so
it holds however the backend's methods are patched (see :mod:`.moto_patches`), and stream reads
see a transaction's records all or none. SQS needs no such lock here: each event source has one
receiving thread, and moto adds and deletes a queue's messages under the queue's own lock.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from .patching import Patches

_lock = threading.Lock()
_applied = Patches()

#: The one lock of every DynamoDB and DynamoDB Streams request (re-entrant: moto's handlers may
#: call one another).
DYNAMODB_LOCK = threading.RLock()


def _handlers() -> list[type]:
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    return [DynamoHandler, DynamoDBStreamsHandler]


def _serialized(call_action: Any) -> Any:
    @functools.wraps(call_action)
    def call_action_serialized(self: Any) -> Any:
        with DYNAMODB_LOCK:
            return call_action(self)

    return call_action_serialized


def install() -> bool:
    """Serialize moto's DynamoDB requests in this process (idempotent); True if this call did."""
    with _lock:
        if _applied:
            return False
        for handler in _handlers():
            _applied.replace(handler, "call_action", _serialized(handler.call_action))
        return True


def uninstall() -> None:
    """Put moto's handlers back."""
    with _lock:
        _applied.restore()


def installed() -> bool:
    return bool(_applied)
