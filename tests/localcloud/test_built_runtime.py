"""The host twin (``herald_tools.built``) and ``herald local --built``'s runtime, on a small build.

A build laid out as ``sam build`` lays it out (a built template, a layer's ``python/`` with a
distribution's ``*.dist-info``, a function's artifact) is made into a twin; the function then runs
on the Lambda Python (3.13) with nothing on its path but the artefacts and the runtime shim.
"""

from __future__ import annotations

import io
import json
import py_compile
import subprocess
from pathlib import Path

import pytest

from herald_tools.built import (
    LAMBDA_SITE,
    MAKE_TARGET,
    MANIFEST,
    TWIN_DIR,
    TwinError,
    build_twin,
    describe_python,
    load_twin,
    verify,
)
from herald_tools.localcloud import LocalCloud
from herald_tools.localcloud.runtime import SHIM_MODULE

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  ToyLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: ToyLayer
      CompatibleRuntimes: [python3.13]
  ToyFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ToyFunction
      Handler: app.handler
      Runtime: python3.13
      Timeout: 10
      Layers:
        - !Ref ToyLayer
"""

APP = """\
import importlib.util
import sys

import toylib


def handler(event, context):
    return {
        "path": sys.path,
        "prefix": sys.prefix,
        "version": list(sys.version_info[:2]),
        "no_site": sys.flags.no_site,
        "toylib": toylib.__file__,
        "found": {name: importlib.util.find_spec(name) is not None for name in event["modules"]},
    }
"""


@pytest.fixture(scope="module")
def lambda_python() -> str:
    """The Lambda runtime's Python on this machine: the one ``make build-host`` made its twin for."""
    try:
        return load_twin(ROOT / TWIN_DIR).python
    except TwinError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def build(tmp_path: Path) -> Path:
    root = tmp_path / "build"
    site = root / "ToyLayer" / "python"
    (site / "toylib").mkdir(parents=True)
    (site / "toylib" / "__init__.py").write_text("VALUE = 1\n")
    info = site / "toylib-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toylib\nVersion: 1.2.3\n")
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    (info / "RECORD").write_text(
        "toylib/__init__.py,,\ntoylib-1.2.3.dist-info/METADATA,,\ntoylib-1.2.3.dist-info/WHEEL,,\n"
        "toylib-1.2.3.dist-info/RECORD,,\n"
    )
    (site / "herald_like").mkdir()
    (site / "herald_like" / "__init__.py").write_text("# a package no distribution owns\n")
    (root / "ToyFunction").mkdir()
    (root / "ToyFunction" / "app.py").write_text(APP)
    (root / "template.yaml").write_text(TEMPLATE)
    return root


def test_the_twin_has_the_builds_distributions_and_files(
    build: Path, tmp_path: Path, lambda_python: str
) -> None:
    python = describe_python(lambda_python)
    twin = tmp_path / "twin"
    manifest = build_twin(build, twin, python=lambda_python)
    assert manifest["layers"]["ToyLayer"]["distributions"] == {"toylib": "1.2.3"}
    assert manifest["layers"]["ToyLayer"]["compiled"] == {}
    assert manifest["functions"] == ["ToyFunction"] and manifest["runtime"] == "python3.13"
    for rel in (
        "ToyLayer/python/toylib/__init__.py",
        "ToyLayer/python/herald_like/__init__.py",
        "ToyFunction/app.py",
    ):
        assert (twin / rel).read_bytes() == (build / rel).read_bytes()
    assert verify(build, twin, python) == []
    # A file of the twin changed, or a distribution's version: both are told apart from the build.
    (twin / "ToyLayer/python/herald_like/__init__.py").write_text("# changed\n")
    metadata = twin / "ToyLayer/python/toylib-1.2.3.dist-info/METADATA"
    metadata.write_text(metadata.read_text().replace("1.2.3", "1.2.4"))
    problems = verify(build, twin, python)
    assert "ToyLayer: python/herald_like/__init__.py is not as built" in problems
    assert "ToyLayer: toylib is 1.2.3 in the build, 1.2.4 in the twin" in problems


