"""Download the wheels that bench/gpu_check.py needs on a GPU machine that cannot reach PyPI.

    python bench/gpu_wheels.py [--python-version 3.12] [--have FILE] [--dest .whl]
    python bench/gpu_wheels.py --check /path/to/python3.12    # rehearse their install first

A GPU machine's image holds PyTorch with CUDA and much of the scientific stack: the packages
named in ``--have`` (default ``bench/gpu_image_packages.txt``, the image the check was prepared
for; ``pip list --format=freeze`` output works too). The wheels to carry are what the course
needs, followed through every requirement as installed here, less what the image has and
``LEFT_OUT``. What the course needs: ``mlcourse`` with its test extra (``pytest -m cuda``
collects every test module), tinysoundfont (installed apart, as the Makefile does) and psutil
(bench/common.py imports it). Each wheel is for the GPU machine's Python, at the version
installed here, so the GPU runs what ``make test`` tested. On the GPU machine:

    python3 -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    python3 bench/gpu_check.py

``--check PYTHON`` rehearses that install: a throw-away environment of that Python gets, from
PyPI, the image's packages that the course uses (torch aside: its CUDA build is several GB),
then the wheels as above; it must pass ``pip check`` (torch and ``LEFT_OUT`` aside) and import
every module of ``MODULES``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

HERE = Path(__file__).resolve().parent
WANTED = [("mlcourse", {"test"}), ("tinysoundfont", set()), ("psutil", set())]  # (distribution, extras)
LEFT_OUT = {
    "mlcourse": "the course itself: the checkout is on PYTHONPATH",
    "jupyterlab": "the editor: gpu_check runs the notebooks without one",
    "notebook": "the editor: gpu_check runs the notebooks without one",
    "playwright": "drives Chromium in the browser tests, which skip without it",
    "ruff": "checks the code's dialect, not the GPU path",
    "pyaudio": "tinysoundfont's sound output, which the course never opens",
    "jupyter-server": "jupyter-server-mathjax's server part: the HTML pages read its files only",
}
# The modules the course, its tests and the notebooks import, beyond the standard library and torch
# (jupyter_server_mathjax is only found, never imported: coursetools.export copies its MathJax files).
MODULES = ["librosa", "soundfile", "pretty_midi", "tinysoundfont", "mir_eval", "music21", "umap", "matplotlib",
           "tqdm", "ipywidgets", "anywidget", "papermill", "nbconvert", "nbformat", "nbclient", "ipykernel",
           "pytest", "yaml", "psutil", "pytorch_metric_learning"]  # fmt: skip
# The manylinux tags pip must accept for compiled wheels (it matches each one exactly).
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]  # fmt: skip


def canonical(name):
    """A distribution's name as PyPI compares them: lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def image_packages(path):
    """The canonical names in a list of packages: words, or pip's ``name==version`` lines; # starts a comment."""
    text = "\n".join(line.split("#")[0] for line in Path(path).read_text().splitlines())
    words = re.sub(r"\s@\s\S+", " ", text).split()  # pip's "name @ url" lines: the name
    return {canonical(re.split(r"[=<>~ @]", word)[0]) for word in words}


def needed(image, python_version):
    """What the course needs on that Python, following the requirements installed here.

    A package the image has ends the path there: the image brings what it needs.

    Returns:
        ``({canonical name: version installed here}, {names needed there but not installed here})``;
        the second happens where a requirement holds on that Python only (the image may have it).
    """
    environment = {**default_environment(), "python_version": python_version,
                   "python_full_version": f"{python_version}.0"}  # fmt: skip
    found, missing, queue, seen = {}, set(), list(WANTED), set()
    while queue:
        name, extras = queue.pop()
        key = canonical(name)
        if (key, *sorted(extras)) in seen or (key in LEFT_OUT and key != "mlcourse"):
            continue
        seen.add((key, *sorted(extras)))
        try:
            found[key] = metadata.version(key)
        except metadata.PackageNotFoundError:
            missing.add(key)
            continue
        if key in image:
            continue
        for line in metadata.requires(key) or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({**environment, "extra": e}) for e in {"", *extras}):
                queue.append((requirement.name, requirement.extras))
    return found, missing - set(LEFT_OUT)


