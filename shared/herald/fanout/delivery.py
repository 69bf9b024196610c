"""What a push delivery attempt came to, and when to try again (pure: no I/O, clock and randomness handed in).

Every attempt, Web Push (an HTTP status from the push service, RFC 8030) or mobile (an SNS
``Publish`` error code), ends in one :class:`Outcome`:

=================  ================================================================================
``sent``           the push service accepted the message (201, also 200 and 202)
``prune``          the subscription is gone (404, 410; SNS ``EndpointDisabled``): delete it, the
                   member keeps their membership
``retry``          try again later (429, 5xx, 408, network errors and timeouts; SNS throttling):
                   after ``Retry-After`` when the service sent one, else exponential backoff
``auth_failure``   the push service refused our credentials (401, 403): prune nothing; counted per
                   push service (a stranger's own endpoint can answer 401 too: only a broad failure
                   of known push services raises the alarm, see :class:`BroadFailureRule`)
``failed``         the message itself is wrong (400, 413, other 4xx), or retries ran out: give up
=================  ================================================================================
"""

from __future__ import annotations

import datetime as dt
import functools
import random as _random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
    seconds when the service sent one, a short detail for the logs, and how many bytes of the
    answer's body were read (None when none came)."""

    outcome: Outcome
    status: int | None = None
    retry_after_s: float | None = None
    detail: str = ""
    response_bytes: int | None = None

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


# ----------------------------------------------------------------------------- push services


#: The push services browsers subscribe with, by host: Chrome and Edge on Android and desktop (FCM),
#: Firefox (Mozilla's autopush), Safari (Apple), Edge on Windows (WNS). Anything else is ``other``:
#: a host Herald does not know, which may well be a stranger's own server.
KNOWN_PUSH_SERVICES: tuple[tuple[str, str], ...] = (
    ("fcm.googleapis.com", "fcm"),
    ("push.services.mozilla.com", "mozilla"),
    ("push.apple.com", "apple"),
    ("notify.windows.com", "windows"),
)
WEB_PUSH_SERVICES: tuple[str, ...] = tuple(name for _, name in KNOWN_PUSH_SERVICES)
OTHER_SERVICE = "other"


def push_service(endpoint: str) -> str:
    """The push service of a Web Push endpoint: ``fcm``, ``mozilla``, ``apple``, ``windows`` or ``other``.

    A label of low cardinality for metrics: a host is known when it is one of the services' hosts
    or a subdomain of it (``wns2-par02p.notify.windows.com``); ``fcm.googleapis.com.evil.example``
    and ``evilfcm.googleapis.com`` are ``other``. Asked once per push: the answer is kept per
    authority (the part of the URL between ``//`` and the path), which is all it depends on.
    """
    found = _AUTHORITY.match(endpoint)
    if found is None:
        return _service_of_url(endpoint)
    return _service_of_authority(found.group(1))


#: A URL's scheme and authority (``scheme://authority``), the authority ending where urlsplit ends it.
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")


@functools.lru_cache(maxsize=1024)
def _service_of_authority(authority: str) -> str:
    return _service_of_url("//" + authority)


def _service_of_url(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return OTHER_SERVICE
    for suffix, name in KNOWN_PUSH_SERVICES:
        if host == suffix or host.endswith("." + suffix):
            return name
    return OTHER_SERVICE


#: Outcomes that say nothing against the push service: it took the message, or told us the
#: subscription is gone (what an unsubscribed browser looks like).
_SERVICE_OK = frozenset({Outcome.SENT, Outcome.PRUNE})


@dataclass
class ServiceTally:
    """Attempts and failed attempts per push service (``push_service`` labels, ``sns`` for mobile).

    A failed attempt is anything but ``sent`` or ``prune``: an auth failure, a refusal, a retry (5xx,
    429, no answer). Counted per attempt, not per member, so a service that fails broadly shows as a
    high share of its own attempts, and a stranger's endpoint that answers 401, 403 or 400 shows
    only under ``other``.
    """

    attempts: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    auth_failures: dict[str, int] = field(default_factory=dict)

    def add(self, service: str, outcome: Outcome) -> None:
        self.attempts[service] = self.attempts.get(service, 0) + 1
        if outcome not in _SERVICE_OK:
            self.failures[service] = self.failures.get(service, 0) + 1
        if outcome is Outcome.AUTH_FAILURE:
            self.auth_failures[service] = self.auth_failures.get(service, 0) + 1

    def merge(self, other: ServiceTally) -> None:
        for mine, theirs in (
            (self.attempts, other.attempts),
            (self.failures, other.failures),
            (self.auth_failures, other.auth_failures),
        ):
            for service, n in theirs.items():
                mine[service] = mine.get(service, 0) + n

    def rows(self) -> list[tuple[str, int, int]]:
        """(service, attempts, failures), by service name."""
        return [(s, self.attempts[s], self.failures.get(s, 0)) for s in sorted(self.attempts)]

    def share(self, service: str) -> float:
        attempts = self.attempts.get(service, 0)
        return self.failures.get(service, 0) / attempts if attempts else 0.0


@dataclass(frozen=True)
class BroadFailureRule:
    """When push services are failing Herald, not one subscriber: what ``PushServicesFailingAlarm``
    computes from the ``WebPushAttempts``/``WebPushFailures`` metrics (keep the two in step).

    A known service is *failing* when at least ``share`` of its attempts failed, over at least
    ``min_attempts`` attempts. The alarm fires when ``services`` known services are failing at once
    (a refused VAPID key, a network problem of Herald's own: it shows everywhere), or one known
    service is failing over at least ``single_min_attempts`` attempts with ``single_share``.
    ``other`` never counts: a stranger controls what their own endpoint answers.
    """

    share: float = 0.5
    min_attempts: int = 20
    services: int = 2
    single_share: float = 0.9
    single_min_attempts: int = 500

    def failing(self, tally: ServiceTally, services: Iterable[str] = WEB_PUSH_SERVICES) -> list[str]:
        return [
            s
            for s in services
            if tally.attempts.get(s, 0) >= self.min_attempts and tally.share(s) >= self.share
        ]

    def fires(self, tally: ServiceTally, services: Iterable[str] = WEB_PUSH_SERVICES) -> bool:
        known = list(services)
        if len(self.failing(tally, known)) >= self.services:
            return True
        return any(
            tally.attempts.get(s, 0) >= self.single_min_attempts and tally.share(s) >= self.single_share
            for s in known
        )
