"""A learner knows what a notebook costs before running it, and how to change it.

Under each notebook's title a line says how long it takes in workshop mode on a 2-core CPU,
rounded to the minute, as ``bench/bench_notebooks.py`` last measured it
(``bench/results/notebooks.json``), and which exercises train models of their own (the
expensive ones to run in a workshop). This test holds that line to the benchmark and to the
solution cells, so it cannot go stale silently: rerun ``make bench ONLY=notebooks`` after a
change that moves a notebook's time, and update the line.

Its epochs, seeds and sizes sit in its papermill ``parameters`` cell, ``None`` meaning the
mode's default (``mlcourse.modes.setting``), so that papermill can override them; no other cell
picks a value by mode, except the two batch counts whose full-mode default is itself ``None``
("one pass").
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BENCH = ROOT / "bench" / "results" / "notebooks.json"
# What trains a model in a solution cell: the course's training entry points, the notebooks' own
# partials of them (``fit``, ``train_from_untrained``, ``short_run``), the chapters' protocols that
# train (the reality check's, zero-shot tagging's) and LMNN.
TRAINING = re.compile(
    r"(?<![.\w])(?:train|train_copy|fit|train_from_untrained|train_self_supervised|fit_timed|short_run|train_loss"
    r"|seed_runs|grid_search|zero_shot_scores|train_attribute_tagger)\(|\bLMNN\("
)
# Settings picked by mode outside the parameters cell: their full-mode default None means "one
# pass over the data", so None cannot also mean "the mode's default".
ONE_PASS = {"07_cross_modal": {"BATCHES"}, "08_self_supervised": {"BATCHES_PER_EPOCH"}}
MODE_DICT = re.compile(r"^(\w+) = \{\"smoke\":.*\}\[MLCOURSE_MODE\]", re.MULTILINE)
COST = re.compile(r"^\*Workshop mode: (under a minute|about (\d+) minutes?) on a 2-core CPU[^*]*\*$", re.MULTILINE)


def minutes_phrase(seconds):
    """How the cost line words a wall time."""
    minutes = round(seconds / 60)
    return "under a minute" if seconds < 60 else f"about {minutes} minute{'s' if minutes > 1 else ''}"


def training_exercises(cells):
    """Numbers of the exercises whose solution trains a model, in order."""
    exercise, found = None, []
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            heading = re.search(r"\*\*(?:Exercise )?(\d+)\.", source)
            exercise = int(heading.group(1)) if heading else exercise
        elif "solution" in cell["metadata"].get("tags", []) and TRAINING.search(source):
            if exercise not in found:
                found.append(exercise)
    return found


def exercises_phrase(numbers):
    """How the cost line words the exercises that train."""
    if not numbers:
        return "no exercise trains a model"
    if len(numbers) == 1:
        return f"exercise {numbers[0]} trains models of its own"
    listed = ", ".join(str(n) for n in numbers[:-1])
    return f"exercises {listed} and {numbers[-1]} train models of their own"


def cost_line(seconds, cells):
    """The line a notebook's title cell must hold."""
    return (
        f"*Workshop mode: {minutes_phrase(seconds)} on a 2-core CPU, exercises included "
        f"(`bench/results/notebooks.md`); {exercises_phrase(training_exercises(cells))}.*"
    )


def _measured():
    rows = json.loads(BENCH.read_text())["notebooks"]
    return {row["name"]: row["seconds"] for row in rows}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_title_says_what_the_notebook_costs(path):
    cells = json.loads(path.read_text())["cells"]
    title = "".join(cells[0]["source"])
    assert COST.search(title), f"{path.name}: no cost line under the title"
    assert cost_line(_measured()[path.stem], cells) in title


def test_the_cost_line_words_its_figures():
    assert minutes_phrase(12.0) == "under a minute"
    assert minutes_phrase(75.0) == "about 1 minute"
    assert minutes_phrase(139.1) == "about 2 minutes"
    assert exercises_phrase([]) == "no exercise trains a model"
    assert exercises_phrase([3]) == "exercise 3 trains models of its own"
    assert exercises_phrase([1, 2, 3]) == "exercises 1, 2 and 3 train models of their own"
    solution = {"cell_type": "code", "metadata": {"tags": ["solution"]}}
    cells = [
        {"cell_type": "markdown", "source": ["**Exercise 1.** Margins."]},
        {**solution, "source": ["model, _ = train_from_untrained(loss)"]},
        {"cell_type": "markdown", "source": ["**2. Distances.**"]},
        {**solution, "source": ["lda.fit(x, y)  # a scikit-learn fit is not a training run"]},
    ]
    assert training_exercises(cells) == [1]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_parameter_can_be_overridden(path):
    cells = json.loads(path.read_text())["cells"]
    [parameters] = ["".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assigned = re.findall(r"^(\w+) = ", parameters, re.MULTILINE)
    # papermill reads every assignment (a comment with "=" in it would hide one from it)
    assert list(papermill.inspect_notebook(str(path))) == assigned
    picked_by_mode = {name for cell in cells for name in MODE_DICT.findall("".join(cell["source"]))}
    assert picked_by_mode == ONE_PASS.get(path.stem, set())
    for name in re.findall(r"^(\w+) = None\b", parameters, re.MULTILINE):
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert re.search(rf"^{name} = setting\({name}, MLCOURSE_MODE,", code, re.MULTILINE), name
