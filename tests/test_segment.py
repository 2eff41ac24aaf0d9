"""mlcourse.segment: sets of tunes, windows, MFCCs, novelty, peak picking and scores."""

from __future__ import annotations

import librosa
import matplotlib.pyplot as plt
import mir_eval
import numpy as np
import pytest
import torch

from mlcourse import segment as sg
from mlcourse.data import load_dataset


@pytest.fixture(scope="module")
def smoke_test():
    """The test split of the smoke dataset, or a skip if its cache has not been built."""
    try:
        return load_dataset("smoke", split="test")
    except FileNotFoundError:
        pytest.skip("the smoke dataset is not built: run `python -m mlcourse.data build --size smoke`")


def version_logmel(data, version_id):
    """(128, clips * 130) log-mel of one version: its clips side by side, in clip order."""
    rows = data.meta.index[data.meta.version_id == version_id]
    rows = rows[np.argsort(data.meta["clip"][rows].to_numpy())]
    return np.concatenate([data.logmel[row].astype(np.float32) for row in rows], axis=1)


def synthetic_set(durations_s=(20.0, 17.3, 22.1, 18.6), seed=0):
    """A TuneSet of stationary 'tunes': each one a fixed random spectrum plus a little noise."""
    rng = np.random.default_rng(seed)
    tunes = []
    for duration in durations_s:
        envelope = rng.uniform(-60, 0, size=(128, 1))
        frames = int(round(duration / sg.FRAME_SECONDS))
        tunes.append(envelope + rng.normal(0, 2, size=(128, frames)))
    starts = np.cumsum([0] + [tune.shape[1] for tune in tunes])
    return sg.TuneSet(
        logmel=np.concatenate(tunes, axis=1).astype(np.float32),
        boundaries_s=starts * sg.FRAME_SECONDS,
        version_ids=[f"tune-{k}" for k in range(len(tunes))],
    )


# --------------------------------------------------------------------------------------------
# Sets of tunes
# --------------------------------------------------------------------------------------------


def test_tune_sets_join_whole_versions_with_trimmed_starts(smoke_test):
    sets = sg.make_tune_sets(smoke_test, n_sets=5, tunes_per_set=4, seed=0)
    assert len(sets) == 5
    meta = smoke_test.meta.drop_duplicates("version_id").set_index("version_id")
    for tune_set in sets:
        assert tune_set.logmel.dtype == np.float32 and tune_set.logmel.shape[0] == 128
        assert len(tune_set.version_ids) == 4 and len(tune_set.boundaries_s) == 5
        assert meta.piece_id[tune_set.version_ids].nunique() == 4, "the tunes of a set are distinct pieces"
        assert set(meta.genre[tune_set.version_ids]) <= set(sg.DANCE_GENRES)
        assert tune_set.boundaries_s[0] == 0
        assert tune_set.boundaries_s[-1] == pytest.approx(tune_set.duration)
        assert tune_set.duration == pytest.approx(tune_set.n_frames * 3.0 / 130)
        # Each tune between two boundaries is the end of its version, missing 0 to 129 frames.
        frames = np.round(tune_set.boundaries_s / tune_set.frame_seconds).astype(int)
        np.testing.assert_allclose(frames * tune_set.frame_seconds, tune_set.boundaries_s)
        for k, version in enumerate(tune_set.version_ids):
            whole = version_logmel(smoke_test, version)
            tune = tune_set.logmel[:, frames[k] : frames[k + 1]]
            trimmed = whole.shape[1] - tune.shape[1]
            assert trimmed == 0 if k == 0 else 0 <= trimmed <= 129
            np.testing.assert_array_equal(tune, whole[:, trimmed:])


