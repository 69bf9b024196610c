"""Build HeraldLayer: the locked libraries for Lambda's Python and platform, the herald package, pruned.

``sam build`` runs it through ``shared/Makefile`` (``BuildMethod: makefile``) with ``ARTIFACTS_DIR``
set; by hand::

    python3.13 mk/build_layer.py --out /tmp/layer                      # arm64, as deployed
    LAYER_PLATFORM=manylinux_2_34_x86_64 python3.13 mk/build_layer.py --out /tmp/layer-x86

It runs ``pip install --platform $LAYER_PLATFORM (and the older manylinux tags) --only-binary=:all:
--python-version 3.13 --implementation cp --require-hashes -r requirements/layer.txt
--target <out>/python`` (wheels only, each checked against the lock's sha256), copies
``shared/herald`` beside them, then removes what no function loads:

* babel's data of every language but :data:`herald.core.locales.LANGUAGES` (and babel's ``root``);
* pycountry's translations (``pycountry/locales``: Herald reads the English names only);
* botocore's models of every AWS service but :data:`BOTOCORE_SERVICES`, the ones Herald's functions
  make clients for (the data root's files, ``endpoints.json``, ``partitions.json``,
  ``sdk-default-configuration.json``, ``_retry.json``, stay, ``endpoints.json`` with those services'
  entries only): botocore's loader lists every service's folder before it loads one model, so each
  client's first load walked some 450 of them;
* test suites (``tests/`` folders), type stubs (``*.pyi``), C headers and sources (``*.h``,
  ``*.c``, ``*.pyx``) and whatever bytecode came with the wheels (``__pycache__``, ``*.pyc``).

The licences in each ``*.dist-info`` stay. Last, every ``.py`` of python/ is compiled, beside its
source (kept, for tracebacks), into ``__pycache__/<name>.cpython-313.pyc``: Lambda's ``/opt`` is
read-only, so a layer without bytecode compiles every module it imports on every cold start. The
pycs are unchecked-hash ones (PEP 552: flags 1, used as they are, whatever the source's mtime,
which a zip does not keep exactly), at optimisation level 0 (as Lambda runs), with
``/opt/python/…`` as their source path (the same bytes wherever the layer is built). The magic
number is per minor version, so the build runs on the layer's Python (3.13) or stops.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from py_compile import PycInvalidationMode
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "layer.txt"
PACKAGE = ROOT / "shared" / "herald"
PYTHON_VERSION = "3.13"
#: Where Lambda mounts a layer's python/: the source path the layer's bytecode names.
LAMBDA_SITE = "/opt/python"
#: Lambda's python3.13 runs on Amazon Linux 2023, glibc 2.34: wheels up to manylinux_2_34 run there.
DEFAULT_PLATFORM = "manylinux_2_34_aarch64"

#: Locked packages that publish no wheel, only a source archive (pure Python, so built on this
#: machine for any platform); every other package must come as a wheel for LAYER_PLATFORM.
SOURCE_BUILDS = ("http-ece",)
#: ELF ``e_machine`` of each platform's processor: every shared object of the layer must match.
ELF_MACHINES = {"aarch64": 183, "x86_64": 62}

#: Folders removed wherever they are (under the layer's python/).
PRUNED_DIRS = frozenset({"tests", "__pycache__"})
#: Files removed wherever they are, by suffix.
PRUNED_SUFFIXES = (".pyi", ".pyc", ".h", ".c", ".pyx", ".pxd")
#: Paths removed, relative to python/.
PRUNED_PATHS = ("pycountry/locales",)
#: The AWS services the functions make clients for (``LazyClient("…")``, ``client("…")`` and
#: ``boto3.client("…")`` in shared/herald and functions/; a test keeps this list complete): the
#: only models of ``botocore/data`` the layer keeps.
BOTOCORE_SERVICES = ("dynamodb", "s3", "secretsmanager", "sns", "sqs", "ssm", "translate")


def shipped_languages() -> tuple[str, ...]:
    sys.path.insert(0, str(ROOT / "shared"))
    try:
        from herald.core.locales import LANGUAGES
    finally:
        sys.path.pop(0)
    return LANGUAGES


def pip_platforms(platform: str) -> list[str]:
    """pip's ``--platform`` values for a manylinux tag: ``manylinux_2_34_aarch64`` is also every older
    glibc's (2_17 to 2_34) and ``manylinux2014_aarch64`` (pip itself does not widen such a tag)."""
    match = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", platform)
    if not match:
        return [platform]
    newest, arch = int(match.group(1)), match.group(2)
    return [f"manylinux_2_{minor}_{arch}" for minor in range(newest, 16, -1)] + [f"manylinux2014_{arch}"]


def install(target: Path, platform: str) -> None:
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile", "--root-user-action=ignore",
        # --no-deps: the lock is complete; it lets SOURCE_BUILDS come from source, the rest as wheels.
        "--no-deps", *(f"--platform={tag}" for tag in pip_platforms(platform)), "--only-binary=:all:",
        *(f"--no-binary={name}" for name in SOURCE_BUILDS),
        "--python-version", PYTHON_VERSION, "--implementation", "cp",
        "--require-hashes", "-r", str(LOCK),
        "--target", str(target),
    ]  # fmt: skip
    subprocess.run(command, check=True)


