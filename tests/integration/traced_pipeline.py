"""Every function with tracing on, as a stack deployed with ``Tracing=Active`` runs them.

Not collected on its own (the name does not start with ``test_``): tests/integration/test_tracing.py
runs it with pytest in a child process, in a Lambda-like environment (``LAMBDA_TASK_ROOT``, a sampled
``_X_AMZN_TRACE_ID``), because the X-Ray SDK patches botocore and the standard library for the whole
process. The segments go to a collecting emitter (no daemon, no UDP) and are written as JSON to
``$HERALD_TRACE_OUT`` for the parent to check.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from tests.integration.conftest import ROOT, LambdaContext, load_handler
from tests.integration.fanout_rig import COMMUNITY, Rig, rig_fixture  # noqa: F401

#: What a Lambda function's Python finds besides the layer: the runtime's boto3 and its dependencies.
RUNTIME = ["boto3"]
MARKERS = {"python_version": "3.13", "sys_platform": "linux", "platform_machine": "aarch64"}


def closure(requirements: list[str]) -> set[str]:
    """The distributions ``requirements`` install, dependencies included (as installed here)."""
    found: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = req.name.lower().replace("_", "-")
        if name in found:
            continue
        found.add(name)
        for dep in metadata.requires(req.name) or []:
            parsed = Requirement(dep)
            extras = req.extras or {""}
            if parsed.marker is None or any(parsed.marker.evaluate({**MARKERS, "extra": e}) for e in extras):
                todo.append(parsed)
    return found


def layer_requirements() -> list[str]:
    lines = (ROOT / "shared" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


class Collector:
    """An X-Ray emitter that keeps what it is given instead of sending it to the daemon."""

    def __init__(self) -> None:
        self.entities: list[dict[str, Any]] = []

    def send_entity(self, entity: Any) -> None:
        self.entities.append(json.loads(entity.serialize()))

    def set_daemon_address(self, address: str | None) -> None:
        pass

    @property
    def ip(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return 2000


COLLECTOR = Collector()
IMPORTED: dict[str, list[str]] = {}


@pytest.fixture
def aws_env(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rig's environment with template.yaml's ``Tracing=Active`` variables on top; the tracer
    made here first, so what it imports (and from which distributions) is on record."""
    from herald.core.observability import traced

    monkeypatch.setenv("HERALD_TRACING", "active")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    if "imported" not in IMPORTED:
        before = set(sys.modules)
        traced(lambda event, context: None)
        tops = sorted({m.split(".")[0] for m in set(sys.modules) - before})
        IMPORTED["imported"] = tops
        from aws_xray_sdk.core import xray_recorder

        xray_recorder.configure(emitter=COLLECTOR, sampling=False)


def traced_handlers(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The five functions imported again with template.yaml's ``Tracing=Active`` variables (the rig
    provisions the template with tracing off), the rig's functions replaced by them."""
    monkeypatch.setenv("HERALD_TRACING", "active")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setenv("MEMBER_TOKEN_SECRET_ARN", "unused-here")
    for name in FUNCTIONS:
        sys.modules.pop(f"herald_function_{name}", None)
    apps = {name: load_handler(name) for name in FUNCTIONS}
    rig.ingest, rig.publisher_app = apps["ingest"], apps["publisher"]
    rig.planner_app, rig.sender_app = apps["fanout_planner"], apps["push_sender"]
    rig.ingest.ingest_service.cache_clear()
    rig.use_publisher()
    rig.use_planner()
    rig.use_sender()
    return apps


def handler_subsegments() -> list[dict[str, Any]]:
    """The ``## <handler>`` subsegments sent since the last call (Powertools' subsegment around a
    handler), each with ``calls``: the AWS calls recorded inside it (streamed as their own entities)."""
    sent, COLLECTOR.entities[:] = list(COLLECTOR.entities), []
    handlers = [e for e in sent if str(e.get("name", "")).startswith("## ")]
    for handler in handlers:
        inside = [e for e in sent if e.get("parent_id") == handler["id"]]
        handler["calls"] = sorted({f"{e['name']}.{e.get('aws', {}).get('operation')}" for e in inside})
    return handlers


def test_every_function_runs_traced(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    from herald.api import app as api_app
    from tests.integration.api_events import rest_event

    member = rig.join()
    apps = traced_handlers(rig, monkeypatch)
    handler_subsegments()
    seen: dict[str, list[dict[str, Any]]] = {}

    post_id = rig.post("traced", "The ferry runs every hour on Sunday.")  # ingest
    seen["ingest"] = handler_subsegments()
    response = rig.feed_stream(rig.stream_records())  # the publisher, on the content table's stream
    assert response == {"batchItemFailures": []}, response
    seen["publisher"] = handler_subsegments()
    rig._drain_queue("PLANNER_QUEUE_URL", rig.planner_app)
    seen["fanout_planner"] = handler_subsegments()
    rig._drain_queue("PUSH_JOB_QUEUE_URL", rig.sender_app)
    seen["push_sender"] = handler_subsegments()
    rig.drain()
    assert rig.received_by(member) == [post_id]
    handler_subsegments()

    api_app.configure(None)
    try:
        event = rest_event("GET", f"/communities/{COMMUNITY}/posts/{post_id}")
        response = apps["api"].handler(event, LambdaContext())
    finally:
        api_app.configure(None)
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["delivery"]["sent"] == 1
    seen["api"] = handler_subsegments()

    packages = metadata.packages_distributions()
    layer, runtime = closure(layer_requirements()), closure(RUNTIME)
    missing = {}
    for top in IMPORTED["imported"]:
        dists = {d.lower().replace("_", "-") for d in packages.get(top, [])}
        if dists and not dists & (layer | runtime):
            missing[top] = sorted(dists)
    Path(os.environ["HERALD_TRACE_OUT"]).write_text(
        json.dumps({"imported": IMPORTED["imported"], "not_in_layer": missing, "subsegments": seen}),
        encoding="utf-8",
    )


FUNCTIONS = ("api", "ingest", "publisher", "fanout_planner", "push_sender")
