"""Benchmark the embedding explorer at 20,000 points on the CPU: map time and interaction delay.

One command measures, in one run and on the same embeddings:

    .venv/bin/python bench/bench_explorer.py [--quick]

Data: 20,000 x 128 float32 embeddings in Gaussian blobs (seeded): dimensions 0-63 follow a
'class' concept (20 classes), dimensions 64-127 a 'group' concept (5 groups); the explorer's
sub-space 'class' is dimensions 0-63. ``--quick`` uses 2,000 points.

1. The map, in Python, through ``EmbeddingExplorer.projection`` (the explorer's own path) with
   a ``cache_dir`` in a temporary folder: a small UMAP fit first (numba compiles UMAP's and
   pynndescent's functions on the first fit of a process; reported apart), then the complete
   space's UMAP map from an empty cache, the sub-space's, the same call again (memory cache) and
   ``method='pca'``. Peer: scikit-learn's Barnes-Hut ``TSNE`` on the same points. The quality
   of each map: ``sklearn.manifold.trustworthiness`` (10 neighbours, a seeded 2,000-point
   sample) and the fraction of each point's 10 nearest neighbours on the map that share its class.
2. The interaction delay, in the browser: a notebook builds the same explorer with the same
   ``cache_dir`` (it reads the maps from disk, UMAP is not run again) and shows it in JupyterLab,
   in headless Chromium (``coursetools.labbrowser``). Timed inside the page with
   ``performance.now()``, so Playwright's own overhead is left out: a colour change (a round
   trip to the kernel and a redraw), a hover (the tooltip, computed in the page), a click (a
   round trip to the kernel until the clip's neighbour list is shown) and a switch to the
   sub-space and back.

Results are printed and written to ``bench/results/explorer.md`` and ``explorer.json``, with a
screenshot of the page at the end in ``bench/results/explorer.png``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import nbformat
import numpy as np
from sklearn.manifold import TSNE, trustworthiness
from sklearn.neighbors import NearestNeighbors

from coursetools.labbrowser import jupyterlab, notebook_page
from mlcourse.explorer import PADDING, EmbeddingExplorer

from common import (
    RESULTS_DIR,
    command_line,
    describe_machine,
    format_header,
    make_parser,
    record_end_load,
    timed,
    write_results,
)

CODE_FILES = ("mlcourse/explorer.py", "mlcourse/explorer.js")
"""The files measured: their hash goes into the report, beside the commit."""

DIMENSION = 128
SUBSPACE = "class"
SUBSPACE_DIMS = (0, 64)
"""The sub-space 'class' is dimensions 0-63, those the classes are drawn in."""
N_CLASSES, N_GROUPS = 20, 5
CLASS_SPREAD, GROUP_SPREAD = 0.7, 0.5
"""Scale of the class centres (dimensions 0-63) and group centres (64-127) around unit noise."""
SEED = 0
N_NEIGHBOURS = 5
"""The explorer's neighbour list (its default)."""
QUALITY_NEIGHBOURS = 10
QUALITY_SAMPLE = 2000
"""Trustworthiness is computed on a seeded sample of this many points (it is quadratic)."""
CANVAS_SIZE = 480
"""The explorer's default map size, in CSS pixels."""
SAMPLE_RATE = 22050
IMMEDIATE_MS = 100
"""A response within this delay feels immediate (Nielsen's limit)."""
FRAME_MS = 1000 / 60
"""A hover handler that fits within one frame at 60 Hz follows the mouse without lag."""
BROWSER_TIMEOUT_MS = 120_000

FULL = {"n_points": 20_000, "warmup_points": 5_000, "colour_changes": 10, "hovers": 50, "clicks": 5, "switches": 5}
QUICK = {"n_points": 2_000, "warmup_points": 1_000, "colour_changes": 6, "hovers": 20, "clicks": 3, "switches": 2}
"""The warm-up fit has over 4,096 points in the full run, like the timed one, so that it also
compiles pynndescent's nearest-neighbour search (UMAP computes exact neighbours below 4,096)."""


