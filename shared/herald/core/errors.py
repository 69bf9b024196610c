"""A small hierarchy of domain errors.

Adapters translate AWS errors into these (``raise ... from exc``); handlers decide what each means
for the caller: a rejected upload, a retried message, an HTTP status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an upload: where it is (a field, a line, the key) and what it is."""

    loc: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "message": self.message}

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}"


class HeraldError(Exception):
    """Base of every error Herald raises on purpose."""


@dataclass
class InvalidUpload(HeraldError):
    """The upload cannot be published as it is. Permanent: retrying will not help."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__("; ".join(str(p) for p in self.problems))

    @classmethod
    def one(cls, loc: str, message: str) -> InvalidUpload:
        return cls([Problem(loc, message)])


class TransientError(HeraldError):
    """A dependency failed in a way that may pass: the message must be retried, never rejected.

    ``code``: what failed, when it is known (AWS's error code, such as ``ThrottlingException``, or
    the exception's type): for a caller to decide on, never the message.
    """

    def __init__(self, message: str = "", *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class RequestRefused(HeraldError):
    """AWS refused a request Herald built as invalid (an item or key over a limit, a malformed
    parameter). Permanent: the same request fails the same way, so it is never retried; it means
    one of Herald's own checks missed something. ``code``: AWS's error code (``ValidationException``)."""

    def __init__(self, message: str = "", *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class ConcurrentUpdate(HeraldError):
    """Someone else changed the same record between our read and our write.

    ``reasons``: when a transaction was cancelled, the cancellation reason code of each of its
    items, in the order they were sent (``"None"`` for an item that did not fail), so a caller can
    tell which guard failed without reading the message.
    """

    def __init__(self, message: str = "", *, reasons: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.reasons: tuple[str, ...] = tuple(reasons)

    def guard_failed(self, index: int) -> bool:
        """Whether the condition of the transaction's item ``index`` (in the order sent) failed."""
        return 0 <= index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"


class NotFound(HeraldError):
    """The thing asked for does not exist."""
