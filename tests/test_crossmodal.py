"""Cross-modal retrieval: matching metrics, chroma of piano rolls, DTW, and audio-to-score training."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist
from sklearn.metrics import label_ranking_average_precision_score

from mlcourse.crossmodal import (
    CrossModalNet,
    CrossModalStep,
    chroma_cosine_distances,
    chroma_dtw_distances,
    dtw_distance,
    dtw_distances,
    embed_pairs,
    encoder_distances,
    retrieval_table,
    roll_chroma,
    time_per_query,
)
from mlcourse.data import load_dataset
from mlcourse.data.samplers import RandomBatches
from mlcourse.metrics import match_ranks, match_ranks_from_distances, mean_reciprocal_rank, recall_at_ranks
from mlcourse.train import train


def chance_mrr(n_items):
    """The expected MRR of a random ranking of n items: (1 + 1/2 + ... + 1/n) / n."""
    return float(np.sum(1.0 / np.arange(1, n_items + 1)) / n_items)


def info_nce(audio, score, temperature=0.1):
    """Symmetric InfoNCE across modalities: clip i's audio and score are the only positive pair."""
    logits = audio @ score.T / temperature
    targets = torch.arange(len(audio), device=audio.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


@pytest.fixture(scope="module")
def smoke_test(smoke):
    return load_dataset("smoke", split="test")


# --------------------------------------------------------------------------------------------
# Matching metrics
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_match_ranks_equal_brute_force_argsort(distance):
    rng = np.random.default_rng(0)
    queries, gallery = rng.standard_normal((40, 8)), rng.standard_normal((55, 8))  # 15 distractors
    distances = cdist(queries, gallery, distance)
    expected = np.array([np.flatnonzero(np.argsort(row) == i)[0] + 1 for i, row in enumerate(distances)])
    np.testing.assert_array_equal(match_ranks(queries, gallery, distance=distance), expected)
    np.testing.assert_array_equal(match_ranks(queries, gallery, distance=distance, block_size=7), expected)
    np.testing.assert_array_equal(match_ranks_from_distances(distances), expected)
    np.testing.assert_array_equal(match_ranks_from_distances(torch.from_numpy(distances)), expected)


@pytest.mark.parametrize("ties", [False, True])
def test_mean_reciprocal_rank_equals_sklearn_with_one_relevant_item(ties):
    rng = np.random.default_rng(1)
    distances = rng.integers(0, 4, (30, 30)).astype(float) if ties else rng.random((30, 30))
    ranks = match_ranks_from_distances(distances)
    expected = label_ranking_average_precision_score(np.eye(30, dtype=int), -distances)
    assert mean_reciprocal_rank(ranks) == pytest.approx(expected, abs=1e-12)


def test_ties_count_against_the_query():
    same = np.ones((5, 3))
    np.testing.assert_array_equal(match_ranks(same, same, distance="euclidean"), [5] * 5)
    np.testing.assert_array_equal(match_ranks_from_distances(np.zeros((4, 6))), [6] * 4)


def test_recall_at_ranks_and_bad_input():
    ranks = np.array([1, 2, 5, 11])
    assert recall_at_ranks(ranks) == {1: 0.25, 5: 0.75, 10: 0.75}
    assert recall_at_ranks(ranks, ks=2) == {2: 0.5}
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 11) / 4)
    with pytest.raises(ValueError, match="integers >= 1"):
        mean_reciprocal_rank([0, 1])
    with pytest.raises(ValueError, match="integers >= 1"):
        recall_at_ranks(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="at least as many"):
        match_ranks_from_distances(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="NaN"):
        match_ranks_from_distances(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="at least as many"):
        match_ranks(np.ones((5, 3)), np.ones((4, 3)))


# --------------------------------------------------------------------------------------------
# Chroma baseline
# --------------------------------------------------------------------------------------------


def test_roll_chroma_folds_octaves_into_pitch_classes():
    roll = np.zeros((128, 20), dtype=bool)
    roll[[60, 64, 67], :10] = True  # C major triad, C4 E4 G4
    roll[72, 5:10] = True  # and C5 in frames 5-9
    chroma = roll_chroma(roll)
    assert chroma.shape == (12, 20) and chroma.dtype == np.float32
    np.testing.assert_array_equal(np.flatnonzero(chroma[:, 0]), [0, 4, 7])
    np.testing.assert_allclose(chroma[[0, 4, 7], 7], [1.0, 0.5, 0.5])  # two Cs against one E, one G
    assert not chroma[:, 10:].any(), "silent frames stay zero"
    assert roll_chroma(np.stack([roll, roll])).shape == (2, 12, 20)
    # Row 0 is C in the audio chroma too: librosa's filterbank puts middle C's bin in row 0.
    middle_c_bin = int(round(261.63 * 2048 / 22050))
    assert librosa.filters.chroma(sr=22050, n_fft=2048)[:, middle_c_bin].argmax() == 0
    with pytest.raises(ValueError, match="128"):
        roll_chroma(np.zeros((5, 12, 20)))


