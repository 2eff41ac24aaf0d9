"""The course as a static website: ``python -m coursetools.site`` (``make site``).

Builds ``build/site/`` from the executed notebooks that ``make course`` (or
``python -m coursetools.run --mode smoke``) wrote to ``build/notebooks/``:

* ``index.html``, the front page: the course's introduction and its table of contents (each
  notebook with what it covers, from the README's table, and what it costs in workshop mode);
* one page per notebook, as it ran: text, rendered maths, figures, audio players and the
  embedding explorer's picture, with the course's navigation, the previous and next notebook,
  and a link that opens the notebook on Binder;
* ``mathjax/``, a local MathJax: the site loads nothing from the network
  (:mod:`coursetools.export`).

Every file is plain HTML: open ``build/site/index.html`` in a browser, or publish the folder as
it is (GitHub Pages, any web server). The Binder links point at ``--binder-repo`` (GitHub
``owner/name``), by default the GitHub repository of the ``origin`` remote.

Usage:
    python -m coursetools.site [--notebooks build/notebooks] [--out build/site] [--binder-repo OWNER/NAME]
"""

from __future__ import annotations

import argparse
import html
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlcourse.files import atomic_file, repo_root

from .export import MATHJAX_CONFIG, MATHJAX_FOLDER, copy_mathjax, offline_html
from .run import NOTEBOOK_GLOB, notebooks_dir, output_dir

COURSE_TITLE = "Metric Learning for Music Information Retrieval"
HOME = "index.html"
# A row of the README's notebook table: | `NN_name` | what it covers | status |
README_ROW = re.compile(r"^\|\s*`(\d\d_\w+)`\s*\|\s*(.+?)\s*\|\s*\w+\s*\|\s*$", re.MULTILINE)
GITHUB_REMOTE = re.compile(r"github\.com[:/]([\w.-]+/[\w.-]+?)(?:\.git)?/?$")


@dataclass
class Page:
    """One notebook of the site.

    Attributes:
        name: The notebook's name, e.g. ``04_triplet_mining``.
        title: Its title, the first heading of its first cell.
        cost: The italic line under the title: what it costs in workshop mode.
        source: The executed notebook it is made from.
    """

    name: str
    title: str
    cost: str
    source: Path

    @property
    def href(self) -> str:
        """The page's file name in the site."""
        return f"{self.name}.html"


def site_dir() -> Path:
    """Where the site is built: ``<repo root>/build/site``."""
    return repo_root() / "build" / "site"


def notebook_title(nb) -> str:
    """The first Markdown heading of a notebook (its title), or an empty string."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE)
            if found:
                return found.group(1).strip()
    return ""


def readme_descriptions(readme: Path) -> dict[str, str]:
    """What each notebook covers, from the README's table of notebooks: ``{name: text}``."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    return {name: description for name, description in README_ROW.findall(text)}


