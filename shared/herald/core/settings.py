"""The one way Herald reads its configuration: a function's environment, validated by pydantic.

Every function's settings class derives from :class:`Settings`. A field ``name`` is read from the
environment variable ``NAME`` (the names template.yaml sets); a variable that is not set leaves the
field's default. Nothing else in Herald reads ``os.environ`` for configuration: the environment
itself comes from :func:`environment` (in :mod:`herald.core.runtime`, which a handler can import
without pydantic: whether tracing is on is read from it at import time).

(Plain pydantic rather than pydantic-settings: that package is not in the Lambda layer, and the
rule above is all Herald needs.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from herald.core.runtime import environment

__all__ = ["Settings", "environment"]


class Settings(BaseModel):
    """A function's environment (names as in template.yaml), read once and frozen."""

    model_config = ConfigDict(frozen=True)

    #: Whether a variable set to the empty string counts as unset (its field keeps the default).
    env_ignore_empty: ClassVar[bool] = False

    @classmethod
    def env_values(cls, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The fields' values as the environment gives them (``name`` from ``NAME``), unvalidated."""
        env = environment(environ)
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            value = env.get(name.upper())
            if value is None or (cls.env_ignore_empty and not value):
                continue
            values[name] = value
        return values

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from ``environ`` (default: the process's environment); ``ValidationError``
        (a ``ValueError``) names every variable that is wrong."""
        return cls.model_validate(cls.env_values(environ))
