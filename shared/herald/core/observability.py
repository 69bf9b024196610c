"""Observability helpers shared by the functions: tracing that costs nothing when it is off,
and identifiers that are safe to log.

Powertools' ``Tracer`` imports the X-Ray SDK (about 290 ms of cold start) even when tracing is
disabled, so the functions ask for it only when the stack turns tracing on (``HERALD_TRACING=active``,
set by template.yaml with ``Tracing: Active``). HeraldLayer carries the SDK (shared/requirements.txt).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from herald.core.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

Handler = TypeVar("Handler", bound=Callable[..., Any])

#: What Powertools says, once per invocation, when a handler published no metric of its own (a
#: batch with nothing to count is normal: an S3 test event, a stream batch of records it skips).
_EMPTY_METRICS = "No application metrics to publish"


class TracingSettings(Settings):
    """``HERALD_TRACING``: ``active`` turns tracing on; anything else, or unset, leaves it off."""

    herald_tracing: str = ""


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    return TracingSettings.from_env(environ).herald_tracing.strip().lower() == "active"


def traced(handler: Handler) -> Handler:
    """``handler`` under Powertools' Tracer when tracing is on; ``handler`` itself, untouched, when off."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    return Tracer().capture_lambda_handler(handler)  # type: ignore[return-value]


def hashed(identifier: str | None) -> str | None:
    """A member identifier as it may appear in logs: a short, stable, one-way hash."""
    if identifier is None:
        return None
    return "h:" + hashlib.sha256(identifier.encode()).hexdigest()[:16]


def function_metrics() -> Metrics:
    """The function's Powertools ``Metrics``, without the warning Powertools logs for every
    invocation that published no metric (noise in every log group, not a fault)."""
    from aws_lambda_powertools import Metrics

    warnings.filterwarnings("ignore", message=_EMPTY_METRICS, category=UserWarning)
    return Metrics()