def make_data(n_points, seed=SEED):
    """Embeddings in Gaussian blobs, with their two concepts and their names.

    Returns:
        A dict of arrays: ``embeddings`` (n_points, DIMENSION) float32, ``class`` and ``group``
        (strings, e.g. "c07", "g3") and ``names`` ("clip-00042").
    """
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, N_CLASSES, n_points)
    groups = rng.integers(0, N_GROUPS, n_points)
    embeddings = rng.standard_normal((n_points, DIMENSION), dtype=np.float32)
    half = DIMENSION // 2
    embeddings[:, :half] += CLASS_SPREAD * rng.standard_normal((N_CLASSES, half), dtype=np.float32)[classes]
    embeddings[:, half:] += GROUP_SPREAD * rng.standard_normal((N_GROUPS, half), dtype=np.float32)[groups]
    return {
        "embeddings": embeddings,
        "class": np.array([f"c{k:02d}" for k in range(N_CLASSES)])[classes],
        "group": np.array([f"g{k}" for k in range(N_GROUPS)])[groups],
        "names": np.array([f"clip-{i:05d}" for i in range(n_points)]),
    }


def make_explorer(data, cache_dir, method="umap"):
    """The explorer the benchmark measures, as the notebook builds it (without audio)."""
    return EmbeddingExplorer(
        data["embeddings"],
        {"class": data["class"], "group": data["group"]},
        names=data["names"],
        subspaces={SUBSPACE: slice(*SUBSPACE_DIMS)},
        method=method,
        cache_dir=cache_dir,
    )


# --------------------------------------------------------------------------------------------
# The maps, in Python
# --------------------------------------------------------------------------------------------


def time_maps(data, cache_dir, warmup_points):
    """Time the explorer's maps, and scikit-learn's t-SNE of the same points.

    Returns:
        ``(seconds, maps)``: ``{step: seconds}`` and ``{name: (points, xy)}`` for the quality.
    """
    seconds, maps = {}, {}
    warmup = make_data(warmup_points, seed=SEED + 1)
    print(f"UMAP warm-up on {warmup_points:,} other points (numba compiles) ...", flush=True)
    _, seconds["umap_warmup"] = timed(make_explorer(warmup, cache_dir=None).projection)
    explorer = make_explorer(data, cache_dir)
    for space, step in (("complete", "umap_complete"), (SUBSPACE, "umap_subspace")):
        print(f"UMAP map of the {space} space ...", flush=True)
        xy, seconds[step] = timed(explorer.projection, space)
        maps[step] = (explorer.points(space), xy)
    _, seconds["umap_complete_cached"] = timed(explorer.projection, "complete")
    print("PCA map ...", flush=True)
    xy, seconds["pca_complete"] = timed(make_explorer(data, cache_dir, method="pca").projection)
    maps["pca_complete"] = (data["embeddings"], xy)
    print("t-SNE (scikit-learn, Barnes-Hut) ...", flush=True)
    tsne = TSNE(n_components=2, method="barnes_hut", random_state=SEED)
    xy, seconds["tsne_complete"] = timed(tsne.fit_transform, data["embeddings"])
    maps["tsne_complete"] = (data["embeddings"], xy)
    return seconds, maps


def class_agreement(points, classes, k=QUALITY_NEIGHBOURS):
    """The fraction of each point's k nearest neighbours (itself left out) sharing its class."""
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points, return_distance=False)
    neighbours = neighbours[:, 1:]
    return float((classes[neighbours] == classes[:, None]).mean())


