"""bench/gpu_check.py keeps what each step did, and its report shows a failure's cause; bench/gpu_wheels.py
carries what the GPU machine lacks.

The whole check runs on a GPU, or as ``--rehearsal`` on any machine (a few minutes: not part of
``make test``). Here its parts run on small stand-ins: steps that succeed, fail and overrun, and
notebook folders with recorded results.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import gpu_check  # noqa: E402
import gpu_wheels  # noqa: E402


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "OUT", tmp_path / "gpu_check")


def python(code):
    return [sys.executable, "-c", code]


def test_a_step_keeps_its_status_time_and_the_end_of_its_output():
    ok = gpu_check.run_step("ok", python("print('fine')"), seconds=60)
    failed = gpu_check.run_step("failed", python("import sys; print('x' * 5000); sys.exit('the cause')"), seconds=60)
    stopped = gpu_check.run_step("stopped", python("import time; print('started', flush=True); time.sleep(30)"), 1)
    assert ok["returncode"] == 0 and ok["tail"].strip() == "fine"
    assert failed["returncode"] == 1 and failed["tail"].endswith("the cause\n")
    assert len(failed["tail"]) == gpu_check.TAIL  # the end of a long output, not its start
    assert stopped["returncode"] is None and "started" in stopped["tail"] and "stopped after 1 s" in stopped["tail"]
    assert (gpu_check.OUT / "failed.log").read_text().startswith("x" * 5000)
    # The report names no path of this machine: the interpreter is "python", files are from the repository root.
    here = gpu_check.run_step("here", python(f"print({str(gpu_check.REPO_ROOT / 'data')!r})"), seconds=60)
    assert here["command"].startswith("python -c") and here["tail"].strip() == "data"


def notebooks(folder, results, seconds):
    folder.mkdir(parents=True)
    results.mkdir(parents=True)
    for name, recorded in results_of.items():
        notebook = {"cells": [], "metadata": {"papermill": {"duration": seconds}}}
        (folder / f"{name}.ipynb").write_text(json.dumps(notebook))
        (results / f"{name}.json").write_text(json.dumps(recorded))


results_of = {"03_siamese": {"r_at_1": 0.5, "check: it learns": True, "check: it beats chroma": False}}


def test_the_report_puts_full_mode_beside_workshop_and_shows_a_failed_step(tmp_path):
    notebooks(tmp_path / "course", tmp_path / "course-results", 80.0)
    notebooks(tmp_path / "full", tmp_path / "full-results", 300.0)
    course = {
        "mode": "workshop",
        "notebooks": gpu_check.notebook_outcomes(tmp_path / "course", tmp_path / "course-results"),
    }
    full = {"mode": "full", "notebooks": gpu_check.notebook_outcomes(tmp_path / "full", tmp_path / "full-results")}
    assert course["notebooks"]["03_siamese"] == {"seconds": 80.0, "results": results_of["03_siamese"]}
    assert gpu_check.headline_rows(course, full) == [("03_siamese", "r_at_1", 0.5, 0.5)]

    failed = gpu_check.run_step("training", python("raise SystemExit('CUDA error: out of memory')"), seconds=60)
    facts = {"torch": "2.x", "cuda": None, "gpus": []}
    machine = {
        "date": "today",
        "code": "commit abc",
        "cpu": "cpu",
        "cpu_count": 2,
        "torch_threads": 2,
        "gpu": None,
        "load_average_1min_at_start": None,
        "versions": {"python": "3.11"},
        "platform": "linux",
    }
    report = gpu_check.format_report([failed], course, full, facts, machine, "python bench/gpu_check.py", False)
    assert "| training | failed |" in report
    assert "## training: the end of its output" in report and "CUDA error: out of memory" in report
    assert "| 03_siamese | 80.0 | 1 of 2 |" in report and "| 03_siamese | 300.0 | 1 of 2 |" in report
    assert "| 03_siamese | r_at_1 | 0.500 | 0.500 |" in report


def test_the_report_lists_the_models_the_full_mode_notebooks_kept(tmp_path, monkeypatch):
    from mlcourse import pretrained
    from mlcourse.models import EmbeddingNet

    assert "None." in gpu_check.format_models(tmp_path / "models")
    monkeypatch.setenv(pretrained.SAVE_ENV, str(tmp_path / "models"))
    pretrained.keep(
        EmbeddingNet(embedding_dim=8, widths=(4,)), "03_contrastive", "03_siamese_contrastive", mode="smoke", epochs=1
    )
    section = gpu_check.format_models(tmp_path / "models")
    digest = json.loads((tmp_path / "models" / "MANIFEST.json").read_text())["03_contrastive"]["sha256"]
    assert "| 03_contrastive | 03_siamese_contrastive | smoke | 1 | cpu |" in section and digest[:12] in section


def test_the_image_list_reads_words_and_pip_freeze_lines(tmp_path):
    listed = tmp_path / "image.txt"
    listed.write_text("# a comment\nnumpy torch Scikit_Learn\npandas==3.1.2\nfoo.bar @ file:///x\n")
    assert gpu_wheels.image_packages(listed) == {"numpy", "torch", "scikit-learn", "pandas", "foo-bar"}


def test_the_wheels_follow_the_requirements_and_stop_at_the_image():
    """librosa's needs come along unless the image has them; markers are judged for the GPU's Python."""
    image = {"torch", "numpy", "scipy", "scikit-learn", "pandas", "numba"}
    found, only_there = gpu_wheels.needed(image, "3.12")
    assert {"librosa", "soxr", "audioread", "pytorch-metric-learning", "papermill", "tinysoundfont"} <= found.keys()
    assert "torch" in found and "sympy" not in found  # torch is the image's, with what it needs
    assert not found.keys() & {"playwright", "jupyterlab", "pyaudio"}  # LEFT_OUT, with their reasons
    assert "aiohttp" in only_there  # papermill needs it on Python 3.12 only
    found_311, _ = gpu_wheels.needed(image | {"soxr"}, "3.11")
    assert "soxr" in found_311 and not any(name.startswith("aiohttp") for name in found_311)
