"""Observability helpers shared by the functions: tracing that costs nothing when it is off,
and identifiers that are safe to log.

Powertools' ``Tracer`` imports the X-Ray SDK (about 290 ms of cold start) even when tracing is
disabled, so the functions ask for it only when the stack turns tracing on (``HERALD_TRACING=active``,
set by template.yaml with ``Tracing: Active``). HeraldLayer carries the SDK (shared/requirements.txt).
Whether it is on is read from the environment as it is, not through a pydantic settings model: a
handler decides at import time, and pydantic is not what every handler's import needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from herald.core.runtime import environment

Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``HERALD_TRACING``: ``active`` (any case, any surrounding spaces) turns tracing on; anything
    else, or unset, leaves it off."""
    return environment(environ).get("HERALD_TRACING", "").strip().lower() == "active"


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
