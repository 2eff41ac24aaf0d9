"""Plots of the course: spectrograms, piano rolls, label counts, and the embedding explorer.

Every function draws with matplotlib and returns what it drew on (an ``Axes`` or a
``Figure``), so a notebook can add to it before ``plt.show()``.

Taught in ``notebooks/00_data_tour.ipynb``.
"""

import librosa
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data.features import HOP_LENGTH, N_MELS, PITCH_CLASSES, SAMPLE_RATE
from .explorer import EmbeddingExplorer
from .metrics.triplets import triplet_kind_shares

__all__ = [
    "EmbeddingExplorer",
    "plot_clip",
    "plot_count_table",
    "plot_label_counts",
    "plot_log_mels",
    "plot_pair_distances",
    "plot_triplet_gaps",
    "plot_triplet_training",
    "show_log_mel",
    "show_piano_roll",
]


def _frame_extent(n_frames: int) -> tuple[float, float]:
    """Left and right edges, in seconds, of `n_frames` centred frames (frame t is centred at t * hop)."""
    frame_seconds = HOP_LENGTH / SAMPLE_RATE
    return -0.5 * frame_seconds, (n_frames - 0.5) * frame_seconds


def _hertz_label(hertz: float) -> str:
    """A frequency as a short tick label: '851 Hz', '2.0 kHz'."""
    return f"{hertz:.0f} Hz" if hertz < 1000 else f"{hertz / 1000:.1f} kHz"


def show_log_mel(logmel: np.ndarray, ax=None, title: str | None = None, colorbar: bool = True):
    """Draw one log-mel spectrogram: time in seconds, mel bands labelled with their centre frequency.

    Args:
        logmel: (128, frames) log-mel spectrogram in dB (one clip of ``data.logmel``).
        ax: the matplotlib Axes to draw on (default: a new figure).
        title: the title above the plot.
        colorbar: whether to add a dB colour bar.

    Returns:
        the matplotlib Axes.

    Used in notebooks/00_data_tour.ipynb
    """
    ax = ax if ax is not None else plt.figure(figsize=(6, 3.5)).gca()
    image = ax.imshow(
        np.asarray(logmel, dtype=np.float32),
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(*_frame_extent(logmel.shape[1]), -0.5, logmel.shape[0] - 0.5),
    )
    centres = librosa.mel_frequencies(n_mels=N_MELS + 2, fmax=SAMPLE_RATE / 2)[1:-1]
    bands = [0, 32, 64, 96, N_MELS - 1]
    ax.set_yticks(bands, [f"{band} ({_hertz_label(centres[band])})" for band in bands])
    ax.set(xlabel="time (s)", ylabel="mel band (centre frequency)", title=title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="dB")
    return ax


def show_piano_roll(roll: np.ndarray, ax=None, title: str | None = None):
    """Draw one piano roll, cropped to the pitches that sound, with note names on the pitch axis.

    Args:
        roll: (128, frames) bool piano roll; [p, t] is True when MIDI pitch p sounds at frame t.
        ax: the matplotlib Axes to draw on (default: a new figure).
        title: the title above the plot.

    Returns:
        the matplotlib Axes.

    Used in notebooks/00_data_tour.ipynb
    """
    ax = ax if ax is not None else plt.figure(figsize=(6, 3.5)).gca()
    sounding = np.flatnonzero(np.asarray(roll).any(axis=1))
    low, high = (sounding.min() - 2, sounding.max() + 2) if len(sounding) else (58, 62)
    ax.imshow(
        roll[low : high + 1],
        origin="lower",
        aspect="auto",
        cmap="Greys",
        interpolation="nearest",
        extent=(*_frame_extent(roll.shape[1]), low - 0.5, high + 0.5),
    )
    span = high - low
    step = 1 if span <= 12 else 2 if span <= 24 else 6 if span <= 60 else 12
    pitches = [p for p in range(low, high + 1) if p % step == 0]
    ax.set_yticks(pitches, [f"{librosa.midi_to_note(p, unicode=False)} ({p})" for p in pitches])
    ax.grid(axis="y", alpha=0.3)
    ax.set(xlabel="time (s)", ylabel="pitch (MIDI number)", title=title)
    return ax


