"""The functions' metrics: an invocation that counted nothing logs no warning."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Metrics

from herald.core.observability import function_metrics


def _invoke(metrics: Metrics) -> None:
    @metrics.log_metrics
    def handler(event: dict[str, object], context: object) -> str:
        return "done"

    assert handler({}, None) == "done"


def test_an_invocation_without_metrics_warns_with_plain_powertools() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _invoke(Metrics(namespace="Herald"))
    assert any("No application metrics to publish" in str(w.message) for w in caught)


def test_an_invocation_without_metrics_is_quiet_with_the_functions_metrics(monkeypatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Herald")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _invoke(function_metrics())
    assert [str(w.message) for w in caught] == []
