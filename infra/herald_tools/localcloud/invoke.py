"""``herald invoke``: one function, once, on a running local cloud (as ``sam local invoke -e``).

``herald local`` publishes each function's resolved configuration (code directory, handler,
environment, timeout, layers) as the SSM parameter ``/herald/local/functions/<LogicalId>``; an
invocation reads it back, starts a fresh worker process with the function's local-cloud
environment, hands it the event once and stops it.  The function reaches the same resources as
the local cloud's own invocations do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .functions import FunctionWorker, InvocationResult, LogSink
from .provision import FunctionSpec
from .runtime import BuiltRuntime

FUNCTIONS_PARAMETER_PREFIX = "/herald/local/functions/"
_PUBLISHED = ("logical_id", "name", "arn", "handler", "runtime", "environment", "timeout", "memory_size")


class UnknownFunction(LookupError):
    """No function of the local cloud has that logical id or name."""


def spec_document(spec: FunctionSpec, extra_env: Mapping[str, str]) -> dict[str, Any]:
    """What is published of ``spec``: enough to run it again elsewhere on this machine."""
    data = {k: v for k, v in asdict(spec).items() if k in _PUBLISHED}
    data["code_dir"] = str(spec.code_dir)
    data["layers"] = [str(p) for p in spec.layers]
    data["extra_env"] = dict(extra_env)
    if spec.built is not None:  # herald local --built: the same interpreter and runtime shim
        data["built"] = {"python": spec.built.python, "shim_dir": str(spec.built.shim_dir)}
    return data


def spec_from_document(data: Mapping[str, Any]) -> tuple[FunctionSpec, dict[str, str]]:
    spec = FunctionSpec(
        logical_id=str(data["logical_id"]),
        name=str(data["name"]),
        arn=str(data["arn"]),
        code_dir=Path(data["code_dir"]),
        handler=str(data["handler"]),
        runtime=str(data["runtime"]),
        environment={str(k): str(v) for k, v in dict(data["environment"]).items()},
        timeout=int(data["timeout"]),
        memory_size=int(data["memory_size"]),
        layers=[Path(p) for p in data["layers"]],
    )
    built = data.get("built")
    if built:
        spec.built = BuiltRuntime(python=str(built["python"]), shim_dir=Path(built["shim_dir"]))
    return spec, {str(k): str(v) for k, v in dict(data.get("extra_env") or {}).items()}


def publish_functions(ssm: Any, functions: Mapping[str, FunctionSpec], extra_env: Mapping[str, str]) -> None:
    """One SSM parameter per function (each stays well under the 4 KB of a standard parameter)."""
    for lid, spec in functions.items():
        ssm.put_parameter(
            Name=FUNCTIONS_PARAMETER_PREFIX + lid,
            Value=json.dumps(spec_document(spec, extra_env)),
            Type="String",
            Overwrite=True,
        )


def find_function(ssm: Any, functions: Mapping[str, str], wanted: str) -> tuple[FunctionSpec, dict[str, str]]:
    """The published function whose logical id or name is ``wanted``; UnknownFunction otherwise."""
    lid = wanted if wanted in functions else next((k for k, v in functions.items() if v == wanted), None)
    if lid is None:
        known = ", ".join(f"{k} ({v})" for k, v in sorted(functions.items())) or "none"
        raise UnknownFunction(f"no function {wanted!r} on the local cloud; it has: {known}")
    value = ssm.get_parameter(Name=FUNCTIONS_PARAMETER_PREFIX + lid)["Parameter"]["Value"]
    return spec_from_document(json.loads(value))


def invoke_once(
    spec: FunctionSpec,
    endpoint_url: str,
    event: Any,
    *,
    logs: LogSink,
    extra_env: Mapping[str, str] | None = None,
) -> InvocationResult:
    """Run ``spec``'s handler on ``event`` in a new worker process (a cold start), then stop it."""
    worker = FunctionWorker(spec, endpoint_url, logs=logs, extra_env=extra_env)
    try:
        return worker.invoke(event)
    finally:
        worker.stop()


def error_document(result: InvocationResult) -> dict[str, Any]:
    """The error payload Lambda returns for a failed invocation."""
    return {
        "errorType": result.error_type,
        "errorMessage": result.error_message,
        "requestId": result.request_id,
        "stackTrace": result.stack_trace,
    }