def check_machine(python: Path, platform: str) -> None:
    """Every shared object is for the platform's processor (a source build would be this machine's)."""
    wanted = next((m for arch, m in ELF_MACHINES.items() if platform.endswith(arch)), None)
    if wanted is None:
        raise SystemExit(f"build_layer: unknown processor in LAYER_PLATFORM={platform!r}")
    wrong = []
    for path in python.rglob("*.so*"):
        with path.open("rb") as f:
            header = f.read(20)
        if header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") != wanted:
            wrong.append(str(path.relative_to(python)))
    if wrong:
        raise SystemExit(f"build_layer: not built for {platform}: {', '.join(sorted(wrong)[:5])}")


def prune_babel(python: Path, languages: tuple[str, ...]) -> None:
    data = python / "babel" / "locale-data"
    if not data.is_dir():
        raise SystemExit(f"build_layer: {data} not found: is babel in {LOCK}?")
    kept = 0
    for path in data.glob("*.dat"):
        language = path.stem.split("_", 1)[0]
        if path.stem == "root" or language in languages:
            kept += 1
        else:
            path.unlink()
    missing = [language for language in languages if not (data / f"{language}.dat").exists()]
    if missing:
        raise SystemExit(f"build_layer: babel has no data for {', '.join(missing)}")
    print(f"build_layer: babel locales kept: {kept} ({', '.join(languages)} and root)")


def prune_botocore(python: Path, services: tuple[str, ...] = BOTOCORE_SERVICES) -> None:
    """Remove every service folder of botocore's data but ``services``; the root's files stay."""
    data = python / "botocore" / "data"
    if not data.is_dir():
        raise SystemExit(f"build_layer: {data} not found: is botocore in {LOCK}?")
    missing = [name for name in services if not (data / name).is_dir()]
    if missing:
        raise SystemExit(f"build_layer: botocore has no model for {', '.join(missing)}")
    removed = 0
    for path in data.iterdir():
        if path.is_dir() and path.name not in services:
            shutil.rmtree(path)
            removed += 1
    endpoints = data / "endpoints.json"
    endpoints.write_text(
        json.dumps(endpoints_of(json.loads(endpoints.read_text(encoding="utf-8")), services)),
        encoding="utf-8",
    )
    print(f"build_layer: botocore models kept: {', '.join(services)} ({removed} others removed)")


def endpoints_of(endpoints: dict[str, Any], services: tuple[str, ...]) -> dict[str, Any]:
    """botocore's ``endpoints.json`` with each partition's ``services`` restricted to ``services``
    (1.25 MB of JSON, which every cold start parses for its first client, down to some 40 kB)."""
    pruned = dict(endpoints)
    pruned["partitions"] = [
        {**partition, "services": {k: v for k, v in partition["services"].items() if k in services}}
        for partition in endpoints["partitions"]
    ]
    return pruned


def prune(python: Path) -> None:
    for relative in PRUNED_PATHS:
        path = python / relative
        if path.is_dir():
            shutil.rmtree(path)
    for dirpath, dirnames, filenames in os.walk(python, topdown=True):
        for name in [d for d in dirnames if d in PRUNED_DIRS]:
            shutil.rmtree(Path(dirpath, name))
            dirnames.remove(name)
        for name in filenames:
            if name.endswith(PRUNED_SUFFIXES):
                Path(dirpath, name).unlink()


def copy_package(python: Path) -> None:
    shutil.copytree(
        PACKAGE, python / "herald", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True
    )


def check_python(version: str = PYTHON_VERSION) -> None:
    """The build runs on the layer's Python: the bytecode it writes is read by that minor version only."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if sys.implementation.name != "cpython" or running != version:
        raise SystemExit(
            f"build_layer: {sys.executable} is {sys.implementation.name} {running}; the layer's bytecode "
            f"must be compiled by CPython {version}, Lambda's runtime (run it with python{version}, "
            "or LAYER_PYTHON=... for shared/Makefile)"
        )


def compile_bytecode(python: Path) -> int:
    """Compile every ``.py`` under ``python`` beside it (``__pycache__``), unchecked-hash, level 0."""
    ok = compileall.compile_dir(
        python,
        ddir=LAMBDA_SITE,
        quiet=1,
        optimize=0,
        invalidation_mode=PycInvalidationMode.UNCHECKED_HASH,
        workers=1,
    )
    if not ok:
        raise SystemExit(f"build_layer: compileall could not compile every module of {python} (see above)")
    compiled = sum(1 for _ in python.rglob(f"__pycache__/*.{sys.implementation.cache_tag}.pyc"))
    print(
        f"build_layer: bytecode: {compiled} modules compiled ({sys.implementation.cache_tag}, unchecked-hash)"
    )
    return compiled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build HeraldLayer into <out>/python.")
    parser.add_argument(
        "--out",
        type=Path,
        default=os.environ.get("ARTIFACTS_DIR"),
        help="default: $ARTIFACTS_DIR (sam build)",
    )
    parser.add_argument(
        "--platform",
        default=os.environ.get("LAYER_PLATFORM") or DEFAULT_PLATFORM,
        help=f"pip's --platform (default: $LAYER_PLATFORM, else {DEFAULT_PLATFORM})",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("--out or ARTIFACTS_DIR is required")
    check_python()
    python = Path(args.out) / "python"
    if python.exists():
        shutil.rmtree(python)
    python.mkdir(parents=True)
    install(python, args.platform)
    check_machine(python, args.platform)
    prune_babel(python, shipped_languages())
    prune_botocore(python)
    prune(python)
    copy_package(python)
    compile_bytecode(python)
    print(f"build_layer: {python} for {args.platform}, cp{PYTHON_VERSION.replace('.', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
