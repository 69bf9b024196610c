"""The runtime of ``herald local --built``: the Lambda Python, the built artefacts, and a shim.

By default a function's worker runs on the interpreter of the local cloud itself (the venv), with
the checkout's ``herald_tools`` on its path for the worker module. Built, it runs as Lambda runs
it: on the interpreter of the function's ``Runtime`` (python3.13), started with ``-S`` so that no
site-packages directory is on its path, and ``PYTHONPATH`` holding only the function's artifact
directory, the layers' ``python/`` directories and :func:`write_shim`'s directory, which holds
nothing but a copy of the worker module under a name of its own (the stand-in for Lambda's
runtime interface client). What the function imports can then come from nowhere but what
``sam build`` built.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import worker

#: The worker module's name in the shim directory: no package of the checkout comes with it.
SHIM_MODULE = "herald_lambda_runtime"


@dataclass(frozen=True)
class BuiltRuntime:
    """The interpreter a built function's worker runs on, and the directory of the runtime shim."""

    python: str
    shim_dir: Path

    def command(self) -> list[str]:
        """The worker's command line, before its arguments (``-S``: no site-packages on the path)."""
        return [self.python, "-S", "-m", SHIM_MODULE]


def write_shim(directory: str | Path | None = None) -> Path:
    """A directory (``directory``, or a new temporary one) holding only the runtime shim."""
    target = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="herald-runtime-"))
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(worker.__file__, target / f"{SHIM_MODULE}.py")
    return target