def plot_clip(logmel: np.ndarray, roll: np.ndarray, title: str = ""):
    """One clip's log-mel spectrogram and piano roll side by side, on the same time axis.

    Args:
        logmel: (128, frames) log-mel spectrogram in dB.
        roll: (128, frames) bool piano roll on the same frames.
        title: the figure's title (e.g. the clip's labels).

    Returns:
        the matplotlib Figure.

    Used in notebooks/00_data_tour.ipynb
    """
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4), sharex=True, layout="constrained")
    show_log_mel(logmel, ax=left, title="log-mel spectrogram (what the models hear)")
    show_piano_roll(roll, ax=right, title="piano roll (what was played)")
    figure.suptitle(title)
    return figure


def plot_log_mels(logmels: list[np.ndarray], titles: list[str]):
    """Several log-mel spectrograms in a row, on one colour scale, for comparing clips.

    Args:
        logmels: K arrays of shape (128, frames), in dB.
        titles: K titles, one per spectrogram.

    Returns:
        the matplotlib Figure.

    Used in notebooks/00_data_tour.ipynb
    """
    figure, axes = plt.subplots(
        1, len(logmels), figsize=(4.6 * len(logmels), 3.8), sharey=True, layout="constrained", squeeze=False
    )
    for ax, logmel, title in zip(axes[0], logmels, titles):
        show_log_mel(logmel, ax=ax, title=title, colorbar=False)
    for ax in axes[0, 1:]:
        ax.set_ylabel("")
    low = min(float(np.min(x)) for x in logmels)
    high = max(float(np.max(x)) for x in logmels)
    for ax in axes[0]:
        ax.images[0].set_clim(low, high)
    figure.colorbar(axes[0, 0].images[0], ax=axes[0, -1], label="dB")
    return figure


def plot_label_counts(meta: pd.DataFrame, concepts: list[str]):
    """Bar charts of how many clips carry each label, one chart per concept.

    Args:
        meta: the clips' metadata table (``data.meta``), one row per clip.
        concepts: the columns to count, e.g. ['genre', 'mood', 'instrument', 'era'].

    Returns:
        the matplotlib Figure.

    Used in notebooks/00_data_tour.ipynb
    """
    columns = 2
    rows = -(-len(concepts) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(11, 3.2 * rows), layout="constrained", squeeze=False)
    for ax, concept in zip(axes.flat, concepts):
        counts = meta[concept].value_counts().sort_values()
        ax.barh(counts.index, counts.to_numpy(), color="tab:blue")
        ax.set(title=concept, xlabel="clips")
    for ax in axes.flat[len(concepts) :]:
        ax.set_visible(False)
    return figure


def plot_count_table(table: pd.DataFrame, title: str = ""):
    """A contingency table (e.g. a pandas crosstab) as a heat map with the counts written in.

    Args:
        table: (R, C) counts; the index names the rows, the columns name the columns.
        title: the title above the plot.

    Returns:
        the matplotlib Figure.

    Used in notebooks/00_data_tour.ipynb
    """
    counts = table.to_numpy()
    figure, ax = plt.subplots(
        figsize=(1.0 + 0.75 * counts.shape[1], 1.2 + 0.45 * counts.shape[0]), layout="constrained"
    )
    ax.imshow(counts, cmap="Blues", aspect="auto")
    for (row, column), count in np.ndenumerate(counts):
        ax.text(
            column, row, str(count), ha="center", va="center", color="white" if count > counts.max() / 2 else "black"
        )
    ax.set_xticks(range(counts.shape[1]), table.columns, rotation=40, ha="right")
    ax.set_yticks(range(counts.shape[0]), table.index)
    ax.set(xlabel=table.columns.name, ylabel=table.index.name, title=title)
    return figure


