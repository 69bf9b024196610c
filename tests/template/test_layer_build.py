"""The built HeraldLayer (.aws-sam/build/HeraldLayer, which `make test` builds before pytest): its
size within budget, exactly the locked packages for Lambda's processor, pruned as
mk/build_layer.py says, and every module's bytecode beside it. Run `make sam-build` first when
running this file alone."""

from __future__ import annotations

import ast
import importlib.util
import json
import marshal
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from herald.core.locales import LANGUAGES
from tests.template.build_scripts import build_layer, lock

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / ".aws-sam" / "build" / "HeraldLayer"
MB = 1 << 20

#: docs/deploy.md gives the measured sizes. Before the lock and the pruning: 186 MB unpacked, 71 MB
#: zipped; with every AWS service's botocore model 77.0 MB and 30.9 MB; without bytecode 59.4 MB
#: and 16.0 MB; now, with every module's bytecode (12.1 MB of .pyc), 71.5 MB (the files; 74 MB by
#: `du -sh --apparent-size`) and 21.4 MB zipped. Lambda's own limit is 250 MB unpacked
#: (function and layers).
UNPACKED_BUDGET_MB = 74
ZIPPED_BUDGET_MB = 22
#: The bytecode Lambda's python3.13 reads (PEP 3147 tag; the magic number is per minor version).
CACHE_TAG = "cpython-313"
#: PEP 552: flags bit 0 = hash-based, bit 1 = check_source. Unchecked-hash pycs (1) are used as they
#: are, whatever the mtime a zip gave their source; a timestamp pyc (0) would be judged by it.
UNCHECKED_HASH = 0b01


@pytest.fixture(scope="module")
def python() -> Path:
    path = LAYER / "python"
    if not (path / "herald" / "__init__.py").is_file():
        pytest.fail(f"{path} is not built: run `make sam-build` (make test does)", pytrace=False)
    return path


def _files(root: Path) -> list[Path]:
    return [Path(d, f) for d, _, names in os.walk(root) for f in names]


def test_the_layer_is_within_its_size_budget(python: Path) -> None:
    files = _files(LAYER)
    unpacked = sum(f.stat().st_size for f in files)
    with tempfile.TemporaryFile() as out:
        # As `sam deploy` packs it: deflate, zlib's default level.
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for f in files:
                archive.write(f, f.relative_to(LAYER))
        zipped = out.tell()
    sizes = f"{unpacked / MB:.1f} MB unpacked, {zipped / MB:.1f} MB zipped"
    assert unpacked <= UNPACKED_BUDGET_MB * MB, f"HeraldLayer is {sizes}: over {UNPACKED_BUDGET_MB} MB"
    assert zipped <= ZIPPED_BUDGET_MB * MB, f"HeraldLayer is {sizes}: over {ZIPPED_BUDGET_MB} MB zipped"


def test_the_layer_holds_exactly_the_locked_versions(python: Path) -> None:
    built: dict[str, str] = {}
    for info in python.glob("*.dist-info"):
        match = re.fullmatch(r"(.+)-([^-]+)\.dist-info", info.name)
        assert match, info.name
        built[lock.canonical(match[1])] = match[2]
    assert built == lock.pins(lock.LAYER_LOCK), (
        "the built layer is not requirements/layer.txt: make sam-build"
    )


def test_every_shared_object_is_for_lambdas_processor(python: Path) -> None:
    objects = [f for f in _files(python) if ".so" in f.name]
    assert objects, "no compiled extension at all (pydantic_core and cryptography have some)"
    machines = set()
    for f in objects:
        header = f.read_bytes()[:20]
        if header[:4] == b"\x7fELF":
            machines.add(int.from_bytes(header[18:20], "little"))
    # arm64 (template.yaml's BuildArchitecture); LAYER_PLATFORM chooses another for a build of its own.
    assert machines == {build_layer.ELF_MACHINES["aarch64"]}
    assert any(f.name.endswith(".cpython-313-aarch64-linux-gnu.so") for f in objects)


