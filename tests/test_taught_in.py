"""Every "Taught in notebooks/NN_name.ipynb" in the package names a notebook that teaches it.

A definition counts as taught by a notebook when the notebook names it (in code or prose), or
names a definition of the package that uses it, directly or through others: a learner who
follows the pointer finds the concept there, or the call that runs it.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
POINTER = re.compile(r"notebooks/(\d\d_\w+)\.ipynb")


def _pointers_and_references():
    """(file, definition, top-level owner, notebooks) per pointer; names each top-level definition uses."""
    pointers, references = [], {}
    for path in sorted((ROOT / "mlcourse").rglob("*.py")):
        for top in ast.parse(path.read_text()).body:
            if not isinstance(top, (ast.FunctionDef, ast.ClassDef)):
                continue
            used = references.setdefault(top.name, set())
            for node in ast.walk(top):
                if isinstance(node, ast.Name):
                    used.add(node.id)
                elif isinstance(node, ast.Attribute):
                    used.add(node.attr)
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    doc = ast.get_docstring(node) or ""
                    if "Taught in" in doc:
                        notebooks = POINTER.findall(doc[doc.index("Taught in") :])
                        pointers.append((path.relative_to(ROOT).as_posix(), node.name, top.name, notebooks))
    return pointers, references


POINTERS, REFERENCES = _pointers_and_references()


def _users(name):
    """The name and every top-level definition that uses it, directly or through others."""
    found, frontier = {name}, {name}
    while frontier:
        frontier = {user for user, used in REFERENCES.items() if used & frontier} - found
        found |= frontier
    return found


def _notebook_text(name):
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells)


def test_there_are_pointers_to_check():
    assert len(POINTERS) > 100
    assert all(notebooks for *_, notebooks in POINTERS), [p for p in POINTERS if not p[3]]


@pytest.mark.parametrize("path, name, owner, notebooks", POINTERS, ids=[f"{p[0]}:{p[1]}" for p in POINTERS])
def test_pointer_names_a_notebook_that_uses_it(path, name, owner, notebooks):
    users = _users(owner)
    for notebook in notebooks:
        assert (ROOT / "notebooks" / f"{notebook}.ipynb").exists(), f"{path}: {name} points to a missing {notebook}"
        text = _notebook_text(notebook)
        assert any(re.search(rf"\b{re.escape(user)}\b", text) for user in users), (
            f"{path}: {name} says it is taught in {notebook}, which uses neither it nor anything that calls it"
        )