def test_the_twin_keeps_the_builds_bytecode_and_tells_any_other_apart(
    build: Path, tmp_path: Path, lambda_python: str
) -> None:
    # As mk/build_layer.py compiles the layer: unchecked-hash, level 0, sources named under /opt/python.
    site = build / "ToyLayer" / "python"
    compile_all = [
        lambda_python,
        "-m",
        "compileall",
        "-q",
        "-o",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
    ]
    subprocess.run([*compile_all, "-d", LAMBDA_SITE, str(site)], check=True, timeout=60)
    python = describe_python(lambda_python)
    build_twin(build, tmp_path / "twin", python=python["executable"])
    built, twin = build / "ToyLayer", tmp_path / "twin" / "ToyLayer"
    toylib = "python/toylib/__pycache__/__init__.cpython-313.pyc"
    herald_like = "python/herald_like/__pycache__/__init__.cpython-313.pyc"
    for rel in (toylib, herald_like):
        assert (twin / rel).read_bytes() == (built / rel).read_bytes()
    assert verify(build, tmp_path / "twin", python) == []
    # A timestamp pyc (flags 0) in place of the build's, bytecode of a source that changed after it
    # was compiled, bytecode of no source, and the build's bytecode missing: each one named.
    source = twin / "python/toylib/__init__.py"
    timestamp = py_compile.PycInvalidationMode.TIMESTAMP
    py_compile.compile(str(source), cfile=str(twin / toylib), invalidation_mode=timestamp)
    (twin / "python/herald_like/__init__.py").write_text("# changed\n")
    stray = "python/herald_like/__pycache__/gone.cpython-313.pyc"
    (twin / stray).write_bytes((built / herald_like).read_bytes())
    problems = verify(build, tmp_path / "twin", python)
    assert f"ToyLayer: {toylib} has flags 0, not 1 (unchecked-hash)" in problems
    assert f"ToyLayer: {herald_like} is not of its source" in problems
    assert f"ToyLayer: {stray} (bytecode) is in the twin, not in the build" in problems
    assert f"ToyLayer: {stray} has no source beside it" in problems
    (twin / herald_like).unlink()
    missing = f"ToyLayer: {herald_like} (bytecode) is in the build, not in the twin"
    assert missing in verify(build, tmp_path / "twin", python)


def test_a_twin_missing_or_older_than_the_build_names_the_make_target(
    build: Path, tmp_path: Path, lambda_python: str
) -> None:
    with pytest.raises(TwinError, match=MAKE_TARGET):
        load_twin(tmp_path / "nowhere")
    twin = tmp_path / "twin"
    build_twin(build, twin, python=lambda_python)
    assert load_twin(twin).runtime == "python3.13"
    (build / "ToyFunction" / "app.py").write_text(APP + "\n# rebuilt\n")
    with pytest.raises(TwinError, match=f"changed since the twin .* was made: run `{MAKE_TARGET}` again"):
        load_twin(twin)
    build_twin(build, twin, python=lambda_python)  # brought up to date
    assert (twin / "ToyFunction" / "app.py").read_text().endswith("# rebuilt\n")
    assert json.loads((twin / MANIFEST).read_text())["source"] == str(build.resolve())
    load_twin(twin)


def test_a_built_function_runs_on_the_lambda_python_with_only_its_artefacts_on_the_path(
    build: Path, tmp_path: Path, lambda_python: str
) -> None:
    twin = tmp_path / "twin"
    build_twin(build, twin, python=lambda_python)
    with LocalCloud(built=twin, logs=io.StringIO()).start(port=0) as cloud:
        spec = cloud.resources.functions["ToyFunction"]
        assert spec.built is not None
        shim = spec.built.shim_dir
        assert (shim / f"{SHIM_MODULE}.py").is_file() and [p.name for p in shim.iterdir()] == [
            f"{SHIM_MODULE}.py"
        ]
        result = cloud.pool("ToyFunction").invoke(
            {"modules": ["boto3", "moto", "herald_tools", "pytest", "toylib"]}
        )
    assert result.ok, result.error_message
    out = result.result
    assert out["version"] == [3, 13] and out["no_site"] == 1
    assert out["prefix"] == str(Path(lambda_python).resolve().parents[1])
    assert out["toylib"] == str((twin / "ToyLayer/python/toylib/__init__.py").resolve())
    # Nothing of the venv or the checkout: only the artefacts, the shim and the interpreter's stdlib.
    assert out["found"] == {
        "boto3": False,
        "moto": False,
        "herald_tools": False,
        "pytest": False,
        "toylib": True,
    }
    artefacts = {str((twin / "ToyFunction").resolve()), str((twin / "ToyLayer/python").resolve()), str(shim)}
    others = [p for p in out["path"] if p not in artefacts]
    assert all(p.startswith(out["prefix"] + "/lib/") for p in others), others
    assert not any("site-packages" in p for p in out["path"])
    assert not shim.exists()  # removed when the local cloud stopped
