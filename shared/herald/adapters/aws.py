"""Creating boto3 clients lazily, and translating their errors into domain errors."""

from __future__ import annotations

from functools import cache
from typing import Any

from herald.domain.errors import TransientError

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


def as_transient(exc: Exception, what: str) -> TransientError:
    return TransientError(f"{what}: {error_code(exc) or type(exc).__name__}: {exc}")


class DynamoTable:
    """Base of the adapters over one DynamoDB table: its name, and a client made on first use."""

    def __init__(self, table_name: str, dynamodb: Any | None = None) -> None:
        self.table = table_name
        self._ddb = dynamodb

    @property
    def ddb(self) -> Any:
        if self._ddb is None:
            self._ddb = client("dynamodb")
        return self._ddb
