"""Attributes of moto's classes and modules replaced in place, and put back as they were.

:mod:`.s3_fidelity`, :mod:`.moto_patches` and :mod:`.moto_locks` each keep one :class:`Patches`.
"""

from __future__ import annotations

from typing import Any

_ABSENT = object()


class Patches:
    """What :meth:`replace` changed, in order; :meth:`restore` puts it back, the last change first.

    The original kept is what the owner itself held (``vars(owner)``), so a staticmethod or a
    property is put back as one, and an attribute the owner only inherited is deleted again.
    """

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def replace(self, owner: Any, name: str, value: Any) -> None:
        self._saved.append((owner, name, vars(owner).get(name, _ABSENT)))
        setattr(owner, name, value)

    def restore(self) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            if original is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, original)

    def __bool__(self) -> bool:
        """Whether anything is replaced right now."""
        return bool(self._saved)
