"""Learner copies of the notebooks, without the solutions: ``python -m coursetools.exercises``.

Every ``notebooks/[0-9][0-9]_*.ipynb`` is copied to ``build/exercises/`` with each cell tagged
``solution`` replaced by an empty *answer* cell (a code cell tagged ``answer``) that names the
exercise and says what to write. Every other cell is copied unchanged, outputs included (the
notebooks in the repository are stored without outputs), so a learner's copy runs as the
teacher's does up to each exercise. The teacher's notebooks are not touched.

Usage:
    python -m coursetools.exercises [--out FOLDER]
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

from mlcourse.files import atomic_file, repo_root

from .run import NOTEBOOK_GLOB, notebooks_dir

SOLUTION, ANSWER = "solution", "answer"
# "**Exercise 2.** ProxyNCA's scale. Train ..." -> number 2, first sentence "ProxyNCA's scale."
EXERCISE = re.compile(r"\*\*Exercise (\d+)\.\*\*\s*(.*)", re.DOTALL)


def exercises_dir() -> Path:
    """Where the learner copies go: ``<repo root>/build/exercises``."""
    return repo_root() / "build" / "exercises"


def _first_sentence(text: str, limit: int = 90) -> str:
    """The first sentence of an exercise's statement, on one line, at most ``limit`` characters."""
    one_line = " ".join(text.split())
    match = re.match(r"(.+?[.?!])(\s|$)", one_line)
    sentence = match.group(1) if match else one_line
    return sentence if len(sentence) <= limit else sentence[: limit - 3].rstrip() + "..."


def answer_source(number: str | None, statement: str | None) -> str:
    """The text of the answer cell that replaces an exercise's solution.

    Args:
        number: The exercise's number, or None when no exercise statement precedes the solution.
        statement: The text after ``**Exercise N.**`` in the markdown above.

    Returns:
        Comment lines naming the exercise and saying what to write.
    """
    if number is None:
        return "# Your answer: write the code that the exercise above asks for, and run it."
    return (
        f"# Exercise {number}: {_first_sentence(statement)}\n"
        "# Your answer: write the code that the exercise above asks for, run it, and compare what\n"
        "# you see with what you expected before running it."
    )


def learner_copy(notebook: dict) -> dict:
    """A copy of a notebook with each solution cell replaced by an empty answer cell.

    Args:
        notebook: The notebook as read from its JSON file.

    Returns:
        A new notebook dict; ``notebook`` is left as it is.

    Raises:
        ValueError: If a solution cell is not a code cell.
    """
    learner = copy.deepcopy(notebook)
    number, statement = None, None
    for index, cell in enumerate(learner["cells"]):
        is_solution = SOLUTION in cell.get("metadata", {}).get("tags", [])
        if is_solution and cell["cell_type"] != "code":
            raise ValueError(f"cell {index} is tagged {SOLUTION!r} but is a {cell['cell_type']} cell")
        if cell["cell_type"] == "markdown":
            found = EXERCISE.search("".join(cell["source"]))
            if found:
                number, statement = found.group(1), found.group(2)
        if not is_solution:
            continue
        tags = [ANSWER if tag == SOLUTION else tag for tag in cell["metadata"]["tags"]]
        metadata = {key: value for key, value in cell["metadata"].items() if key not in ("jupyter", "tags")}
        lines = answer_source(number, statement).split("\n")
        learner["cells"][index] = {
            "cell_type": "code",
            "execution_count": None,
            "id": cell.get("id", f"answer-{index}"),
            "metadata": {**metadata, "tags": tags},
            "outputs": [],
            "source": [line + "\n" for line in lines[:-1]] + [lines[-1]],
        }
    return learner


def write_learner_copies(source: Path, out: Path) -> list[Path]:
    """Write the learner copy of every course notebook of ``source`` into ``out``.

    Each file is written whole or not at all (an interrupted run leaves no half-written copy).

    Returns:
        The paths written, in course order.

    Raises:
        FileNotFoundError: If ``source`` holds no course notebook.
    """
    notebooks = sorted(source.glob(NOTEBOOK_GLOB))
    if not notebooks:
        raise FileNotFoundError(f"no course notebooks ({NOTEBOOK_GLOB}) in {source}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        learner = learner_copy(json.loads(path.read_text(encoding="utf-8")))
        target = out / path.name
        with atomic_file(target, "w") as f:
            json.dump(learner, f, indent=1, ensure_ascii=False)
            f.write("\n")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """Write the learner copies; print how many, with how many answer cells."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=exercises_dir(), help="folder of the copies (default build/exercises)"
    )
    args = parser.parse_args(argv)
    written = write_learner_copies(notebooks_dir(), args.out)
    answers = sum(
        1 for path in written for cell in json.loads(path.read_text())["cells"]
        if ANSWER in cell["metadata"].get("tags", [])
    )  # fmt: skip
    print(f"{len(written)} learner copies with {answers} answer cells in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