def plot_triplet_gaps(gaps: np.ndarray, margin: float, title: str = "", ax=None):
    """Histogram of triplet gaps ``d(a, n) - d(a, p)``, the hard, semi-hard and easy ranges shaded.

    Args:
        gaps: (T,) array of gaps, e.g. from :func:`mlcourse.miners.triplet_gaps`.
        margin: The triplet loss's margin: gaps above it are easy, between 0 and it semi-hard,
            at 0 or below hard (the legend gives each kind's share).
        title: Axes title; the number of triplets is added to it.
        ax: Axes to draw on; a new figure if None.

    Returns:
        The Axes.

    Taught in notebooks/04_triplet_mining.ipynb
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    gaps = np.asarray(gaps)
    shares = triplet_kind_shares(gaps, margin)
    low, high = min(gaps.min(), -0.05), max(gaps.max(), margin + 0.05)
    ax.axvspan(low, 0, color="tab:red", alpha=0.12, label=f"hard {shares['hard']:.0%}")
    ax.axvspan(0, margin, color="tab:orange", alpha=0.15, label=f"semi-hard {shares['semi-hard']:.0%}")
    ax.axvspan(margin, high, color="tab:green", alpha=0.12, label=f"easy {shares['easy']:.0%}")
    ax.hist(gaps, bins=100, range=(low, high), color="k", alpha=0.7)
    ax.set(
        xlim=(low, high), xlabel="gap = d(a, n) - d(a, p)", ylabel="triplets", title=f"{title}: {len(gaps):,} triplets"
    )
    ax.legend(loc="upper right")
    return ax


def plot_triplet_training(
    histories: dict, margin: float, baseline: float | None = None, validation: str = "valid mAP", smooth: int = 10
):
    """Three views of triplet training, one line per model: the loss, what it hides, what we want.

    Left: the loss (the mean of the active hinges). Middle: the share of active triplets among
    the valid ones and the mean hinge over all valid triplets (divided by the margin), from
    ``history.step_stats``. Right: the validation score after each epoch, from
    ``history.evaluations``, beside an optional baseline. Step curves are running means over
    ``smooth`` steps.

    Args:
        histories: name -> :class:`mlcourse.train.TrainingHistory` of a
            :class:`mlcourse.losses.TripletMarginLoss` with mining "all" or "none".
        margin: The loss's margin.
        baseline: A validation score to draw as a dotted line, or None.
        validation: The key of the validation score in each epoch's evaluation.
        smooth: Steps per running mean.

    Returns:
        The Figure.

    Taught in notebooks/09_applications.ipynb
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), layout="constrained")
    for name, history in histories.items():
        steps = pd.DataFrame(history.step_stats).rolling(smooth, min_periods=1).mean()
        axes[0].plot(steps["loss"], label=name)
        axes[1].plot(steps["active_share_of_valid"], label=f"{name}: active share")
        axes[1].plot(steps["mean_hinge_of_valid"] / margin, ls="--", label=f"{name}: mean hinge / margin")
        scores = [evaluation[validation] for evaluation in history.evaluations]
        axes[2].plot(range(1, len(scores) + 1), scores, marker="o", label=name)
    if baseline is not None:
        axes[2].axhline(baseline, color="gray", ls=":", label="baseline")
    axes[0].set(xlabel="step", ylabel="mean of active hinges", title=f"the loss ({smooth}-step mean)")
    axes[1].set(xlabel="step", title=f"what the loss hides ({smooth}-step means)")
    axes[2].set(xlabel="epoch", ylabel=validation, title="validation")
    for ax in axes:
        ax.legend(fontsize=8)
    return fig


def plot_pair_distances(tables: dict, split_by: str = "same instrument"):
    """Histograms of the distances between pairs: same class or not, and among the others by ``split_by``.

    Args:
        tables: name -> DataFrame with the columns ``distance``, ``same piece`` and ``split_by``
            (e.g. from :func:`mlcourse.versions.version_pair_distances`).
        split_by: A boolean column that splits the pairs of different pieces.

    Returns:
        The Figure: two panels per table.

    Taught in notebooks/09_applications.ipynb
    """
    fig, axes = plt.subplots(1, 2 * len(tables), figsize=(11 * len(tables), 3.4), layout="constrained", squeeze=False)
    for (name, pairs), (left, right) in zip(tables.items(), axes.reshape(-1, 2)):
        bins = np.linspace(pairs.distance.min(), pairs.distance.max(), 40)
        for same, label in [(True, "same piece"), (False, "different pieces")]:
            left.hist(pairs.distance[pairs["same piece"] == same], bins, density=True, alpha=0.6, label=label)
        strangers = pairs[~pairs["same piece"]]
        for same in (True, False):
            right.hist(
                strangers.distance[strangers[split_by] == same],
                bins,
                density=True,
                alpha=0.6,
                label=split_by if same else f"not {split_by}",
            )
        left.set(title=f"{name}: all pairs", xlabel="distance", ylabel="density")
        right.set(title=f"{name}: pairs of different pieces", xlabel="distance")
        left.legend(fontsize=8)
        right.legend(fontsize=8)
    return fig


