"""Observability helpers shared by the functions: tracing that costs nothing when it is off,
and identifiers that are safe to log.

Powertools' ``Tracer`` imports the X-Ray SDK (about 290 ms of cold start) even when tracing is
disabled, so the functions ask for it only when the stack turns tracing on (``HERALD_TRACING=active``,
set by template.yaml with ``Tracing: Active``). HeraldLayer carries the SDK (shared/requirements.txt).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from herald.core.settings import Settings

Handler = TypeVar("Handler", bound=Callable[..., Any])


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
