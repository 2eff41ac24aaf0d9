"""mlcourse.explorer without a browser: the map, the traits the browser draws, neighbours, audio, caches.

The explorer is driven as a notebook (or a click in the browser) would drive it: set `color_by`
and `space`, call `select` or set `map.selected`, then read the traits synced to explorer.js and
the widgets of the clip and neighbour panels. Everything is checked against independent
computations: scikit-learn's PCA and nearest neighbours, the label codes, the clips' audio.

The data are small seeded embeddings with one block of dimensions per concept: dimensions 0-7
follow the instrument, 8-15 the mood, so each concept's sub-space has clusters of its own.
`tone(i)` is clip i's audio: a sine whose frequency depends on i.
"""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from ipywidgets import HTML, Audio
from scipy.spatial.distance import pdist
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.neighbors import NearestNeighbors

import mlcourse.explorer as explorer_module
from mlcourse.data import CONCEPTS, SAMPLE_RATE
from mlcourse.explorer import COMPLETE, PADDING, EmbeddingExplorer, projection_key, unit_square

N_CLIPS, N_DIMS = 120, 16
INSTRUMENTS = np.array(["brass", "keys", "strings", "winds"])
MOODS = np.array(["bright", "calm", "dark"])
SUBSPACES = {"instrument": slice(0, 8), "mood": slice(8, 16)}
RATE = 8000  # the test clips' sample rate: short clips keep the WAV encoding cheap
QUANTUM = 1 / 32768  # one step of 16-bit PCM


