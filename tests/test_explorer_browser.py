"""The embedding explorer in a real browser: JupyterLab (and Notebook 7) on loopback, in headless Chromium.

The test writes a small notebook that shows an explorer of a known embedding, opens it in
JupyterLab, then in Notebook 7, with Debian's Chromium (driven by Playwright; no browser is downloaded), runs it, and
uses the widget as a learner would: it changes the colouring concept, switches to a sub-space,
hovers over a point and clicks it. It checks what the page shows against what it should show:
the colours and legend change, the tooltip gives the clip's labels, an audio player for that clip
appears, and the neighbour list equals scikit-learn's nearest neighbours in the sub-space.

A screenshot of each is saved in build/test-output/ (also when the test fails, to see why).
Needs /usr/bin/chromium (`apt-get install chromium chromium-driver`, which `.ci/run` does);
without it the test is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import nbformat
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from coursetools.labbrowser import CHROMIUM, INTERFACES, jupyterlab, notebook_page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "build" / "test-output"
N_CLIPS, N_NEIGHBOURS = 300, 5


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser test (.ci/run installs Chromium)")
    pytest.skip(reason)


def make_data(folder: Path) -> dict:
    """Clips in 4 instruments and 3 moods; dimensions 0-7 follow instrument, 8-15 follow mood."""
    rng = np.random.default_rng(0)
    instrument = rng.integers(0, 4, N_CLIPS)
    mood = rng.integers(0, 3, N_CLIPS)
    embeddings = rng.normal(size=(N_CLIPS, 16)).astype(np.float32)
    embeddings[:, :8] += 3 * np.eye(4, 8)[instrument]
    embeddings[:, 8:] += 3 * np.eye(3, 8)[mood]
    data = {
        "embeddings": embeddings,
        "names": np.array([f"clip-{i:03d}" for i in range(N_CLIPS)]),
        "instrument": np.array(["strings", "brass", "keys", "winds"])[instrument],
        "mood": np.array(["calm", "bright", "dark"])[mood],
    }
    np.savez(folder / "explorer_data.npz", **data)
    return data


def make_notebook(folder: Path) -> None:
    cells = [
        "import numpy as np\n"
        "from mlcourse.viz import EmbeddingExplorer\n"
        "data = np.load('explorer_data.npz')\n"
        "def tone(i):\n"
        "    return 0.3 * np.sin(2 * np.pi * (220 + i) * np.arange(22050) / 22050)",
        "explorer = EmbeddingExplorer(data['embeddings'], {'instrument': data['instrument'], 'mood': data['mood']},\n"
        f"                             names=data['names'], audio=tone, n_neighbors={N_NEIGHBOURS},\n"
        "                             subspaces={'instrument': slice(0, 8), 'mood': slice(8, 16)})\n"
        "explorer.show()",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "explorer_test.ipynb")


def canvas_state(page) -> dict:
    return page.eval_on_selector(".mlcourse-map canvas", "c => ({...c.dataset, image: c.toDataURL()})")


def legend(page) -> list[str]:
    return page.eval_on_selector_all(".mlcourse-map-legend-item", "items => items.map(i => i.textContent)")


def wait_for_map(page, **expected) -> None:
    """Wait until the canvas is drawn, not busy, with the expected data attributes."""
    test = " && ".join(f"c.dataset.{k} === {v!r}" for k, v in {"busy": "0", **expected}.items())
    page.wait_for_function(
        f"() => {{ const c = document.querySelector('.mlcourse-map canvas'); return c && {test}; }}", timeout=180_000
    )


def a_painted_pixel(page) -> tuple[float, float]:
    """A pixel of the canvas with a point on it (the darkest one in a coarse scan), in page coordinates."""
    x, y = page.eval_on_selector(
        ".mlcourse-map canvas",
        """c => {
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let best = [0, 0], darkest = 765;
        for (let y = 0; y < c.height; y += 3) for (let x = 0; x < c.width; x += 3) {
            const k = 4 * (y * c.width + x), sum = data[k] + data[k + 1] + data[k + 2];
            if (sum < darkest) { darkest = sum; best = [x, y]; }
        }
        return [best[0] / c.width * c.clientWidth, best[1] / c.height * c.clientHeight];
    }""",
    )
    box = page.locator(".mlcourse-map canvas").bounding_box()
    return box["x"] + 1 + x, box["y"] + 1 + y  # +1: the canvas border


@pytest.mark.parametrize("interface", ["lab", "notebook"])
def test_explorer_in_the_browser(tmp_path, interface):
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} not found (apt-get install chromium chromium-driver)")
    if importlib.util.find_spec("playwright") is None:
        _missing("playwright is not installed (pip install -e '.[test]')")
    if importlib.util.find_spec(INTERFACES[interface]["module"]) is None:
        _missing(f"{INTERFACES[interface]['module']} is not installed (pip install -e .)")
    data = make_data(tmp_path)
    make_notebook(tmp_path)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    screenshot = OUTPUT / f"explorer_browser_{interface}.png"

    with (
        jupyterlab(tmp_path, interface) as url,
        notebook_page(url, "explorer_test.ipynb", screenshot=screenshot, interface=interface) as page,
    ):
        wait_for_map(page, points=str(N_CLIPS), colorBy="instrument", space="complete")
        before = canvas_state(page)
        notes = page.evaluate("() => window.mlcourseNotesShown || 0")
        assert notes >= 1, "no progress note was shown while UMAP ran"
        assert sorted(item.split(" (")[0] for item in legend(page)) == sorted(set(data["instrument"]))

        # Colour by another concept: the picture and the legend change.
        page.locator(".mlcourse-explorer select").select_option(label="mood")
        wait_for_map(page, colorBy="mood")
        after = canvas_state(page)
        assert after["image"] != before["image"], "the colours did not change"
        assert sorted(item.split(" (")[0] for item in legend(page)) == sorted(set(data["mood"]))
        counts = {item.split(" (")[0]: int(item.split("(")[1].rstrip(")")) for item in legend(page)}
        assert counts == {m: int((data["mood"] == m).sum()) for m in set(data["mood"])}

        # Switch to the instrument sub-space: a new map.
        page.locator(".mlcourse-explorer .widget-toggle-button", has_text="instrument").click()
        wait_for_map(page, space="instrument", colorBy="mood")
        assert canvas_state(page)["image"] != after["image"], "the sub-space map looks like the complete one"

        # Hover over a point: the tooltip names the clip and its labels.
        x, y = a_painted_pixel(page)
        page.mouse.move(x, y)
        tooltip = page.locator(".mlcourse-map-tooltip")
        tooltip.wait_for(state="visible", timeout=10_000)
        name = tooltip.locator("b").inner_text()
        clip = int(np.flatnonzero(data["names"] == name)[0])
        assert f"instrument: {data['instrument'][clip]}" in tooltip.inner_text()
        assert f"mood: {data['mood'][clip]}" in tooltip.inner_text()

        # Click it: its audio player and its neighbours in the 8-D sub-space appear.
        page.mouse.click(x, y)
        page.locator(".mlcourse-neighbour").nth(N_NEIGHBOURS - 1).wait_for(timeout=30_000)
        assert name in page.locator(".mlcourse-selected").inner_text()
        wait_for_map(page, selected=str(clip))
        shown = [page.locator(".mlcourse-neighbour b").nth(k).inner_text() for k in range(N_NEIGHBOURS)]
        finder = NearestNeighbors(n_neighbors=N_NEIGHBOURS + 1).fit(data["embeddings"][:, :8])
        expected = [
            data["names"][j] for j in finder.kneighbors(data["embeddings"][clip : clip + 1, :8])[1][0] if j != clip
        ][:N_NEIGHBOURS]
        assert shown == expected
        players = page.locator("audio.mlcourse-player")
        assert players.count() == 1 + N_NEIGHBOURS
        # The clicked clip's player holds its one second of audio.
        duration = players.first.evaluate("""a => new Promise(done => a.readyState >= 1 ? done(a.duration)
                                             : a.addEventListener('loadedmetadata', () => done(a.duration)))""")
        assert duration == pytest.approx(1.0, abs=0.01)
        page.mouse.move(x, y)  # show the tooltip in the screenshot
    print(f"screenshot: {screenshot}")