def test_chroma_cosine_distances_are_flattened_cosines():
    rng = np.random.default_rng(2)
    first, second = rng.random((4, 12, 30)), rng.random((6, 12, 30))
    expected = cdist(first.reshape(4, -1), second.reshape(6, -1), "cosine")
    np.testing.assert_allclose(chroma_cosine_distances(first, second), expected, atol=1e-12)
    silent = chroma_cosine_distances(first, np.zeros((1, 12, 30)))
    np.testing.assert_allclose(silent, 1.0)
    with pytest.raises(ValueError, match="same number of frames"):
        chroma_cosine_distances(first, second[:, :, :20])


@pytest.mark.parametrize("band", [None, 0, 3, 10])
def test_dtw_equals_librosa(band):
    rng = np.random.default_rng(3)
    query, gallery = rng.random((12, 40)), rng.random((5, 12, 55))
    ours = dtw_distances(query, gallery, band=band)
    for item, distance in zip(gallery, ours):
        costs = cdist(query.T, item.T, "cosine")
        constraint = {} if band is None else {"global_constraints": True, "band_rad": (band + 1) / 40}
        accumulated = librosa.sequence.dtw(C=costs, backtrack=False, **constraint)
        assert distance * (40 + 55) == pytest.approx(accumulated[-1, -1], rel=1e-12)
    assert dtw_distance(gallery[1], query, band=band) == pytest.approx(ours[1], rel=1e-12)  # symmetric