def show_alignment(
    audio_chroma: np.ndarray, score_chroma: np.ndarray, frame_costs: np.ndarray, path: np.ndarray, band: int
):
    """Two chroma sequences, their frame costs, DTW's best path and the band it may use.

    Args:
        audio_chroma, score_chroma: (12, T) and (12, U) chroma of the two sequences.
        frame_costs: (T, U) cost of matching audio frame t with score frame u.
        path: (L, 2) warping path, pairs (t, u), e.g. from ``librosa.sequence.dtw``.
        band: Half-width of the band around the diagonal, in frames (drawn in red).

    Returns:
        The matplotlib Figure.

    Taught in notebooks/07_cross_modal.ipynb
    """
    frame_seconds = HOP_LENGTH / SAMPLE_RATE
    seconds = [0, audio_chroma.shape[1] * frame_seconds]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), layout="constrained")
    for ax, chroma, title in [
        (axes[0], audio_chroma, "audio chroma"),
        (axes[1], score_chroma, "score chroma (folded piano roll)"),
    ]:
        ax.imshow(chroma, origin="lower", aspect="auto", cmap="magma", extent=seconds + [-0.5, 11.5])
        ax.set(yticks=range(12), yticklabels=PITCH_CLASSES, xlabel="time (s)", title=title)
    image = axes[2].imshow(frame_costs, origin="lower", cmap="viridis", extent=seconds * 2)
    axes[2].plot(path[:, 1] * frame_seconds, path[:, 0] * frame_seconds, color="white", lw=1.5, label="warping path")
    for offset in (-band, band):
        axes[2].plot(np.array(seconds), np.array(seconds) + offset * frame_seconds, "r--", lw=1)
    axes[2].set(
        xlim=seconds,
        ylim=seconds,
        xlabel="score frame (s)",
        ylabel="audio frame (s)",
        title=f"frame costs, best path, band ±{band} frames (red)",
    )
    axes[2].legend(loc="lower right")
    fig.colorbar(image, ax=axes[2], label="1 − cos")
    return fig


def plot_similarity_matrices(matrices: dict, groups: np.ndarray, title: str = ""):
    """Similarity matrices side by side, items sorted by group, with lines between the groups.

    Each matrix's colour scale spans its off-diagonal values (5th to 99th percentile), so
    matrices on different scales compare by their pattern: bright blocks on the diagonal mean
    that items of one group are alike.

    Args:
        matrices: ``{title: (M, M) similarity}``, every matrix over the same items.
        groups: (M,) group of each item (e.g. the piece of each version), items of a group
            next to each other.
        title: Title of the figure.

    Returns:
        The matplotlib Figure.

    Taught in notebooks/09_applications.ipynb
    """
    groups = np.asarray(groups)
    names, starts = np.unique(groups, return_index=True)
    order = np.argsort(starts)
    names, starts = names[order], starts[order]
    centres = [np.mean(np.flatnonzero(groups == name)) for name in names]
    fig, axes = plt.subplots(1, len(matrices), figsize=(5 * len(matrices), 4.6), layout="constrained", squeeze=False)
    for ax, (name, matrix) in zip(axes[0], matrices.items()):
        off_diagonal = matrix[~np.eye(len(matrix), dtype=bool)]
        image = ax.imshow(
            matrix,
            cmap="magma",
            interpolation="nearest",
            vmin=np.percentile(off_diagonal, 5),
            vmax=np.percentile(off_diagonal, 99),
        )
        for edge in starts[1:] - 0.5:
            ax.axhline(edge, color="white", linewidth=0.8)
            ax.axvline(edge, color="white", linewidth=0.8)
        ax.set_xticks(centres, [])
        ax.set_yticks(centres, names, fontsize=8)
        ax.set_title(name)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="similarity")
    fig.suptitle(title)
    return fig


def show_side_by_side(figures: list):
    """Show finished figures in one row: each is drawn to pixels, then closed.

    Args:
        figures: matplotlib Figures, e.g. from :func:`mlcourse.segment.plot_segmentation`.

    Returns:
        The matplotlib Figure that holds them.

    Taught in notebooks/09_applications.ipynb
    """
    images = []
    for figure in figures:
        figure.canvas.draw()
        images.append(np.asarray(figure.canvas.buffer_rgba()))
        plt.close(figure)
    height, dpi = max(image.shape[0] for image in images), figures[0].dpi
    total_width = sum(image.shape[1] for image in images)
    row = plt.figure(figsize=(total_width / dpi, height / dpi), dpi=dpi)
    left = 0.0
    for image in images:
        width = image.shape[1] / total_width
        ax = row.add_axes((left, 1 - image.shape[0] / height, width, image.shape[0] / height))
        ax.imshow(image, interpolation="none")
        ax.axis("off")
        left += width
    return row
