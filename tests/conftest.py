"""For every test: the faults it injects must fire (:mod:`tests.faults`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from herald_tools.localcloud.pushservice import LocalPushService
from tests import faults


@pytest.fixture(autouse=True)
def injected_faults_fire(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fails the test at teardown if a fault armed during it never fired: the test would be green
    without testing what it says. The faults are the :class:`tests.faults.Fault` wrappers and the
    answers programmed into the local push service (each ``respond_with`` and ``misbehave``)."""
    for name in ("respond_with", "misbehave"):
        monkeypatch.setattr(LocalPushService, name, faults.arming(getattr(LocalPushService, name)))
    faults.disarm_all()
    yield
    if never := faults.never_fired(faults.disarm_all()):
        pytest.fail("injected fault(s) that never fired: " + "; ".join(map(repr, never)), pytrace=False)