def map_quality(maps, data):
    """Trustworthiness and class agreement of each map, and the embedding's own class agreement.

    Trustworthiness compares each map with the points it was made of (the sub-space's map with
    the sub-space's 64 dimensions), on the same seeded sample of points for every map.
    """
    n_points = len(data["embeddings"])
    sample = np.random.default_rng(SEED).choice(n_points, min(QUALITY_SAMPLE, n_points), replace=False)
    quality = {
        "embedding": {"trustworthiness": 1.0, "class_agreement": class_agreement(data["embeddings"], data["class"])}
    }
    for name, (points, xy) in maps.items():
        quality[name] = {
            "trustworthiness": float(trustworthiness(points[sample], xy[sample], n_neighbors=QUALITY_NEIGHBOURS)),
            "class_agreement": class_agreement(xy, data["class"]),
        }
    return quality


# --------------------------------------------------------------------------------------------
# The interaction delay, in the browser
# --------------------------------------------------------------------------------------------

NOTEBOOK = "explorer_bench.ipynb"
KERNEL_TIMES = "kernel_map_seconds.json"
"""Written by the notebook: how long its explorer took to get the first map (from the disk)."""

NOTEBOOK_CELLS = [
    "import json\n"
    "import numpy as np\n"
    "from mlcourse.viz import EmbeddingExplorer\n"
    "data = np.load('explorer_data.npz')\n"
    "def tone(i):\n"
    f"    return 0.3 * np.sin(2 * np.pi * (220 + i % 200) * np.arange({SAMPLE_RATE}) / {SAMPLE_RATE})",
    "explorer = EmbeddingExplorer(data['embeddings'], {{'class': data['class'], 'group': data['group']}},\n"
    "                             names=data['names'], audio=tone, sample_rate={sample_rate},\n"
    "                             n_neighbors={n_neighbours}, subspaces={{{subspace!r}: slice{dims}}},\n"
    "                             cache_dir={cache_dir!r})\n"
    "explorer.show()\n"
    "with open({kernel_times!r}, 'w') as file:\n"
    "    json.dump(explorer.map_seconds, file)",
]


def write_notebook(folder, data, cache_dir):
    """The data as .npz and a notebook that shows their explorer, reading the maps from cache_dir."""
    np.savez(folder / "explorer_data.npz", **data)
    setup, show = NOTEBOOK_CELLS
    show = show.format(
        sample_rate=SAMPLE_RATE,
        n_neighbours=N_NEIGHBOURS,
        subspace=SUBSPACE,
        dims=SUBSPACE_DIMS,
        cache_dir=str(cache_dir),
        kernel_times=KERNEL_TIMES,
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in (setup, show)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / NOTEBOOK)


# Each timed action runs in the page: it starts the clock, acts as the user's event would, and
# stops the clock when a MutationObserver on the explorer sees the page in the expected state
# (the DOM or the canvas's data attributes changed), before the browser paints that frame.
TIME_UNTIL_JS = """
const root = document.querySelector('.mlcourse-explorer');
const canvas = root.querySelector('.mlcourse-map canvas');
const timeUntil = (done, act, timeoutMs) => new Promise((resolve, reject) => {
  let start, finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    observer.disconnect();
    clearTimeout(timer);
    resolve(performance.now() - start);
  };
  const observer = new MutationObserver(() => { if (done()) finish(); });
  const timer = setTimeout(() => {
    observer.disconnect();
    reject(new Error('the page did not reach the expected state in time'));
  }, timeoutMs);
  observer.observe(root, {subtree: true, childList: true, attributes: true, characterData: true});
  start = performance.now();
  act();
  if (done()) finish();
});
"""

COLOUR_JS = (
    """async ([concept, timeoutMs]) => {
"""
    + TIME_UNTIL_JS
    + """
  const select = root.querySelector('select');
  const index = [...select.options].findIndex((option) => option.textContent === concept);
  const draws = Number(canvas.dataset.draws);
  return await timeUntil(
    () => canvas.dataset.colorBy === concept && Number(canvas.dataset.draws) > draws,
    () => { select.selectedIndex = index; select.dispatchEvent(new Event('change', {bubbles: true})); },
    timeoutMs);
}"""
)