def binder_repo() -> str | None:
    """The GitHub ``owner/name`` of the ``origin`` remote, or None if there is none."""
    try:
        url = subprocess.run(
            ["git", "remote", "get-url", "origin"], cwd=repo_root(), capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    found = GITHUB_REMOTE.search(url)
    return found.group(1) if found else None


def binder_url(repo: str, notebook: str | None = None, ref: str = "HEAD") -> str:
    """The Binder link that opens JupyterLab on a notebook (or on the notebooks folder)."""
    path = "notebooks" if notebook is None else f"notebooks/{notebook}.ipynb"
    return f"https://mybinder.org/v2/gh/{repo}/{ref}?urlpath=lab/tree/{path}"


def find_pages(executed: Path) -> list[Page]:
    """The executed course notebooks in ``executed``, in course order.

    Raises:
        FileNotFoundError: If there are none, or a course notebook has no executed copy (the
            message says how to make them).
    """
    import nbformat

    expected = [path.stem for path in sorted(notebooks_dir().glob(NOTEBOOK_GLOB))]
    missing = [name for name in expected if not (executed / f"{name}.ipynb").exists()]
    if missing:
        raise FileNotFoundError(
            f"no executed copy of {', '.join(missing)} in {executed}: run `make course` first "
            "(or `python -m coursetools.run --mode smoke` for a quick site)"
        )
    pages = []
    for name in expected:
        nb = nbformat.read(executed / f"{name}.ipynb", as_version=4)
        pages.append(Page(name, notebook_title(nb) or name, _cost_line(nb), executed / f"{name}.ipynb"))
    return pages


def _cost_line(nb) -> str:
    """The italic line under a notebook's title: what it costs in workshop mode."""
    found = re.search(r"^\*(Workshop mode:.+?)\*$", nb.cells[0].source, re.MULTILINE) if nb.cells else None
    return found.group(1) if found else ""


def _inline_code(text: str) -> str:
    """Markdown text with `code` spans, as safe HTML."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def front_page(pages: list[Page], repo: str | None):
    """The front page as a notebook of Markdown cells: the course, how to run it, its contents."""
    import nbformat

    descriptions = readme_descriptions(repo_root() / "README.md")
    rows = []
    for page in pages:
        rows.append(
            f'<tr><td><a href="{page.href}">{html.escape(page.title)}</a></td>'
            f"<td>{_inline_code(descriptions.get(page.name, ''))}<br>"
            f"<small><i>{_inline_code(page.cost)}</i></small></td></tr>"
        )
    run = (
        f'Run the notebooks yourself on <a href="{binder_url(repo)}">Binder</a> (JupyterLab in the browser, the '
        "workshop dataset built), or on your machine: clone the repository and run <code>make lab</code>."
        if repo
        else "Run the notebooks yourself: clone the repository and run <code>make lab</code>."
    )
    cells = [
        nbformat.v4.new_markdown_cell(
            f"# {COURSE_TITLE}\n\n"
            'A hands-on course in metric learning for music, after the ISMIR 2020 tutorial "Metric Learning '
            'for MIR" by Brian McFee, Jongpil Lee and Juhan Nam: from plain distances and LDA, through LMNN, '
            "siamese and triplet networks, to proxies, disentangled and cross-modal embeddings, "
            "self-supervision, applications and a reality check of the losses. The music is real: pieces "
            "from the music21 corpus, rendered offline to audio and piano rolls.\n\n"
            "These pages show every notebook as it ran, with its figures, sounds and checks. " + run
        ),
        nbformat.v4.new_markdown_cell(
            "## Contents\n\n<table>\n<tr><th>Notebook</th><th>What it covers</th></tr>\n"
            + "\n".join(rows)
            + "\n</table>"
        ),
    ]
    return nbformat.v4.new_notebook(cells=cells, metadata={"title": COURSE_TITLE})


def _navigation(pages: list[Page], current: int | None, repo: str | None) -> dict:
    """The template's ``course`` resources for one page (``current`` None: the front page)."""

    def link(index):
        inside = index is not None and 0 <= index < len(pages)
        return {"href": pages[index].href, "title": pages[index].title} if inside else None

    return {
        "title": COURSE_TITLE,
        "home": HOME,
        "pages": [{**link(index), "current": index == current} for index in range(len(pages))],
        "previous": link(current - 1) if current is not None else None,
        "next": link(0 if current is None else current + 1),
        "binder": binder_url(repo, pages[current].name if current is not None else None) if repo else None,
        "binder_label": "Run the course on Binder" if current is None else "Run this notebook on Binder",
    }


def build_site(executed: Path, out: Path, repo: str | None) -> list[Path]:
    """Write the front page, one page per notebook and the local MathJax into ``out``.

    Returns:
        The pages written, the front page first.
    """
    import nbformat

    pages = find_pages(executed)
    out.mkdir(parents=True, exist_ok=True)
    copy_mathjax(out)
    mathjax_url = f"{MATHJAX_FOLDER}/{MATHJAX_CONFIG}"
    documents = [(out / HOME, front_page(pages, repo), None)]
    documents += [(out / page.href, nbformat.read(page.source, as_version=4), i) for i, page in enumerate(pages)]
    written = []
    for target, nb, current in documents:
        body = offline_html(nb, mathjax_url, **_navigation(pages, current, repo))
        with atomic_file(target, "w") as f:
            f.write(body)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """Build the site; print where it is and whether its Binder links point anywhere."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=output_dir(), help="the executed notebooks")
    parser.add_argument("--out", type=Path, default=site_dir(), help="the site's folder (default build/site)")
    parser.add_argument("--binder-repo", default=None, help="GitHub owner/name for the Binder links")
    args = parser.parse_args(argv)
    repo = args.binder_repo or binder_repo()
    try:
        written = build_site(args.notebooks, args.out, repo)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    if repo is None:
        print("no GitHub remote: the pages have no Binder link (give --binder-repo OWNER/NAME)", file=sys.stderr)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 2**20
    print(f"{len(written)} pages in {args.out} ({size:.0f} MB with MathJax); open {args.out / HOME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
