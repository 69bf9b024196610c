"""Tracing on (a stack deployed with ``Tracing=Active``): every function runs and is traced, with
only what the layer carries; tracing off: the X-Ray SDK is never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ROOT

FUNCTIONS = ("api", "ingest", "publisher", "fanout_planner", "push_sender")

#: What Lambda sets for a function with active tracing (the trace header of one sampled request).
LAMBDA_TRACED = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_LAMBDA_FUNCTION_NAME": "herald-dev-traced",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


def child_env(**extra: str) -> dict[str, str]:
    """This environment without AWS, Herald, Powertools or pytest settings (an xdist worker's
    included: the child is a pytest run of its own), with ``extra``."""
    prefixes = ("AWS_", "HERALD_", "POWERTOOLS_", "PYTEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**env, **extra}


@pytest.fixture(scope="module")
def traced_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """tests/integration/traced_pipeline.py in a child process (the X-Ray SDK patches botocore and
    the standard library for the whole process); what it recorded."""
    out = tmp_path_factory.mktemp("traced") / "trace.json"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "0", "-x"]
    command.append("tests/integration/traced_pipeline.py")
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=child_env(**LAMBDA_TRACED, HERALD_TRACE_OUT=str(out)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    data: dict[str, Any] = json.loads(Path(out).read_text(encoding="utf-8"))
    return data


def test_tracing_imports_only_what_the_layer_carries(traced_run: dict[str, Any]) -> None:
    # shared/requirements.txt is what `sam build` installs into HeraldLayer; the runtime adds boto3.
    assert "aws_xray_sdk" in traced_run["imported"]
    assert traced_run["not_in_layer"] == {}, (
        "tracing imports modules HeraldLayer does not carry (module: distributions); "
        "add them to shared/requirements.txt"
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_runs_traced_and_sends_its_subsegments(
    traced_run: dict[str, Any], function: str
) -> None:
    handlers = traced_run["subsegments"][function]
    assert handlers, f"{function}: no subsegment around the handler was sent"
    for handler in handlers:
        assert handler["name"] == "## _handler"
        assert handler["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
        assert handler["annotations"]["Service"] == "herald"
        assert "error" not in handler and "fault" not in handler, handler
    calls = {call for handler in handlers for call in handler["calls"]}
    expected = {
        "ingest": "s3.GetObject",
        "publisher": "sqs.SendMessageBatch",
        "fanout_planner": "sqs.SendMessageBatch",
        "push_sender": "dynamodb.UpdateItem",
        "api": "dynamodb.GetItem",
    }[function]
    assert expected in calls, sorted(calls)


def test_with_tracing_off_no_function_imports_the_xray_sdk() -> None:
    script = (
        "import sys\n"
        "from tests.integration.conftest import load_handler\n"
        f"for name in {FUNCTIONS!r}:\n"
        "    app = load_handler(name)\n"
        "    assert app.handler is app._handler, name  # untouched: no tracer around it\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('aws_xray_sdk', 'wrapt'))\n"
        "assert not loaded, loaded\n"
    )
    env = child_env(**LAMBDA_TRACED, HERALD_TRACING="off", POWERTOOLS_TRACE_DISABLED="true")
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