SWITCH_JS = (
    """async ([space, timeoutMs]) => {
"""
    + TIME_UNTIL_JS
    + """
  const button = [...root.querySelectorAll('.widget-toggle-button')]
    .find((b) => b.textContent.trim() === space);
  const draws = Number(canvas.dataset.draws);
  return await timeUntil(
    () => canvas.dataset.space === space && Number(canvas.dataset.draws) > draws
          && canvas.dataset.busy === '0',
    () => button.click(),
    timeoutMs);
}"""
)

HOVER_JS = (
    """async (positions) => {
"""
    + TIME_UNTIL_JS
    + """
  const tooltip = root.querySelector('.mlcourse-map-tooltip');
  const results = [];
  for (const [x, y] of positions) {
    // Where the point is drawn on the screen, to the whole pixel, as a mouse reports it.
    const box = canvas.getBoundingClientRect();
    const event = new MouseEvent('mousemove', {bubbles: true,
      clientX: Math.round(box.left + canvas.clientLeft + x),
      clientY: Math.round(box.top + canvas.clientTop + y)});
    await new Promise(requestAnimationFrame);  // each hover in a frame of its own
    const start = performance.now();
    canvas.dispatchEvent(event);  // the tooltip is found and filled synchronously
    void tooltip.offsetWidth;  // and laid out
    const ms = performance.now() - start;
    const shown = tooltip.style.display === 'block';
    results.push({ms, name: shown ? tooltip.querySelector('b').textContent : null});
  }
  return results;
}"""
)

PAINTED_PIXELS_JS = """([count, seed]) => {
  const canvas = document.querySelector('.mlcourse-explorer .mlcourse-map canvas');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const painted = [];
  for (let y = 0; y < canvas.height; y += 2) for (let x = 0; x < canvas.width; x += 2) {
    const k = 4 * (y * canvas.width + x);
    if (data[k] + data[k + 1] + data[k + 2] < 700) painted.push([x, y]);
  }
  // `count` painted pixels spread over the list (which runs top to bottom), offset by the seed.
  const step = Math.floor(painted.length / count);
  return painted.filter((_, i) => i % step === seed % step).slice(0, count)
    .map(([x, y]) => [x / canvas.width * canvas.clientWidth, y / canvas.height * canvas.clientHeight]);
}"""

CLICK_JS = (
    """async ([x, y, nNeighbours, timeoutMs]) => {
"""
    + TIME_UNTIL_JS
    + """
  const heading = () => root.querySelector('.mlcourse-selected');
  const neighbours = () => [...root.querySelectorAll('.mlcourse-neighbour')];
  const before = heading() ? heading().textContent : '';
  const old = neighbours();
  const box = canvas.getBoundingClientRect();
  const event = new MouseEvent('click', {bubbles: true,
    clientX: Math.round(box.left + canvas.clientLeft + x),
    clientY: Math.round(box.top + canvas.clientTop + y)});
  let syncMs;  // the handler's own part: find the point, draw its ring, send it to the kernel
  const click = () => {
    const start = performance.now();
    canvas.dispatchEvent(event);
    syncMs = performance.now() - start;
  };
  const ms = await timeUntil(
    () => heading() && heading().textContent !== before && neighbours().length === nNeighbours
          && old.every((node) => !node.isConnected),
    click, timeoutMs);
  return {ms, syncMs, selected: heading().querySelector('b').textContent};
}"""
)

IDLE_JS = """() => {
  const root = document.querySelector('.mlcourse-explorer');
  const canvas = root && root.querySelector('.mlcourse-map canvas');
  return canvas && canvas.dataset.busy === '0' && !root.querySelector('select').disabled
    && [...root.querySelectorAll('.widget-toggle-button')].every((b) => !b.disabled);
}"""


def draws(page):
    """How many times the map has been drawn so far (the canvas's ``data-draws``)."""
    return int(page.eval_on_selector(".mlcourse-map canvas", "c => c.dataset.draws"))


