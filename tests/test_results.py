"""mlcourse.results: recording and tabulating the notebooks' headline figures."""

from __future__ import annotations

import errno
import json
import math
import os
import stat

import numpy as np
import pytest
import torch

from mlcourse import files, results
from mlcourse.files import repo_root


@pytest.fixture(autouse=True)
def results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_RESULTS", str(tmp_path))
    return tmp_path


def stored(tmp_path, notebook):
    return json.loads((tmp_path / f"{notebook}.json").read_text())


def test_results_dir_follows_environment(tmp_path):
    assert results.results_dir() == tmp_path.resolve()


def test_results_dir_default_is_build_results(monkeypatch):
    monkeypatch.delenv("MLCOURSE_RESULTS")
    expected = repo_root() / "build" / "results"
    assert results.results_dir() == expected
    assert (repo_root() / "mlcourse" / "results.py").exists()


def test_record_writes_json(tmp_path):
    results.record("00_data_tour", "knn_accuracy", 0.75)
    assert stored(tmp_path, "00_data_tour") == {"knn_accuracy": 0.75}


def test_record_merges_and_overwrites(tmp_path):
    results.record("02_lmnn", "knn_accuracy", 0.5)
    results.record("02_lmnn", "n_train", 120)
    results.record("02_lmnn", "knn_accuracy", 0.625)
    results.record("03_siamese_contrastive", "recall_at_1", 0.25)
    assert stored(tmp_path, "02_lmnn") == {"knn_accuracy": 0.625, "n_train": 120}
    assert stored(tmp_path, "03_siamese_contrastive") == {"recall_at_1": 0.25}


