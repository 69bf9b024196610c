"""The host twin of the built Lambda artefacts: ``make build-host`` (``python -m herald_tools.built``).

``sam build`` builds HeraldLayer for Lambda's arm64, so its compiled wheels (pydantic_core,
cryptography, numpy, ...) cannot load on an x86_64 machine. The twin, in ``.aws-sam/build-host``, is
the same artefacts for this machine, made from nothing but what is in ``.aws-sam/build``:

- each layer: every file as built, except the files of the distributions with compiled code
  (a WHEEL tag whose platform is not ``any``), which are installed again, at exactly the versions
  their ``*.dist-info`` name, for this machine and the Lambda Python (``pip install --no-deps
  --only-binary=:all: --python-version 3.13 --implementation cp --platform <this machine's tags>``),
  less any file the build pruned from them;
- each function's artifact directory, and the built template, unchanged.

The layer's bytecode (``mk/build_layer.py`` compiles every module: ``__pycache__/*.cpython-313.pyc``,
unchecked-hash) is kept as built; the reinstalled distributions' modules are compiled again by this
machine's Python 3.13, the same way (unchecked-hash, level 0, ``/opt/python/…`` as the source
path), for the same modules as in the build.

It is then checked, and the build fails loudly otherwise: the same distributions at the same
versions as the built layer, every other file identical to the build, the same Python files in the
reinstalled distributions, the same bytecode files, each the unchecked-hash pyc of its source as it
is in the twin for the twin's interpreter, and every ELF file of the layer for this machine. Only the
platform tags of the compiled wheels (and their modules' bytecode) differ. ``herald local --built``
runs the functions from it (docs/local-cloud.md).

The reinstalled wheels are kept in ``.host-wheels/<key>`` under the twin, keyed by the compiled
distributions, their versions and the interpreter: pip runs again only when those change. A twin
whose ``.aws-sam/build`` is unchanged since it was made is left as it is.
"""

from __future__ import annotations

import _imp
import argparse
import csv
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

BUILD_DIR = Path(".aws-sam/build")
TWIN_DIR = Path(".aws-sam/build-host")
MAKE_TARGET = "make build-host"
MANIFEST = "herald-twin.json"
CACHE = ".host-wheels"
FORMAT = 1
LAYER_TYPE = "AWS::Serverless::LayerVersion"
FUNCTION_TYPE = "AWS::Serverless::Function"
#: Where Lambda mounts a layer's python/: the source path its bytecode names (as mk/build_layer.py).
LAMBDA_SITE = "/opt/python"
#: PEP 552's flags of an unchecked-hash pyc: bit 0 hash-based, bit 1 (check_source) clear.
UNCHECKED_HASH = 0b01
_PYC = re.compile(r"(?P<dir>(?:.*/)?)__pycache__/(?P<stem>[^/.]+)\.(?P<tag>[^/.]+)\.pyc")

#: Asked of the interpreter the twin is for: what it is and which platform tags it installs.
_DESCRIBE = """
import importlib.util, json, sys, sysconfig
from pip._vendor.packaging.tags import sys_tags
platforms = []
for tag in sys_tags():
    if tag.platform != "any" and tag.platform not in platforms:
        platforms.append(tag.platform)
print(json.dumps({
    "executable": sys.executable,
    "version": "%d.%d.%d" % sys.version_info[:3],
    "implementation": sys.implementation.name,
    "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
    "cache_tag": sys.implementation.cache_tag,
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "platforms": platforms,
}))
"""


class TwinError(Exception):
    """The twin cannot be made, is missing or stale, or differs from the build."""


