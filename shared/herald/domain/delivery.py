"""What a push delivery attempt came to, and when to try again (pure: no I/O, clock and randomness handed in).

Every attempt, Web Push (an HTTP status from the push service, RFC 8030) or mobile (an SNS
``Publish`` error code), ends in one :class:`Outcome`:

=================  ================================================================================
``sent``           the push service accepted the message (201, also 200 and 202)
``prune``          the subscription is gone (404, 410; SNS ``EndpointDisabled``): delete it, the
                   member keeps their membership
``retry``          try again later (429, 5xx, 408, network errors and timeouts; SNS throttling):
                   after ``Retry-After`` when the service sent one, else exponential backoff
``auth_failure``   the push service refused our credentials (401, 403): raise the alarm, prune
                   nothing, the subscriptions are not at fault
``failed``         the message itself is wrong (400, 413, other 4xx), or retries ran out: give up
=================  ================================================================================
"""

from __future__ import annotations

import datetime as dt
import random as _random
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum


class Outcome(StrEnum):
    """The classified result of one delivery attempt."""

    SENT = "sent"
    PRUNE = "prune"
    RETRY = "retry"
    AUTH_FAILURE = "auth_failure"
    FAILED = "failed"


#: The longest wait between two attempts: also the longest delay an SQS message can carry,
#: so a retry can always be scheduled by sending the message back with ``DelaySeconds``.
MAX_DELAY_S = 15 * 60


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """One attempt: the outcome, the HTTP status (None when no response came), ``Retry-After`` in
    seconds when the service sent one, and a short detail for the logs."""

    outcome: Outcome
    status: int | None = None
    retry_after_s: float | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SENT


def classify_status(status: int) -> Outcome:
    """The outcome of a push service's HTTP answer (RFC 8030 section 5, RFC 8292 section 4)."""
    if status in (200, 201, 202):
        return Outcome.SENT
    if status in (404, 410):
        return Outcome.PRUNE
    if status in (401, 403):
        return Outcome.AUTH_FAILURE
    # 408: the service gave up waiting for our request, nothing is wrong with the message.
    if status in (408, 429) or 500 <= status <= 599:
        return Outcome.RETRY
    return Outcome.FAILED


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date (RFC 9110 10.2.3).

    A date in the past gives 0; a value that is neither gives None (the caller backs off instead).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def http_result(status: int, retry_after: str | None, now: dt.datetime, detail: str = "") -> DeliveryResult:
    """A :class:`DeliveryResult` from a push service's status and ``Retry-After`` header."""
    return DeliveryResult(
        outcome=classify_status(status),
        status=status,
        retry_after_s=parse_retry_after(retry_after, now),
        detail=detail,
    )


def network_failure(detail: str) -> DeliveryResult:
    """No answer (refused, reset, timed out, DNS): the service may be fine a moment later."""
    return DeliveryResult(outcome=Outcome.RETRY, status=None, detail=detail)


_SNS_DISABLED = re.compile(r"endpoint\b.*\bis disabled", re.IGNORECASE | re.DOTALL)
_SNS_AUTH = frozenset(
    {"AuthorizationError", "PlatformApplicationDisabled", "AccessDenied", "AccessDeniedException"}
)


def classify_sns_error(code: str, message: str = "") -> Outcome:
    """The outcome of an SNS ``Publish`` to a platform endpoint that raised ``code``.

    SNS disables an endpoint when FCM or APNs report the token dead; a publish to it fails with
    ``EndpointDisabled`` (or ``InvalidParameter`` saying "Endpoint ... is disabled"). An
    unknown code is retried: the policy bounds how often.
    """
    if code in ("EndpointDisabled", "NotFound"):
        return Outcome.PRUNE
    if code in ("InvalidParameter", "InvalidParameterValue"):
        return Outcome.PRUNE if _SNS_DISABLED.search(message) else Outcome.FAILED
    if code in _SNS_AUTH:
        return Outcome.AUTH_FAILURE
    # Throttling, KMSThrottling, InternalError and anything unknown: later may well work.
    return Outcome.RETRY


def sns_result(code: str, message: str = "") -> DeliveryResult:
    """A :class:`DeliveryResult` for a failed SNS publish (a successful one is ``Outcome.SENT``)."""
    return DeliveryResult(outcome=classify_sns_error(code, message), detail=f"{code}: {message}"[:300])


def backoff_delay(
    attempt: int,
    *,
    base_s: float = 1.0,
    cap_s: float = MAX_DELAY_S,
    random: Callable[[], float] = _random.random,
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)).

    ``attempt`` counts from 1 (the attempt that just failed). Full jitter spreads the retries of a
    fan-out that failed all at once (a push service's 5xx burst) instead of sending them back in step.
    """
    exponent = max(0, min(attempt, 32))  # 2**32 s is far past any cap; keeps the float finite
    return random() * min(cap_s, base_s * (2.0**exponent))


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after an attempt: the final outcome when ``delay_s`` is None, else retry after it."""

    outcome: Outcome
    delay_s: float | None = None

    @property
    def retry(self) -> bool:
        return self.delay_s is not None


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again and when to give up.

    A ``retry`` outcome is retried until ``max_attempts`` attempts were made, then it is ``failed``.
    The wait is the service's ``Retry-After`` when it sent one, else :func:`backoff_delay`; either
    way at most ``cap_s``.
    """

    max_attempts: int = 5
    base_s: float = 1.0
    cap_s: float = MAX_DELAY_S
    random: Callable[[], float] = _random.random

    def decide(self, result: DeliveryResult, attempt: int) -> RetryDecision:
        """The decision after ``attempt`` (1 for the first) ended in ``result``."""
        if result.outcome is not Outcome.RETRY:
            return RetryDecision(result.outcome)
        if attempt >= self.max_attempts:
            return RetryDecision(Outcome.FAILED)
        if result.retry_after_s is not None:
            return RetryDecision(Outcome.RETRY, min(self.cap_s, max(0.0, result.retry_after_s)))
        delay = backoff_delay(attempt, base_s=self.base_s, cap_s=self.cap_s, random=self.random)
        return RetryDecision(Outcome.RETRY, delay)
