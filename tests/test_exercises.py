"""Learner copies (``make exercises``): no solution survives, every other cell is unchanged, and
each copy runs in smoke mode through every answer cell."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from coursetools.exercises import ANSWER, SOLUTION, answer_source, learner_copy, write_learner_copies
from coursetools.run import NOTEBOOK_GLOB, notebooks_dir

NOTEBOOKS = sorted(notebooks_dir().glob(NOTEBOOK_GLOB))


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def _code_lines(cells):
    return {line.strip() for cell in cells for line in "".join(cell["source"]).splitlines() if line.strip()}


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    out = tmp_path_factory.mktemp("exercises")
    return {path.name: path for path in write_learner_copies(notebooks_dir(), out)}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_solution_survives_and_every_other_cell_is_unchanged(notebook, copies):
    teacher = json.loads(notebook.read_text())
    learner = json.loads(copies[notebook.name].read_text())
    assert len(learner["cells"]) == len(teacher["cells"]) and learner["metadata"] == teacher["metadata"]
    solutions = [cell for cell in teacher["cells"] if SOLUTION in _tags(cell)]
    # The lines only the solutions have: none of them may reach the learner's copy.
    elsewhere = _code_lines(cell for cell in teacher["cells"] if SOLUTION not in _tags(cell))
    secret = _code_lines(solutions) - elsewhere - {"#"}
    assert secret or not solutions
    assert not secret & _code_lines(learner["cells"])
    answers = 0
    for before, after in zip(teacher["cells"], learner["cells"]):
        if SOLUTION in _tags(before):
            answers += 1
            assert after["cell_type"] == "code" and ANSWER in _tags(after) and SOLUTION not in _tags(after)
            assert all(line.startswith("#") for line in "".join(after["source"]).splitlines())
            assert after["outputs"] == [] and after["execution_count"] is None
        else:
            assert after == before
    assert answers == len(solutions) == sum(ANSWER in _tags(cell) for cell in learner["cells"])


def test_the_answer_cell_names_its_exercise():
    notebook = {
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["**Exercise 2.** The margin. Train it again."]},
            {"cell_type": "code", "metadata": {"tags": ["solution"], "jupyter": {"source_hidden": True}},
             "source": ["secret = 42"], "outputs": [], "execution_count": 3},
        ],
    }  # fmt: skip
    learner = learner_copy(notebook)
    answer = learner["cells"][1]
    assert "".join(answer["source"]) == answer_source("2", "The margin. Train it again.")
    assert answer["source"][0] == "# Exercise 2: The margin.\n"
    assert answer["metadata"] == {"tags": ["answer"]}  # no longer collapsed
    assert notebook["cells"][1]["source"] == ["secret = 42"]  # the teacher's copy is untouched
    with pytest.raises(ValueError, match="tagged 'solution' but is a markdown cell"):
        learner_copy({"metadata": {}, "cells": [{"cell_type": "markdown", "metadata": {"tags": ["solution"]},
                                                 "source": ["x"]}]})  # fmt: skip


def test_an_empty_notebooks_folder_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="no course notebooks"):
        write_learner_copies(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_learner_copy_runs_in_smoke_mode_through_every_answer_cell(notebook, copies, smoke, monkeypatch):
    monkeypatch.setenv("MLCOURSE_MODE", "smoke")
    learner = nbformat.read(copies[notebook.name], as_version=4)
    answers = [i for i, cell in enumerate(learner.cells) if ANSWER in _tags(cell)]
    learner.cells = learner.cells[: answers[-1] + 1]  # up to the last answer cell
    NotebookClient(learner, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(Path(copies[notebook.name]).parent)}}).execute()  # fmt: skip
    assert all(not any(o.get("output_type") == "error" for o in cell.get("outputs", [])) for cell in learner.cells)