def test_tune_sets_are_reproducible_and_start_off_the_grid(smoke_test):
    first = sg.make_tune_sets(smoke_test, n_sets=6, tunes_per_set=3, seed=7)
    again = sg.make_tune_sets(smoke_test, n_sets=6, tunes_per_set=3, seed=7)
    other = sg.make_tune_sets(smoke_test, n_sets=6, tunes_per_set=3, seed=8)
    for a, b in zip(first, again):
        assert a.version_ids == b.version_ids
        np.testing.assert_array_equal(a.boundaries_s, b.boundaries_s)
        np.testing.assert_array_equal(a.logmel, b.logmel)
    assert [s.version_ids for s in first] != [s.version_ids for s in other] or any(
        not np.array_equal(a.boundaries_s, b.boundaries_s) for a, b in zip(first, other)
    )
    inner = np.concatenate([s.boundaries_s[1:-1] for s in first])
    assert not np.allclose(inner % 3.0, 0.0), "trimming moves boundaries off the 3-second grid"


def test_same_instrument_sets_have_one_family(smoke_test):
    meta = smoke_test.meta.drop_duplicates("version_id").set_index("version_id")
    dance = meta[meta.genre.isin(sg.DANCE_GENRES)]
    most = dance.groupby("instrument").piece_id.nunique().max()
    for tune_set in sg.make_tune_sets(smoke_test, n_sets=4, tunes_per_set=most, same_instrument=True, seed=1):
        assert meta.instrument[tune_set.version_ids].nunique() == 1
    with pytest.raises(ValueError, match="instrument family"):
        sg.make_tune_sets(smoke_test, n_sets=1, tunes_per_set=most + 1, same_instrument=True)


def test_tune_sets_reject_bad_requests(smoke_test):
    with pytest.raises(ValueError, match="unknown genre"):
        sg.make_tune_sets(smoke_test, 1, genres=("polka",))
    with pytest.raises(ValueError, match="distinct"):
        sg.make_tune_sets(smoke_test, 1, tunes_per_set=5)
    with pytest.raises(ValueError, match="at least 2"):
        sg.make_tune_sets(smoke_test, 1, tunes_per_set=1)
    with pytest.raises(ValueError, match="n_sets"):
        sg.make_tune_sets(smoke_test, 0)
    with pytest.raises(ValueError, match="not consecutive"):
        sg.make_tune_sets(smoke_test.subset(smoke_test.meta["clip"] != 1), 1)


# --------------------------------------------------------------------------------------------
# Windows and MFCCs
# --------------------------------------------------------------------------------------------


def test_windows_cut_the_spectrogram_at_their_starts():
    logmel = np.random.default_rng(0).normal(size=(128, 300)).astype(np.float32)
    starts = sg.window_starts(300, window=130, hop=22)
    np.testing.assert_array_equal(starts, [0, 22, 44, 66, 88, 110, 132, 154])
    windows = sg.sliding_windows(logmel, window=130, hop=22)
    assert windows.shape == (8, 128, 130) and windows.flags.c_contiguous
    for window, start in zip(windows, starts):
        np.testing.assert_array_equal(window, logmel[:, start : start + 130])
    np.testing.assert_allclose(sg.window_times(300), (starts + 65) * 3.0 / 130)
    assert sg.window_times(130) == pytest.approx([1.5])
    with pytest.raises(ValueError, match="fewer than one window"):
        sg.sliding_windows(logmel[:, :100])
    with pytest.raises(ValueError, match="bands, frames"):
        sg.sliding_windows(logmel[0])


def test_mfcc_is_librosas():
    logmel = np.random.default_rng(1).uniform(-80, 0, size=(128, 130)).astype(np.float32)
    expected = librosa.feature.mfcc(S=logmel, n_mfcc=20)
    np.testing.assert_allclose(sg.mfcc(logmel, 20), expected, rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="n_mfcc"):
        sg.mfcc(logmel, 200)


