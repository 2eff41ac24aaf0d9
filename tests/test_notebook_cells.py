"""The notebooks teach; the package holds the machinery.

Three rules over every code cell of every notebook:

- a cell has at most 15 lines (blank lines not counted), except a solution (tagged
  ``solution``) and a deliberate inline teaching version of a concept (tagged ``inline``);
- an ``inline`` cell checks its version against the package's with an ``assert``;
- a notebook defines functions and classes only in those two kinds of cell: training wrappers,
  samplers, steps and scoring helpers live in ``mlcourse``, where a learner finds them in one
  hop and the tests cover them.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_LINES = 15
EXEMPT = {"solution", "inline"}


def _code_cells():
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        for number, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                yield f"{path.stem} cell {number}", "".join(cell["source"]), set(cell["metadata"].get("tags", []))


CELLS = list(_code_cells())


def _lines(source):
    return [line for line in source.splitlines() if line.strip()]


def _definitions(source):
    """Names of the functions and classes a cell defines at its top level (IPython magics skipped)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return [
        node.name
        for node in ast.parse(code).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]


def test_the_notebooks_are_found():
    assert len(NOTEBOOKS) >= 10 and len(CELLS) > 100


def test_every_cell_that_is_not_a_solution_or_an_inline_version_is_short():
    long = [
        f"{name}: {len(_lines(source))} lines"
        for name, source, tags in CELLS
        if not tags & EXEMPT and len(_lines(source)) > MAX_LINES
    ]
    assert not long, f"cells over {MAX_LINES} lines (split them, or move the machinery to mlcourse): {long}"


def test_an_inline_version_is_checked_against_the_package():
    unchecked = [
        name
        for name, source, tags in CELLS
        if "inline" in tags
        and not any(
            isinstance(node, ast.Assert)
            for node in ast.walk(
                ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
            )
        )
    ]
    assert not unchecked, f"inline cells without an assert against the package: {unchecked}"


def test_notebooks_define_functions_only_as_inline_versions_or_solutions():
    defined = [
        f"{name}: {', '.join(_definitions(source))}"
        for name, source, tags in CELLS
        if not tags & EXEMPT and _definitions(source)
    ]
    assert not defined, f"definitions that belong in mlcourse (or tag an inline version 'inline'): {defined}"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("def f():\n    pass\n\n\nclass A:\n    pass\nx = 1", ["f", "A"]),
        ("%matplotlib inline\nsquare = lambda x: x * x", []),
    ],
)
def test_definitions_are_found(source, expected):
    assert _definitions(source) == expected
