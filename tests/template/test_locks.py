"""The two lock files: complete, hashed, in step with each other and with their inputs, and the
venv and the layer's build made from them (requirements/lock.py, ``make lock``). Offline: no
resolution, only what the files say."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str
from packaging.requirements import Requirement

from tests.template.build_scripts import build_layer, lock

ROOT = Path(__file__).resolve().parents[2]


LOCKS = {"layer": lock.LAYER_LOCK, "dev": lock.DEV_LOCK}


def entries(path: Path) -> dict[str, str]:
    """``{name: the entry's text}``: a pin line and its continuation lines (the hashes)."""
    found: dict[str, str] = {}
    name = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==", line):
            name = lock.canonical(match.group(1))
            found[name] = line
        elif name and line.startswith(" "):
            found[name] += "\n" + line
        else:
            name = None
    return found


@pytest.mark.parametrize("which", sorted(LOCKS))
def test_every_package_is_pinned_with_its_hashes(which: str) -> None:
    found = entries(LOCKS[which])
    assert len(found) > 20, which
    unhashed = [name for name, text in found.items() if "--hash=sha256:" not in text]
    assert unhashed == [], f"{which}: pinned without a hash (pip --require-hashes refuses them)"
    assert set(found) == set(lock.pins(LOCKS[which])), which


def test_the_venv_runs_the_layers_versions() -> None:
    layer, dev = lock.pins(lock.LAYER_LOCK), lock.pins(lock.DEV_LOCK)
    differ = {name: (version, dev.get(name)) for name, version in layer.items() if dev.get(name) != version}
    assert differ == {}, (
        "requirements/dev.txt and requirements/layer.txt disagree (layer, dev): run `make lock`"
    )


@pytest.mark.parametrize(
    ("which", "digest"), [("layer", lock.layer_inputs_digest), ("dev", lock.dev_inputs_digest)]
)
def test_locks_are_made_from_the_current_inputs(which: str, digest: Any) -> None:
    recorded = lock.recorded_digest(LOCKS[which])
    assert recorded is not None, f"{which}: no '{lock.DIGEST_LINE.strip()}' line"
    assert recorded == digest(), (
        f"requirements/{which}.txt is older than its inputs (shared/requirements.txt, pyproject.toml's "
        "extras, the layer lock or the target): run `make lock`"
    )


def test_a_changed_range_makes_the_layer_lock_stale(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = tmp_path / "requirements.txt"
    source.write_text(lock.SOURCE.read_text(encoding="utf-8") + "# a comment changes nothing\n")
    monkeypatch.setattr(lock, "SOURCE", source)
    assert lock.layer_inputs_digest() == lock.recorded_digest(lock.LAYER_LOCK)
    source.write_text(lock.SOURCE.read_text(encoding="utf-8").replace("babel>=2.14", "babel>=2.15"))
    assert lock.layer_inputs_digest() != lock.recorded_digest(lock.LAYER_LOCK)


def test_the_layer_lock_satisfies_the_ranges() -> None:
    pins = lock.pins(lock.LAYER_LOCK)
    for line in lock.requirement_lines(lock.SOURCE):
        requirement = Requirement(line)
        name = lock.canonical(requirement.name)
        assert name in pins, line
        assert requirement.specifier.contains(pins[name], prereleases=True), (line, pins[name])


def test_pyproject_takes_the_runtime_dependencies_from_shared_requirements() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["dynamic"] == ["dependencies"]
    assert "dependencies" not in pyproject["project"]
    files = pyproject["tool"]["setuptools"]["dynamic"]["dependencies"]["file"]
    assert files == ["shared/requirements.txt"]
    installed = {str(Requirement(r)) for r in metadata.requires("herald") or [] if "extra ==" not in r}
    assert installed == {str(Requirement(r)) for r in lock.requirement_lines(lock.SOURCE)}, (
        "the installed herald's metadata is not shared/requirements.txt: `make install`"
    )


def test_the_venv_is_the_dev_lock_on_lambdas_python() -> None:
    assert sys.version_info[:2] == tuple(int(n) for n in lock.PYTHON_VERSION.split(".")), (
        f"the venv is Python {sys.version_info[0]}.{sys.version_info[1]}, Lambda's is "
        f"{lock.PYTHON_VERSION}: `make install` makes it anew"
    )
    wrong = {}
    for name, version in lock.pins(lock.DEV_LOCK).items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert wrong == {}, "the venv is not requirements/dev.txt (locked, installed): `make install`"


def test_the_layer_is_built_for_the_functions_runtime() -> None:
    raw, errors = decode_str((ROOT / "template.yaml").read_text(encoding="utf-8"))
    assert not errors and raw is not None
    layer = raw["Resources"]["HeraldLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleRuntimes"] == [f"python{lock.PYTHON_VERSION}"]
    assert raw["Globals"]["Function"]["Runtime"] == f"python{lock.PYTHON_VERSION}"
    assert build_layer.PYTHON_VERSION == lock.PYTHON_VERSION
    # arm64: the lock is resolved for aarch64 and the build's default platform is aarch64's.
    assert lock.LAYER_PLATFORM == "aarch64-manylinux_2_34"
    assert build_layer.DEFAULT_PLATFORM == "manylinux_2_34_aarch64"
    sam_mk = (ROOT / "mk" / "sam.mk").read_text(encoding="utf-8")
    default = re.search(r"^LAYER_PLATFORM \?= (\S+)$", sam_mk, re.M)
    assert default and default[1] == build_layer.DEFAULT_PLATFORM
    makefile = (ROOT / "shared" / "Makefile").read_text(encoding="utf-8")
    assert "build-HeraldLayer:" in makefile and "mk/build_layer.py" in makefile


def test_pip_is_given_every_manylinux_tag_up_to_the_platforms() -> None:
    tags = build_layer.pip_platforms("manylinux_2_34_aarch64")
    assert tags[0] == "manylinux_2_34_aarch64" and tags[-1] == "manylinux2014_aarch64"
    assert "manylinux_2_28_aarch64" in tags and "manylinux_2_17_aarch64" in tags
    assert not any("x86_64" in tag for tag in tags)
    assert "manylinux_2_35_aarch64" not in tags
    assert build_layer.pip_platforms("manylinux2014_x86_64") == ["manylinux2014_x86_64"]