def test_record_is_atomic_no_temp_left(tmp_path):
    for i in range(5):
        results.record("01_distances_and_lda", f"value_{i}", i / 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_distances_and_lda.json"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    results.record("04_triplet_mining", "recall_at_1", 0.5)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", broken_replace)
    with pytest.raises(OSError):
        results.record("04_triplet_mining", "recall_at_1", 0.9)
    assert stored(tmp_path, "04_triplet_mining") == {"recall_at_1": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["04_triplet_mining.json"]


@pytest.mark.parametrize(
    "value, expected",
    [
        (np.float32(0.5), 0.5),
        (np.float64(0.125), 0.125),
        (np.int64(42), 42),
        (np.bool_(True), True),
        (np.array(0.25), 0.25),
    ],
)
def test_numpy_scalars_become_python_numbers(tmp_path, value, expected):
    results.record("05_classification_and_proxies", "x", value)
    got = stored(tmp_path, "05_classification_and_proxies")["x"]
    assert got == expected and type(got) is type(expected)


def test_torch_scalar_is_converted(tmp_path):
    torch = pytest.importorskip("torch")
    results.record("06_disentangled", "loss", torch.tensor(1.5))
    assert stored(tmp_path, "06_disentangled") == {"loss": 1.5}


def test_strings_and_bools_accepted(tmp_path):
    results.record("09_applications", "best_model", "triplet")
    results.record("09_applications", "converged", True)
    assert stored(tmp_path, "09_applications") == {"best_model": "triplet", "converged": True}


@pytest.mark.parametrize("bad", [float("nan"), np.float32("nan"), math.inf, -np.inf])
def test_non_finite_rejected(tmp_path, bad):
    with pytest.raises(ValueError, match="finite"):
        results.record("07_cross_modal", "recall_at_10", bad)
    assert not (tmp_path / "07_cross_modal.json").exists()


@pytest.mark.parametrize("bad", [None, [1, 2], {"a": 1}, np.arange(3)])
def test_non_scalar_rejected(bad):
    with pytest.raises(ValueError, match="result 'x'"):
        results.record("08_self_supervised", "x", bad)


@pytest.mark.parametrize("notebook", ["", "../evil", "a/b", ".hidden"])
def test_bad_notebook_name_rejected(notebook):
    with pytest.raises(ValueError):
        results.record(notebook, "x", 1)


def test_clear_forgets_a_notebook(tmp_path):
    results.record("00_data_tour", "knn_accuracy", 0.5)
    results.clear("00_data_tour")
    results.clear("00_data_tour")  # clearing twice is fine
    assert results.load_results() == {}


def test_checkpoints_live_in_the_results_folder_and_clear_removes_a_notebooks_own():
    folder = results.checkpoints_dir()
    assert folder.parent == results.results_dir()
    for name in ("workshop/03_contrastive.pt", "smoke/03_contrastive.pt", "workshop/09_versions.pt"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"weights")
    results.clear("03_siamese_contrastive")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.pt")) == ["workshop/09_versions.pt"]


def test_load_results_reads_everything():
    results.record("01_distances_and_lda", "knn_accuracy", 0.5)
    results.record("00_data_tour", "knn_accuracy", 0.25)
    loaded = results.load_results()
    assert list(loaded) == ["00_data_tour", "01_distances_and_lda"]
    assert loaded["01_distances_and_lda"] == {"knn_accuracy": 0.5}


def test_load_results_empty_when_folder_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_RESULTS", str(tmp_path / "nowhere"))
    assert results.load_results() == {}


def test_table_includes_every_name():
    results.record("00_data_tour", "knn_accuracy", 0.81234)
    results.record("00_data_tour", "n_pieces", 96)
    results.record("02_lmnn", "knn_accuracy_after", 0.9)
    results.record("02_lmnn", "tiny", 0.000123456)
    table = results.format_results_table(results.load_results())
    lines = table.splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["notebook", "result", "value"]
    for name in ["knn_accuracy", "n_pieces", "knn_accuracy_after", "tiny"]:
        assert name in table
    assert "0.812" in table and "0.81234" not in table
    assert "0.900" in table and "96" in table and "0.000123" in table
    assert len(lines) == 2 + 4


def test_table_when_empty_names_make_course():
    assert "make course" in results.format_results_table({})


def test_main_prints_table(capsys):
    results.record("00_data_tour", "knn_accuracy", 0.5)
    assert results.main() == 0
    assert "knn_accuracy" in capsys.readouterr().out


def test_checks_print_and_record_each_claim(capsys):
    check = results.Checks("04_triplet_mining")
    check("semi-hard mining beats the untrained network", np.float64(0.4) > 0.3, "R@1 0.400 vs 0.300")
    check("hard mining collapses", torch.tensor(False))
    assert capsys.readouterr().out.splitlines() == [
        "semi-hard mining beats the untrained network: True (R@1 0.400 vs 0.300)",
        "hard mining collapses: False",
    ]
    assert results.load_results()["04_triplet_mining"] == {
        "check: semi-hard mining beats the untrained network": True,
        "check: hard mining collapses": False,
    }


@pytest.mark.parametrize("holds", [1, "True", None, np.array([True, False]), torch.tensor([True, True])])
def test_a_check_needs_one_truth_value(holds):
    with pytest.raises(ValueError, match="must be one True or False"):
        results.Checks("04_triplet_mining")("a claim", holds)


def test_checks_refuse_an_empty_claim_or_a_bad_notebook_name():
    with pytest.raises(ValueError, match="non-empty sentence"):
        results.Checks("04_triplet_mining")(" ", True)
    with pytest.raises(ValueError, match="plain name"):
        results.Checks("../04")


def test_checks_are_listed_apart_from_the_headline_figures():
    results.record("04_triplet_mining", "r_at_1_all", 0.5)
    check = results.Checks("04_triplet_mining")
    check("all mining beats the untrained network", True)
    check("hard mining collapses", False)
    results.Checks("05_classification_and_proxies")("normalisation lifts R@1", True)
    recorded = results.load_results()
    table = results.format_results_table(recorded)
    assert "r_at_1_all" in table and "check" not in table
    assert results.format_checks(recorded).splitlines() == [
        "04_triplet_mining              True   all mining beats the untrained network",
        "04_triplet_mining              False  hard mining collapses",
        "05_classification_and_proxies  True   normalisation lifts R@1",
        "2 of 3 checks hold (a False is a finding about this run, not an error)",
    ]
    assert results.format_checks({"04_triplet_mining": {"r_at_1_all": 0.5}}) == ""


@pytest.mark.parametrize("junk", [b'{"a": 1', b"\x80\x81\xfe binary junk", b"[1, 2]"])
def test_a_damaged_file_is_named_once_and_the_others_still_print(tmp_path, capsys, junk):
    results.record("00_data_tour", "knn_accuracy", 0.5)
    (tmp_path / "03_x.json").write_bytes(junk)
    assert results.main() == 0
    out, err = capsys.readouterr()
    assert "knn_accuracy" in out
    (line,) = err.splitlines()
    assert line.startswith(f"error: results file {tmp_path / '03_x.json'} is damaged (")
    assert line.endswith("delete it, or rerun the notebook 03_x to record it again")


def test_recording_into_a_damaged_file_replaces_it_and_says_so(tmp_path, capsys):
    (tmp_path / "03_x.json").write_text('{"a": 1')
    results.record("03_x", "recall_at_1", 0.25)
    assert stored(tmp_path, "03_x") == {"recall_at_1": 0.25}
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"warning: results file {tmp_path / '03_x.json'} is damaged (")
    assert line.endswith(": replacing it with the results recorded from now on")


def test_a_read_only_results_folder_is_named_with_the_variable_that_moves_it(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    folder = tmp_path / "results"
    folder.mkdir()
    monkeypatch.setenv("MLCOURSE_RESULTS", str(folder))
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root writes anyway: refuse the way the folder would
            monkeypatch.setattr(files, "open", refuse, raising=False)
        with pytest.raises(PermissionError) as raised:
            results.record("00_data_tour", "knn_accuracy", 0.5)
    finally:
        folder.chmod(0o755)
    message = str(raised.value)
    assert message.startswith(f"cannot write results into {folder} (Permission denied): make that folder writable")
    assert message.endswith("or set MLCOURSE_RESULTS to a folder you can write to")
    assert list(folder.iterdir()) == []


def test_recorded_results_get_the_mode_the_umask_gives(tmp_path):
    old = os.umask(0o027)
    try:
        results.record("00_data_tour", "knn_accuracy", 0.5)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "00_data_tour.json").stat().st_mode) == 0o640
