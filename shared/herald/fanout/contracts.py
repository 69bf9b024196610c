"""The JSON Schemas of the fan-out's jobs (``docs/contracts/<name>.schema.json``), written from the models.

``python -m herald.fanout.contracts [DIRECTORY]`` writes them (default ``docs/contracts``, from the
repository's root); ``--check`` writes nothing and exits 1 naming every file that differs from its
model. ``tests/unit/test_contracts.py`` runs the check.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from herald.fanout.jobs import CONTRACTS

DEFAULT_DIRECTORY = Path("docs/contracts")
COMMAND = "python -m herald.fanout.contracts"


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of a job as it is read from the queue (keys by their wire names)."""
    model = CONTRACTS[name]
    document: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{name}.schema.json",
        **model.model_json_schema(by_alias=True, mode="validation"),
    }
    return document


def render(name: str) -> str:
    """The schema file's text: stable (sorted keys, two-space indents, a final newline)."""
    return json.dumps(schema(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def path_of(directory: Path, name: str) -> Path:
    return directory / f"{name}.schema.json"


def stale(directory: Path) -> list[str]:
    """The schema files under ``directory`` that are missing or differ from their models."""
    found = []
    for name in CONTRACTS:
        path = path_of(directory, name)
        if not path.is_file() or path.read_text(encoding="utf-8") != render(name):
            found.append(str(path))
    return found


def write(directory: Path) -> list[Path]:
    """Write every schema file; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACTS:
        path = path_of(directory, name)
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIRECTORY)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is stale")
    args = parser.parse_args(argv)
    if args.check:
        differ = stale(args.directory)
        for path in differ:
            print(f"{path} differs from its model: run `{COMMAND}` to write it again", file=sys.stderr)
        return 1 if differ else 0
    for written in write(args.directory):
        print(written)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
