"""The HTML pages of the executed notebooks and the course's website, built from a smoke run.

The smoke course runs once (into a temporary folder, with its own results folder) and feeds
every test here:

* the HTML copies load nothing from the network: no script, style or frame from a URL, MathJax
  from the local copy, and each explorer shown by the picture its output carries;
* the site has a front page and a page per notebook, and every link and every file it names
  resolves (anchors included); each page links Binder and its neighbours;
* in headless Chromium with the network off, an HTML copy shows the explorer's picture and
  renders its maths, and the site's front page lists the course (screenshots in
  build/test-output/).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from coursetools import export
from coursetools.export import MATHJAX_CONFIG, WIDGET_VIEW
from coursetools.labbrowser import CHROMIUM, CHROMIUM_FLAGS
from coursetools.run import NOTEBOOK_GLOB, notebooks_dir
from coursetools.site import HOME, binder_url, build_site, readme_descriptions

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "build" / "test-output"
NAMES = [path.stem for path in sorted(notebooks_dir().glob(NOTEBOOK_GLOB))]
REPO = "example-org/metric-learning-mir"


class Links(HTMLParser):
    """Every URL a page names (href, src), the ids it defines, and its scripts' sources."""

    def __init__(self):
        super().__init__()
        self.urls, self.ids, self.scripts, self.images = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key):
                self.urls.append((tag, attrs[key]))
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))


def parse(path: Path) -> Links:
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, smoke):
    """The course run in smoke mode: its executed notebooks and their HTML copies."""
    folder = tmp_path_factory.mktemp("smoke-course")
    env = {**os.environ, "MLCOURSE_MODE": "smoke", "MLCOURSE_RESULTS": str(folder / "results")}
    completed = subprocess.run([sys.executable, "-m", "coursetools.run", "--mode", "smoke", "--out",
                                str(folder / "notebooks")], env=env, capture_output=True, text=True)  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return folder / "notebooks"


@pytest.fixture(scope="module")
def site(smoke_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build_site(smoke_run, out, REPO)
    return out


def explorer_pictures(executed: Path) -> list[str]:
    """The base64 pictures of the outputs that carry a live widget and its picture."""
    notebook = json.loads(executed.read_text())
    return [
        output["data"]["image/png"]
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
        if WIDGET_VIEW in output.get("data", {}) and "image/png" in output["data"]
    ]


def test_the_explorers_output_carries_its_picture_beside_the_widget(smoke_run):
    with_explorer = [name for name in NAMES if explorer_pictures(smoke_run / f"{name}.ipynb")]
    assert {"02_lmnn", "04_triplet_mining", "06_disentangled", "08_self_supervised"} <= set(with_explorer)


@pytest.mark.parametrize("name", NAMES)
def test_html_copies_load_nothing_from_the_network(smoke_run, name):
    page = smoke_run / f"{name}.html"
    links = parse(page)
    assert links.scripts == [f"mathjax/{MATHJAX_CONFIG}"]
    remote = [(tag, url) for tag, url in links.urls if urlsplit(url).scheme in ("http", "https") and tag != "a"]
    assert not remote, remote
    assert (smoke_run / "mathjax" / "MathJax.js").exists()
    text = page.read_text()
    assert WIDGET_VIEW not in text
    for picture in explorer_pictures(smoke_run / f"{name}.ipynb"):
        assert f"data:image/png;base64,{picture}" in text


def test_the_site_has_every_page_and_every_link_resolves(site):
    pages = sorted(site.glob("*.html"))
    assert {p.name for p in pages} == {HOME, *(f"{name}.html" for name in NAMES)}
    parsed = {p.name: parse(p) for p in pages}
    checked = 0
    for name, links in parsed.items():
        for tag, url in links.urls:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https"):
                assert tag == "a", (name, url)  # a link out (Binder, a paper), never a load
                continue
            if parts.scheme == "data" or url.startswith("data:"):
                continue
            target = unquote(parts.path) or name
            assert (site / target).exists(), f"{name}: {url} names a missing file"
            if parts.fragment and target.endswith(".html"):
                # As a browser looks for it: the fragment as written, then percent-decoded.
                ids = parsed[target].ids
                assert parts.fragment in ids or unquote(parts.fragment) in ids, f"{name}: no anchor {url}"
            checked += 1
    assert checked > 100


def test_each_page_links_binder_its_neighbours_and_the_contents(site):
    front = (site / HOME).read_text()
    descriptions = readme_descriptions(ROOT / "README.md")
    for name in NAMES:
        assert f'href="{name}.html"' in front
        assert descriptions[name][:40] in front.replace("&#x27;", "'")
    assert binder_url(REPO) in front
    for index, name in enumerate(NAMES):
        page = (site / f"{name}.html").read_text()
        assert binder_url(REPO, name).replace("&", "&amp;") in page or binder_url(REPO, name) in page
        if index:
            assert f'class="course-previous" href="{NAMES[index - 1]}.html"' in page
        if index + 1 < len(NAMES):
            assert f'class="course-next" href="{NAMES[index + 1]}.html"' in page
        assert f'href="{HOME}"' in page and "<audio" in (site / "00_data_tour.html").read_text()
        # Each exercise's solution is folded, as in JupyterLab.
        cells = json.loads((notebooks_dir() / f"{name}.ipynb").read_text())["cells"]
        solutions = sum("solution" in cell["metadata"].get("tags", []) for cell in cells)
        assert page.count('<details class="course-solution">') == solutions > 0


def test_building_without_executed_notebooks_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run `make course` first"):
        build_site(tmp_path, tmp_path / "site", None)


def test_the_local_mathjax_is_found_without_loading_the_jupyter_server(monkeypatch):
    """The pages' MathJax is the jupyter-server-mathjax package's copy: found on disk, not imported
    (importing it loads the Jupyter server); without the package, the error says what to install."""
    code = (
        "import sys; from coursetools.export import mathjax_source; "
        "print(mathjax_source()); print('jupyter_server' in sys.modules)"
    )
    folder, server_loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert (Path(folder) / "MathJax.js").exists() and server_loaded == "False"
    monkeypatch.setattr(export.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install jupyter-server-mathjax"):
        export.mathjax_source()


@pytest.mark.browser
def test_offline_pages_in_chromium_show_the_explorer_picture_and_the_maths(smoke_run, site):
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests (.ci/run installs Chromium)")
        pytest.skip("no /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    requested = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        context = browser.new_context(offline=True, viewport={"width": 1280, "height": 1000})
        context.on("request", lambda request: requested.append(request.url))
        page = context.new_page()
        try:
            page.goto((smoke_run / "02_lmnn.html").as_uri())
            page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0"
                                   " && document.querySelectorAll('.MathJax_CHTML, .MathJax').length > 0",
                                   timeout=60_000)  # fmt: skip
            pictures = explorer_pictures(smoke_run / "02_lmnn.ipynb")
            picture = page.locator(f'img[src="data:image/png;base64,{pictures[0]}"]')
            picture.scroll_into_view_if_needed()
            assert picture.evaluate("img => img.complete && img.naturalWidth > 300")
            picture.screenshot(path=str(OUTPUT / "offline_html_explorer.png"))
            for name in (HOME, "05_classification_and_proxies.html"):
                page.goto((site / name).as_uri())
                page.wait_for_load_state("load")
                page.screenshot(path=str(OUTPUT / f"site_{Path(name).stem}.png"))
            assert page.locator(".course-nav a").count() == len(NAMES) + 1
        finally:
            browser.close()
    assert all(url.startswith(("file:", "data:", "about:")) for url in requested), [
        u for u in requested if "file:" not in u
    ]
