"""What a handler's import loads (each in a fresh interpreter, as Lambda imports it), the quiet
metrics every function publishes through, and Herald's SQS record model against Powertools'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from herald.core.metrics import Metrics
from herald.core.sqs import SqsRecordModel

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))

_PROBE = """
import json, sys
import app
assert callable(app.handler)
print(json.dumps(sorted(sys.modules)))
"""


def imported_by(function: str, **env: str) -> set[str]:
    """The modules loaded by ``import app`` in ``functions/<function>``, in a fresh interpreter."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "POWERTOOLS_"))}
    variables.update(
        {
            "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "herald",
            "POWERTOOLS_METRICS_NAMESPACE": "Herald",
            **env,
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT / "functions" / function,
        env=variables,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _tracing(modules: set[str]) -> set[str]:
    return {m for m in modules if m == "aws_xray_sdk" or m.startswith("aws_xray_sdk.")}


def test_the_seven_functions_are_probed() -> None:
    assert FUNCTIONS == [
        "api",
        "fanout_planner",
        "ingest",
        "member_counter",
        "publisher",
        "push_sender",
        "translator",
    ]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_handler_with_tracing_off_imports_no_tracer_and_no_client(function: str) -> None:
    modules = imported_by(function, HERALD_TRACING="off", POWERTOOLS_TRACE_DISABLED="true")
    assert _tracing(modules) == set()
    assert "boto3" not in modules  # clients are made on the first record
    # Powertools' parser package (its parse and event_parser): the SQS record model is Herald's own.
    assert "aws_lambda_powertools.utilities.parser" not in modules


def test_tracing_on_does_import_the_tracer() -> None:
    """The counterpart of the test above: the probe sees the X-Ray SDK when a handler loads it."""
    modules = imported_by("member_counter", HERALD_TRACING="active", POWERTOOLS_TRACE_DISABLED="false")
    assert "aws_xray_sdk.core" in modules


@pytest.mark.parametrize("function", ["ingest", "publisher", "fanout_planner", "push_sender", "translator"])
def test_deciding_on_tracing_needs_no_pydantic(function: str) -> None:
    """These handlers need pydantic only on their first record (settings, events, models)."""
    modules = imported_by(function, HERALD_TRACING="off")
    assert "pydantic" not in modules and "herald.core.settings" not in modules


# ----------------------------------------------------------------------------- metrics


@pytest.fixture(autouse=True)
def _no_metrics_left() -> Any:
    """Powertools' metric set is one per process, shared by every ``Metrics``: start empty."""
    Metrics().clear_metrics()
    yield
    Metrics().clear_metrics()


def _invoke(metrics: Metrics, body: Any, **options: Any) -> None:
    @metrics.log_metrics(**options)
    def handler(event: dict[str, Any], context: object) -> None:
        body(metrics)

    handler({}, None)


def _emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_an_invocation_without_metrics_publishes_nothing_and_warns_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Herald")
    metrics = Metrics(service="herald")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _invoke(metrics, lambda m: None)
    assert [str(w.message) for w in caught] == []
    assert _emf(capsys.readouterr().out) == []


def test_metrics_added_are_published_as_before(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.metrics import Metrics as PowertoolsMetrics

    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Herald")

    def publish(m: Any) -> None:
        m.add_dimension(name="push_service", value="fcm")
        m.add_metric(name="PostsPublished", unit="Count", value=2)

    documents = []
    for metrics in (Metrics(service="herald"), PowertoolsMetrics(service="herald")):
        _invoke(metrics, publish)
        [document] = _emf(capsys.readouterr().out)
        del document["_aws"]["Timestamp"]
        documents.append(document)
    assert documents[0] == documents[1]
    assert documents[0]["PostsPublished"] == [2.0] and documents[0]["service"] == "herald"
    assert documents[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Herald"
    _invoke(Metrics(service="herald"), lambda m: None)  # the flush cleared the set: nothing again
    assert _emf(capsys.readouterr().out) == []


def test_raise_on_empty_metrics_still_raises() -> None:
    from aws_lambda_powertools.metrics.exceptions import SchemaValidationError

    metrics = Metrics(service="herald", namespace="Herald")
    with pytest.raises(SchemaValidationError):
        _invoke(metrics, lambda m: None, raise_on_empty_metrics=True)


def test_other_metrics_warnings_still_show() -> None:
    metrics = Metrics(service="herald", namespace="Herald")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics.set_timestamp(0)  # 1970: CloudWatch would drop the metric
    assert any("will be skipped" in str(w.message) for w in caught)
    metrics.clear_metrics()


# ----------------------------------------------------------------------------- the SQS record


def _shape(schema: Any) -> Any:
    """A JSON schema without its documentation (descriptions, examples, titles)."""
    if isinstance(schema, dict):
        return {k: _shape(v) for k, v in schema.items() if k not in ("description", "examples", "title")}
    if isinstance(schema, list):
        return [_shape(v) for v in schema]
    return schema


def test_heralds_sqs_record_is_powertools_record() -> None:
    from aws_lambda_powertools.utilities.parser.models import SqsRecordModel as PowertoolsRecord

    assert _shape(SqsRecordModel.model_json_schema()) == _shape(PowertoolsRecord.model_json_schema())


def test_an_sqs_record_validates_as_lambda_sends_it() -> None:
    record = {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": '{"x": 1}',
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1545082649183",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1545082649185",
        },
        "messageAttributes": {"k": {"stringValue": "v", "dataType": "String"}},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }
    parsed = SqsRecordModel.model_validate(record)
    assert parsed.attributes.SentTimestamp.year == 2018 and parsed.messageAttributes["k"].stringValue == "v"
    with pytest.raises(ValueError):
        SqsRecordModel.model_validate({**record, "eventSource": "aws:sns"})