def timed_action(page, script, argument):
    """Run one timed action in the page and let the page settle.

    Returns:
        ``(measured, n_draws)``: what the script returned (milliseconds, or a dict) and how many
        times the map was drawn from the action until everything settled.
    """
    before = draws(page)
    measured = page.evaluate(script, argument)
    wait_until_idle(page)
    return measured, draws(page) - before


def record(result, name, **values):
    """Append each value to ``result[f"{name}_{key}"]``, a list."""
    for key, value in values.items():
        result.setdefault(f"{name}_{key}", []).append(value)


def wait_until_idle(page):
    """Wait until the map is drawn and no control is disabled, then a moment for stray messages."""
    page.wait_for_function(IDLE_JS, timeout=BROWSER_TIMEOUT_MS)
    page.wait_for_timeout(300)


def read_kernel_times(path, timeout_s=60):
    """The notebook's ``explorer.map_seconds``, once its cell has written them."""
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return json.loads(path.read_text())


def drawn_positions(xy):
    """Where each point of a map is drawn, in CSS pixels from the canvas's content box: (N, 2).

    The same arithmetic as explorer.js's ``unpack``.
    """
    span = CANVAS_SIZE - 2 * PADDING
    return np.stack([PADDING + xy[:, 0] * span, PADDING + (1 - xy[:, 1]) * span], axis=1)


def hover_positions(xy, count):
    """``count`` seeded points: ``(indices, [[x, y], ...])`` where they are drawn."""
    indices = np.random.default_rng(SEED).choice(len(xy), count, replace=False)
    return indices, drawn_positions(xy)[indices].tolist()


def hover_gaps(xy, aimed, shown_names, names):
    """How far, in CSS pixels on the canvas, each tooltip's point is from the point aimed at.

    None where no tooltip was shown.
    """
    drawn = drawn_positions(xy)
    index = {name: i for i, name in enumerate(names)}
    return [
        None if name is None else float(np.linalg.norm(drawn[index[name]] - drawn[target]))
        for target, name in zip(aimed, shown_names)
    ]


def measure_browser(folder, data, cache_dir, xy, config, screenshot):
    """Show the explorer in JupyterLab in headless Chromium and time the four interactions.

    Args:
        folder: an empty folder for the notebook, its data and the server's files.
        data: from :func:`make_data`.
        cache_dir: where the maps were saved by :func:`time_maps`.
        xy: the complete space's map, to know where the points are drawn.
        config: the counts of each interaction.
        screenshot: where to save the page at the end.

    Returns:
        A dict of lists of milliseconds (and what was hovered and clicked), the time from
        "run all cells" to the drawn map, the kernel's map-reading times and Chromium's version.
    """
    write_notebook(folder, data, cache_dir)
    n_points, timeout = len(xy), BROWSER_TIMEOUT_MS
    result = {}
    print("Starting JupyterLab and Chromium ...", flush=True)
    with jupyterlab(folder) as url, notebook_page(url, NOTEBOOK, screenshot=screenshot) as page:
        result["chromium"] = page.context.browser.version
        page.wait_for_function(
            f"() => {{ const c = document.querySelector('.mlcourse-map canvas'); "
            f"return c && c.dataset.points === '{n_points}' && c.dataset.busy === '0'; }}",
            timeout=300_000,
            polling=50,
        )
        # performance.now() counts from the page's navigation: JupyterLab's loading, the
        # kernel's start, the cells' imports, reading the map and drawing it.
        result["open_to_map_s"] = page.evaluate("performance.now()") / 1000
        wait_until_idle(page)
        result["kernel_map_seconds"] = read_kernel_times(folder / KERNEL_TIMES)

        print("Colour changes ...", flush=True)
        for k in range(config["colour_changes"]):
            concept = "group" if k % 2 == 0 else "class"
            ms, n_draws = timed_action(page, COLOUR_JS, [concept, timeout])
            record(result, "colour_change", ms=ms, draws=n_draws)

        print("Space switches ...", flush=True)
        for _ in range(config["switches"]):
            for name, space in (("switch_to_subspace", SUBSPACE), ("switch_back", "complete")):
                ms, n_draws = timed_action(page, SWITCH_JS, [space, timeout])
                record(result, name, ms=ms, draws=n_draws)

        print("Hovers ...", flush=True)
        indices, positions = hover_positions(xy, config["hovers"])
        hovers = page.evaluate(HOVER_JS, positions)
        result["hover_ms"] = [h["ms"] for h in hovers]
        result["hover_points"] = indices.tolist()
        result["hover_tooltips"] = [h["name"] for h in hovers]
        result["hover_gap_px"] = hover_gaps(xy, indices, [h["name"] for h in hovers], data["names"])

        print("Clicks ...", flush=True)
        for x, y in page.evaluate(PAINTED_PIXELS_JS, [config["clicks"], SEED]):
            click, n_draws = timed_action(page, CLICK_JS, [x, y, N_NEIGHBOURS, timeout])
            record(result, "click", ms=click["ms"], draws=n_draws, handler_ms=click["syncMs"], clip=click["selected"])
        # For the screenshot: a tooltip, and the last clicked clip's neighbours on the map.
        page.evaluate(HOVER_JS, [positions[0]])
    return result


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------

