"""The course runner (coursetools.run) on tiny notebooks: what it reports when one fails."""

import nbformat
import pytest

from coursetools import run as course

LONG_CELL = "\n".join(
    [
        "# A long cell: it prints a lot, and its exception comes after a long traceback.",
        "print('a' * 3000)",
        "steps = 0",
        *[f"steps += {i}  # line {i + 4}" for i in range(20)],
        "try:",
        "    raise ValueError('v' * 3000)",
        "except ValueError:",
        "    raise RuntimeError(f'the model diverged after {steps} steps')",
    ]
)


def write_notebook(path, *sources):
    """A notebook like the course's: a title, a cell tagged parameters, then the given code cells."""
    parameters = nbformat.v4.new_code_cell('MLCOURSE_MODE = "workshop"')
    parameters.metadata["tags"] = ["parameters"]
    cells = [nbformat.v4.new_markdown_cell("# A tiny notebook"), parameters]
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernel}), path)
    return path


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)  # the report shows paths relative to the current folder
    return tmp_path


def test_a_failing_notebook_reports_the_exception_its_cell_and_its_executed_copy(folder, capsys):
    notebook = write_notebook(folder / "fails.ipynb", "x = 1", LONG_CELL, "print('never run')")
    outcome = course.run_one(notebook, "smoke", out=folder / "out")
    report = capsys.readouterr().err
    assert not outcome.ok and outcome.name == "fails"
    assert "FAILED: notebook fails.ipynb" in report
    # The exception line, whole, though the traceback before it is longer than 3,000 characters.
    assert "RuntimeError: the model diverged after 190 steps" in report
    # The cell, counted as in the source notebook (papermill's cell_index counts its injected
    # parameters cell too), with the execution count that the executed copy shows.
    assert "in cell 3 (counting from 0), In [4]:" in report
    assert "    # A long cell: it prints a lot" in report and "    steps += 11  # line 15" in report
    assert "steps += 12" not in report and "... (12 more lines)" in report  # only the first 15 lines
    assert "aaaa" not in report and "\x1b[" not in report  # no printed output, no colour codes
    # The executed copy, with the error in it.
    assert "Look at the executed copy: out/fails.ipynb (and out/fails.html)" in report
    executed = nbformat.read(folder / "out" / "fails.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert [e.ename for e in errors] == ["RuntimeError"]


def test_a_short_failing_cell_is_shown_whole(tmp_path):
    """failure_report alone, on an executed copy written by hand (no kernel)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", execution_count=1)])
    error = nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])
    nb.cells.append(nbformat.v4.new_code_cell("y = 2\nx / 0", execution_count=2, outputs=[error]))
    nbformat.write(nb, tmp_path / "short.ipynb")
    lines = course.failure_report(RuntimeError("papermill's message"), tmp_path / "short.ipynb")
    assert lines[:4] == [
        "ZeroDivisionError: division by zero",
        "in cell 1 (counting from 0), In [2]:",
        "    y = 2",
        "    x / 0",
    ]
    assert lines[4].startswith("Look at the executed copy: ")


def test_without_an_executed_copy_the_report_gives_the_whole_exception(tmp_path):
    message = "The kernel died: " + "x" * 3000 + " (the end)"
    lines = course.failure_report(RuntimeError(message), tmp_path / "missing.ipynb")
    assert lines == [f"RuntimeError: {message}"]


def test_a_notebook_that_runs_still_reports_success(folder, capsys):
    notebook = write_notebook(folder / "runs.ipynb", "x = 1", "print(x + 1)")
    outcome = course.run_one(notebook, "smoke", out=folder / "out")
    assert outcome.ok and outcome.name == "runs"
    assert "FAILED" not in capsys.readouterr().err
    assert (folder / "out" / "runs.ipynb").exists() and (folder / "out" / "runs.html").exists()
