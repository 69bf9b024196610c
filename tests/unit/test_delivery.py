"""Push delivery outcomes and the retry policy (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from herald.fanout.delivery import (
    MAX_DELAY_S,
    DeliveryResult,
    Outcome,
    RetryPolicy,
    backoff_delay,
    classify_sns_error,
    classify_status,
    http_result,
    network_failure,
    parse_retry_after,
    sns_result,
)

NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (201, Outcome.SENT),
        (200, Outcome.SENT),
        (202, Outcome.SENT),
        (404, Outcome.PRUNE),
        (410, Outcome.PRUNE),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (504, Outcome.RETRY),
        (408, Outcome.RETRY),
        (401, Outcome.AUTH_FAILURE),
        (403, Outcome.AUTH_FAILURE),
        (400, Outcome.FAILED),
        (413, Outcome.FAILED),
        (415, Outcome.FAILED),
        (301, Outcome.FAILED),
    ],
)
def test_http_status_table(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


def test_retry_after_seconds_and_http_dates() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after(" 120 ", NOW) == 120.0
    assert parse_retry_after("Sat, 01 Mar 2025 12:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("Sat, 01 Mar 2025 11:00:00 GMT", NOW) == 0.0  # in the past: now
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_http_result_carries_status_and_retry_after() -> None:
    result = http_result(429, "7", NOW, "slow down")
    assert result == DeliveryResult(Outcome.RETRY, 429, 7.0, "slow down")
    assert not result.ok and http_result(201, None, NOW).ok


def test_network_failures_are_retried() -> None:
    result = network_failure("ConnectTimeoutError: timed out")
    assert result.outcome is Outcome.RETRY and result.status is None


@pytest.mark.parametrize(
    ("code", "message", "outcome"),
    [
        ("EndpointDisabled", "Endpoint is disabled", Outcome.PRUNE),
        (
            "InvalidParameter",
            "Invalid parameter: TargetArn Reason: Endpoint arn:aws:sns:us-east-1:1:endpoint/GCM/a/b"
            " is disabled",
            Outcome.PRUNE,
        ),
        ("InvalidParameter", "Invalid parameter: Message too long", Outcome.FAILED),
        ("NotFound", "Endpoint does not exist", Outcome.PRUNE),
        ("Throttling", "Rate exceeded", Outcome.RETRY),
        ("KMSThrottling", "", Outcome.RETRY),
        ("InternalError", "", Outcome.RETRY),
        ("AuthorizationError", "not authorized", Outcome.AUTH_FAILURE),
        ("PlatformApplicationDisabled", "", Outcome.AUTH_FAILURE),
        ("SomethingNew", "", Outcome.RETRY),
    ],
)
def test_sns_outcomes(code: str, message: str, outcome: Outcome) -> None:
    assert classify_sns_error(code, message) is outcome
    assert sns_result(code, message).outcome is outcome


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    top = lambda: 0.999999  # noqa: E731 - the largest draw
    assert backoff_delay(1, random=top) == pytest.approx(2.0, rel=1e-5)
    assert backoff_delay(3, random=top) == pytest.approx(8.0, rel=1e-5)
    assert backoff_delay(12, random=top) == pytest.approx(MAX_DELAY_S, rel=1e-5)  # 4096 s capped
    assert backoff_delay(10_000, random=top) == pytest.approx(MAX_DELAY_S, rel=1e-5)
    assert backoff_delay(5, random=lambda: 0.0) == 0.0
    assert backoff_delay(5, random=lambda: 0.5) == 16.0


def test_policy_retries_then_gives_up() -> None:
    policy = RetryPolicy(max_attempts=5, random=lambda: 0.5)
    retry = network_failure("reset")
    for attempt in range(1, 5):
        decision = policy.decide(retry, attempt)
        assert decision.retry and decision.outcome is Outcome.RETRY
        assert decision.delay_s == 0.5 * 2**attempt
    final = policy.decide(retry, 5)
    assert final.outcome is Outcome.FAILED and not final.retry


def test_policy_honours_retry_after_within_the_cap() -> None:
    policy = RetryPolicy(random=lambda: 0.5)
    assert policy.decide(http_result(429, "7", NOW), 1).delay_s == 7.0
    assert policy.decide(http_result(503, "86400", NOW), 1).delay_s == MAX_DELAY_S


@pytest.mark.parametrize("status", [201, 404, 410, 401, 403, 400, 413])
def test_policy_passes_final_outcomes_through(status: int) -> None:
    decision = RetryPolicy().decide(http_result(status, None, NOW), 1)
    assert decision.outcome is classify_status(status) and decision.delay_s is None