@dataclass(frozen=True)
class Distribution:
    """One installed distribution, from its ``*.dist-info`` directory."""

    name: str
    version: str
    dist_info: str  # the directory's name
    tags: tuple[str, ...]  # the WHEEL file's Tag lines
    files: tuple[str, ...]  # RECORD's paths, relative to the directory holding the dist-info

    @property
    def key(self) -> str:
        return canonical_name(self.name)

    @property
    def compiled(self) -> bool:
        """Built for one platform (a tag that is not ``...-any``); without tags, when it has an ``.so``."""
        if self.tags:
            return any(not tag.endswith("-any") for tag in self.tags)
        return any(".so" in posixpath.basename(f) for f in self.files)

    def owns(self, path: str) -> bool:
        """``path`` is one of its files, or the bytecode of one (``__pycache__`` is not in RECORD)."""
        source = pyc_source(path)
        return path in self.files or path.startswith(self.dist_info + "/") or source in self.files


def pyc_source(path: str) -> str | None:
    """The module a ``__pycache__/<name>.<tag>.pyc`` path (POSIX, relative) is the bytecode of."""
    match = _PYC.fullmatch(path)
    return f"{match['dir']}{match['stem']}.py" if match else None


def pyc_problem(pyc: Path, source: Path, magic: bytes) -> str | None:
    """Why ``pyc`` is not the unchecked-hash bytecode of ``source`` for the Python of ``magic``."""
    with pyc.open("rb") as stream:
        header = stream.read(16)
    if len(header) < 16:
        return "is truncated"
    if header[:4] != magic:
        return f"has magic {header[:4].hex()}, not {magic.hex()}"
    flags = int.from_bytes(header[4:8], "little")
    if flags != UNCHECKED_HASH:
        return f"has flags {flags}, not {UNCHECKED_HASH} (unchecked-hash)"
    # The hash of PEP 552 is keyed by the magic number: that of the pyc's Python, not this one's.
    if header[8:16] != _imp.source_hash(int.from_bytes(magic, "little"), source.read_bytes()):
        return "is not of its source"
    return None