def test_mfcc_windows_are_standardised_means_and_spreads():
    windows = np.random.default_rng(2).uniform(-80, 0, size=(12, 128, 130)).astype(np.float32)
    features = sg.mfcc_windows(windows, n_mfcc=20)
    assert features.shape == (12, 40) and features.dtype == np.float32
    np.testing.assert_allclose(features.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(features.std(axis=0), 1, atol=1e-4)
    coefficients = np.stack([librosa.feature.mfcc(S=w, n_mfcc=20) for w in windows])
    raw = np.concatenate([coefficients.mean(axis=2), coefficients.std(axis=2)], axis=1)
    np.testing.assert_allclose(features, (raw - raw.mean(0)) / raw.std(0), atol=1e-3)


# --------------------------------------------------------------------------------------------
# Self-similarity and novelty
# --------------------------------------------------------------------------------------------


def test_self_similarity_cosine_and_euclidean():
    features = np.random.default_rng(3).normal(size=(9, 5))
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_allclose(sg.self_similarity(features, "cosine"), unit @ unit.T, atol=1e-12)
    distances = np.linalg.norm(features[:, None] - features[None], axis=2)
    median = np.median(distances[~np.eye(9, dtype=bool)])
    np.testing.assert_allclose(sg.self_similarity(features, "euclidean"), np.exp(-distances / median), atol=1e-9)
    with pytest.raises(ValueError, match="distance"):
        sg.self_similarity(features, "manhattan")
    with pytest.raises(ValueError, match="finite"):
        sg.self_similarity(np.full((3, 2), np.nan))


def slow_novelty(ssm, kernel_size, gap):
    """Foote's novelty written as a plain loop over the kernel's entries, for comparison."""
    n_windows, half = len(ssm), kernel_size // 2
    novelty = np.zeros(n_windows)
    for n in range(n_windows):
        for i in range(-half, half):  # row n + i of the SSM: before n if i < 0
            for j in range(-half, half):
                if not (0 <= n + i < n_windows and 0 <= n + j < n_windows):
                    continue  # outside the matrix: zero padding
                u, v = i + 0.5, j + 0.5
                if abs(u) < gap or abs(v) < gap:
                    continue
                weight = np.sign(u) * np.sign(v) * np.exp(-0.5 * (u / (half / 2)) ** 2 - 0.5 * (v / (half / 2)) ** 2)
                novelty[n] += weight * ssm[n + i, n + j]
    return novelty / novelty.max()


@pytest.mark.parametrize("kernel_size, gap", [(2, 0), (8, 0), (8, 2), (16, 3)])
def test_novelty_matches_a_slow_loop(kernel_size, gap):
    features = np.random.default_rng(4).normal(size=(30, 6))
    ssm = sg.self_similarity(features)
    np.testing.assert_allclose(sg.novelty_curve(ssm, kernel_size, gap), slow_novelty(ssm, kernel_size, gap), atol=1e-12)


def block_diagonal(sizes):
    """An SSM of 1s within each block and 0s between blocks."""
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return (labels[:, None] == labels[None, :]).astype(float)


def test_novelty_peaks_exactly_at_block_edges():
    sizes, edges = [20, 15, 25], [20, 35]
    novelty = sg.novelty_curve(block_diagonal(sizes), kernel_size=12, gap=0)
    peaks = [n for n in range(1, len(novelty) - 1) if novelty[n] > novelty[n - 1] and novelty[n] > novelty[n + 1]]
    assert peaks == edges
    assert novelty.max() == pytest.approx(1.0)
    # With a gap the top of each peak is flat, and peak picking takes its middle: the edge again.
    times = np.arange(sum(sizes), dtype=float)
    for gap in (0, 2, 3):
        novelty = sg.novelty_curve(block_diagonal(sizes), kernel_size=12, gap=gap)
        np.testing.assert_array_equal(sg.pick_boundaries(novelty, times, threshold=0.5, min_distance_s=5), edges)


def test_novelty_rejects_bad_kernels():
    ssm = np.eye(10)
    with pytest.raises(ValueError, match="even"):
        sg.novelty_curve(ssm, kernel_size=7)
    with pytest.raises(ValueError, match="gap"):
        sg.novelty_curve(ssm, kernel_size=8, gap=4)
    with pytest.raises(ValueError, match="square"):
        sg.novelty_curve(np.ones((3, 4)), kernel_size=2, gap=0)
    assert sg.novelty_times([1.5, 2.0, 2.5]) == pytest.approx([1.25, 1.75, 2.25])


# --------------------------------------------------------------------------------------------
# Boundaries and scores
# --------------------------------------------------------------------------------------------


def test_pick_boundaries_threshold_distance_and_oracle_count():
    times = np.arange(12) * 0.5
    novelty = np.array([0, 0.2, 1.0, 0.1, 0.6, 0.1, 0.3, 0.1, 0.8, 0.9, 0.2, 0])
    np.testing.assert_array_equal(sg.pick_boundaries(novelty, times, threshold=0.5, min_distance_s=0), [1.0, 2.0, 4.5])
    # 2.0 s and 4.5 s are closer than 3 s: only the higher peak of the two stays.
    np.testing.assert_array_equal(sg.pick_boundaries(novelty, times, threshold=0.5, min_distance_s=3), [1.0, 4.5])
    # The oracle count ignores the threshold and keeps the strongest peaks, in time order.
    np.testing.assert_array_equal(
        sg.pick_boundaries(novelty, times, threshold=0.99, min_distance_s=0, n_boundaries=2), [1.0, 4.5]
    )
    np.testing.assert_array_equal(
        sg.pick_boundaries(novelty, times, min_distance_s=0, n_boundaries=10), [1.0, 2.0, 3.0, 4.5]
    )
    # Given the duration, peaks closer than min_distance_s to the start or the end are dropped.
    np.testing.assert_array_equal(sg.pick_boundaries(novelty, times, threshold=0.5, min_distance_s=1.5), [1.0, 4.5])
    np.testing.assert_array_equal(
        sg.pick_boundaries(novelty, times, threshold=0.5, min_distance_s=1.5, duration=6.0), [4.5]
    )
    with pytest.raises(ValueError, match="same length"):
        sg.pick_boundaries(novelty, times[:-1])


def test_scores_computed_by_hand():
    # At both tolerances only 10.3 s finds its reference (10 s); 25 s is 5 s from 20 s.
    scores = sg.score_boundaries([0, 10, 20, 30], [0, 10.3, 25, 30], duration=30)
    assert scores == pytest.approx({"F@0.5": 0.5, "P@0.5": 0.5, "R@0.5": 0.5, "F@3": 0.5, "P@3": 0.5, "R@3": 0.5})
    # 0 and the end are added when missing, and are not scored.
    assert sg.score_boundaries([10, 20], [10.3, 25], duration=30) == scores
    # 11 s and 21.5 s miss at 0.5 s but hit at 3 s; 24 s is too far from both.
    scores = sg.score_boundaries([0, 10, 20, 30], [11, 21.5, 24], duration=30)
    assert scores == pytest.approx({"F@0.5": 0, "P@0.5": 0, "R@0.5": 0, "F@3": 0.8, "P@3": 2 / 3, "R@3": 1})
    assert sg.score_boundaries([0, 10, 30], [], duration=30)["F@3"] == 0


def test_scores_agree_with_mir_eval():
    rng = np.random.default_rng(5)
    reference = np.sort(rng.uniform(0, 60, 5))
    estimated = np.sort(rng.uniform(0, 60, 7))
    scores = sg.score_boundaries(reference, estimated, duration=60, windows=(0.5, 3.0, 5.0))
    for window in (0.5, 3.0, 5.0):
        edges = [np.concatenate([[0], times, [60]]) for times in (reference, estimated)]
        intervals = [np.stack([e[:-1], e[1:]], axis=1) for e in edges]
        precision, recall, f_measure = mir_eval.segment.detection(*intervals, window=window, trim=True)
        name = f"{window:g}"
        assert (scores[f"P@{name}"], scores[f"R@{name}"], scores[f"F@{name}"]) == pytest.approx(
            (precision, recall, f_measure)
        )
    untrimmed = sg.score_boundaries(reference, estimated, duration=60, trim=False)
    assert untrimmed["F@3"] > scores["F@3"], "0 and the end always hit when they are scored"
    with pytest.raises(ValueError, match="between 0 and the duration"):
        sg.score_boundaries([0, 70], [5], duration=60)


# --------------------------------------------------------------------------------------------
# The whole pipeline
# --------------------------------------------------------------------------------------------


def test_pipeline_finds_the_boundaries_of_stationary_tunes():
    tune_set = synthetic_set()
    features = sg.mfcc_windows(sg.sliding_windows(tune_set.logmel))
    times = sg.window_times(tune_set.n_frames)
    boundaries, novelty, ssm = sg.segment(features, times, duration=tune_set.duration)
    assert ssm.shape == (len(times), len(times)) and novelty.shape == times.shape
    assert len(boundaries) == 3
    np.testing.assert_allclose(boundaries, tune_set.boundaries_s[1:-1], atol=0.5)
    assert sg.score_boundaries(tune_set.boundaries_s, boundaries, tune_set.duration)["F@0.5"] == 1.0


def test_evaluate_segmentation_takes_arrays_or_tensors():
    sets = [synthetic_set(seed=seed) for seed in range(3)]
    table = sg.evaluate_segmentation(sets, sg.mfcc_windows)
    assert list(table.columns) == [
        "set",
        "n_tunes",
        "duration",
        "n_estimated",
        "F@0.5",
        "P@0.5",
        "R@0.5",
        "F@3",
        "P@3",
        "R@3",
    ]
    assert len(table) == 3 and (table["F@0.5"] == 1.0).all()
    # A network's embed() returns a tensor; the oracle count gives each set its true number of boundaries.
    as_tensor = sg.evaluate_segmentation(
        sets, lambda windows: torch.from_numpy(sg.mfcc_windows(windows)), oracle_count=True
    )
    assert (as_tensor.n_estimated == 3).all() and (as_tensor["F@0.5"] == 1.0).all()
    with pytest.raises(ValueError, match="embed_windows"):
        sg.evaluate_segmentation(sets, lambda windows: np.zeros((2, 4)))


def test_plot_segmentation_draws_ssm_and_novelty():
    tune_set = synthetic_set()
    times = sg.window_times(tune_set.n_frames)
    boundaries, novelty, ssm = sg.segment(sg.mfcc_windows(sg.sliding_windows(tune_set.logmel)), times)
    figure = sg.plot_segmentation(tune_set, ssm, novelty, times, boundaries, title="synthetic", threshold=0.5)
    ssm_axes, novelty_axes = figure.axes[0], figure.axes[1]
    assert ssm_axes.get_title() == "synthetic" and novelty_axes.get_xlabel() == "time (s)"
    labels = [text.get_text() for text in novelty_axes.get_legend().get_texts()]
    assert labels == ["novelty", "reference", "estimated", "threshold"]
    plt.close(figure)


def test_band_windows_are_standardised_band_means_and_spreads():
    rng = np.random.default_rng(4)
    windows = rng.normal(-40, 10, size=(9, 128, 130))
    features = np.concatenate([windows.mean(axis=2), windows.std(axis=2)], axis=1)
    expected = (features - features.mean(axis=0)) / features.std(axis=0)
    np.testing.assert_allclose(sg.band_windows(windows), expected, atol=1e-5)


def test_set_windows_stack_every_sets_described_windows():
    sets = [synthetic_set(seed=0), synthetic_set((15.0, 16.0), seed=1)]
    features, recordings, positions = sg.set_windows(sets, describe=sg.mfcc_windows)
    for index, tune_set in enumerate(sets):
        expected = sg.mfcc_windows(sg.sliding_windows(tune_set.logmel))
        np.testing.assert_allclose(features[recordings == index], expected)
        np.testing.assert_array_equal(positions[recordings == index], np.arange(len(expected)))
    with pytest.raises(ValueError, match="sets is empty"):
        sg.set_windows([])


def test_once_per_set_describes_each_set_of_windows_once():
    calls = []

    def describe(windows):
        calls.append(windows.shape)
        return windows.reshape(len(windows), -1).mean(axis=1, keepdims=True)

    cached = sg.once_per_set(describe)
    first, second = np.zeros((3, 2, 4)), np.ones((3, 2, 4))
    np.testing.assert_array_equal(cached(first), describe(first))
    for windows in (first, second, first.copy(), second):
        np.testing.assert_array_equal(cached(windows), describe(windows))
    assert len(calls) == 2 + 4 + 1  # the four direct calls, and one cached call per distinct set
