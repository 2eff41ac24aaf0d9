"""The embedding explorer: look at an embedding, and listen to it.

``EmbeddingExplorer`` draws a 2-D UMAP map of an embedding, one point per clip, coloured by any
concept. Hover over a point to read the clip's labels; click it to hear the clip and to see (and
hear) its nearest neighbours. Neighbours are found in the embedding itself, with all its
dimensions, not on the map: UMAP keeps close clips close, but it bends and tears the space, so
two points next to each other on the map need not be neighbours.

For a disentangled embedding, give ``subspaces`` (e.g. ``{c: masks.block(c) for c in CONCEPTS}``)
and a switch picks between the complete space and each concept's sub-space: each has its own
map and its own neighbours.

A map is computed once per embedding and space, then cached in memory (and on disk, with
``cache_dir``): switching back and forth, or making a new explorer for the same embedding,
costs nothing.

Example::

    explorer = EmbeddingExplorer.from_dataset(embed(model, test_set.logmel), test_set)
    explorer.show()

Used in notebooks 02, 04, 06 and 08. The map is drawn in the browser by ``explorer.js``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import anywidget
import ipywidgets as widgets
import numpy as np
import pandas as pd
import soundfile
import traitlets

from .data import CONCEPTS, SAMPLE_RATE
from .distances import DISTANCES
from .files import atomic_file

__all__ = ["COMPLETE", "EmbeddingExplorer", "ScatterMap", "project", "unit_square"]

COMPLETE = "complete"  # the name of the whole embedding among the spaces
PADDING = 12  # pixels between the canvas edge and the outermost point (as in explorer.js)
METHODS = ("umap", "pca")
UMAP_METRICS = {"euclidean": "euclidean", "squared": "sqeuclidean", "cosine": "cosine"}  # umap-learn's names

# Maps already computed in this Python process, by cache key (see `projection_key`).
_MAPS: dict[str, np.ndarray] = {}


class ScatterMap(anywidget.AnyWidget):
    """The canvas of the explorer: points, colours, labels on hover; a click sets ``selected``.

    Drawn by ``explorer.js``. Everything it shows comes from these traits, set by
    ``EmbeddingExplorer``.
    """

    _esm = Path(__file__).with_name("explorer.js")

    xy = traitlets.Bytes(b"").tag(sync=True)  # (N, 2) little-endian float32 in [0, 1]
    codes = traitlets.Bytes(b"").tag(sync=True)  # (concepts, N) int16 class codes
    names = traitlets.List(traitlets.Unicode()).tag(sync=True)  # one name per point
    concepts = traitlets.List(traitlets.Dict()).tag(sync=True)  # [{"name": ..., "classes": [...]}]
    color_by = traitlets.Unicode("").tag(sync=True)
    colors = traitlets.List(traitlets.Unicode()).tag(sync=True)  # a colour per class of color_by
    space = traitlets.Unicode(COMPLETE).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)  # the clicked point, or -1
    highlight = traitlets.List(traitlets.Int()).tag(sync=True)  # the selected point's neighbours
    busy = traitlets.Unicode("").tag(sync=True)  # a message shown over the map while it is computed
    size = traitlets.Int(480).tag(sync=True)  # the canvas is size x size CSS pixels


def unit_square(xy: np.ndarray) -> np.ndarray:
    """Scale and shift 2-D points into [0, 1] x [0, 1], keeping their aspect ratio, centred."""
    xy = np.asarray(xy, dtype=np.float64)
    low = xy.min(axis=0)
    span = float((xy.max(axis=0) - low).max()) or 1.0
    unit = (xy - low) / span
    return (unit + (1.0 - unit.max(axis=0)) / 2).astype(np.float32)


def import_umap():
    """umap-learn, with its compiled functions kept on disk between processes.

    umap-learn's functions are compiled by numba the first time a process calls them, about 10 s
    on two cores, and umap-learn does not ask numba to keep the machine code: every notebook
    would compile them again. We ask numba to cache each of them on disk (in umap's
    ``__pycache__``, or numba's cache folder where that is read-only); the next process loads
    them in a fraction of a second. ``make install`` draws one map of each distance, so no
    notebook pays. The code, and so every map, is the same.
    """
    try:
        import umap
    except ImportError as error:
        raise ImportError(
            "the explorer's map needs umap-learn: pip install umap-learn (or pass method='pca')"
        ) from error
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    for name, module in list(sys.modules.items()):
        if name == "umap" or name.startswith("umap."):
            for function in vars(module).values():
                if isinstance(function, Dispatcher) and isinstance(function._cache, NullCache):  # not cached yet
                    function.enable_caching()
    return umap


def project(points: np.ndarray, method: str = "umap", distance: str = "euclidean", seed: int = 0) -> np.ndarray:
    """A 2-D map of `points` (N, D): UMAP (umap-learn) or PCA, as (N, 2) float32.

    UMAP is seeded, so the same points give the same map (and it runs on one core).
    """
    if method == "pca":
        from sklearn.decomposition import PCA

        if distance == "cosine":
            points = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
        return PCA(n_components=2, random_state=seed).fit_transform(points).astype(np.float32)
    umap = import_umap()
    n_neighbors = min(15, len(points) - 1)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        metric=UMAP_METRICS[distance],
        random_state=seed,
        init="spectral" if len(points) > 2 * n_neighbors else "random",
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value .* overridden.*")
        warnings.filterwarnings("ignore", message=".*gradient function is not yet implemented.*")
        return reducer.fit_transform(points).astype(np.float32)


def projection_key(points: np.ndarray, method: str, distance: str, seed: int) -> str:
    """A name for the map of these exact points with these settings (a hash of the bytes)."""
    digest = hashlib.sha1()
    digest.update(f"{points.shape} {points.dtype} {method} {distance} {seed}".encode())
    digest.update(np.ascontiguousarray(points).tobytes())
    return f"{method}-{digest.hexdigest()[:20]}"


def _read_cached_map(path: Path, n_points: int) -> np.ndarray | None:
    """A map saved by an earlier run, or None (with a warning) if the file is unusable."""
    try:
        xy = np.load(path, allow_pickle=False)
        if xy.shape != (n_points, 2) or not np.isfinite(xy).all():
            raise ValueError(f"expected ({n_points}, 2) finite values, found {xy.shape} {xy.dtype}")
        return xy.astype(np.float32)
    except Exception as error:  # truncated, not an array, text, pickled...: compute it again
        warnings.warn(
            f"ignoring the unreadable cached map {path} ({type(error).__name__}: {error}); computing it again",
            stacklevel=3,
        )
        return None


def _save_map(path: Path, xy: np.ndarray) -> None:
    """Write a map atomically: a crash mid-write leaves no half-written file behind."""
    with atomic_file(path) as file:
        np.save(file, xy)


def _palette(n_classes: int) -> list[str]:
    """Distinct colours: tab10, then tab20, then evenly spaced hues."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    if n_classes <= 10:
        return [to_hex(colormaps["tab10"](k)) for k in range(max(n_classes, 1))]
    if n_classes <= 20:
        return [to_hex(colormaps["tab20"](k)) for k in range(n_classes)]
    return [to_hex(colormaps["hsv"](k / n_classes)) for k in range(n_classes)]


def _wav(audio: np.ndarray, sample_rate: int) -> bytes:
    """16-bit WAV bytes of a mono clip (what an audio player plays)."""
    buffer = io.BytesIO()
    soundfile.write(
        buffer, np.clip(np.asarray(audio, dtype=np.float32), -1, 1), sample_rate, format="WAV", subtype="PCM_16"
    )
    return buffer.getvalue()


def _as_matrix(embeddings) -> np.ndarray:
    if hasattr(embeddings, "detach"):  # a torch tensor
        embeddings = embeddings.detach().cpu().numpy()
    matrix = np.array(embeddings, dtype=np.float32)  # a copy: the maps' cache keys stay valid
    if matrix.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D (clips, dimensions) array, got shape {matrix.shape}")
    if len(matrix) < 5:
        raise ValueError(f"a map needs at least 5 clips, got {len(matrix)}")
    if not np.isfinite(matrix).all():
        raise ValueError("embeddings contain NaN or infinite values: check the model's training")
    return matrix


def _as_label_table(labels, n_points: int) -> pd.DataFrame:
    table = (labels if isinstance(labels, pd.DataFrame) else pd.DataFrame(dict(labels))).copy()
    table.columns = [str(c) for c in table.columns]
    if table.columns.duplicated().any():
        raise ValueError(f"labels name a concept twice: {list(table.columns)}")
    if table.shape[1] == 0:
        raise ValueError("labels must name at least one concept, e.g. {'instrument': [...]}")
    if len(table) != n_points:
        raise ValueError(
            f"labels have {len(table)} rows but there are {n_points} embeddings: "
            "give one label per clip, in the same order"
        )
    return table.astype(str).reset_index(drop=True)


def _as_subspaces(subspaces, n_dims: int) -> dict[str, np.ndarray]:
    spaces = {COMPLETE: np.arange(n_dims)}
    for name, dims in (subspaces or {}).items():
        if name == COMPLETE:
            raise ValueError(f"{COMPLETE!r} names the whole embedding: give the sub-space another name")
        if isinstance(dims, slice):
            dims = np.arange(n_dims)[dims]
        else:
            dims = np.asarray(dims.detach().cpu() if hasattr(dims, "detach") else dims)
            if dims.dtype.kind in "bf":  # a mask over the dimensions: keep those with a non-zero weight
                if dims.shape != (n_dims,):
                    raise ValueError(
                        f"the mask of sub-space {name!r} must have one entry per dimension "
                        f"({n_dims}), got shape {dims.shape}"
                    )
                dims = np.flatnonzero(dims)
            else:  # the dimensions' indices
                dims = dims.astype(int).ravel()
        if dims.size == 0 or dims.min() < 0 or dims.max() >= n_dims:
            raise ValueError(f"sub-space {name!r} must pick dimensions among 0..{n_dims - 1}, got {dims.tolist()}")
        spaces[str(name)] = dims
    return spaces


class EmbeddingExplorer(widgets.VBox):
    """An interactive 2-D map of an embedding, to look at and listen to.

    Args:
        embeddings: (N, D) array or tensor, one row per clip.
        labels: a table (DataFrame or dict of columns) of concepts, one row per clip, e.g.
            ``dataset.meta[["genre", "instrument"]]``. Colour the map by any of them.
        names: a name per clip, shown on hover (default: "clip 0", "clip 1", ...).
        audio: ``audio(i)`` returns clip i's samples (e.g. ``dataset.audio``); None for no sound.
        sample_rate: the samples' rate, in Hz.
        subspaces: sub-space name -> the dimensions it owns: their indices, a slice, or a mask of
            length D (boolean, or weights: the dimensions with a non-zero weight).
        color_by: the concept to colour by first (default: the first column of `labels`).
        distance: one of :data:`mlcourse.distances.DISTANCES`, for both the map and the neighbours.
        n_neighbors: how many neighbours to list for a clicked clip.
        method: 'umap' (default) or 'pca' (instant, but a linear view).
        seed: UMAP's seed.
        cache_dir: a folder to keep the maps in between sessions (default: memory only).
        size: the map's width and height in pixels.

    Example:
        >>> embeddings = np.random.default_rng(0).normal(size=(20, 8))
        >>> explorer = EmbeddingExplorer(embeddings, {"instrument": ["flute", "violin"] * 10}, method="pca")
        >>> explorer.select(3)     # as a click on clip 3 does
        >>> len(explorer.neighbours)
        5

        In a notebook, ``explorer.show()`` draws the widget, then computes the map under a
        progress note.
    """

    def __init__(
        self,
        embeddings,
        labels,
        *,
        names=None,
        audio: Callable[[int], np.ndarray] | None = None,
        sample_rate: int = 22050,
        subspaces=None,
        color_by: str | None = None,
        distance: str = "euclidean",
        n_neighbors: int = 5,
        method: str = "umap",
        seed: int = 0,
        cache_dir=None,
        size: int = 480,
    ):
        self.embeddings = _as_matrix(embeddings)
        n_points, n_dims = self.embeddings.shape
        self.labels = _as_label_table(labels, n_points)
        self.names = [f"clip {i}" for i in range(n_points)] if names is None else [str(n) for n in names]
        if len(self.names) != n_points:
            raise ValueError(f"{len(self.names)} names for {n_points} embeddings")
        if distance not in DISTANCES:
            raise ValueError(f"unknown distance {distance!r}: choose one of {', '.join(DISTANCES)}")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
        if not 1 <= int(n_neighbors) < n_points:
            raise ValueError(f"n_neighbors must be between 1 and {n_points - 1}, got {n_neighbors!r}")
        self.spaces = _as_subspaces(subspaces, n_dims)
        self.audio, self.sample_rate = audio, int(sample_rate)
        self.distance, self.method, self.seed, self.n_neighbors = distance, method, int(seed), int(n_neighbors)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.last_map_cached = False  # whether the last map came from a cache
        self.neighbours: list[int] = []  # the selected clip's neighbours, nearest first
        self.distances: list[float] = []  # and their distances
        self.map_seconds: dict[str, float] = {}  # how long each space's map took to show, last time
        self._keys: dict[str, str] = {}  # each space's cache key (hashing 20,000 points takes a while)

        concepts = list(self.labels.columns)
        self._classes = {c: sorted(self.labels[c].unique()) for c in concepts}
        too_many = [c for c in concepts if len(self._classes[c]) > np.iinfo(np.int16).max]
        if too_many:
            raise ValueError(f"concepts {too_many} have more than 32,767 classes: colour by a coarser label")
        codes = np.stack(
            [self.labels[c].map({v: k for k, v in enumerate(self._classes[c])}).to_numpy() for c in concepts]
        ).astype("<i2")
        self._codes = dict(zip(concepts, codes))  # each concept's class index of every clip
        self.map = ScatterMap(
            codes=codes.tobytes(),
            names=self.names,
            size=int(size),
            concepts=[{"name": c, "classes": self._classes[c]} for c in concepts],
        )
        self.color_menu = widgets.Dropdown(
            options=concepts, description="colour by", layout=widgets.Layout(width="260px")
        )
        self.space_switch = widgets.ToggleButtons(
            options=list(self.spaces),
            description="space",
            style={"button_width": "auto", "description_width": "initial"},
        )
        self.status = widgets.HTML()
        self.clip_panel = widgets.VBox(layout=widgets.Layout(width="35%", padding="0 16px 0 0"))
        self.neighbour_panel = widgets.VBox(layout=widgets.Layout(width="65%"))
        controls = [self.color_menu] + ([self.space_switch] if len(self.spaces) > 1 else [])
        super().__init__(
            [widgets.HBox(controls), self.map, self.status, widgets.HBox([self.clip_panel, self.neighbour_panel])]
        )
        self.add_class("mlcourse-explorer")

        self.color_menu.observe(lambda change: self._color(change["new"]), names="value")
        self.space_switch.observe(lambda change: self._show_space(change["new"]), names="value")
        self.map.observe(lambda change: self._select(change["new"]), names="selected")
        self.color_by = color_by if color_by is not None else concepts[0]
        self._color(self.color_by)

    @classmethod
    def from_dataset(cls, embeddings, dataset, concepts=None, **options) -> "EmbeddingExplorer":
        """An explorer of a ``ClipDataset``'s clips: its concepts, clip ids and audio."""
        concepts = list(CONCEPTS if concepts is None else concepts)
        options = {"names": dataset.meta.clip_id, "audio": dataset.audio, "sample_rate": SAMPLE_RATE, **options}
        return cls(embeddings, dataset.meta[concepts], **options)

    # What a notebook (or a test) reads and sets.

    @property
    def color_by(self) -> str:
        """The concept that colours the map (set it to recolour)."""
        return self.color_menu.value

    @color_by.setter
    def color_by(self, concept: str) -> None:
        if concept not in self._classes:
            raise ValueError(f"unknown concept {concept!r}: choose one of {', '.join(self._classes)}")
        self.color_menu.value = concept

    @property
    def space(self) -> str:
        """The space shown: 'complete' or a sub-space's name (set it to switch)."""
        return self.space_switch.value

    @space.setter
    def space(self, name: str) -> None:
        if name not in self.spaces:
            raise ValueError(f"unknown space {name!r}: choose one of {', '.join(self.spaces)}")
        self.space_switch.value = name

    @property
    def selected(self) -> int:
        """The clicked clip, or -1."""
        return self.map.selected

    def select(self, index: int) -> None:
        """Do what a click on clip `index` does: play it, list its neighbours."""
        if not 0 <= int(index) < len(self.embeddings):
            raise IndexError(f"clip {index} does not exist: there are {len(self.embeddings)} clips")
        self.map.selected = int(index)

    def show(self) -> None:
        """Display the explorer, then compute its map: the widget shows a note while UMAP runs.

        Once the map is drawn, the output is displayed again in place, so that it also carries
        the map's static picture (see :meth:`_repr_mimebundle_`).
        """
        from IPython.display import display

        handle = display(self, display_id=True)
        self.compute()
        if handle is not None:
            handle.update(self)

    def _repr_mimebundle_(self, **kwargs):
        """The live widget and, once the map is drawn, a PNG picture of it beside.

        A front end shows the richest form it can: JupyterLab and Notebook draw the live widget;
        where no widget can run (a saved notebook opened without its kernel, an HTML export,
        nbviewer, GitHub) the picture of the map as it was when displayed stands in.
        """
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None and self.map.xy:
            bundle = {**bundle, "image/png": base64.b64encode(self.picture()).decode("ascii")}
        return bundle

    def picture(self, dpi: int = 100) -> bytes:
        """The map as shown (space, colouring), drawn by matplotlib as PNG bytes, with a legend.

        Raises:
            RuntimeError: If the map has not been computed yet (see :meth:`compute`).
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        if not self.map.xy:
            raise RuntimeError("the map is not computed yet: call compute() (or show()) first")
        xy = np.frombuffer(self.map.xy, dtype="<f4").reshape(-1, 2)
        classes = self._classes[self.color_by]
        colors = np.array(self.map.colors)[self._codes[self.color_by]]
        inches = self.map.size / dpi
        figure = Figure(figsize=(inches * 1.45, inches), dpi=dpi, layout="constrained")
        ax = figure.add_subplot()
        ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=9, linewidths=0)
        what = "complete space" if self.space == COMPLETE else f"{self.space} sub-space"
        ax.set(xticks=[], yticks=[], title=f"{self.method.upper()} map of the {what}, coloured by {self.color_by}")
        handles = [ax.scatter([], [], color=c, s=20, label=str(v)) for v, c in zip(classes, self.map.colors)]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize="small")
        figure.supxlabel("a picture of the explorer: run the notebook to hover, click and listen", fontsize="small")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def compute(self) -> None:
        """Compute (or read from the cache) the map of the shown space, and draw it."""
        self._show_space(self.space)

    def points(self, space: str | None = None) -> np.ndarray:
        """The embedding restricted to a space's dimensions: (N, D_space)."""
        return self.embeddings[:, self.spaces[space or self.space]]

    def projection(self, space: str | None = None) -> np.ndarray:
        """The (N, 2) map of a space in the unit square, computed once and then cached."""
        points = self.points(space)
        key = self._key(space or self.space)
        self.last_map_cached = True
        if key in _MAPS:
            return _MAPS[key]
        path = self._cache_path(key)
        xy = _read_cached_map(path, len(points)) if path is not None and path.exists() else None
        if xy is None:
            xy = unit_square(project(points, self.method, self.distance, self.seed))
            self.last_map_cached = False
            if path is not None:
                try:
                    _save_map(path, xy)
                except OSError as error:  # a full or read-only disk: the map is still good
                    warnings.warn(
                        f"could not keep the map in {path} ({error}); it will be computed again next session",
                        stacklevel=2,
                    )
        _MAPS[key] = xy
        return xy

    def _key(self, space: str) -> str:
        if space not in self._keys:
            self._keys[space] = projection_key(self.points(space), self.method, self.distance, self.seed)
        return self._keys[space]

    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.npy"

    def is_cached(self, space: str | None = None) -> bool:
        """Whether a space's map is already computed (in memory or in `cache_dir`)."""
        key = self._key(space or self.space)
        path = self._cache_path(key)
        return key in _MAPS or (path is not None and path.exists())

    def pixel_positions(self, space: str | None = None) -> np.ndarray:
        """Where each clip is drawn on the canvas, in pixels from its top-left corner: (N, 2)."""
        xy = self.projection(space)
        span = self.map.size - 2 * PADDING
        return np.stack([PADDING + xy[:, 0] * span, PADDING + (1 - xy[:, 1]) * span], axis=1)

    def nearest_neighbors(self, index: int, space: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The clips nearest to clip `index` in a space's full dimensions (not on the map).

        Returns:
            (indices, distances), nearest first, without the clip itself; ties go to the lower index.
        """
        points = self.points(space).astype(np.float64)
        if self.distance == "cosine":
            unit = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
            distances = 1.0 - unit @ unit[index]
        else:
            distances = np.linalg.norm(points - points[index], axis=1)
            if self.distance == "squared":
                distances = distances**2
        distances[index] = np.inf
        order = np.argsort(distances, kind="stable")[: self.n_neighbors]
        return order, distances[order]

    # What the widgets do.

    def _color(self, concept: str) -> None:
        with self.map.hold_sync():
            self.map.colors = _palette(len(self._classes[concept]))
            self.map.color_by = concept

    def _show_space(self, space: str) -> None:
        n_points, n_dims = len(self.embeddings), len(self.spaces[space])
        what = "the complete space" if space == COMPLETE else f"the {space} sub-space"
        if not self.is_cached(space):  # a note over the map while it is computed
            self.map.busy = (
                f"Computing the {self.method.upper()} map of {what} ({n_points:,} clips, {n_dims} dimensions)…"
            )
            self.status.value = html.escape(self.map.busy)
        self.color_menu.disabled = self.space_switch.disabled = True
        try:
            started = time.perf_counter()
            xy = self.projection(space)
            seconds = time.perf_counter() - started
            self.map_seconds[space] = seconds
            with self.map.hold_sync():
                self.map.xy = xy.astype("<f4").tobytes()
                self.map.space = space
                self.map.selected = -1
                self.map.highlight = []
            origin = "from the cache" if self.last_map_cached else f"computed in {seconds:.1f} s"
            self.status.value = (
                f"{self.method.upper()} map of {html.escape(what)}: {n_points:,} clips, "
                f"{n_dims} dimensions, {origin}. "
                "Hover over a point for its labels; click it to listen and see its neighbours."
            )
        finally:
            self.map.busy = ""
            self.color_menu.disabled = self.space_switch.disabled = False

    def _labels_text(self, index: int) -> str:
        """Clip `index`'s labels, as HTML-safe text."""
        return html.escape(", ".join(f"{c}: {self.labels.at[index, c]}" for c in self.labels.columns))

    def _name(self, index: int) -> str:
        return html.escape(self.names[index])

    def _player(self, index: int, autoplay: bool) -> widgets.Widget:
        """An audio player for clip `index` (or a note saying why there is none)."""
        if self.audio is None:
            return widgets.HTML("<i>no audio given</i>")
        try:
            wav = _wav(self.audio(index), self.sample_rate)
        except Exception as error:  # a missing file, say: show it, keep the explorer working
            return widgets.HTML(f"<i>cannot play {self._name(index)}: {html.escape(str(error))}</i>")
        player = widgets.Audio(
            value=wav,
            format="wav",
            autoplay=autoplay,
            loop=False,
            layout=widgets.Layout(width="240px", height="36px", flex="none"),
        )
        player.add_class("mlcourse-player")
        return player

    def _select(self, index: int) -> None:
        if index < 0:
            self.neighbours, self.distances = [], []
            self.clip_panel.children = self.neighbour_panel.children = ()
            return
        neighbours, distances = self.nearest_neighbors(index)
        self.neighbours, self.distances = neighbours.tolist(), distances.tolist()
        self.map.highlight = self.neighbours
        heading = widgets.HTML(f"<b>{self._name(index)}</b><br>{self._labels_text(index)}")
        heading.add_class("mlcourse-selected")
        self.clip_panel.children = (heading, self._player(index, autoplay=True))
        what = "complete space" if self.space == COMPLETE else f"{self.space} sub-space"
        rows = [
            widgets.HTML(
                f"<b>{len(neighbours)} nearest in the {html.escape(what)}</b> "
                f"({len(self.spaces[self.space])} dimensions, {self.distance} distance)"
            )
        ]
        for rank, (other, distance) in enumerate(zip(self.neighbours, self.distances), start=1):
            text = widgets.HTML(
                f"{rank}. <b>{self._name(other)}</b> (distance {distance:.3f})<br>"
                f"<small>{self._labels_text(other)}</small>",
                layout=widgets.Layout(flex="1"),
            )
            text.add_class("mlcourse-neighbour")
            rows.append(
                widgets.HBox([text, self._player(other, autoplay=False)], layout=widgets.Layout(align_items="center"))
            )
        self.neighbour_panel.children = rows