def canonical_name(name: str) -> str:
    """A distribution's name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_distributions(site: Path) -> dict[str, Distribution]:
    """The distributions installed in ``site`` (a layer's ``python/``), by canonical name."""
    found: dict[str, Distribution] = {}
    headers = HeaderParser()
    for info in sorted(site.glob("*.dist-info")):
        metadata = info / "METADATA"
        if not metadata.is_file():
            raise TwinError(f"{info} has no METADATA")
        meta = headers.parsestr(metadata.read_text(encoding="utf-8", errors="replace"))
        name, version = meta.get("Name"), meta.get("Version")
        if not name or not version:
            raise TwinError(f"{metadata} names no Name or Version")
        wheel = info / "WHEEL"
        tags: tuple[str, ...] = ()
        if wheel.is_file():
            tags = tuple(headers.parsestr(wheel.read_text(encoding="utf-8")).get_all("Tag") or [])
        files: list[str] = []
        record = info / "RECORD"
        if record.is_file():
            with record.open(encoding="utf-8", newline="") as stream:
                for row in csv.reader(stream):
                    if row and row[0]:
                        path = posixpath.normpath(row[0])
                        if not path.startswith("../"):
                            files.append(path)
        dist = Distribution(str(name), str(version), info.name, tags, tuple(files))
        if dist.key in found:
            raise TwinError(f"{site} holds {dist.key} twice ({found[dist.key].dist_info}, {info.name})")
        found[dist.key] = dist
    return found


# -- the built artefacts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    """What ``sam build`` left: the layers' and functions' directories (by logical id) and runtimes."""

    root: Path
    layers: dict[str, Path]
    functions: dict[str, Path]
    runtimes: frozenset[str]


def read_build(build_dir: Path) -> Built:
    """The artefacts the built template names (its CodeUri and ContentUri are their directories)."""
    from herald_tools.localcloud.template import Template

    template = build_dir / "template.yaml"
    if not template.is_file():
        raise TwinError(f"{build_dir} holds no built template.yaml: run `make sam-build` (or {MAKE_TARGET})")
    built = Template.load(template)
    layers: dict[str, Path] = {}
    functions: dict[str, Path] = {}
    runtimes: set[str] = set()
    for lid, body in built.resources.items():
        kind = body.get("Type")
        if kind not in (LAYER_TYPE, FUNCTION_TYPE):
            continue
        props = built.resource_properties(lid)
        uri = props.get("ContentUri" if kind == LAYER_TYPE else "CodeUri")
        if not isinstance(uri, str) or "://" in uri:
            raise TwinError(f"{lid} in {template} has no local artifact directory ({uri!r})")
        directory = (build_dir / uri).resolve()
        if not directory.is_dir():
            raise TwinError(f"{lid}'s artifact {directory} is missing: run `make sam-build` again")
        if kind == LAYER_TYPE:
            layers[lid] = directory
        else:
            functions[lid] = directory
            runtimes.add(str(props.get("Runtime", "")))
    if not functions:
        raise TwinError(f"{template} has no function")
    return Built(build_dir, layers, functions, frozenset(runtimes))


def describe_python(python: str) -> dict[str, Any]:
    """The interpreter ``python`` (a path or a command on PATH): executable, version, platform tags."""
    try:
        child = subprocess.run(
            [python, "-c", _DESCRIBE], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise TwinError(f"cannot run {python}: {exc.strerror}") from None
    if child.returncode != 0:
        last = (child.stderr.strip().splitlines() or ["no output"])[-1]
        raise TwinError(f"{python} cannot describe itself (it needs pip): {last}")
    info: dict[str, Any] = json.loads(child.stdout)
    return info


def _site(layer: Path) -> Path:
    """Where a Python layer's packages are (``python/``, on Lambda ``/opt/python``)."""
    return layer / "python" if (layer / "python").is_dir() else layer


def _files(root: Path) -> dict[str, Path]:
    """Every file under ``root`` by its path relative to it (POSIX separators)."""
    found: dict[str, Path] = {}
    for directory, dirs, names in os.walk(root):
        dirs.sort()
        base = Path(directory)
        for name in sorted(names):
            path = base / name
            found[path.relative_to(root).as_posix()] = path
    return found


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(root: Path) -> str:
    """One hash of every file's path and content under ``root``."""
    h = hashlib.sha256()
    for rel, path in _files(root).items():
        h.update(f"{rel}\0{_digest(path)}\n".encode())
    return h.hexdigest()


# -- the twin --------------------------------------------------------------------------------------


def _host_wheels(
    compiled: Iterable[Distribution], python: dict[str, Any], cache: Path, say: Callable[[str], None]
) -> Path:
    """``compiled`` installed for ``python``'s platform, at their versions, in a cached directory."""
    wanted = sorted((d.name, d.version) for d in compiled)
    version = ".".join(str(python["version"]).split(".")[:2])
    key_source = {
        "python": python["version"],
        "platforms": python["platforms"],
        "dists": wanted,
        "bytecode": "unchecked-hash",
    }
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()[:16]
    target = cache / key
    if (target / ".complete").is_file():
        say(f"host wheels: cached ({cache.name}/{key})")
        return target
    partial = cache / f".{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    partial.mkdir(parents=True)
    if not wanted:  # nothing compiled: nothing to install
        (partial / ".complete").write_text(json.dumps(key_source) + "\n", encoding="utf-8")
        partial.rename(target)
        return target
    command = [
        str(python["executable"]),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-compile",
        "--only-binary=:all:",
        "--python-version",
        version,
        "--implementation",
        "cp",
        *[arg for platform in python["platforms"] for arg in ("--platform", platform)],
        "--target",
        str(partial),
        *[f"{name}=={v}" for name, v in wanted],
    ]
    say(f"host wheels: pip install {len(wanted)} distributions for {python['platforms'][0]} ...")
    started = time.monotonic()
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    if child.returncode != 0:
        detail = " ".join(child.stderr.split())[-600:]
        raise TwinError(f"pip could not install {', '.join(f'{n}=={v}' for n, v in wanted)}: {detail}")
    say(f"host wheels: installed in {time.monotonic() - started:.0f} s")
    _compile(python, partial)
    (partial / ".complete").write_text(json.dumps(key_source, indent=1) + "\n", encoding="utf-8")
    partial.rename(target)
    return target


def _compile(python: dict[str, Any], site: Path) -> None:
    """Compile ``site``'s modules with ``python`` as mk/build_layer.py compiles the layer's."""
    command = [
        str(python["executable"]),
        "-m",
        "compileall",
        "-q",
        "-o",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-d",
        LAMBDA_SITE,
        str(site),
    ]
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    if child.returncode != 0:
        detail = " ".join((child.stdout + child.stderr).split())[-600:]
        raise TwinError(f"{python['executable']} could not compile the host wheels in {site}: {detail}")


def _layer_plan(layer: Path, host: Path, dists: dict[str, Distribution]) -> dict[str, Path]:
    """Each file of the layer's twin (relative to the layer's directory) and where it comes from."""
    site = _site(layer)
    prefix = site.relative_to(layer).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    compiled = [d for d in dists.values() if d.compiled]
    plan: dict[str, Path] = {}
    for rel, path in _files(layer).items():
        in_site = rel[len(prefix) :] if rel.startswith(prefix) else None
        if in_site is not None and any(d.owns(in_site) for d in compiled):
            continue  # a compiled distribution's file: this machine's wheel has its own
        plan[rel] = path
    # Listed in RECORD but not in the layer: pruned after pip installed it; pruned here too.
    pruned = {f for d in compiled for f in d.files if not (site / f).exists()}
    for rel, path in _files(host).items():
        if rel == ".complete" or rel in pruned:
            continue
        if rel.startswith("bin/") and not (site / rel).is_file():
            continue  # console scripts the build did not keep
        if pyc_source(rel) is not None and not (site / rel).is_file():
            continue  # bytecode of a module the build pruned, or did not compile
        plan[prefix + rel] = path
    return plan


def _sync(plan: dict[str, Path], target: Path) -> int:
    """Make ``target`` hold exactly ``plan``'s files (copied with their times); the count copied."""
    copied = 0
    target.mkdir(parents=True, exist_ok=True)
    for rel, source in plan.items():
        dest = target / rel
        st = source.stat()
        if dest.is_file() and not dest.is_symlink():
            dt = dest.stat()
            if dt.st_size == st.st_size and dt.st_mtime_ns == st.st_mtime_ns:
                continue
        elif dest.is_dir():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
        copied += 1
    for rel, path in _files(target).items():
        if rel not in plan:
            path.unlink()
    for directory, _dirs, _names in os.walk(target, topdown=False):
        if Path(directory) != target and not os.listdir(directory):
            Path(directory).rmdir()
    return copied


_ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64", 0x03: "i386", 0x28: "arm"}


def _elf_machine(path: Path) -> int | None:
    with path.open("rb") as stream:
        head = stream.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def _bytecode_problems(lid: str, layer: Path, twin: Path, magic: bytes) -> list[str]:
    """The twin's bytecode files are the build's, each the unchecked-hash pyc of its source in the twin."""
    built = {rel for rel in _files(layer) if pyc_source(rel)}
    found = {rel: path for rel, path in _files(twin).items() if pyc_source(rel)}
    problems = [
        f"{lid}: {rel} (bytecode) is in the build, not in the twin" for rel in sorted(built - set(found))
    ]
    problems += [
        f"{lid}: {rel} (bytecode) is in the twin, not in the build" for rel in sorted(set(found) - built)
    ]
    for rel, path in found.items():
        source = twin / str(pyc_source(rel))
        why = pyc_problem(path, source, magic) if source.is_file() else "has no source beside it"
        if why:
            problems.append(f"{lid}: {rel} {why}")
    return problems


def verify(build_dir: Path, twin_dir: Path, python: dict[str, Any]) -> list[str]:
    """How the twin differs from the build beyond the compiled wheels' platform; [] when it does not."""
    built = read_build(build_dir)
    problems: list[str] = []
    host_machine = _elf_machine(Path(python["executable"]).resolve())
    host_platforms = set(python["platforms"])
    for lid, layer in built.layers.items():
        twin = twin_dir / lid
        if not twin.is_dir():
            problems.append(f"{lid}: no twin in {twin_dir}")
            continue
        source, copy = read_distributions(_site(layer)), read_distributions(_site(twin))
        for key in sorted(set(source) | set(copy)):
            a, b = source.get(key), copy.get(key)
            if a is None or b is None:
                where = "the twin" if a is None else "the build"
                problems.append(
                    f"{lid}: {key} is only in {'the build' if b is None else 'the twin'}, not {where}"
                )
            elif a.version != b.version:
                problems.append(f"{lid}: {key} is {a.version} in the build, {b.version} in the twin")
            elif a.compiled:
                platforms = {t.rsplit("-", 1)[1] for t in b.tags}
                if not platforms & host_platforms:
                    problems.append(f"{lid}: {key}'s twin wheel is for {sorted(platforms)}, not this machine")
                site_a, site_b = _site(layer), _site(twin)
                py_a = {f for f in a.files if f.endswith(".py") and (site_a / f).is_file()}
                py_b = {f for f in b.files if f.endswith(".py") and (site_b / f).is_file()}
                if py_a != py_b:
                    odd = sorted(py_a ^ py_b)[:3]
                    problems.append(
                        f"{lid}: {key}'s Python files differ between the build and the twin: {odd}"
                    )
        compiled = [d for d in source.values() if d.compiled]
        site = _site(layer)
        prefix = site.relative_to(layer).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        twin_files = _files(twin)
        for rel, path in _files(layer).items():
            in_site = rel[len(prefix) :] if rel.startswith(prefix) else None
            if in_site is not None and any(d.owns(in_site) for d in compiled):
                continue
            other = twin_files.get(rel)
            if (
                other is None
                or other.stat().st_size != path.stat().st_size
                or _digest(other) != _digest(path)
            ):
                problems.append(f"{lid}: {rel} is not as built")
        problems.extend(_bytecode_problems(lid, layer, twin, bytes.fromhex(str(python["magic"]))))
        for rel, path in twin_files.items():
            if ".so" in path.name or path.parent.name.endswith(".libs"):
                machine = _elf_machine(path)
                if machine is not None and machine != host_machine:
                    name = _ELF_MACHINES.get(machine, hex(machine))
                    problems.append(f"{lid}: {rel} is built for {name}, not this machine")
    for lid, function in built.functions.items():
        twin = twin_dir / lid
        if not twin.is_dir() or fingerprint(twin) != fingerprint(function):
            problems.append(f"{lid}: the twin's artifact is not as built")
    return problems


def build_twin(
    build_dir: Path = BUILD_DIR,
    twin_dir: Path = TWIN_DIR,
    *,
    python: str = "python3.13",
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Make (or bring up to date) the host twin of ``build_dir`` in ``twin_dir``; its manifest."""
    build_dir, twin_dir = Path(build_dir).resolve(), Path(twin_dir).resolve()
    built = read_build(build_dir)
    interpreter = describe_python(python)
    wanted = f"python{'.'.join(str(interpreter['version']).split('.')[:2])}"
    if built.runtimes != {wanted}:
        raise TwinError(
            f"the functions' Runtime is {', '.join(sorted(built.runtimes))}, but {python} is {wanted}"
        )
    source = fingerprint(build_dir)
    manifest_path = twin_dir / MANIFEST
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        if (
            old.get("format") == FORMAT
            and old.get("source_fingerprint") == source
            and old.get("python") == interpreter
        ):
            say(f"{twin_dir} is up to date with {build_dir}")
            return dict(old)
        manifest_path.unlink()  # a twin half brought up to date has no manifest
    twin_dir.mkdir(parents=True, exist_ok=True)
    layers: dict[str, Any] = {}
    wheels: set[str] = set()
    for lid, layer in built.layers.items():
        dists = read_distributions(_site(layer))
        compiled = [d for d in dists.values() if d.compiled]
        host = _host_wheels(compiled, interpreter, twin_dir / CACHE, say)
        wheels.add(host.name)
        copied = _sync(_layer_plan(layer, host, dists), twin_dir / lid)
        say(f"{lid}: {len(dists)} distributions, {len(compiled)} compiled; {copied} files copied")
        twin_dists = read_distributions(_site(twin_dir / lid))
        layers[lid] = {
            "distributions": {d.name: d.version for d in sorted(dists.values(), key=lambda d: d.key)},
            "compiled": {
                d.name: {
                    "build": list(d.tags),
                    "twin": list(twin_dists[d.key].tags) if d.key in twin_dists else [],
                }
                for d in sorted(compiled, key=lambda d: d.key)
            },
        }
    for lid, function in built.functions.items():
        _sync(_files(function), twin_dir / lid)
    shutil.copy2(build_dir / "template.yaml", twin_dir / "template.yaml")
    if (twin_dir / CACHE).is_dir():
        for old_wheels in (twin_dir / CACHE).iterdir():  # an earlier build's
            if old_wheels.name not in wheels:
                shutil.rmtree(old_wheels, ignore_errors=True)
    keep = {*built.layers, *built.functions, "template.yaml", CACHE}
    for entry in twin_dir.iterdir():  # what an earlier build had and this one has not
        if entry.name not in keep:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    problems = verify(build_dir, twin_dir, interpreter)
    if problems:
        raise TwinError(f"the twin in {twin_dir} differs from {build_dir}: " + "; ".join(problems))
    manifest = {
        "format": FORMAT,
        "source": str(build_dir),
        "source_fingerprint": source,
        "python": interpreter,
        "runtime": wanted,
        "layers": layers,
        "functions": sorted(built.functions),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


# -- using it --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Twin:
    """A host twin ready to run: its built template, the interpreter and the runtime it is for."""

    root: Path
    template: Path
    python: str
    runtime: str
    manifest: dict[str, Any]


def load_twin(twin_dir: str | Path = TWIN_DIR) -> Twin:
    """The twin in ``twin_dir``; TwinError (one line, naming ``make build-host``) when it is missing,
    unfinished, or older than the build it was made from."""
    root = Path(twin_dir).resolve()
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise TwinError(
            f"no host twin of the built artefacts in {root}: run `{MAKE_TARGET}` (sam build, then the twin)"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise TwinError(f"the twin in {root} is of another format: run `{MAKE_TARGET}` again")
    python = str(manifest["python"]["executable"])
    if not os.access(python, os.X_OK):
        raise TwinError(f"the twin's interpreter {python} is gone: run `{MAKE_TARGET}` again")
    source = Path(manifest["source"])
    if not source.is_dir() or fingerprint(source) != manifest["source_fingerprint"]:
        raise TwinError(f"{source} changed since the twin in {root} was made: run `{MAKE_TARGET}` again")
    return Twin(root, root / "template.yaml", python, str(manifest["runtime"]), manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m herald_tools.built",
        description="Make the host twin of the built Lambda artefacts (what `herald local --built` runs).",
    )
    parser.add_argument(
        "--build-dir", type=Path, default=BUILD_DIR, help="sam build's output (default %(default)s)"
    )
    parser.add_argument(
        "--twin-dir", type=Path, default=TWIN_DIR, help="where the twin goes (default %(default)s)"
    )
    parser.add_argument(
        "--python",
        default="python3.13",
        help="the Lambda runtime's Python on this machine (default %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        if not args.quiet:
            print(f"build-host: {line}", file=sys.stderr, flush=True)

    try:
        manifest = build_twin(args.build_dir, args.twin_dir, python=args.python, say=say)
    except TwinError as exc:
        print(f"build-host: {exc}", file=sys.stderr, flush=True)
        return 1
    layers = manifest["layers"]
    counts = ", ".join(
        f"{lid}: {len(info['distributions'])} distributions ({len(info['compiled'])} reinstalled)"
        for lid, info in layers.items()
    )
    print(
        f"host twin in {args.twin_dir}: {counts}; {len(manifest['functions'])} functions; "
        f"Python {manifest['python']['version']} for {manifest['python']['platforms'][0]}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
