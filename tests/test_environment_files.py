"""The environment files agree with each other, and every install (make, Binder, conda) is the locked one."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
ENV_FILES = [ROOT / "environment.yml", ROOT / "binder" / "environment.yml"]


def normalize(name: str) -> str:
    """Compare package names case-insensitively, with - and _ (and .) equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    """The package name at the start of a pip or conda requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert match, f"cannot read a package name from {spec!r}"
    return normalize(match.group(1))


def split_dependencies(path: Path) -> tuple[list[str], list[str]]:
    """The conda dependency strings and the pip ones of an environment file."""
    env = yaml.safe_load(path.read_text(encoding="utf-8"))
    conda, pip = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip.extend(dep.get("pip", []))
        else:
            conda.append(str(dep))
    return conda, pip


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_root_and_binder_environments_match():
    root, binder = (split_dependencies(p) for p in ENV_FILES)
    assert sorted(root[0]) == sorted(binder[0]), "conda dependencies differ"
    assert sorted(root[1]) == sorted(binder[1]), "pip dependencies differ"
    channels = [yaml.safe_load(p.read_text())["channels"] for p in ENV_FILES]
    assert channels[0] == channels[1] == ["conda-forge"]


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_conda_gives_python_only_and_pip_the_locked_versions(path):
    """No package comes from conda: it would be a version CI never tested."""
    conda, pip = split_dependencies(path)
    assert sorted(conda) == ["pip", "python=3.11"] and pip == []


def locked_install_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if re.match(r"\s*(\$\(PIP\)|pip) install\b", line)]


@pytest.mark.parametrize("where", ["binder/postBuild", "README.md"])
def test_binder_and_conda_install_what_make_installs(where):
    """torch at the Makefile's TORCH_VERSION (the CPU build), then the lock and tinysoundfont with hashes."""
    version = re.search(r"^TORCH_VERSION \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    lines = locked_install_lines((ROOT / where).read_text())
    expected = [
        f"pip install torch=={version} --index-url https://download.pytorch.org/whl/cpu",
        "pip install --require-hashes -r requirements/lock.txt",
        "pip install --no-deps --require-hashes -r requirements/apart.txt",
        "pip install --no-deps -e .",
    ]
    assert [line for line in lines if line in expected] == expected, lines


def test_tinysoundfont_is_not_a_dependency():
    """Its metadata requires pyaudio, which does not build: it is installed apart, with --no-deps."""
    project = pyproject()["project"]
    all_specs = project["dependencies"] + [
        spec for extra in project["optional-dependencies"].values() for spec in extra
    ]
    assert "tinysoundfont" not in {requirement_name(s) for s in all_specs}
    assert re.match(
        r"tinysoundfont==\S+ \\\n\s+--hash=sha256:",
        (ROOT / "requirements" / "apart.txt").read_text().split("\n", 2)[-1],
    )


def test_postbuild_builds_the_dataset():
    assert "python -m mlcourse.data build --size workshop" in (ROOT / "binder" / "postBuild").read_text()


@pytest.mark.parametrize("name", ["postBuild", "start"])
def test_binder_scripts_are_executable(name):
    path = ROOT / "binder" / name
    assert path.read_text().startswith("#!"), f"binder/{name} lacks a shebang"
    assert os.access(path, os.X_OK), f"binder/{name} is not executable"


def test_binder_start_execs_its_arguments():
    text = (ROOT / "binder" / "start").read_text()
    assert 'exec "$@"' in text
    assert "MLCOURSE_MODE=workshop" in text


def lock_pins(path: Path) -> dict[str, tuple[str, int]]:
    """Each package of a pip-compile lock: (its version, how many hashes it lists)."""
    pins, current = {}, None
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if match:
            current = normalize(match.group(1))
            pins[current] = (match.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            pins[current] = (pins[current][0], pins[current][1] + 1)
    return pins


def test_the_lock_pins_every_dependency_inside_pyprojects_ranges_with_hashes():
    """make install and CI install requirements/lock.txt: it must hold what pyproject.toml asks, in range."""
    from packaging.requirements import Requirement

    pins = lock_pins(ROOT / "requirements" / "lock.txt")
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    for spec in project["dependencies"] + extras["test"] + extras["mirdata"]:
        requirement = Requirement(spec)
        name = normalize(requirement.name)
        if name == "torch":  # installed apart, at the Makefile's TORCH_VERSION
            version = re.search(r"^TORCH_VERSION \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
        else:
            assert name in pins, f"requirements/lock.txt lacks {name}: run make lock"
            version = pins[name][0]
        assert requirement.specifier.contains(version), f"{name} {version} is outside {spec}: run make lock"
    assert all(hashes > 0 for _, hashes in pins.values()), "a pin without hashes: pip install --require-hashes fails"
    assert "torch" not in pins and "tinysoundfont" not in pins