def test_dtw_forgives_a_change_of_tempo():
    rng = np.random.default_rng(4)
    melody = np.repeat(rng.random((12, 15)), 4, axis=1)  # 60 frames, a chord every 4
    slower = melody[:, (np.arange(90) * 60) // 90]  # the same, 1.5 times slower
    other = np.repeat(rng.random((12, 15)), 6, axis=1)
    distances = dtw_distances(melody, np.stack([slower, other]))
    assert 0 <= distances[0] < 1e-12 and distances[1] > 0.05
    # The band is widened by the difference of lengths: a steady change of tempo stays inside.
    assert dtw_distance(melody, slower, band=0) < 1e-12
    # Late by 8 frames, then catching up (same length): too far off the diagonal for a band of 2.
    delayed = melody[:, [0] * 8 + list(range(44)) + list(range(44, 60, 2))]
    assert dtw_distance(melody, delayed) < 1e-12 < dtw_distance(melody, delayed, band=2)
    for band in (-1, 2.5, True):
        with pytest.raises(ValueError, match="band"):
            dtw_distances(melody, slower[None], band=band)


def test_chroma_baseline_finds_the_score_of_audio_clips(smoke_test):
    n_clips = len(smoke_test)
    rolls = roll_chroma(smoke_test.pianoroll)
    cosine, seconds = time_per_query(lambda: chroma_cosine_distances(smoke_test.chroma, rolls), n_clips)
    dtw = chroma_dtw_distances(smoke_test.chroma, rolls, band=13)
    assert cosine.shape == dtw.shape == (n_clips, n_clips) and seconds > 0
    for distances in (cosine, cosine.T, dtw, dtw.T):  # audio -> score, and score -> audio
        ranks = match_ranks_from_distances(distances)
        assert mean_reciprocal_rank(ranks) > 0.5 > 5 * chance_mrr(n_clips)
    table = retrieval_table({"cosine": cosine, "dtw": dtw}, {"cosine": seconds})
    assert list(table.columns) == ["R@1", "R@5", "R@10", "MRR", "ms/query"]
    assert list(table.index) == ["cosine", "dtw"]
    assert table.loc["cosine", "ms/query"] == pytest.approx(1000 * seconds)
    assert np.isnan(table.loc["dtw", "ms/query"])
    assert table.loc["dtw", "MRR"] == pytest.approx(mean_reciprocal_rank(match_ranks_from_distances(dtw)))


# --------------------------------------------------------------------------------------------
# Learned cross-modal embeddings
# --------------------------------------------------------------------------------------------


def test_cross_modal_net_embeds_both_modalities_with_their_own_weights():
    torch.manual_seed(0)
    net = CrossModalNet(embedding_dim=16, widths=(4, 8)).eval()
    rolls = torch.rand(3, 128, 130) > 0.9
    audio, score = net(torch.randn(3, 128, 130), rolls)
    assert audio.shape == score.shape == (3, 16)
    torch.testing.assert_close(score.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(net.embed_score(rolls.to(torch.uint8)), score)
    torch.testing.assert_close(net.embed_score(rolls.float()), score)
    audio_weights = {id(p) for p in net.audio.parameters()}
    assert not audio_weights & {id(p) for p in net.score.parameters()}


def test_encoder_distances_are_the_cosine_distances_of_the_pairs_embeddings():
    torch.manual_seed(0)
    net = CrossModalNet(embedding_dim=16, widths=(4, 8)).eval()
    logmel, rolls = torch.randn(5, 128, 130).numpy(), (torch.rand(5, 128, 130) > 0.9).numpy()
    audio, score = embed_pairs(net, logmel, rolls)
    expected = cdist(audio, score, metric="cosine")
    np.testing.assert_allclose(encoder_distances(net.audio, logmel, score), expected, atol=1e-5)
    np.testing.assert_allclose(encoder_distances(net.score, rolls, audio), expected.T, atol=1e-5)


def test_cross_modal_step_checks_its_rolls():
    with pytest.raises(ValueError, match="128, 130"):
        CrossModalStep(np.zeros((4, 64, 130), dtype=bool))
    with pytest.raises(ValueError, match="12, 130"):
        CrossModalStep(np.zeros((4, 12, 100), dtype=np.float32))
    step = CrossModalStep(np.zeros((4, 128, 130), dtype=bool))
    with pytest.raises(ValueError, match="same clips"):
        step(CrossModalNet(8, (4,)), info_nce, torch.zeros(5, 128, 130), None, torch.arange(2))
    assert step.rolls_on(torch.device("cpu")) is step.rolls_on(torch.device("cpu")), "moved once"


@pytest.fixture
def one_torch_thread():
    """Train on one thread: as fast for a network this small, and steady when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_short_training_finds_scores_of_unseen_clips(smoke, smoke_test, one_torch_thread):
    train_data = smoke.subset(smoke.meta.split == "train")
    torch.manual_seed(0)
    model = CrossModalNet(embedding_dim=32, widths=(8, 16, 32))
    sampler = RandomBatches(len(train_data), 32, batches_per_epoch=40, seed=0)
    history = train(
        model,
        info_nce,
        train_data.logmel,
        None,
        sampler,
        epochs=1,
        lr=3e-3,
        device="cpu",
        seed=0,
        progress=False,
        step=CrossModalStep(train_data.pianoroll),
    )
    assert len(history.step_losses) == 40
    assert np.mean(history.step_losses[-5:]) < 0.8 * np.mean(history.step_losses[:5])
    audio, score = embed_pairs(model, smoke_test.logmel, smoke_test.pianoroll)
    assert audio.shape == score.shape == (len(smoke_test), 32) and not model.training
    ranks = match_ranks(audio, score)  # audio -> score, among the test clips' scores
    n_clips = len(smoke_test)
    assert recall_at_ranks(ranks, ks=5)[5] > 2 * 5 / n_clips
    assert mean_reciprocal_rank(ranks) > 1.3 * chance_mrr(n_clips)


def test_chroma_cross_modal_net_keeps_the_key_and_ignores_where_a_pattern_is():
    torch.manual_seed(0)
    net = CrossModalNet(embedding_dim=16, inputs="chroma").eval()
    chroma = torch.rand(3, 12, 130)
    with torch.no_grad():
        score = net.embed_score(chroma)
        # Transposing a score changes its embedding: here the key is part of the answer.
        assert (net.embed_score(torch.roll(chroma, 2, dims=1)) - score).abs().max() > 1e-3
        # The two encoders have weights of their own.
        assert (net.embed_audio(chroma) - score).abs().max() > 1e-3
    with pytest.raises(ValueError, match="'logmel' or 'chroma'"):
        CrossModalNet(inputs="cqt")


def test_cross_modal_step_augments_the_audio_only():
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, audio, scores):
            seen.append((audio.clone(), scores.clone()))
            return audio.flatten(1), scores.flatten(1)

    audio, scores = torch.rand(6, 12, 130), torch.rand(6, 12, 130)
    step = CrossModalStep(scores, augment=lambda batch: batch + 1)
    step(Recorder(), lambda a, s: (a - s).sum(), audio, None, torch.tensor([4, 0]))
    torch.testing.assert_close(seen[0][0], audio[[4, 0]] + 1)
    torch.testing.assert_close(seen[0][1], scores[[4, 0]])
