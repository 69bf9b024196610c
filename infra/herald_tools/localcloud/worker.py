"""A Lambda execution environment for one function: ``python -m herald_tools.localcloud.worker``.

    python -m herald_tools.localcloud.worker CODE_DIR HANDLER --in-fd N --out-fd M

The handler's module is imported once (the cold start); then each request read from
``--in-fd`` (one JSON object per line: ``{"id", "event", "deadline_ms", "request_id"}``)
is answered on ``--out-fd`` with one JSON line: ``{"id", "ok": true, "result"}`` or
``{"id", "ok": false, "errorType", "errorMessage", "stackTrace"}``.  The function's own
stdout and stderr never carry the protocol, so its logs cannot corrupt it.
The first line written is ``{"ready": true}`` or ``{"ready": false, "errorType", ...}``.
"""

from __future__ import annotations

import argparse
import decimal
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes and method of the context object AWS's Python runtime passes."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.invoked_function_arn = os.environ.get("HERALD_LOCAL_FUNCTION_ARN", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "ok": False,
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="herald_tools.localcloud.worker")
    parser.add_argument("code_dir")
    parser.add_argument("handler")
    parser.add_argument("--in-fd", type=int, required=True)
    parser.add_argument("--out-fd", type=int, required=True)
    args = parser.parse_args(argv)

    requests = os.fdopen(args.in_fd, "r", encoding="utf-8")
    responses = os.fdopen(args.out_fd, "w", encoding="utf-8")

    def reply(message: dict[str, Any]) -> None:
        responses.write(json.dumps(message, default=_json_default) + "\n")
        responses.flush()

    # Lambda puts the task root first on the path and runs from it.
    sys.path.insert(0, args.code_dir)
    os.chdir(args.code_dir)
    module_name, _, function_name = args.handler.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        handler = getattr(module, function_name)
    except Exception as exc:
        error_type = (
            "Runtime.ImportModuleError" if isinstance(exc, ImportError) else "Runtime.HandlerNotFound"
        )
        reply({"ready": False, **_error(exc, error_type)})
        return 1
    reply({"ready": True})

    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        context = LambdaContext(request["request_id"], int(request["deadline_ms"]))
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id", "")
        try:
            result = handler(request["event"], context)
            try:
                message = {"id": request["id"], "ok": True, "result": result}
                json.dumps(message, default=_json_default)
            except (TypeError, ValueError) as exc:
                message = {"id": request["id"], **_error(exc, "Runtime.MarshalError")}
        except Exception as exc:
            message = {"id": request["id"], **_error(exc)}
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        reply(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
