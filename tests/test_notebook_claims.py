"""Every sentence is true on the learner's own run.

Outputs are not committed, so nothing keeps a measured outcome written into markdown true on
another machine, mode or seed. The notebooks state what to look for, and a cell prints each
claim as True or False on the run (``mlcourse.results.Checks``). Three rules over the markdown:

- no measured figure: a decimal number or a percentage is either a setting the notebook's code
  uses, or a quotation of a source (a sentence naming the paper, the slides, an "et al." or a
  year);
- no narrated outcome: a sentence that reports what "our data", "this run" or "our comparison"
  showed is a question or a condition ("if", "whether", "look", "check" ...), not a finding;
- a paragraph that begins "What to look for" is followed, before the next markdown cell, by a
  code cell that calls ``check(``.

The rules are heuristics: they catch the usual ways an outcome slips into the text, and a test
below plants each of them to show that they do.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# The notebooks that train and compare methods: each checks its claims on the run.
CHECKING = [path for path in NOTEBOOKS if path.stem[:2] in {"03", "04", "05", "06", "07", "08", "09"}]

FIGURE = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.]*\d)|(?<![\w.])\d+(?:\.\d+)?\s?%")
SOURCE = re.compile(r"paper|slides|et al\.|\bsection \d|\b(?:19|20)\d\d\b|\bTable \d", re.IGNORECASE)
NARRATION = re.compile(
    r"\b(?:on|in|from) (?:our|this) (?:data|run|comparison|test pieces|results|numbers)\b"
    r"|\bour (?:run|results|numbers) (?:show|showed|confirm|confirmed)",
    re.IGNORECASE,
)
CONDITIONAL = re.compile(r"\bif\b|whether|\blook|\bcheck|\bprint|\bcompare|\bmeasure|\?", re.IGNORECASE)
LOOK_FOR = re.compile(r"^\**what to look for", re.IGNORECASE | re.MULTILINE)


def _prose(markdown):
    """The markdown without formulas, code spans and link targets."""
    text = re.sub(r"\$\$.*?\$\$", " ", markdown, flags=re.DOTALL)
    text = re.sub(r"\$[^$\n]*\$", " ", text)
    text = re.sub(r"`[^`\n]*`", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def _sentences(markdown):
    """Sentences, list items and table rows of a markdown cell, one string each."""
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[-*] |\d+\. |\|))", _prose(markdown)):
        yield from (s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*(])", " ".join(block.split())) if s.strip())


def _source(cell):
    return "".join(cell["source"])


def measured_figures(cells):
    """(cell number, figure, sentence) for every figure the markdown states without a source."""
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    found = []
    for number, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for sentence in _sentences(_source(cell)):
            for figure in FIGURE.findall(sentence):
                value = figure.rstrip("%").strip()
                if not SOURCE.search(sentence) and not re.search(rf"(?<![\w.]){re.escape(value)}(?![\w])", code):
                    found.append((number, figure, sentence))
    return found


def narrated_outcomes(cells):
    """(cell number, sentence) for every sentence that reports what the run showed."""
    return [
        (number, sentence)
        for number, cell in enumerate(cells)
        if cell["cell_type"] == "markdown"
        for sentence in _sentences(_source(cell))
        if NARRATION.search(sentence) and not CONDITIONAL.search(sentence)
    ]


def unchecked_look_fors(cells):
    """Cell numbers of "What to look for" paragraphs with no ``check(`` before the next markdown."""
    missing = []
    for number, cell in enumerate(cells):
        if cell["cell_type"] == "markdown" and LOOK_FOR.search(_source(cell)):
            following = []
            for later in cells[number + 1 :]:
                if later["cell_type"] == "markdown":
                    break
                following.append(_source(later))
            if not any("check(" in source for source in following):
                missing.append(number)
    return missing


def _cells(path):
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_states_no_measured_figure(path):
    assert measured_figures(_cells(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_narrates_no_outcome(path):
    assert narrated_outcomes(_cells(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_what_to_look_for_is_followed_by_checks(path):
    assert unchecked_look_fors(_cells(path)) == []


@pytest.mark.parametrize("path", CHECKING, ids=lambda p: p.stem)
def test_a_comparing_notebook_checks_its_claims(path):
    code = "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "code")
    assert f'Checks("{path.stem}")' in code
    assert len(re.findall(r"\bcheck\(", code)) >= 3


def _markdown(text):
    return {"cell_type": "markdown", "source": [text]}


def _code(text):
    return {"cell_type": "code", "source": [text]}


def test_the_rules_catch_a_planted_narrative():
    cells = [
        _code("MARGIN = 0.2\ncheck = Checks('04_triplet_mining')"),
        _markdown("A margin of 0.2 on the unit sphere. The paper reports R@1 43.8 (Lee et al., 2020)."),
        _markdown("On our data the semi-hard model reached R@1 0.41, and 12% of its triplets stayed hard."),
        _markdown("What to look for: does semi-hard mining beat the untrained network?"),
        _code("print(recall)"),
        _markdown("In this run, hard mining collapsed the embedding."),
    ]
    assert [(n, f) for n, f, _ in measured_figures(cells)] == [(2, "0.41"), (2, "12%")]
    assert [n for n, _ in narrated_outcomes(cells)] == [2, 5]
    assert unchecked_look_fors(cells) == [3]


def test_the_rules_pass_questions_settings_and_checked_claims():
    cells = [
        _code("MARGIN = 0.2\ncheck = Checks('04_triplet_mining')"),
        _markdown("What to look for: whether, on your run, semi-hard mining keeps a margin of 0.2 ($d < 0.5$)."),
        _code("check('semi-hard mining beats the untrained network', True)"),
        _markdown("Look at the table: in this run, which strategy learns?"),
    ]
    assert measured_figures(cells) == []
    assert narrated_outcomes(cells) == []
    assert unchecked_look_fors(cells) == []
