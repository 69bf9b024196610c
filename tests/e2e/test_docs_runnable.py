"""Every shell block README.md and docs/*.md mark as runnable, run against one ``herald local``.

A block is marked by its fence's info string: ```` ```bash runnable ```` (or ``sh``). GitHub
highlights by the first word only, so the marker does not show. Each block runs with
``bash -euo pipefail`` in a fresh temporary directory that holds links to the repository's top-level
files and folders (``.venv/bin/herald`` and ``tests/data/…`` resolve as in a clone; what a block
writes stays in its directory) and ``herald.log``, the running local cloud's log, as if
``herald local --logs herald.log`` had been started there. The environment is a machine without
AWS configuration (no ``AWS_*`` variables, an empty home directory) plus the virtual environment on
``PATH`` and what ``herald local --json`` gives in ``env``. The local cloud runs on free ports; a
block's ``127.0.0.1:4566``, ``:3000`` and ``:8080`` (the defaults the docs show) are rewritten to
them before it runs.

A marked block must exit 0. When the next thing after it (blank lines aside) is a block fenced
```` ```text output ````, each of that block's non-blank lines must be a line of the block's
stdout, in that order (other lines may come between); ``…`` in an expected line stands for any
text.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "architecture.md")]
# What a clone holds that a block may name; built or written things (site/, .aws-sam/) are left out.
LINKED = [
    ".venv",
    "Makefile",
    "README.md",
    "docs",
    "functions",
    "infra",
    "mk",
    "pyproject.toml",
    "samconfig.toml",
    "shared",
    "template.yaml",
    "tests",
]
DEFAULT_PORTS = {"4566": "endpoint_url", "3000": "api_url", "8080": "site_url"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<info>.*?)[ \t]*$")
BLOCK_TIMEOUT_S = 180
pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    script: str
    expected: tuple[str, ...] | None  # the lines of the "output" block after it, if any

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _fenced(path: Path) -> Iterator[tuple[int, str, list[str], int]]:
    """(opening line, info string, body lines, closing line index) of each fenced block of ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        yield i + 1, opening["info"], body, j
        i = j + 1


def blocks(path: Path) -> list[Block]:
    found = list(_fenced(path))
    lines = path.read_text(encoding="utf-8").splitlines()
    result = []
    for n, (line, info, body, end) in enumerate(found):
        words = info.split()
        if words[1:2] != ["runnable"]:
            continue
        assert words[0] in ("bash", "sh"), (
            f"{path.name}:{line}: a runnable block is bash or sh, not {words[0]}"
        )
        expected = None
        following = n + 1 < len(found) and found[n + 1]
        if following and following[1].split() == ["text", "output"]:
            between = lines[end + 1 : following[0] - 1]
            if not any(s.strip() for s in between):
                expected = tuple(s for s in following[2] if s.strip())
        result.append(Block(path, line, "\n".join(body) + "\n", expected))
    return result


ALL_BLOCKS = [block for path in DOCS for block in blocks(path)]


def _matches(expected: str, line: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.strip().split("…"))
    return re.fullmatch(pattern, line.strip()) is not None


def unmatched(expected: tuple[str, ...], stdout: str) -> list[str]:
    """The expected lines not found in ``stdout`` in order (each after the one before)."""
    lines = stdout.splitlines()
    at = 0
    for n, want in enumerate(expected):
        while at < len(lines) and not _matches(want, lines[at]):
            at += 1
        if at == len(lines):
            return list(expected[n:])
        at += 1
    return []


@dataclass
class Local:
    info: dict[str, Any]
    env: dict[str, str]
    log: Path

    def rewrite(self, script: str) -> str:
        """The docs' default addresses replaced by the ports this local cloud runs on."""
        for port, field in DEFAULT_PORTS.items():
            actual = self.info[field].rsplit(":", 1)[1]
            script = re.sub(rf"\b(127\.0\.0\.1|localhost):{port}\b", rf"\g<1>:{actual}", script)
        return script


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    """One ``herald local --json`` on free ports for every block, without AWS configuration."""
    base = tmp_path_factory.mktemp("docs")
    home = base / "home"
    home.mkdir()
    log = base / "herald.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(home)
    local_args = ["local", "--port", "0", "--api-port", "0", "--site-port", "0", "--json", "--logs", str(log)]
    process = subprocess.Popen(
        [sys.executable, "-m", "herald_tools.cli", *local_args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        assert ready, "herald local ended before its ready line"
        info = json.loads(ready)
        # Whatever it prints later must not fill the pipe and stall it.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        venv_bin = str(ROOT / ".venv" / "bin")
        block_env = {
            **env,
            **info["env"],
            "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
            "VIRTUAL_ENV": str(ROOT / ".venv"),
        }
        yield Local(info, block_env, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise


def test_the_docs_mark_their_runnable_blocks() -> None:
    """The marker is found where the docs use it (a typo would silently run nothing)."""
    marked = {block.path.name for block in ALL_BLOCKS}
    assert {"README.md", "local-cloud.md", "runbook.md", "push.md"} <= marked
    for path in DOCS:
        for line, info, _, _ in _fenced(path):
            assert "runnable" not in info.split()[2:] and not info.startswith("runnable"), (
                f"{path.name}:{line}: the marker goes second, after the language: ```bash runnable"
            )


def test_the_output_rule() -> None:
    assert unmatched(("a", "c…e"), "a\nb\ncde\n") == []
    assert unmatched(("c…e", "a"), "a\nb\ncde\n") == ["a"]
    assert unmatched(("b",), "ab\n") == ["b"]


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[block.name for block in ALL_BLOCKS])
def test_block(block: Block, local: Local, tmp_path: Path) -> None:
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "herald.log").symlink_to(local.log)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", local.rewrite(block.script)],
        cwd=tmp_path,
        env=local.env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, (
        f"{block.name} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n"
        f"--- stderr\n{result.stderr[-4000:]}"
    )
    if block.expected is not None:
        missing = unmatched(block.expected, result.stdout)
        assert not missing, (
            f"{block.name}: not in its output, in order: {missing}\n--- stdout\n{result.stdout}"
        )