MAP_STEPS = {
    "umap_warmup": "UMAP warm-up, {warmup_points:,} other points (numba compiles on this first fit)",
    "umap_complete": "UMAP, complete space ({n_points:,} x 128), empty cache",
    "umap_subspace": "UMAP, sub-space 'class' ({n_points:,} x 64), empty cache",
    "umap_complete_cached": "UMAP, complete space again (memory cache)",
    "pca_complete": "PCA (`method='pca'`), complete space",
    "tsne_complete": "t-SNE (scikit-learn, Barnes-Hut), complete space",
}
QUALITY_ROWS = {
    "embedding": "the embedding itself (128-D), for reference",
    "umap_complete": "UMAP, complete space",
    "umap_subspace": "UMAP, sub-space 'class' (against its 64 dimensions)",
    "pca_complete": "PCA, complete space",
    "tsne_complete": "t-SNE, complete space",
}
INTERACTIONS = {
    "colour_change": ("colour change", "select → kernel → map redrawn in the new colours"),
    "hover": ("hover", "`mousemove` → tooltip found, filled and laid out (in the page alone)"),
    "click": ("click", "click → kernel → clip heading and 5 new neighbours shown"),
    "click_handler": ("click, the page's own part", "the click handler: nearest point, redraw, send"),
    "switch_to_subspace": ("switch to the sub-space", "button → kernel → new map drawn, not busy"),
    "switch_back": ("switch back to the complete space", "the same"),
}


def format_map_table(report):
    """Seconds per map step, and the UMAP / t-SNE ratio."""
    seconds, config = report["map_seconds"], report["config"]
    lines = ["| step | seconds |", "|---|---:|"]
    lines += [f"| {MAP_STEPS[step].format(**config)} | {seconds[step]:.3f} |" for step in MAP_STEPS]
    kernel = report["browser"]["kernel_map_seconds"]["complete"]
    lines.append(f"| map read from `cache_dir` by the notebook's kernel (a fresh process) | {kernel:.3f} |")
    ratio = report["umap_over_tsne"]
    lines.append(
        f"\n**UMAP / t-SNE** (complete space, without the warm-up): {ratio:.2f} "
        f"(below 1, UMAP is faster: t-SNE takes {1 / ratio:.1f} times as long)"
    )
    return "\n".join(lines)


def format_quality_table(report):
    """Trustworthiness and class agreement of each map."""
    lines = [
        f"| map | trustworthiness ({QUALITY_NEIGHBOURS} neighbours, {QUALITY_SAMPLE:,}-point sample) "
        f"| {QUALITY_NEIGHBOURS} nearest on the map sharing the class |",
        "|---|---:|---:|",
    ]
    for name, label in QUALITY_ROWS.items():
        quality = report["quality"][name]
        trust = "1 (by definition)" if name == "embedding" else f"{quality['trustworthiness']:.3f}"
        lines.append(f"| {label} | {trust} | {quality['class_agreement']:.3f} |")
    return "\n".join(lines)