def test_babel_carries_the_shipped_languages_only(python: Path) -> None:
    data = python / "babel" / "locale-data"
    languages = {p.stem.split("_", 1)[0] for p in data.glob("*.dat")}
    assert languages == {*LANGUAGES, "root"}
    for language in LANGUAGES:
        assert (data / f"{language}.dat").is_file(), language
    # Every region of a shipped language stays (a site in fr_CA, an Accept-Language of es-MX).
    assert {"fr_CA.dat", "es_MX.dat", "es_419.dat", "en_GB.dat", "en_001.dat", "ar_EG.dat"} <= {
        p.name for p in data.glob("*.dat")
    }
    assert (python / "babel" / "global.dat").is_file()


def test_what_no_function_loads_is_pruned(python: Path) -> None:
    found = [p.relative_to(python) for p in python.rglob("*")]
    dirs = {p.name for p in found if (python / p).is_dir()}
    assert "tests" not in dirs
    assert not [p for p in found if p.suffix in {".pyi", ".h", ".c", ".pyx", ".pxd"}]
    for relative in build_layer.PRUNED_PATHS:
        assert not (python / relative).exists(), relative
    # Language detection runs on Herald's own model files, without py3langid or numpy.
    assert (python / "herald" / "enrichment" / "data" / "langid_ptc.bin").is_file()
    assert not (python / "py3langid").exists() and not (python / "numpy").exists()
    # Licences stay.
    assert list(python.glob("babel-*.dist-info/licenses/LICENSE")) or list(
        python.glob("babel-*.dist-info/LICENSE*")
    )


def test_the_layer_carries_the_herald_package_as_in_shared(python: Path) -> None:
    source = ROOT / "shared" / "herald"
    wanted = {p.relative_to(source) for p in _files(source) if "__pycache__" not in p.parts}
    built = {p.relative_to(python / "herald") for p in _files(python / "herald") if p.suffix != ".pyc"}
    assert built == wanted, "the layer's herald/ is not shared/herald: make sam-build"


def test_every_module_has_its_unchecked_hash_bytecode_for_python_313_beside_it(python: Path) -> None:
    # This interpreter's magic number and source hash are Lambda's: the venv runs Python 3.13.
    assert sys.implementation.cache_tag == CACHE_TAG, "the tests run on Lambda's Python (3.13)"
    files = _files(python)
    sources = {f for f in files if f.suffix == ".py"}
    pycs = {f for f in files if f.suffix == ".pyc"}
    assert len(sources) > 1000 and (python / "herald" / "__init__.py") in sources
    wanted = {Path(importlib.util.cache_from_source(str(f), optimization="")) for f in sources}
    assert not sorted(wanted - pycs)[:5], "modules without bytecode"
    # No stray bytecode: none without its source, of another Python, of an optimisation level above 0
    # (``.opt-1.pyc``, ``.opt-2.pyc``: Lambda runs without -O), or outside __pycache__.
    assert not sorted(pycs - wanted)[:5], "bytecode that is not of a module beside it"
    for pyc in sorted(pycs):
        source = Path(importlib.util.source_from_cache(str(pyc)))
        data = pyc.read_bytes()
        where = pyc.relative_to(python)
        assert data[:4] == importlib.util.MAGIC_NUMBER, where
        assert int.from_bytes(data[4:8], "little") == UNCHECKED_HASH, where
        assert data[8:16] == importlib.util.source_hash(source.read_bytes()), f"{where}: not of its source"
        # Naming the source where Lambda mounts it: the same bytes wherever the layer is built.
        code = marshal.loads(data[16:])
        assert code.co_filename == f"{build_layer.LAMBDA_SITE}/{source.relative_to(python).as_posix()}"


def test_the_build_stops_on_another_python_than_the_layers() -> None:
    # The pyc magic number is per minor version: Lambda's Python rejects another's bytecode and
    # compiles the source again, on every cold start (/opt is read-only).
    build_layer.check_python(build_layer.PYTHON_VERSION)  # the venv is Lambda's 3.13
    with pytest.raises(
        SystemExit, match=r"is cpython 3\.13; the layer's bytecode must be compiled by CPython 3\.12"
    ):
        build_layer.check_python("3.12")


