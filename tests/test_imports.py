"""The package's import structure: no cycles, imports at the top, vocabulary before chapters.

Vocabulary modules (the dataset, distances, models, losses, miners, metrics, training, ...) are
used by every chapter; chapter modules compose them for one notebook each. A vocabulary module
never imports a chapter, so a learner can read the vocabulary without the chapters.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlcourse"
CHAPTERS = {
    "mlcourse.disentangled",
    "mlcourse.crossmodal",
    "mlcourse.selfsup",
    "mlcourse.versions",
    "mlcourse.segment",
    "mlcourse.reality",
    "mlcourse.zeroshot",
}


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """(imported package module, at the top?) for every import of the package in one file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            targets = [target]
            if not node.module:  # from . import x
                targets = [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "mlcourse" or target.startswith("mlcourse."):
                found.append((_existing_module(target), id(node) in top_level))
    return found


def _existing_module(target):
    """The module a dotted import names (``mlcourse.data.build``), or its package."""
    while target:
        path = ROOT / target.replace(".", "/")
        if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
            return target
        target = target.rsplit(".", 1)[0]
    raise AssertionError(f"no module for {target}")


GRAPH = {_module_name(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_import_of_the_package_is_at_the_top_of_its_file():
    hidden = {module: [target for target, at_top in imports if not at_top] for module, imports in GRAPH.items()}
    assert not {module: targets for module, targets in hidden.items() if targets}


def test_the_package_has_no_import_cycle():
    edges = {module: {target for target, _ in imports if target != module} for module, imports in GRAPH.items()}
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join([*path, module])
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            # a package's __init__ importing its own modules is not a cycle through the package
            if not module.startswith(target + "."):
                visit(target, [*path, module])
        state[module] = "done"

    for module in sorted(edges):
        visit(module, [])


def test_vocabulary_modules_never_import_a_chapter():
    offenders = {
        module: sorted({t for t, _ in imports if t in CHAPTERS})
        for module, imports in GRAPH.items()
        if module not in CHAPTERS
    }
    assert not {module: chapters for module, chapters in offenders.items() if chapters}


def test_the_graph_sees_the_package():
    assert {"mlcourse.data.clips", "mlcourse.selfsup", "mlcourse.losses"} <= set(GRAPH)
    assert ("mlcourse.data.clips", True) in GRAPH["mlcourse.data.dataset"]


def test_chapters_define_no_network_or_loss_module():
    """Losses and models are vocabulary: a chapter composes them and defines none of its own."""
    import importlib

    import torch

    for chapter in sorted(CHAPTERS):
        module = importlib.import_module(chapter)
        own = [
            name
            for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, torch.nn.Module) and value.__module__ == chapter
        ]
        assert not own, f"{chapter} defines {own}: move them to mlcourse.models or mlcourse.losses"
