"""Creating boto3 clients lazily, translating their errors into domain errors, the DynamoDB table
base, and DynamoDB items to plain values and back."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from herald.core.errors import ConcurrentUpdate, RequestRefused, TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The type of a boto3 client (``mypy_boto3_<service>``'s client class, for the type checker).
C = TypeVar("C")

#: Error codes that mean "the request may succeed later": retried by SQS, never a rejection.
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "TransactionInProgressException",
    }
)


@cache
def client(service: str) -> Any:
    """A boto3 client with standard retries, created on first use (never at import time)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
    return boto3.client(service, config=config)  # type: ignore[call-overload]


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _code(exc: BaseException) -> str:
    return error_code(exc) or type(exc).__name__


def as_transient(exc: Exception, what: str) -> TransientError:
    return TransientError(f"{what}: {_code(exc)}: {exc}", code=_code(exc))


#: Cancellation reasons of a transaction's items that mean another writer got there first (a guard
#: failed, or a concurrent transaction on the same item): decided again on fresh reads.
CONFLICT_REASONS = frozenset({"ConditionalCheckFailed", "TransactionConflict"})


def cancellation_reasons(exc: BaseException) -> tuple[str, ...]:
    """The reason code of each item of a cancelled transaction, in the order the items were sent
    (``"None"`` for an item that did not fail), from the error's response, never its message."""
    response = getattr(exc, "response", None) or {}
    return tuple(str(r.get("Code") or "None") for r in response.get("CancellationReasons", []))


def as_conflict(exc: BaseException, what: str) -> ConcurrentUpdate | None:
    """A cancelled transaction that lost a race, as :class:`ConcurrentUpdate` carrying every item's
    reason (``reasons``); None for any other error (a cancellation for another reason included)."""
    if error_code(exc) != "TransactionCanceledException":
        return None
    reasons = cancellation_reasons(exc)
    if not CONFLICT_REASONS.intersection(reasons):
        return None
    return ConcurrentUpdate(f"{what}: a guard failed: {list(reasons)}", reasons=reasons)


#: Error codes that mean "this request is invalid as built": the same request can never succeed.
REFUSED_CODES = frozenset(
    {
        "ValidationException",  # DynamoDB: an item over 400 KB, a key over its limit, a bad number
        "SerializationException",
        "KeyTooLongError",  # S3: a key over 1,024 bytes
        "EntityTooLarge",
        "InvalidRequest",
    }
)


def as_domain_error(exc: Exception, what: str) -> TransientError | RequestRefused:
    """An AWS error as the domain sees it: refused (permanent, never retried) when the request
    itself is invalid, else transient (throttling, 5xx, time-outs, connections, and whatever is
    wrong on the AWS side, such as a missing table or a denied permission, which an operator can
    fix before the retries run out or redrive from the DLQ)."""
    from botocore.exceptions import ParamValidationError

    if isinstance(exc, ParamValidationError) or error_code(exc) in REFUSED_CODES:
        return RequestRefused(f"{what}: {_code(exc)}: {exc}", code=_code(exc))
    return as_transient(exc, what)


class LazyClient(Generic[C]):
    """A class attribute that is the instance's boto3 client: the one its constructor was handed
    (kept in ``_<name>``), else one made on first use, so no client exists at import time.

    Typed by its annotation: ``s3: LazyClient[S3Client] = LazyClient("s3")`` reads as an
    ``S3Client`` on an instance.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self.slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> LazyClient[C]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> C: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> LazyClient[C] | C:
        if instance is None:
            return self
        value: C | None = getattr(instance, self.slot, None)
        if value is None:
            value = client(self.service)
            setattr(instance, self.slot, value)
        return value

    def __set__(self, instance: object, value: C) -> None:
        setattr(instance, self.slot, value)


class DynamoTable:
    """Base of the adapters over one DynamoDB table: its name, a client made on first use, and the
    reads every adapter needs (raw items, errors as :class:`TransientError`)."""

    #: BatchGetItem takes at most 100 keys a call.
    BATCH_GET = 100

    def __init__(self, table_name: str, dynamodb: DynamoDBClient | None = None) -> None:
        self.table = table_name
        self._ddb = dynamodb

    ddb: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def get_item(self, key: dict[str, Any], *, consistent: bool, what: str) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.ddb.get_item(TableName=self.table, Key=key, ConsistentRead=consistent)
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, what) from exc
        item: dict[str, Any] | None = response.get("Item")
        return item

    def batch_get_items(
        self, keys: Sequence[dict[str, Any]], *, consistent: bool, what: str
    ) -> list[dict[str, Any]]:
        """The items that exist among ``keys``, unprocessed keys retried with a short backoff."""
        from botocore.exceptions import BotoCoreError, ClientError

        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), self.BATCH_GET):
            pending: dict[str, Any] = {
                self.table: {"Keys": list(keys[start : start + self.BATCH_GET]), "ConsistentRead": consistent}
            }
            for attempt in range(8):
                try:
                    response = self.ddb.batch_get_item(RequestItems=pending)
                except (ClientError, BotoCoreError) as exc:
                    raise as_transient(exc, what) from exc
                found.extend(response.get("Responses", {}).get(self.table, []))
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(0.5, 0.01 * 2**attempt))
            else:
                raise as_transient(RuntimeError("unprocessed keys after 8 attempts"), what)
        return found

    def query_items(self, params: dict[str, Any], *, what: str) -> Iterator[dict[str, Any]]:
        """Every item a Query returns, page after page (``params`` without ``TableName``)."""
        from botocore.exceptions import BotoCoreError, ClientError

        request = {"TableName": self.table, **params}
        while True:
            try:
                response = self.ddb.query(**request)
            except (ClientError, BotoCoreError) as exc:
                raise as_transient(exc, what) from exc
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _serializer():  # type: ignore[no-untyped-def]
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


def _deserializer():  # type: ignore[no-untyped-def]
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    ser = _serializer()
    return {k: ser.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    de = _deserializer()
    out = {k: de.deserialize(v) for k, v in item.items()}
    return {k: _plain(v) for k, v in out.items()}


def _plain(value: Any) -> Any:
    """Decimals back to ints (Herald stores no fractions), recursively."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