def download(image, python_version, dest):
    """Download the wheels for CPython ``python_version`` on Linux; returns pip's exit status.

    What the course needs beyond the image, each at the version installed here and without
    dependencies (they are in the list). What is needed on that Python only (not installed here)
    comes with its dependencies, as pip resolves them there, the versions installed here kept.
    """
    found, only_there = needed(image, python_version)
    only_there -= image
    pins = sorted(f"{name}=={v}" for name, v in found.items() if name not in image and name not in LEFT_OUT)
    command = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--implementation", "cp",
               "--python-version", python_version, "-d", str(dest)]  # fmt: skip
    for platform in PLATFORMS:
        command += ["--platform", platform]
    status = subprocess.run(command + ["--no-deps"] + pins).returncode
    if only_there and status == 0:
        print(f"needed on Python {python_version} only, not tested here: {', '.join(sorted(only_there))}")
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as constraints:
            installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
            constraints.write("".join(f"{name}=={v}\n" for name, v in installed.items() if name != "mlcourse"))
            constraints.flush()
            status = subprocess.run(command + ["-c", constraints.name] + sorted(only_there)).returncode
        for wheel in Path(dest).glob("*.whl"):  # pip brought what they need: the image has its own copies
            if canonical(wheel.name.split("-")[0]) in image:
                wheel.unlink()
    return status


def check(python, image, dest):
    """Rehearse the GPU machine's install on ``python``; returns 0 when everything imports."""
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    found, only_there = needed(image, version)
    from_image = sorted(f"{name}=={v}" for name, v in found.items() if name in image and name != "torch")
    from_image += sorted(only_there & image)  # needed on that Python only: any version
    wheels = sorted(str(path) for path in Path(dest).glob("*.whl"))
    with tempfile.TemporaryDirectory() as folder:
        env, site = Path(folder) / "env", Path(folder) / "site"
        python_there = str(env / "bin" / "python")
        subprocess.run([python, "-m", "venv", str(env)], check=True)
        subprocess.run([python_there, "-m", "pip", "install", "-q"] + from_image, check=True)
        subprocess.run([python_there, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(site)]
                       + wheels, check=True)  # fmt: skip
        run = dict(capture_output=True, text=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
        report = subprocess.run([python_there, "-m", "pip", "check"], **run).stdout.splitlines()
        absent = {"torch", *LEFT_OUT}  # not carried, on purpose
        unmet = [
            line for line in report if " requires " in line and canonical(line.split()[3].rstrip(",")) not in absent
        ]
        imports = (f"import importlib, importlib.util\nfor name in {MODULES!r}:\n    importlib.import_module(name)\n"
                   "assert importlib.util.find_spec('jupyter_server_mathjax')\n")  # fmt: skip
        imported = subprocess.run([python_there, "-c", imports], **run)
    print(f"Python {version}: {len(wheels)} wheels over {len(from_image)} packages of the image (torch aside)")
    print(
        "pip check:", "every requirement met (torch and LEFT_OUT aside)" if not unmet else "\n  " + "\n  ".join(unmet)
    )
    print(f"imports of {len(MODULES)} modules:", "ok" if imported.returncode == 0 else imported.stderr[-2000:])
    return 0 if not unmet and imported.returncode == 0 else 1


def main():
    """Download the wheels, or (``--check``) rehearse their install."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python-version", default="3.12", help="the GPU machine's Python (default 3.12)")
    parser.add_argument("--have", default=HERE / "gpu_image_packages.txt", help="the GPU image's packages")
    parser.add_argument("--dest", default=".whl", help="where the wheels go (default .whl)")
    parser.add_argument("--check", metavar="PYTHON", help="rehearse the install on this interpreter instead")
    args = parser.parse_args()
    image = image_packages(args.have)
    if args.check:
        return check(args.check, image, args.dest)
    return download(image, args.python_version, args.dest)


if __name__ == "__main__":
    sys.exit(main())