def format_interaction_table(report):
    """Median and max delay of each interaction, in milliseconds."""
    browser = report["browser"]
    lines = [
        "| interaction | repeats | median (ms) | max (ms) | map draws | timed from → to |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, (label, what) in INTERACTIONS.items():
        values = browser[f"{name}_ms"]
        n_draws = sorted(set(browser.get(f"{name}_draws", [])))
        n_draws = "–".join(map(str, (n_draws[0], n_draws[-1]) if len(n_draws) > 1 else n_draws)) or "—"
        lines.append(
            f"| {label} | {len(values)} | {statistics.median(values):.1f} | {max(values):.1f} | {n_draws} | {what} |"
        )
    return "\n".join(lines)


def format_notes(report):
    """How each number was measured."""
    config, browser = report["config"], report["browser"]
    hits = sum(shown == aimed for shown, aimed in zip(browser["hover_tooltips"], browser["hover_names"]))
    gaps = [gap for gap in browser["hover_gap_px"] if gap is not None] or [float("nan")]
    return "\n".join(
        [
            f"- Data: {config['n_points']:,} x {DIMENSION} float32 embeddings, seed {SEED}: unit Gaussian "
            f"noise, plus one of {N_CLASSES} class centres (scale {CLASS_SPREAD}) in dimensions 0-63 and "
            f"one of {N_GROUPS} group centres (scale {GROUP_SPREAD}) in dimensions 64-127. Concepts "
            "'class' and 'group'; the explorer's sub-space 'class' is dimensions 0-63.",
            "- Maps: wall time of one `EmbeddingExplorer.projection(space)` call each (hashing the "
            "points, UMAP with the explorer's settings: 15 neighbours, spectral initialisation, seed 0, "
            "and saving the map to a `cache_dir` in a temporary folder). A seeded UMAP runs on one "
            "core. The warm-up fit comes first in the process and pays for numba's compilation; "
            "the timed fits do not. t-SNE: `TSNE(n_components=2, method='barnes_hut', "
            f"random_state={SEED})`, scikit-learn's defaults otherwise (perplexity 30, PCA "
            "initialisation, 1,000 iterations), whose gradient uses all cores (OpenMP).",
            f"- Quality: `sklearn.manifold.trustworthiness(points, map, n_neighbors={QUALITY_NEIGHBOURS})` "
            f"on the same seeded {QUALITY_SAMPLE:,} points for every map (1 = no false neighbours "
            f"on the map); class agreement: the fraction of each point's {QUALITY_NEIGHBOURS} "
            "nearest neighbours on the 2-D map (over all points) that share its class.",
            "- Browser: JupyterLab on loopback, a notebook that builds the same explorer (with a "
            "1-s sine as audio) with the same `cache_dir` and calls `explorer.show()`, run in headless "
            f"Chromium {browser['chromium']} (software rendering, no GPU) driven by Playwright "
            f"(`coursetools.labbrowser`). From opening the notebook to its map drawn: "
            f"{browser['open_to_map_s']:.1f} s (JupyterLab's loading, the kernel's start, the imports, "
            "reading the map from `cache_dir`).",
            "- Delays are measured inside the page with `performance.now()`: each starts before the "
            "event is dispatched and stops when a `MutationObserver` on the explorer sees the expected "
            "state, before the frame is painted (at most one frame, ~17 ms, later); Playwright's "
            "own latency is not in them. Between two actions the bench waits until the map is not "
            "busy and no control is disabled, plus 0.3 s. *Map draws*: how many times the canvas "
            "was drawn from the action until the page settled (its `data-draws` counter).",
            f"- Colour: the 'colour by' select set to the other concept and a `change` event "
            f"dispatched, {len(browser['colour_change_ms'])} times alternating 'group' and 'class'.",
            f"- Hover: a synthetic `mousemove` at the drawn position of {len(browser['hover_ms'])} "
            f"seeded points; the handler scans all {config['n_points']:,} points for the nearest "
            f"within 8 pixels. The event carries the whole pixel nearest the point's drawn centre, "
            "as a mouse would, so where points are dense another one may be nearer that pixel: the "
            f"tooltip named the point aimed at in {hits} of {len(browser['hover_ms'])} hovers, and the "
            f"point it named was a median {statistics.median(gaps):.2f} px (at most {max(gaps):.2f} px) "
            f"from it; {len(browser['hover_ms']) - len(gaps)} hovers showed no tooltip.",
            f"- Click: a synthetic click on {len(browser['click_ms'])} painted pixels spread over the "
            "canvas (found with `getImageData`); the kernel finds the clip's 5 nearest neighbours in "
            "the full embedding, encodes 6 one-second WAVs and sends the panels. The page's own "
            "part is the time the click handler itself takes (before anything reaches the kernel).",
            f"- Switch: the sub-space's toggle button clicked, then 'complete', {len(browser['switch_back_ms'])} "
            "times each; the maps were already on disk, and after the first switch in memory. "
            "Done when `data-space` is the new space, `data-draws` has grown and `data-busy` is 0.",
            f"- For reference: a response within {IMMEDIATE_MS} ms feels immediate; a hover handler "
            f"within one frame ({FRAME_MS:.0f} ms at 60 Hz) follows the mouse without lag.",
            f"- Screenshot of the page at the end: `bench/results/{report['screenshot']}`.",
        ]
    )


def format_report(report):
    """The whole markdown report."""
    return (
        "\n\n".join(
            [
                format_header("Embedding explorer benchmark", report["config"]["command"], report["machine"]),
                "## Map time",
                format_map_table(report),
                "## Map quality",
                format_quality_table(report),
                "## Interaction delay, in the browser",
                format_interaction_table(report),
                "## How it was measured",
                format_notes(report),
            ]
        )
        + "\n"
    )


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_arguments():
    """``--quick``."""
    parser = make_parser(__doc__, "2,000 points instead of 20,000 and fewer repeats (a smoke check)")
    return parser.parse_args()


def main():
    """Time the maps and the interactions, print and write the report."""
    arguments = parse_arguments()
    config = dict(QUICK if arguments.quick else FULL)
    config["command"] = command_line()
    peers = {
        name: version(name)
        for name in (
            "umap-learn",
            "pynndescent",
            "numba",
            "scikit-learn",
            "jupyterlab",
            "anywidget",
            "ipywidgets",
            "playwright",
        )
    }
    machine = describe_machine(code_files=CODE_FILES, versions=peers)
    data = make_data(config["n_points"])
    screenshot = RESULTS_DIR / "explorer.png"
    with tempfile.TemporaryDirectory(prefix="bench-explorer-") as temporary:
        cache_dir, lab_dir = Path(temporary) / "maps", Path(temporary) / "lab"
        lab_dir.mkdir()
        map_seconds, maps = time_maps(data, cache_dir, config["warmup_points"])
        print("Map quality ...", flush=True)
        quality = map_quality(maps, data)
        browser = measure_browser(lab_dir, data, cache_dir, maps["umap_complete"][1], config, screenshot)
    browser["hover_names"] = data["names"][browser["hover_points"]].tolist()
    report = {
        "config": config,
        "machine": machine,
        "map_seconds": map_seconds,
        "umap_over_tsne": map_seconds["umap_complete"] / map_seconds["tsne_complete"],
        "quality": quality,
        "browser": browser,
        "screenshot": screenshot.name,
    }
    record_end_load(machine)
    markdown = format_report(report)
    print("\n" + markdown)
    write_results("explorer", markdown, report)


if __name__ == "__main__":
    main()
