"""Download the wheels that bench/gpu_check.py needs on a GPU machine that cannot reach PyPI.

    python bench/gpu_wheels.py [--python-version 3.12] [--dest .whl]

A GPU machine's image usually holds PyTorch with CUDA and the scientific stack (numpy, scipy,
scikit-learn, pandas, numba, matplotlib, jinja2, requests, pytest) but not the audio, notebook
and map libraries the course adds. ``PACKAGES`` lists those, with what they need in turn; each is
downloaded for the GPU machine's Python, without its dependencies (they are listed too), at the
version installed here, so the GPU runs what ``make test`` tested. On the GPU machine:

    python3 -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    python3 bench/gpu_check.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata

PACKAGES = [
    # audio: features, rendering, evaluation
    "librosa", "audioread", "decorator", "pooch", "platformdirs", "soundfile", "cffi", "pycparser", "soxr",
    "pretty_midi", "mido", "tinysoundfont", "mir_eval",
    # the explorer's maps and widgets
    "umap-learn", "pynndescent", "ipywidgets", "widgetsnbextension", "jupyterlab_widgets", "comm", "anywidget",
    "psygnal",
    # running notebooks: papermill, the kernel, and the HTML copies
    "papermill", "nbclient", "nbformat", "fastjsonschema", "jsonschema", "jsonschema-specifications", "referencing",
    "rpds-py", "jupyter_core", "jupyter_client", "pyzmq", "tornado", "traitlets", "entrypoints", "tenacity",
    "ipykernel", "ipython", "jedi", "parso", "pexpect", "ptyprocess", "prompt_toolkit", "wcwidth", "stack_data",
    "executing", "asttokens", "pure_eval", "matplotlib-inline", "nest-asyncio2", "debugpy", "ipython-pygments-lexers",
    "nbconvert", "beautifulsoup4", "soupsieve", "bleach", "webencodings", "tinycss2", "defusedxml",
    "jupyterlab_pygments", "mistune", "pandocfilters", "jupyter-server-mathjax",
]  # fmt: skip
# The manylinux tags pip must accept for compiled wheels (it matches each one exactly).
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]  # fmt: skip


def pinned(names):
    """Each package as ``name==version``, the version installed here."""
    missing = []
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        sys.exit(
            f"error: not installed here, so no tested version to download: {', '.join(missing)} (run make install)"
        )
    return pins


def main():
    """Download every wheel of ``PACKAGES`` into the destination folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python-version", default="3.12", help="the GPU machine's Python (default 3.12)")
    parser.add_argument("--dest", default=".whl", help="where the wheels go (default .whl)")
    args = parser.parse_args()
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
               "--python-version", args.python_version, "-d", args.dest]  # fmt: skip
    for platform in PLATFORMS:
        command += ["--platform", platform]
    return subprocess.run(command + pinned(PACKAGES)).returncode


if __name__ == "__main__":
    sys.exit(main())