def tone(index: int) -> np.ndarray:
    """Clip `index`'s audio: a quarter second of a sine at 220 + 10 * index Hz."""
    t = np.arange(RATE // 4) / RATE
    return (0.5 * np.sin(2 * np.pi * (220 + 10 * index) * t)).astype(np.float32)


def make_data(n: int = N_CLIPS, seed: int = 0) -> dict:
    """Embeddings whose dimensions 0-7 cluster by instrument (4 classes) and 8-15 by mood (3)."""
    rng = np.random.default_rng(seed)
    instrument = rng.integers(0, 4, n)
    mood = rng.integers(0, 3, n)
    embeddings = rng.normal(size=(n, N_DIMS)).astype(np.float32)
    embeddings[:, :8] += 4 * np.eye(4, 8)[instrument]
    embeddings[:, 8:] += 4 * np.eye(3, 8)[mood]
    return {
        "embeddings": embeddings,
        "names": [f"clip-{i:03d}" for i in range(n)],
        "labels": {"instrument": INSTRUMENTS[instrument], "mood": MOODS[mood]},
        "instrument": instrument,
        "mood": mood,
    }


def make_explorer(data: dict | None = None, **options) -> EmbeddingExplorer:
    """A PCA explorer of `data` (default: `make_data()`) with names, audio and both sub-spaces."""
    data = make_data() if data is None else data
    settings = dict(names=data["names"], audio=tone, sample_rate=RATE, subspaces=SUBSPACES, method="pca")
    settings.update(options)
    return EmbeddingExplorer(data["embeddings"], data["labels"], **settings)


def map_xy(explorer: EmbeddingExplorer) -> np.ndarray:
    """The map as the browser receives it: `map.xy` decoded to (N, 2)."""
    return np.frombuffer(explorer.map.xy, "<f4").reshape(-1, 2)


def walk(widget):
    """A widget and all the widgets inside it, depth first, in order."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def with_class(panel, css_class: str) -> list:
    return [w for w in walk(panel) if css_class in w._dom_classes]


def players(panel) -> list[Audio]:
    return [w for w in walk(panel) if isinstance(w, Audio)]


def decode_wav(wav: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float64")
    return samples, rate


def sklearn_neighbours(points: np.ndarray, index: int, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's k nearest neighbours of point `index`, without the point itself."""
    search = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute").fit(points.astype(np.float64))
    distances, indices = search.kneighbors(points[index : index + 1].astype(np.float64))
    keep = indices[0] != index
    return indices[0][keep][:k], distances[0][keep][:k]


def assert_scaled_copy(xy: np.ndarray, scores: np.ndarray) -> None:
    """`xy` is `scores` moved, perhaps mirrored, and shrunk so that its longer side is 1: every
    pairwise distance is the scores' divided by their largest extent along an axis."""
    span = np.ptp(scores, axis=0).max()
    np.testing.assert_allclose(pdist(xy.astype(np.float64)), pdist(scores) / span, atol=2e-5)


def pca_map(points: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """scikit-learn's 2-D PCA scores of `points` (of the unit-normalised rows for cosine)."""
    points = points.astype(np.float64)
    if metric == "cosine":
        points = points / np.linalg.norm(points, axis=1, keepdims=True)
    return PCA(n_components=2).fit_transform(points)


@pytest.fixture(autouse=True)
def fresh_map_cache():
    """Each test starts (and leaves) with no map in the in-memory cache."""
    explorer_module._MAPS.clear()
    yield
    explorer_module._MAPS.clear()


@pytest.fixture
def project_calls(monkeypatch) -> list:
    """Counts the maps actually computed: each call of `project` appends its points' shape."""
    calls = []
    real_project = explorer_module.project

    def counting_project(points, *args, **kwargs):
        calls.append(points.shape)
        return real_project(points, *args, **kwargs)

    monkeypatch.setattr(explorer_module, "project", counting_project)
    return calls


# The map.


def test_import_umap_asks_numba_to_keep_every_umap_function_on_disk():
    """umap-learn compiles its functions in every process unless numba caches them: after
    import_umap, every compiled function of umap's modules has a disk cache, among them the ones
    a map calls first (the neighbour graph's distances and memberships)."""
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    umap = explorer_module.import_umap()
    compiled = [
        function
        for name, module in list(sys.modules.items())
        if name == "umap" or name.startswith("umap.")
        for function in vars(module).values()
        if isinstance(function, Dispatcher)
    ]
    assert len(compiled) > 20
    assert not any(isinstance(function._cache, NullCache) for function in compiled)
    assert not isinstance(umap.umap_.smooth_knn_dist._cache, NullCache)
    assert not isinstance(umap.umap_.compute_membership_strengths._cache, NullCache)


def test_umap_map_is_in_unit_square_deterministic_cached_and_keeps_neighbours(project_calls):
    """UMAP (the default method): an (N, 2) map in [0, 1], the same for the same seed, computed once
    per embedding, and each point's map neighbours are mostly of its own cluster (a random map's are not)."""
    rng = np.random.default_rng(1)
    cluster = np.repeat(np.arange(3), 50)
    points = rng.normal(size=(150, 12)).astype(np.float32)
    points[:, :6] += 8 * np.eye(3, 6)[cluster]
    labels = {"cluster": cluster.astype(str)}

    explorer = EmbeddingExplorer(points, labels, seed=0)
    assert explorer.method == "umap"
    explorer.compute()
    xy = map_xy(explorer)
    assert xy.shape == (150, 2) and np.isfinite(xy).all()
    assert xy.min() >= 0 and xy.max() <= 1 and np.isclose(xy.max(axis=0) - xy.min(axis=0), 1).any()
    np.testing.assert_array_equal(xy, explorer.projection())
    assert len(project_calls) == 1

    # A second explorer of the same embedding reads the map from memory.
    again = EmbeddingExplorer(points.copy(), labels, seed=0)
    np.testing.assert_array_equal(again.projection(), xy)
    assert len(project_calls) == 1

    # Without the cache, the same seed computes the same map again.
    explorer_module._MAPS.clear()
    np.testing.assert_array_equal(EmbeddingExplorer(points, labels, seed=0).projection(), xy)
    assert len(project_calls) == 2

    def same_cluster_fraction(map_points):
        _, nearest = NearestNeighbors(n_neighbors=11).fit(map_points).kneighbors(map_points)
        return (cluster[nearest[:, 1:]] == cluster[:, None]).mean()

    random_map = rng.uniform(size=(150, 2))
    assert same_cluster_fraction(xy) > 0.95
    assert same_cluster_fraction(random_map) < 0.5
    assert trustworthiness(points, xy, n_neighbors=10) > 0.85 > trustworthiness(points, random_map, n_neighbors=10)


def test_umap_cosine_map_and_a_tiny_embedding():
    """UMAP with the cosine metric gives a unit-square map too, and 5 clips (the fewest allowed) still map."""
    data = make_data(60)
    xy = make_explorer(data, method="umap", distance="cosine").projection()
    assert xy.shape == (60, 2) and xy.min() >= 0 and xy.max() <= 1
    # Clips of the same instrument and mood (12 clusters of about 5 in the complete space) stay together;
    # on a random map about 1 in 12 neighbours would share both.
    pairs = data["instrument"] * 3 + data["mood"]
    _, nearest = NearestNeighbors(n_neighbors=4).fit(xy).kneighbors(xy)
    assert (pairs[nearest[:, 1:]] == pairs[:, None]).mean() > 0.5
    random_map = np.random.default_rng(4).uniform(size=(60, 2))
    _, nearest = NearestNeighbors(n_neighbors=4).fit(random_map).kneighbors(random_map)
    assert (pairs[nearest[:, 1:]] == pairs[:, None]).mean() < 0.3
    tiny = EmbeddingExplorer(data["embeddings"][:5], {"mood": data["labels"]["mood"][:5]}, n_neighbors=2)
    tiny_xy = tiny.projection()
    assert tiny_xy.shape == (5, 2) and np.isfinite(tiny_xy).all() and tiny_xy.min() >= 0 and tiny_xy.max() <= 1


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("space", [COMPLETE, "mood"])
def test_pca_map_is_sklearn_pca_scaled_into_the_unit_square(metric, space):
    """The PCA map is scikit-learn's PCA of the space's dimensions, moved and scaled uniformly: all
    its pairwise distances are those of the PCA scores times one factor."""
    data = make_data()
    explorer = make_explorer(data, distance=metric)
    xy = explorer.projection(space)
    dims = np.arange(N_DIMS) if space == COMPLETE else np.arange(8, 16)
    assert_scaled_copy(xy, pca_map(data["embeddings"][:, dims], metric))
    assert xy.dtype == np.float32 and xy.min() >= 0 and xy.max() <= 1


def test_unit_square_keeps_aspect_ratio_and_centres():
    """unit_square: the longer side spans [0, 1], the other is centred on 0.5, all distances shrink alike."""
    rng = np.random.default_rng(2)
    points = rng.normal(size=(50, 2)) * [30.0, 4.0] + [-7.0, 100.0]
    square = unit_square(points)
    assert square.dtype == np.float32 and square.shape == (50, 2)
    np.testing.assert_allclose(square[:, 0].min(), 0, atol=1e-6)
    np.testing.assert_allclose(square[:, 0].max(), 1, atol=1e-6)
    np.testing.assert_allclose(square.min(axis=0) + square.max(axis=0), [1, 1], atol=1e-6)  # centred
    assert square[:, 1].max() - square[:, 1].min() < 0.5
    span = np.ptp(points[:, 0])
    np.testing.assert_allclose(pdist(square.astype(np.float64)), pdist(points) / span, atol=1e-6)
    # The taller case is the same, transposed; a single repeated point sits in the middle.
    np.testing.assert_allclose(unit_square(points[:, ::-1]), square[:, ::-1], atol=1e-6)
    np.testing.assert_array_equal(unit_square(np.full((4, 2), 3.0)), np.full((4, 2), 0.5))


def test_compute_sends_the_map_and_notes_progress(monkeypatch):
    """compute() draws the complete space's map; while it runs the map says what it computes and the
    controls are disabled; afterwards the note is gone, the controls work and the status tells the method."""
    explorer = make_explorer()
    assert explorer.map.xy == b""  # nothing is computed before compute() or show()
    seen = []
    real_project = explorer_module.project

    def watching_project(points, *args, **kwargs):
        seen.append((explorer.map.busy, explorer.color_menu.disabled, explorer.space_switch.disabled))
        return real_project(points, *args, **kwargs)

    monkeypatch.setattr(explorer_module, "project", watching_project)
    explorer.compute()
    busy, menu_disabled, switch_disabled = seen[0]
    assert "PCA" in busy and "complete space" in busy and f"{N_CLIPS:,} clips" in busy and "16 dimensions" in busy
    assert menu_disabled and switch_disabled
    explorer.space = "mood"
    assert "mood sub-space" in seen[1][0] and "8 dimensions" in seen[1][0]
    assert explorer.map.busy == "" and not explorer.color_menu.disabled and not explorer.space_switch.disabled
    assert "PCA map of the mood sub-space" in explorer.status.value
    np.testing.assert_array_equal(map_xy(explorer), explorer.projection("mood"))
    assert set(explorer.map_seconds) == {COMPLETE, "mood"}


def test_show_displays_then_computes(monkeypatch):
    """show() displays the explorer itself and then computes the map."""
    import IPython.display

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("again, with its picture", obj, "image/png" in obj._repr_mimebundle_()))

    def display(*objects, display_id=None):
        shown.extend((obj, "image/png" in obj._repr_mimebundle_()) for obj in objects)
        return Handle() if display_id else None

    monkeypatch.setattr(IPython.display, "display", display)
    explorer = make_explorer()
    explorer.show()
    assert shown == [(explorer, False), ("again, with its picture", explorer, True)]
    np.testing.assert_array_equal(map_xy(explorer), explorer.projection(COMPLETE))


def test_the_picture_is_the_map_as_shown():
    """The PNG beside the widget: the map's points in the shown concept's colours."""
    import base64
    import io

    from matplotlib.image import imread

    explorer = make_explorer()
    with pytest.raises(RuntimeError, match="not computed yet"):
        explorer.picture()
    explorer.compute()
    bundle = explorer._repr_mimebundle_()
    assert {"application/vnd.jupyter.widget-view+json", "image/png"} <= set(bundle)
    image = imread(io.BytesIO(base64.b64decode(bundle["image/png"])))
    assert image.shape[0] == explorer.map.size
    # Every class colour of the shown concept appears in the picture; recolouring changes it.
    pixels = {tuple(np.round(p[:3] * 255).astype(int)) for p in image.reshape(-1, image.shape[-1])}
    to_rgb = lambda h: tuple(int(h[i : i + 2], 16) for i in (1, 3, 5))  # noqa: E731
    assert all(to_rgb(color) in pixels for color in explorer.map.colors)
    before = explorer.picture()
    explorer.color_by = [c for c in explorer.labels.columns if c != explorer.color_by][0]
    assert explorer.picture() != before


# What the browser draws: codes, names, colours, spaces.


@pytest.mark.parametrize("as_frame", [False, True])
def test_codes_decode_to_each_concepts_label_codes(as_frame):
    """map.codes holds, per concept, each clip's index among the concept's sorted classes; map.concepts
    lists those classes; without names the clips are 'clip 0', 'clip 1', ...; a click shows the clip's labels."""
    data = make_data()
    labels = data["labels"]
    if as_frame:  # a table with an index that is not 0..N-1, as a subset of a dataset's meta would be
        labels = pd.DataFrame(labels, index=np.arange(N_CLIPS) * 3 + 7)
    explorer = EmbeddingExplorer(data["embeddings"], labels, method="pca")
    codes = np.frombuffer(explorer.map.codes, "<i2").reshape(2, N_CLIPS)
    np.testing.assert_array_equal(codes[0], data["instrument"])  # INSTRUMENTS and MOODS are sorted
    np.testing.assert_array_equal(codes[1], data["mood"])
    assert explorer.map.concepts == [
        {"name": "instrument", "classes": INSTRUMENTS.tolist()},
        {"name": "mood", "classes": MOODS.tolist()},
    ]
    assert explorer.map.names == [f"clip {i}" for i in range(N_CLIPS)]
    # Row i of the labels is clip i, whatever the table's index: the click panel reads them by position.
    explorer.select(N_CLIPS - 1)
    (selected,) = with_class(explorer.clip_panel, "mlcourse-selected")
    assert selected.value == (
        f"<b>clip {N_CLIPS - 1}</b><br>instrument: {INSTRUMENTS[data['instrument'][-1]]}, "
        f"mood: {MOODS[data['mood'][-1]]}"
    )


def test_codes_of_unsorted_and_numeric_labels():
    """Classes are sorted as text, and codes follow that order (numbers become their text)."""
    labels = {
        "era": ["romantic", "baroque", "modern", "baroque", "classical", "romantic"],
        "year": [1850, 1720, 1950, 1720, 1790, 1850],
    }
    explorer = EmbeddingExplorer(np.random.default_rng(0).normal(size=(6, 4)), labels, method="pca")
    codes = np.frombuffer(explorer.map.codes, "<i2").reshape(2, 6)
    np.testing.assert_array_equal(codes[0], [3, 0, 2, 0, 1, 3])
    np.testing.assert_array_equal(codes[1], [2, 0, 3, 0, 1, 2])
    assert explorer.map.concepts[1]["classes"] == ["1720", "1790", "1850", "1950"]


def test_color_by_sets_the_maps_concept_and_one_distinct_colour_per_class():
    """Colouring by a concept sends its name and one distinct colour per class; so does the dropdown."""
    data = make_data()
    data["labels"]["piece"] = np.array([f"piece {k:02d}" for k in range(25)])[np.arange(N_CLIPS) % 25]
    explorer = make_explorer(data)
    assert explorer.color_by == explorer.map.color_by == "instrument"  # the first concept by default
    assert explorer.color_menu.options == ("instrument", "mood", "piece")

    def check(concept, n_classes):
        assert explorer.map.color_by == concept == explorer.color_menu.value
        colors = explorer.map.colors
        assert len(colors) == n_classes == len(set(colors))
        assert all(c.startswith("#") and len(c) == 7 for c in colors)

    check("instrument", 4)
    explorer.color_by = "mood"
    check("mood", 3)
    explorer.color_by = "piece"  # more than 20 classes: colours from a colour wheel
    check("piece", 25)
    explorer.color_menu.value = "instrument"  # what choosing in the dropdown does
    check("instrument", 4)
    assert make_explorer(data, color_by="mood").map.color_by == "mood"


def test_unknown_concept_is_refused_with_the_choices():
    explorer = make_explorer()
    with pytest.raises(ValueError, match="unknown concept 'tempo'.*instrument, mood"):
        explorer.color_by = "tempo"
    assert explorer.map.color_by == "instrument"
    with pytest.raises(ValueError, match="unknown concept 'tempo'"):
        make_explorer(color_by="tempo")


def test_space_switch_sends_that_spaces_map_and_clears_the_selection():
    """Switching the space sends the sub-space's own map (PCA of its dimensions only), and a click
    made in the previous space no longer holds: no selection, no highlight, empty panels."""
    data = make_data()
    explorer = make_explorer(data)
    assert explorer.space_switch.options == (COMPLETE, "instrument", "mood")
    explorer.compute()
    complete = map_xy(explorer).copy()
    np.testing.assert_array_equal(complete, explorer.projection(COMPLETE))
    explorer.select(3)
    assert explorer.neighbours and explorer.map.highlight and explorer.clip_panel.children

    explorer.space = "mood"
    mood = map_xy(explorer)
    np.testing.assert_array_equal(mood, explorer.projection("mood"))
    assert not np.allclose(mood, complete)
    assert_scaled_copy(mood, pca_map(data["embeddings"][:, 8:]))
    assert explorer.space == explorer.map.space == "mood"
    assert explorer.selected == explorer.map.selected == -1
    assert explorer.map.highlight == [] and explorer.neighbours == [] and explorer.distances == []
    assert explorer.clip_panel.children == () and explorer.neighbour_panel.children == ()

    explorer.space_switch.value = COMPLETE  # what a click on the toggle does
    np.testing.assert_array_equal(map_xy(explorer), complete)
    assert explorer.map.space == COMPLETE


def test_unknown_space_is_refused_with_the_choices():
    explorer = make_explorer()
    with pytest.raises(ValueError, match="unknown space 'genre'.*complete, instrument, mood"):
        explorer.space = "genre"
    assert explorer.space == COMPLETE


def test_no_space_switch_without_subspaces():
    """An embedding without sub-spaces shows only the colour menu above the map."""
    data = make_data()
    explorer = EmbeddingExplorer(data["embeddings"], data["labels"], method="pca")
    assert list(explorer.spaces) == [COMPLETE]
    assert explorer.color_menu in explorer.children[0].children
    assert explorer.space_switch not in explorer.children[0].children


def test_pixel_positions_follow_the_map_and_canvas():
    """Pixels: x grows right and y grows down, inside the canvas less its padding, as explorer.js draws."""
    explorer = make_explorer(size=300)
    assert explorer.map.size == 300
    xy = explorer.projection().astype(np.float64)
    pixels = explorer.pixel_positions()
    span = 300 - 2 * PADDING
    np.testing.assert_allclose(pixels[:, 0], PADDING + span * xy[:, 0], atol=1e-3)
    np.testing.assert_allclose(pixels[:, 1], PADDING + span * (1 - xy[:, 1]), atol=1e-3)
    assert pixels.min() >= PADDING - 1e-3 and pixels.max() <= 300 - PADDING + 1e-3
    assert np.argmax(xy[:, 1]) == np.argmin(pixels[:, 1])  # the top point is drawn highest
    np.testing.assert_allclose(pdist(pixels), span * pdist(xy), atol=1e-3)
    assert explorer.pixel_positions("mood").shape == (N_CLIPS, 2)


# A click: neighbours, panels, audio.


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("space", [COMPLETE, "mood"])
@pytest.mark.parametrize("how", ["select", "click"])
def test_neighbours_are_sklearns_nearest_in_the_shown_space(metric, space, how):
    """A click (select(i), or the browser setting map.selected) lists scikit-learn's nearest
    neighbours in the shown space's own dimensions, with their distances; the map highlights them
    and the neighbour panel has one row per neighbour, nearest first, naming it."""
    data = make_data()
    explorer = make_explorer(data, distance=metric, n_neighbors=6)
    explorer.space = space
    dims = np.arange(N_DIMS) if space == COMPLETE else np.arange(8, 16)
    points = data["embeddings"][:, dims]
    for index in (0, 17, N_CLIPS - 1):
        if how == "select":
            explorer.select(index)
        else:
            explorer.map.selected = index
        expected, distances = sklearn_neighbours(points, index, 6, metric)
        assert explorer.selected == index
        assert explorer.neighbours == expected.tolist()
        np.testing.assert_allclose(explorer.distances, distances, rtol=1e-6, atol=1e-6)
        assert explorer.map.highlight == expected.tolist()
        rows = with_class(explorer.neighbour_panel, "mlcourse-neighbour")
        assert len(rows) == 6
        for rank, (row, other) in enumerate(zip(rows, expected), start=1):
            assert row.value.startswith(f"{rank}. <b>{data['names'][other]}</b>")
            assert f"instrument: {data['labels']['instrument'][other]}" in row.value
        heading = explorer.neighbour_panel.children[0].value
        assert f"{metric} distance" in heading and f"{len(dims)} dimensions" in heading
        assert ("complete space" if space == COMPLETE else "mood sub-space") in heading
        (selected,) = with_class(explorer.clip_panel, "mlcourse-selected")
        assert data["names"][index] in selected.value
        assert f"mood: {data['labels']['mood'][index]}" in selected.value


def test_subspace_neighbours_share_the_subspaces_concept():
    """In the mood sub-space a clip's neighbours have its mood (the clusters are well apart), while
    in the instrument sub-space they have its instrument: each space has its own neighbours."""
    data = make_data()
    explorer = make_explorer(data, n_neighbors=5)
    agree = {"mood": [], "instrument": []}
    for space in agree:
        explorer.space = space
        for index in range(0, N_CLIPS, 7):
            explorer.select(index)
            agree[space].append(np.mean(data[space][explorer.neighbours] == data[space][index]))
    assert np.mean(agree["mood"]) > 0.9 and np.mean(agree["instrument"]) > 0.9


def test_nearest_neighbors_breaks_ties_by_lower_index():
    """Equally distant clips are listed lowest index first, and the clip itself is never listed,
    even when another clip has the same embedding."""
    embeddings = np.array([[0, 0], [1, 0], [0, 1], [-1, 0], [0, 0], [5, 5]], dtype=np.float32)
    explorer = EmbeddingExplorer(embeddings, {"c": list("aabbcc")}, method="pca", n_neighbors=4)
    indices, distances = explorer.nearest_neighbors(0)
    assert indices.tolist() == [4, 1, 2, 3]
    np.testing.assert_allclose(distances, [0, 1, 1, 1])
    assert explorer.nearest_neighbors(4)[0].tolist() == [0, 1, 2, 3]


def test_a_click_plays_the_clip_and_its_neighbours():
    """The clip panel plays the clicked clip (autoplay) and each neighbour row plays that neighbour:
    the WAV bytes decode to the clips' samples, within 16-bit quantisation, at the given rate."""
    explorer = make_explorer(n_neighbors=3)
    explorer.select(11)
    (player,) = players(explorer.clip_panel)
    assert player.format == "wav" and player.autoplay and not player.loop
    assert "mlcourse-player" in player._dom_classes
    samples, rate = decode_wav(player.value)
    assert rate == RATE
    np.testing.assert_allclose(samples, tone(11), atol=QUANTUM)
    neighbour_players = players(explorer.neighbour_panel)
    assert len(neighbour_players) == 3
    for other, neighbour_player in zip(explorer.neighbours, neighbour_players):
        assert not neighbour_player.autoplay
        samples, _ = decode_wav(neighbour_player.value)
        np.testing.assert_allclose(samples, tone(other), atol=QUANTUM)
    # Each player sits in its neighbour's row.
    for row, other in zip(explorer.neighbour_panel.children[1:], explorer.neighbours):
        text, row_player = row.children
        assert explorer.names[other] in text.value
        np.testing.assert_allclose(decode_wav(row_player.value)[0], tone(other), atol=QUANTUM)


def test_loud_audio_is_clipped_not_wrapped():
    """Samples beyond [-1, 1] are clipped to full scale (16-bit WAV cannot hold them)."""
    explorer = make_explorer(audio=lambda i: 3 * tone(i), n_neighbors=1)
    explorer.select(0)
    samples, _ = decode_wav(players(explorer.clip_panel)[0].value)
    np.testing.assert_allclose(samples, np.clip(3 * tone(0), -1, 1), atol=QUANTUM)
    assert samples.max() > 0.99 and samples.min() < -0.99


def test_without_audio_a_note_replaces_the_players():
    explorer = make_explorer(audio=None, n_neighbors=3)
    explorer.select(5)
    assert players(explorer) == []
    notes = [w for w in walk(explorer) if isinstance(w, HTML) and "no audio given" in w.value]
    assert len(notes) == 4  # the clip and its three neighbours
    assert explorer.neighbours and len(with_class(explorer.neighbour_panel, "mlcourse-neighbour")) == 3


def test_failing_audio_shows_a_note_and_keeps_working():
    """An audio function that raises (a missing file, say) gives a note with the error, not an exception;
    the clips whose audio works still get players."""

    def audio(index):
        if index == 5:
            raise FileNotFoundError("no such file: clip-005.wav")
        return tone(index)

    explorer = make_explorer(audio=audio, n_neighbors=3)
    explorer.select(5)
    assert players(explorer.clip_panel) == []
    notes = [w.value for w in walk(explorer.clip_panel) if isinstance(w, HTML) and "cannot play" in w.value]
    assert notes == ["<i>cannot play clip-005: no such file: clip-005.wav</i>"]
    assert len(players(explorer.neighbour_panel)) == 3
    assert len(with_class(explorer.neighbour_panel, "mlcourse-neighbour")) == 3


def test_deselecting_empties_the_panels():
    """map.selected = -1 (no clip) clears the neighbours, the highlight and both panels."""
    explorer = make_explorer()
    explorer.select(2)
    explorer.map.selected = -1
    assert explorer.neighbours == [] and explorer.distances == []
    assert explorer.clip_panel.children == () and explorer.neighbour_panel.children == ()


# Caches.


def test_same_embedding_is_projected_once_per_space(project_calls):
    """Maps are cached in memory: a second explorer of equal embeddings, and switching back and
    forth between spaces, compute nothing again; the cache status says so."""
    data = make_data()
    explorer = make_explorer(data)
    explorer.compute()
    explorer.space = "mood"
    explorer.space = COMPLETE
    explorer.space = "mood"
    assert project_calls == [(N_CLIPS, 16), (N_CLIPS, 8)]
    copy = {**data, "embeddings": data["embeddings"].copy()}
    other = make_explorer(copy)
    other.compute()
    assert len(project_calls) == 2
    np.testing.assert_array_equal(map_xy(other), explorer.projection(COMPLETE))
    assert "from the cache" in other.status.value


def test_cache_keys_differ_for_different_points_and_settings(project_calls):
    """A map's key depends on the exact points and on method, distance and seed; changed embeddings
    and different sub-spaces each get their own map."""
    data = make_data()
    points = data["embeddings"]
    key = projection_key(points, "pca", "euclidean", 0)
    assert key == projection_key(points.copy(), "pca", "euclidean", 0)
    changed = points.copy()
    changed[7, 3] += 1e-3
    others = [
        projection_key(changed, "pca", "euclidean", 0),
        projection_key(points, "umap", "euclidean", 0),
        projection_key(points, "pca", "cosine", 0),
        projection_key(points, "pca", "euclidean", 1),
        projection_key(points[:, :8], "pca", "euclidean", 0),
        projection_key(points[:, 8:], "pca", "euclidean", 0),
        projection_key(points.astype(np.float64), "pca", "euclidean", 0),
    ]
    assert len({key, *others}) == 1 + len(others)

    make_explorer(data).projection()
    make_explorer({**data, "embeddings": changed}).projection()
    explorer = make_explorer(data)
    explorer.projection("instrument")
    explorer.projection("mood")
    assert len(project_calls) == 4
    assert len(explorer_module._MAPS) == 4


def test_disk_cache_is_read_in_a_new_session(tmp_path, project_calls):
    """With cache_dir the map is saved as <key>.npy; a new session (empty memory cache) reads it
    instead of computing, and gets the same map."""
    data = make_data()
    explorer = make_explorer(data, cache_dir=tmp_path / "maps")
    explorer.compute()
    xy = map_xy(explorer).copy()
    key = projection_key(data["embeddings"], "pca", "euclidean", 0)
    saved = tmp_path / "maps" / f"{key}.npy"
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == [saved.name]
    np.testing.assert_array_equal(np.load(saved), xy)
    assert len(project_calls) == 1

    explorer_module._MAPS.clear()
    again = make_explorer(data, cache_dir=str(tmp_path / "maps"))  # a str folder works too
    again.compute()
    assert len(project_calls) == 1
    np.testing.assert_array_equal(map_xy(again), xy)
    assert map_xy(again).dtype == np.float32


def write_garbage(path, n):
    path.write_bytes(b"\x00not a numpy file\xff" * 10)


def write_wrong_shape(path, n):
    np.save(path, np.zeros((n + 1, 2), np.float32))


def write_three_columns(path, n):
    np.save(path, np.zeros((n, 3), np.float32))


def write_nan(path, n):
    np.save(path, np.full((n, 2), np.nan, np.float32))


def write_truncated(path, n):
    np.save(path, np.zeros((n, 2), np.float32))
    path.write_bytes(path.read_bytes()[:-100])


def write_pickle(path, n):
    np.save(path, np.array([{"a": 1}] * n, dtype=object), allow_pickle=True)


def write_empty(path, n):
    path.write_bytes(b"")


def write_text_array(path, n):
    np.save(path, np.full((n, 2), "x"))


@pytest.mark.parametrize(
    "corrupt",
    [
        write_garbage,
        write_wrong_shape,
        write_three_columns,
        write_nan,
        write_truncated,
        write_pickle,
        write_empty,
        write_text_array,
    ],
)
def test_corrupt_disk_cache_warns_recomputes_and_rewrites(tmp_path, project_calls, corrupt):
    """An unusable cached map gives a warning naming the file, is computed again, and the file is
    replaced by the right map."""
    data = make_data()
    make_explorer(data, cache_dir=tmp_path).projection()
    expected = explorer_module._MAPS.copy().popitem()[1]
    (path,) = tmp_path.glob("*.npy")
    corrupt(path, N_CLIPS)
    explorer_module._MAPS.clear()

    explorer = make_explorer(data, cache_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explorer.compute()
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and "unreadable cached map" in messages[0] and path.name in messages[0]
    assert len(project_calls) == 2
    np.testing.assert_array_equal(map_xy(explorer), expected)
    np.testing.assert_array_equal(np.load(path), expected)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_an_interrupted_save_leaves_no_file(tmp_path, monkeypatch):
    """_save_map writes atomically: if writing fails (or is interrupted), the folder has no map and no
    temporary file, and the error is not hidden; a good save leaves exactly the map."""
    from mlcourse.explorer import _save_map

    xy = np.random.default_rng(0).uniform(size=(10, 2)).astype(np.float32)
    real_save = np.save

    def failing_save(file, array, *args, **kwargs):
        real_save(file, array[:3])  # part of the file is written...
        raise KeyboardInterrupt  # ...then the learner presses stop

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        _save_map(tmp_path / "maps" / "map.npy", xy)
    assert list((tmp_path / "maps").iterdir()) == []

    monkeypatch.setattr(np, "save", real_save)
    _save_map(tmp_path / "maps" / "map.npy", xy)
    assert [p.name for p in (tmp_path / "maps").iterdir()] == ["map.npy"]
    np.testing.assert_array_equal(np.load(tmp_path / "maps" / "map.npy"), xy)

    # An explorer whose save fails (a full disk) warns, keeps the map it computed, and leaves no
    # file in its cache folder.
    def broken_save(file, array, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", broken_save)
    explorer = make_explorer(cache_dir=tmp_path / "other")
    with pytest.warns(UserWarning, match="could not keep the map .*disk full"):
        xy = explorer.projection()
    assert xy.shape == (N_CLIPS, 2)
    assert list((tmp_path / "other").iterdir()) == []


def test_saved_maps_are_readable_by_others(tmp_path):
    """A cache folder may be shared (a workshop server): the map files are not private."""
    make_explorer(cache_dir=tmp_path).projection()
    (path,) = tmp_path.glob("*.npy")
    assert path.stat().st_mode & 0o044 == 0o044


def test_status_says_whether_the_map_was_computed_or_cached():
    """The note under the map says "computed in" the first time and "from the cache" after."""
    data = make_data()
    first = make_explorer(data)
    first.compute()
    assert "computed in" in first.status.value
    second = make_explorer(data)
    second.compute()
    assert "from the cache" in second.status.value


# Inputs.


def bad_inputs():
    """(what is wrong, constructor arguments, the error's expected message)."""
    data = make_data(20)
    good = dict(embeddings=data["embeddings"], labels=data["labels"], method="pca")
    nan = data["embeddings"].copy()
    nan[3, 4] = np.nan
    inf = data["embeddings"].copy()
    inf[0, 0] = np.inf
    return [
        ("1-D embeddings", {**good, "embeddings": data["embeddings"][:, 0]}, r"2-D .*shape \(20,\)"),
        ("3-D embeddings", {**good, "embeddings": data["embeddings"][None]}, r"2-D .*shape \(1, 20, 16\)"),
        (
            "too few clips",
            {**good, "embeddings": data["embeddings"][:4], "labels": {"mood": data["labels"]["mood"][:4]}},
            "at least 5 clips, got 4",
        ),
        ("NaN", {**good, "embeddings": nan}, "NaN"),
        ("infinity", {**good, "embeddings": inf}, "infinite"),
        (
            "labels too short",
            {**good, "labels": {"mood": data["labels"]["mood"][:19]}},
            "labels have 19 rows .* 20 embeddings",
        ),
        (
            "label table too long",
            {**good, "labels": pd.DataFrame({"mood": np.tile(data["labels"]["mood"], 2)})},
            "labels have 40 rows",
        ),
        ("no concept", {**good, "labels": {}}, "at least one concept"),
        ("names too short", {**good, "names": data["names"][:10]}, "10 names for 20 embeddings"),
        ("unknown distance", {**good, "distance": "manhattan"}, "unknown distance .manhattan.*euclidean, squared"),
        ("unknown method", {**good, "method": "tsne"}, "unknown method 'tsne'.*umap, pca"),
        ("no neighbours", {**good, "n_neighbors": 0}, "n_neighbors must be between 1 and 19, got 0"),
        ("too many neighbours", {**good, "n_neighbors": 20}, "n_neighbors must be between 1 and 19, got 20"),
        ("dimension too high", {**good, "subspaces": {"mood": [8, 16]}}, r"sub-space 'mood' .* 0\.\.15, got \[8, 16\]"),
        ("negative dimension", {**good, "subspaces": {"mood": [-1, 3]}}, "sub-space 'mood' .* 0..15"),
        ("empty sub-space", {**good, "subspaces": {"mood": slice(16, 20)}}, "sub-space 'mood' .* got \\[\\]"),
        ("all-false mask", {**good, "subspaces": {"mood": np.zeros(16, bool)}}, "sub-space 'mood'"),
        ("sub-space named complete", {**good, "subspaces": {COMPLETE: slice(0, 8)}}, "'complete' names the whole"),
        ("unknown first colour", {**good, "color_by": "genre"}, "unknown concept 'genre'.*instrument, mood"),
    ]


@pytest.mark.parametrize("problem, arguments, message", bad_inputs(), ids=[b[0] for b in bad_inputs()])
def test_bad_input_is_refused_with_a_clear_message(problem, arguments, message):
    arguments = dict(arguments)
    with pytest.raises(ValueError, match=message):
        EmbeddingExplorer(arguments.pop("embeddings"), arguments.pop("labels"), **arguments)


def test_wrong_length_masks_are_refused():
    """A mask must have one entry per dimension: a shorter one would silently pick the wrong ones."""
    data = make_data(20)
    for mask in (np.ones(3, bool), np.array([0.0, 3.0])):
        with pytest.raises(ValueError, match="mask of sub-space 's' must have one entry per dimension"):
            EmbeddingExplorer(data["embeddings"], data["labels"], method="pca", subspaces={"s": mask})


def test_concepts_with_numeric_column_names():
    """A label table with numbered columns (pandas' default) works: concepts are named by text."""
    data = make_data(30)
    table = pd.DataFrame({0: data["labels"]["instrument"], 1: data["labels"]["mood"]})
    explorer = EmbeddingExplorer(data["embeddings"], table, method="pca")
    assert explorer.color_by == "0" and [c["name"] for c in explorer.map.concepts] == ["0", "1"]
    explorer.color_by = "1"
    assert explorer.map.color_by == "1"


def test_names_and_labels_are_shown_as_text_not_html():
    """Names and labels with <, > or & appear as written in the panels, not as broken markup."""
    data = make_data(20)
    names = [f"Bach <BWV {i}> & co" for i in range(20)]
    labels = {"piece": ["a<b"] * 20}
    explorer = EmbeddingExplorer(data["embeddings"], labels, names=names, method="pca", audio=lambda i: 1 / 0)
    explorer.select(2)
    html_values = [w.value for w in walk(explorer) if isinstance(w, HTML)]
    heading = [v for v in html_values if "BWV 2" in v][0]
    assert "Bach &lt;BWV 2&gt; &amp; co" in heading and "piece: a&lt;b" in heading
    assert "<BWV" not in " ".join(html_values)


@pytest.mark.parametrize("index", [-1, N_CLIPS, N_CLIPS + 5])
def test_selecting_a_clip_that_does_not_exist(index):
    explorer = make_explorer()
    with pytest.raises(IndexError, match=f"clip {index} does not exist: there are {N_CLIPS} clips"):
        explorer.select(index)
    assert explorer.selected == -1 and explorer.neighbours == []


def test_torch_embeddings_are_accepted():
    """A tensor (on which gradients are tracked, as a model's output may be) is read like its array."""
    data = make_data()
    tensor = torch.from_numpy(data["embeddings"]).requires_grad_()
    explorer = EmbeddingExplorer(tensor * 1, data["labels"], method="pca", subspaces=SUBSPACES)
    assert isinstance(explorer.embeddings, np.ndarray) and explorer.embeddings.dtype == np.float32
    np.testing.assert_array_equal(explorer.embeddings, data["embeddings"])
    np.testing.assert_array_equal(explorer.projection("mood"), make_explorer(data).projection("mood"))
    double = EmbeddingExplorer(torch.from_numpy(data["embeddings"]).double(), data["labels"], method="pca")
    np.testing.assert_array_equal(double.embeddings, data["embeddings"])


@pytest.mark.parametrize(
    "dims",
    [
        slice(8, 16),
        np.arange(8, 16),
        list(range(8, 16)),
        np.arange(16) >= 8,
        torch.arange(16) >= 8,
        (torch.arange(16) >= 8).float(),
        torch.arange(8, 16),
    ],
    ids=["slice", "indices", "list", "bool mask", "torch bool mask", "torch 0/1 float mask", "torch indices"],
)
def test_subspace_forms_pick_the_same_dimensions(dims, project_calls):
    """A slice, indices (array, list, tensor) or a mask (boolean or 0/1 float, array or tensor) all
    give the mood sub-space dimensions 8-15, and so the same map and neighbours."""
    data = make_data()
    explorer = make_explorer(data, subspaces={"mood": dims})
    np.testing.assert_array_equal(explorer.spaces["mood"], np.arange(8, 16))
    np.testing.assert_array_equal(explorer.points("mood"), data["embeddings"][:, 8:])
    explorer.space = "mood"
    np.testing.assert_array_equal(map_xy(explorer), make_explorer(data).projection("mood"))
    assert len(project_calls) == 1  # the reference explorer's map of the same points is the cached one
    explorer.select(4)
    assert explorer.neighbours == sklearn_neighbours(data["embeddings"][:, 8:], 4, 5, "euclidean")[0].tolist()


# A course dataset.


def test_from_dataset_explores_a_datasets_clips(smoke):
    """from_dataset takes the concepts, clip ids and audio of a ClipDataset; a click plays the
    dataset's own audio of that clip."""
    dataset = smoke.subset(np.arange(40))
    embeddings = np.random.default_rng(3).normal(size=(40, 12)).astype(np.float32)
    explorer = EmbeddingExplorer.from_dataset(embeddings, dataset, method="pca", n_neighbors=1)
    assert explorer.names == dataset.meta.clip_id.astype(str).tolist() == explorer.map.names
    assert list(explorer.labels.columns) == CONCEPTS
    pd.testing.assert_frame_equal(explorer.labels, dataset.meta[CONCEPTS].astype(str).reset_index(drop=True))
    assert explorer.sample_rate == SAMPLE_RATE
    codes = np.frombuffer(explorer.map.codes, "<i2").reshape(len(CONCEPTS), 40)
    for row, concept in zip(codes, CONCEPTS):
        np.testing.assert_array_equal(row, dataset.labels(concept)[0])

    explorer.compute()
    explorer.select(7)
    (player,) = players(explorer.clip_panel)
    samples, rate = decode_wav(player.value)
    assert rate == SAMPLE_RATE
    np.testing.assert_allclose(samples, np.clip(dataset.audio(7), -1, 1), atol=QUANTUM)
    assert explorer.names[7] in with_class(explorer.clip_panel, "mlcourse-selected")[0].value

    only_genre = EmbeddingExplorer.from_dataset(embeddings, dataset, concepts=["genre"], method="pca")
    assert list(only_genre.labels.columns) == ["genre"] and only_genre.color_by == "genre"

    # What from_dataset fills in can still be overridden.
    silent = EmbeddingExplorer.from_dataset(embeddings, dataset, method="pca", audio=None, names=range(40))
    assert silent.audio is None and silent.names[:2] == ["0", "1"]


def test_no_warnings_in_ordinary_use():
    """Computing maps, switching, colouring and clicking raise no warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explorer = make_explorer()
        explorer.compute()
        explorer.space = "instrument"
        explorer.color_by = "mood"
        explorer.select(1)