def _services_given_to_clients() -> set[str]:
    """Every service named by a literal in ``LazyClient("…")``, ``client("…")`` or ``….client("…")``
    in shared/herald and functions/ (the code the layer's functions run)."""
    found: set[str] = set()
    for folder in (ROOT / "shared" / "herald", ROOT / "functions"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = (
                    node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                )
                first = node.args[0]
                if name in {"LazyClient", "client"} and isinstance(first, ast.Constant):
                    found.add(str(first.value))
    return found


def test_botocore_keeps_the_model_of_every_service_a_function_uses() -> None:
    used = _services_given_to_clients()
    assert {"s3", "dynamodb", "sqs", "sns"} <= used, f"the scan found too little: {sorted(used)}"
    assert used == set(build_layer.BOTOCORE_SERVICES), (
        f"clients are made for {sorted(used)}; mk/build_layer.py keeps {build_layer.BOTOCORE_SERVICES}"
    )


def test_the_layers_botocore_has_only_those_models_and_makes_each_client(python: Path) -> None:
    data = python / "botocore" / "data"
    assert {p.name for p in data.iterdir() if p.is_dir()} == set(build_layer.BOTOCORE_SERVICES)
    for name in ("endpoints.json", "partitions.json", "sdk-default-configuration.json", "_retry.json"):
        assert (data / name).is_file(), name
    # endpoints.json: the kept services' entries exactly as botocore ships them (the venv's, the same
    # locked version), every other key of every partition untouched.
    import botocore

    assert list(python.glob(f"botocore-{botocore.__version__}.dist-info")), "not the venv's botocore"
    shipped = json.loads((Path(botocore.__file__).parent / "data" / "endpoints.json").read_text())
    built = json.loads((data / "endpoints.json").read_text())
    assert built == build_layer.endpoints_of(shipped, build_layer.BOTOCORE_SERVICES)
    for before, after in zip(shipped["partitions"], built["partitions"], strict=True):
        assert {k: v for k, v in before.items() if k != "services"} == {
            k: v for k, v in after.items() if k != "services"
        }
        assert after["services"] == {
            k: v for k, v in before["services"].items() if k in build_layer.BOTOCORE_SERVICES
        }
    assert set(built["partitions"][0]["services"]) == set(build_layer.BOTOCORE_SERVICES)
    # The layer's boto3 alone (-S: no site-packages), as a function imports it.
    probe = (
        "import json, boto3, botocore\n"
        "session = boto3.Session(region_name='eu-west-1')\n"
        f"names = {list(build_layer.BOTOCORE_SERVICES)!r}\n"
        "made = {n: session.client(n).meta.service_model.service_name for n in names}\n"
        "urls = {f'{n} {r}': session.client(n, region_name=r).meta.endpoint_url\n"
        "    for n in names for r in ('us-east-1', 'eu-west-1', 'cn-north-1', 'us-gov-west-1')}\n"
        "print(json.dumps({'botocore': botocore.__file__, 'made': made,\n"
        "    'available': session.get_available_services(), 'urls': urls}))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(python),
        "PYTHONDONTWRITEBYTECODE": "1",  # the build stays as built
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe], env=env, cwd=python, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert Path(result["botocore"]).is_relative_to(python)
    assert result["made"] == {n: n for n in build_layer.BOTOCORE_SERVICES}
    assert sorted(result["available"]) == sorted(build_layer.BOTOCORE_SERVICES)
    # Each client's endpoint, in four partitions' regions, is the one the full data gives.
    import boto3

    full = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    expected = {
        key: full.client(key.split()[0], region_name=key.split()[1]).meta.endpoint_url
        for key in result["urls"]
    }
    assert result["urls"] == expected
    assert expected["s3 cn-north-1"].endswith(".amazonaws.com.cn")
