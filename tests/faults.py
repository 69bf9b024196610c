"""Injected faults that must happen: each counts its firings, and a test fails if one it armed
never fired.

A fault injected where the code never goes proves nothing: the test stays green and tests nothing.
So every fault the tests inject is a :class:`Fault`. Made during a test, it is *armed*; the
``injected_faults_fire`` fixture (tests/conftest.py, for every test) fails the test at teardown
if an armed fault never fired. Nothing needs remembering in a test: arming is making one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

_armed: list[Fault] = []
_lock = threading.Lock()


class Crash(BaseException):
    """What a fault wrapper raises to stand for the process dying (not an ``Exception``: none is caught)."""


class Fault:
    """One injected fault, armed as it is made; :meth:`fire` counts each time it happens."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._fired = 0
        with _lock:
            _armed.append(self)

    @property
    def fired(self) -> int:
        """How many times the fault happened."""
        return self._fired

    def fire(self) -> None:
        with _lock:
            self._fired += 1

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.what}: fired {self.fired}>"


def disarm_all() -> list[Fault]:
    """The faults armed so far, forgotten from here on (the fixture calls it at each test's ends)."""
    with _lock:
        armed = list(_armed)
        _armed.clear()
    return armed


def never_fired(faults: Sequence[Fault]) -> list[Fault]:
    return [f for f in faults if f.fired == 0]


class FaultyCalls(Fault):
    """Wraps an object; the ``nth`` call (1-based) of ``method`` raises ``error`` (``after``: once it ran)."""

    def __init__(
        self,
        inner: Any,
        method: str,
        nth: int | Sequence[int],
        error: Callable[[], BaseException] = lambda: Crash("injected"),
        *,
        after: bool = False,
    ) -> None:
        self._nth = {nth} if isinstance(nth, int) else set(nth)
        super().__init__(f"{type(inner).__name__}.{method} raising on call {sorted(self._nth)}")
        self._inner = inner
        self._method = method
        self._error = error
        self._after = after
        self._calls = 0
        self._calls_lock = threading.Lock()

    @property
    def calls(self) -> int:
        return self._calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self._calls_lock:
                self._calls += 1
                fire = self._calls in self._nth
            if fire and not self._after:
                self.fire()
                raise self._error()
            result = attr(*args, **kwargs)
            if fire:
                self.fire()
                raise self._error()
            return result

        return wrapped


class ProgrammedAnswer(Fault):
    """An answer programmed into the local push service (``respond_with``, ``misbehave``): it fired
    once the service answered a push to its subscription (to any, for None) with a programmed one."""

    def __init__(self, push: Any, subscription_id: str | None, what: str, faulted_before: int) -> None:
        super().__init__(what)
        self._push = push
        self._subscription_id = subscription_id
        self._before = faulted_before

    @property
    def fired(self) -> int:
        return max(0, faulted(self._push, self._subscription_id) - self._before)


def faulted(push: Any, subscription_id: str | None) -> int:
    """The push service's count of programmed answers given (to one subscription, or in all)."""
    stats = push.stats()
    if subscription_id is None:
        return int(stats["faulted"])
    return int(stats["by_subscription"].get(subscription_id, {}).get("faulted", 0))


def arming(program: Callable[..., None]) -> Callable[..., None]:
    """``LocalPushService.respond_with`` or ``misbehave``, arming a :class:`ProgrammedAnswer` for
    each answer it programs (what it does is unchanged)."""

    def programmed(push: Any, subscription_id: str | None, *args: Any, **kwargs: Any) -> None:
        before = faulted(push, subscription_id)
        program(push, subscription_id, *args, **kwargs)
        shown = ", ".join(
            [repr(subscription_id), *map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())]
        )
        ProgrammedAnswer(push, subscription_id, f"push service {program.__name__}({shown})", before)

    return programmed
