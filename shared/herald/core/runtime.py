"""What a function builds once per execution environment, and how tests swap it; the process's
environment, the one place it is read (without pydantic, so that a handler's import need not load it)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


def environment(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """``environ`` if given, else the process's environment: the one place it is read."""
    return os.environ if environ is None else environ


class Lazy(Generic[T]):
    """A value built on first use (clients, settings, services) and kept while the environment lives.

    ``configure(factory)`` makes the next call build with ``factory`` instead (tests, benchmarks);
    ``configure(None)`` goes back to the default. Thread-safe: concurrent first calls build once.
    """

    def __init__(self, default: Callable[[], T], on_configure: Callable[[], None] | None = None) -> None:
        self._default = default
        self._on_configure = on_configure
        self._factory: Callable[[], T] | None = None
        self._value: T | None = None
        self._lock = threading.Lock()

    def __call__(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = (self._factory or self._default)()
                value = self._value
        return value

    def configure(self, factory: Callable[[], T] | None) -> None:
        with self._lock:
            self._factory, self._value = factory, None
        if self._on_configure is not None:
            self._on_configure()
