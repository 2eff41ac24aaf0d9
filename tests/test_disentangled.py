"""Concept sub-spaces: masks, the disentangled and track-regularised losses, their samplers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning.distances import LpDistance
from torch import nn

from mlcourse.data.samplers import ConceptBalancedBatches, TrackBatches
from mlcourse.disentangled import (
    DISENTANGLED,
    MODELS,
    DisentangledLoss,
    TrackRegularizedLoss,
    build_model,
    concept_recall,
    label_matrix,
    scorable_tags,
    spaces_table,
    step_seconds,
    tag_score_matrix,
    track_regularized_batches,
    triplet_accuracy_table,
)
from mlcourse.losses import TripletMarginLoss
from mlcourse.models import ConceptMasks, EmbeddingNet
from mlcourse.train import train

CONCEPTS = ["genre", "mood", "instrument", "era"]


def random_batch(n=24, dim=32, n_concepts=4, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, dim, generator=generator, dtype=dtype)
    labels = torch.randint(0, 3, (n, n_concepts), generator=generator)
    return embeddings, labels


def reference_triplet(embeddings, labels, margin=0.2):
    """pytorch-metric-learning's triplet loss (all triplets, mean of the non-zero hinges),
    Euclidean distance between the rows as they are (not normalised)."""
    distance = LpDistance(normalize_embeddings=False)
    return pml_losses.TripletMarginLoss(margin=margin, distance=distance)(embeddings, labels)


class ClassifierLoss(nn.Module):
    """Cross-entropy of a linear classifier: a concept loss with parameters of its own."""

    def __init__(self, in_features, n_classes):
        super().__init__()
        self.classifier = nn.Linear(in_features, n_classes)

    def forward(self, embeddings, labels):
        return nn.functional.cross_entropy(self.classifier(embeddings), labels)


# --------------------------------------------------------------------------------------------
# ConceptMasks
# --------------------------------------------------------------------------------------------


def test_fixed_masks_are_disjoint_blocks_of_ones():
    masks = ConceptMasks(CONCEPTS, 256)
    table = masks.masks()
    assert table.shape == (4, 256)
    assert torch.equal(table.sum(dim=0), torch.ones(256))  # each dimension has one owner
    for i, concept in enumerate(CONCEPTS):
        expected = torch.zeros(256)
        expected[64 * i : 64 * (i + 1)] = 1
        assert torch.equal(masks.mask(concept), expected)
        assert masks.block(concept) == slice(64 * i, 64 * (i + 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_keeps_the_block_and_zeros_the_rest(dtype):
    masks = ConceptMasks(CONCEPTS, 8)
    embeddings = torch.arange(1, 17, dtype=dtype).reshape(2, 8)
    masked = masks(embeddings, "mood")
    assert masked.dtype == dtype
    assert torch.equal(masked[:, 2:4], embeddings[:, 2:4])
    assert not masked[:, :2].any() and not masked[:, 4:].any()


def test_learned_masks_start_near_the_blocks_stay_non_negative_and_get_gradients():
    torch.manual_seed(0)
    masks = ConceptMasks(CONCEPTS, 16, learned=True, noise=0.1)
    assert len(list(masks.parameters())) == 1
    table = masks.masks()
    assert (table >= 0).all()
    assert (table - ConceptMasks(CONCEPTS, 16).masks()).abs().max() < 0.6
    masks(torch.randn(5, 16), "era").pow(2).sum().backward()
    gradient = masks.weights.grad
    assert gradient[3, 12:].abs().min() > 0  # the era block is above 0, so it learns
    assert not gradient[:3].any()  # other concepts' masks were not used


def test_learned_masks_can_start_anywhere():
    masks = ConceptMasks(CONCEPTS, 256, learned=True, start="random", seed=0)
    table = masks.masks().detach()
    assert ((table >= 0) & (table < 1)).all()
    # no concept owns its block: the share of each mask's weight inside its block is about 1/4
    blocks = ConceptMasks(CONCEPTS, 256).masks().bool()
    shares = [float(table[i, blocks[i]].sum() / table[i].sum()) for i in range(len(CONCEPTS))]
    assert all(0.15 < share < 0.35 for share in shares), shares
    assert torch.equal(table, ConceptMasks(CONCEPTS, 256, learned=True, start="random", seed=0).masks().detach())


def test_learned_masks_have_no_block_and_need_no_divisible_size():
    masks = ConceptMasks(CONCEPTS, 10, learned=True)
    with pytest.raises(ValueError, match="no block"):
        masks.block("genre")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ConceptMasks(CONCEPTS, 30), "multiple of 4"),
        (lambda: ConceptMasks([], 8), "at least one"),
        (lambda: ConceptMasks(["a", "a"], 8), "distinct"),
        (lambda: ConceptMasks("genre", 8), "list"),
        (lambda: ConceptMasks(CONCEPTS, 0), "positive"),
        (lambda: ConceptMasks(CONCEPTS, 8, start="random"), "random"),
        (lambda: ConceptMasks(CONCEPTS, 8, learned=True, start="uniform"), "blocks"),
        (lambda: ConceptMasks(CONCEPTS, 8).mask("tempo"), "genre"),
        (lambda: ConceptMasks(CONCEPTS, 8)(torch.zeros(2, 6), "genre"), r"\(batch, 8\)"),
    ],
)
def test_masks_reject_bad_input(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --------------------------------------------------------------------------------------------
# DisentangledLoss
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_disentangled_loss_is_the_mean_of_block_losses_on_normalised_blocks(dtype):
    embeddings, labels = random_batch(dtype=dtype)
    loss_fn = DisentangledLoss({c: TripletMarginLoss() for c in CONCEPTS}, ConceptMasks(CONCEPTS, 32))
    blocks = embeddings.reshape(len(embeddings), 4, 8)  # block i is dims 8 i .. 8 i + 7
    unit_blocks = blocks / blocks.norm(dim=2, keepdim=True)
    expected = sum(reference_triplet(unit_blocks[:, i], labels[:, i]) for i in range(4)) / 4
    loss = loss_fn(embeddings, labels)
    assert loss.dtype == dtype
    torch.testing.assert_close(loss, expected)
    assert set(loss_fn.last_stats) == set(CONCEPTS)
    assert loss_fn.last_stats["mood"]["loss"] == pytest.approx(
        float(reference_triplet(unit_blocks[:, 1], labels[:, 1])), rel=1e-5
    )


def test_without_masks_every_concept_sees_the_complete_embedding():
    embeddings, labels = random_batch()
    loss_fn = DisentangledLoss({c: TripletMarginLoss() for c in CONCEPTS})
    unit = embeddings / embeddings.norm(dim=1, keepdim=True)
    expected = torch.stack([reference_triplet(unit, labels[:, i]) for i in range(4)]).mean()
    torch.testing.assert_close(loss_fn(embeddings, labels), expected)


def test_without_normalisation_the_raw_block_is_used():
    embeddings, labels = random_batch()
    loss_fn = DisentangledLoss(
        {c: TripletMarginLoss(margin=1.0) for c in CONCEPTS}, ConceptMasks(CONCEPTS, 32), normalize_subspaces=False
    )
    expected = np.mean(
        [float(reference_triplet(embeddings[:, 8 * i : 8 * i + 8], labels[:, i], margin=1.0)) for i in range(4)]
    )
    assert float(loss_fn(embeddings, labels)) == pytest.approx(expected, rel=1e-5)


def test_learned_masks_multiply_the_complete_embedding_and_are_trained():
    torch.manual_seed(1)
    embeddings, labels = random_batch()
    masks = ConceptMasks(CONCEPTS, 32, learned=True)
    loss_fn = DisentangledLoss({c: TripletMarginLoss() for c in CONCEPTS}, masks)
    table = torch.relu(masks.weights.detach())
    masked = [embeddings * table[i] for i in range(4)]
    expected = sum(reference_triplet(m / m.norm(dim=1, keepdim=True), labels[:, i]) for i, m in enumerate(masked)) / 4
    loss = loss_fn(embeddings, labels)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert masks.weights.grad is not None and masks.weights.grad.abs().sum() > 0
    assert any(p is masks.weights for p in loss_fn.parameters())


def test_each_concept_loss_gets_its_block_and_its_label_column():
    seen = {}

    class Recorder(nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, embeddings, labels):
            seen[self.name] = (embeddings, labels)
            return embeddings.sum() * 0

    embeddings, labels = random_batch()
    DisentangledLoss({c: Recorder(c) for c in CONCEPTS}, ConceptMasks(CONCEPTS, 32), normalize_subspaces=False)(
        embeddings, labels
    )
    for i, concept in enumerate(CONCEPTS):
        block, column = seen[concept]
        assert torch.equal(block, embeddings[:, 8 * i : 8 * (i + 1)])
        assert torch.equal(column, labels[:, i])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: DisentangledLoss({}), "non-empty dict"),
        (lambda: DisentangledLoss({"genre": lambda e, y: e.sum()}), "nn.Module"),
        (
            lambda: DisentangledLoss(
                {"mood": TripletMarginLoss(), "genre": TripletMarginLoss()}, ConceptMasks(["genre", "mood"], 8)
            ),
            "one order",
        ),
        (
            lambda: DisentangledLoss({"genre": TripletMarginLoss(), "mood": TripletMarginLoss()})(
                torch.randn(4, 8), torch.zeros(4, 3, dtype=torch.long)
            ),
            r"\(batch, concepts\)",
        ),
        (
            lambda: DisentangledLoss(
                {"genre": TripletMarginLoss(), "mood": TripletMarginLoss()}, ConceptMasks(["genre", "mood"], 8)
            )(torch.randn(4, 6), torch.zeros(4, 2, dtype=torch.long)),
            "match the masks",
        ),
    ],
)
def test_disentangled_loss_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------
# TrackRegularizedLoss
# --------------------------------------------------------------------------------------------


def test_track_regularized_loss_is_concept_loss_plus_weighted_track_loss():
    embeddings, concept_labels = random_batch()
    tracks = torch.arange(len(embeddings)) // 2
    labels = torch.cat([concept_labels, tracks[:, None]], dim=1)
    concept_loss = DisentangledLoss({c: TripletMarginLoss() for c in CONCEPTS}, ConceptMasks(CONCEPTS, 32))
    loss_fn = TrackRegularizedLoss(concept_loss, TripletMarginLoss(), weight=0.3)
    expected_concept = DisentangledLoss({c: TripletMarginLoss() for c in CONCEPTS}, ConceptMasks(CONCEPTS, 32))(
        embeddings, concept_labels
    )
    expected = expected_concept + 0.3 * reference_triplet(embeddings, tracks)
    torch.testing.assert_close(loss_fn(embeddings, labels), expected)
    assert loss_fn.last_stats["concept_loss"] == pytest.approx(float(expected_concept))


def test_a_single_concept_column_reaches_a_plain_loss_as_a_vector():
    embeddings, labels = random_batch(n_concepts=2)
    loss_fn = TrackRegularizedLoss(TripletMarginLoss(), TripletMarginLoss(), weight=0.0)
    expected = reference_triplet(embeddings, labels[:, 0])
    torch.testing.assert_close(loss_fn(embeddings, labels), expected)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: TrackRegularizedLoss(TripletMarginLoss(), TripletMarginLoss(), -1.0), ">= 0"),
        (lambda: TrackRegularizedLoss(TripletMarginLoss(), TripletMarginLoss(), float("nan")), ">= 0"),
        (lambda: TrackRegularizedLoss(TripletMarginLoss(), None, 1.0), "nn.Module"),
        (
            lambda: TrackRegularizedLoss(TripletMarginLoss(), TripletMarginLoss(), 1.0)(
                torch.randn(4, 8), torch.zeros(4, dtype=torch.long)
            ),
            "track ids last",
        ),
    ],
)
def test_track_regularized_loss_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------
# Training for a few steps
# --------------------------------------------------------------------------------------------


def tiny_problem(n=96, seed=0):
    """Random 'spectrograms', concept labels, tracks of 6 clips, and a small linear model."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 4, 5)).astype(np.float32)
    concepts = rng.integers(0, 3, size=(n, 4))
    tracks, positions = np.arange(n) // 6, np.arange(n) % 6
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(20, 32))
    return features, concepts, tracks, positions, model


def test_disentangled_classifiers_and_learned_masks_train():
    features, concepts, _, _, model = tiny_problem()
    masks = ConceptMasks(CONCEPTS, 32, learned=True)
    loss_fn = DisentangledLoss({c: ClassifierLoss(32, 3) for c in CONCEPTS}, masks)
    before = [p.detach().clone() for p in [*model.parameters(), *loss_fn.parameters()]]
    sampler = ConceptBalancedBatches(concepts, 3, 4, batches_per_epoch=4)
    history = train(model, loss_fn, features, concepts, sampler, epochs=1, device="cpu", progress=False)
    after = [*model.parameters(), *loss_fn.parameters()]
    assert np.isfinite(history.step_losses).all() and len(history.step_losses) == 4
    assert all(not torch.equal(b, a.detach()) for b, a in zip(before, after))


def test_track_regularised_triplet_model_trains():
    features, concepts, tracks, positions, model = tiny_problem()
    labels = np.concatenate([concepts, tracks[:, None]], axis=1)
    loss_fn = TrackRegularizedLoss(
        DisentangledLoss({c: TripletMarginLoss() for c in CONCEPTS}, ConceptMasks(CONCEPTS, 32)),
        TripletMarginLoss(),
        weight=0.5,
    )
    before = [p.detach().clone() for p in model.parameters()]
    sampler = TrackBatches(tracks, positions, tracks_per_batch=4, clips_per_track=3, batches_per_epoch=3)
    history = train(model, loss_fn, features, labels, sampler, epochs=1, device="cpu", progress=False)
    assert np.isfinite(history.step_losses).all() and history.step_losses[0] > 0
    assert all(not torch.equal(b, a.detach()) for b, a in zip(before, model.parameters()))


def test_label_matrix_stacks_concept_codes_and_tracks(smoke):
    matrix = label_matrix(smoke, CONCEPTS, track=True)
    assert matrix.shape == (len(smoke.meta), 5) and matrix.dtype == np.int64
    assert np.array_equal(matrix[:, 1], smoke.labels("mood")[0])
    same_track = smoke.meta["version_id"].to_numpy()[:, None] == smoke.meta["version_id"].to_numpy()
    assert np.array_equal(same_track, matrix[:, 4, None] == matrix[None, :, 4])


# --------------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------------


def epoch_batches(sampler, epoch):
    sampler.set_epoch(epoch)
    return [np.asarray(batch) for batch in sampler]


CONCEPT_LABELS = np.stack([np.arange(60) % 3, np.arange(60) % 4, np.arange(60) // 20], axis=1)


def test_concept_balanced_batches_take_the_concepts_in_turn():
    sampler = ConceptBalancedBatches(CONCEPT_LABELS, 3, 4, batches_per_epoch=9, seed=0)
    for index, batch in enumerate(epoch_batches(sampler, 0)):
        column = CONCEPT_LABELS[batch, index % 3]
        classes, counts = np.unique(column, return_counts=True)
        assert len(batch) == 12 and len(classes) == 3 and (counts == 4).all()
        assert sampler.concept_of_batch(index) == index % 3


def test_concept_balanced_batches_default_length_covers_every_concept():
    assert len(ConceptBalancedBatches(CONCEPT_LABELS[::7], 2, 2)) == 3  # 9 clips
    assert len(ConceptBalancedBatches(CONCEPT_LABELS, 2, 2)) == 60 // 4


@pytest.mark.parametrize(
    "make",
    [
        lambda: ConceptBalancedBatches(CONCEPT_LABELS, 2, 3, seed=5),
        lambda: TrackBatches(np.arange(60) // 6, np.arange(60) % 6, 3, 2, seed=5),
    ],
)
def test_same_epoch_same_batches_other_epoch_other_batches(make):
    first, again = epoch_batches(make(), 0), epoch_batches(make(), 0)
    other = epoch_batches(make(), 1)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other))


@pytest.mark.parametrize(
    "labels, args, message",
    [
        (np.arange(10), (2, 2), "concepts"),
        (np.zeros((0, 2)), (2, 2), "non-empty"),
        (CONCEPT_LABELS[:40], (3, 2), "concept column 2"),  # the first 40 have 2 eras
        (CONCEPT_LABELS, (2, 1), "at least 2"),
    ],
)
def test_concept_balanced_batches_reject_bad_input(labels, args, message):
    with pytest.raises(ValueError, match=message):
        ConceptBalancedBatches(labels, *args)


def test_track_batches_hold_p_tracks_of_k_spaced_clips():
    # Tracks of 7 clips with a hole at position 3; positions given shuffled within tracks.
    rng = np.random.default_rng(0)
    positions = np.tile([0, 1, 2, 4, 5, 6, 7], 10)
    order = rng.permutation(len(positions))
    tracks, positions = (np.arange(70) // 7)[order], positions[order]
    sampler = TrackBatches(
        tracks, positions, tracks_per_batch=4, clips_per_track=3, min_gap=3, batches_per_epoch=200, seed=1
    )
    for batch in epoch_batches(sampler, 0):
        assert len(batch) == 12 and len(np.unique(batch)) == 12
        names, counts = np.unique(tracks[batch], return_counts=True)
        assert len(names) == 4 and (counts == 3).all()
        for name in names:
            spaced = np.sort(positions[batch[tracks[batch] == name]])
            assert np.diff(spaced).min() >= 3


def test_track_batches_reach_every_spaced_choice():
    # One track 0..4 with min_gap 2 and K 3 fits only {0, 2, 4}; 0..5 also fits 5 at the end.
    tracks, positions = np.repeat([0, 1], 6), np.tile(np.arange(6), 2)
    sampler = TrackBatches(tracks, positions, 2, 3, min_gap=2, batches_per_epoch=300, seed=2)
    chosen = {tuple(np.sort(positions[batch[tracks[batch] == 0]])) for batch in epoch_batches(sampler, 0)}
    assert chosen == {(0, 2, 4), (0, 2, 5), (0, 3, 5), (1, 3, 5)}


def test_tracks_without_enough_spaced_clips_are_skipped(smoke):
    meta = smoke.meta
    sampler = TrackBatches(meta["version_id"], meta["clip"].to_numpy(), 4, 2, min_gap=2)
    assert len(sampler.usable_tracks) == meta["version_id"].nunique()  # 3 clips: 0 and 2
    short = np.repeat([0, 1, 2], [3, 5, 5])
    positions = np.concatenate([np.arange(3), np.arange(5), np.arange(5)])
    sampler = TrackBatches(short, positions, 2, 3, min_gap=2)
    assert list(sampler.usable_tracks) == [1, 2]
    with pytest.raises(ValueError, match="only 2 tracks"):
        TrackBatches(short, positions, 3, 3, min_gap=2)


@pytest.mark.parametrize(
    "positions, args, message",
    [
        (np.arange(12) % 6, (1, 2, 2), "tracks_per_batch >= 2"),
        (np.arange(12) % 6, (2, 1, 2), "clips_per_track >= 2"),
        (np.arange(12) % 6, (2, 2, 0), "min_gap >= 1"),
        (np.arange(11), (2, 2, 2), "clip_positions"),
        (np.arange(12) * 0.5, (2, 2, 2), "integers"),
        (np.zeros(12, dtype=int), (2, 2, 2), "only 0 tracks"),
    ],
)
def test_track_batches_reject_bad_input(positions, args, message):
    with pytest.raises(ValueError, match=message):
        TrackBatches(np.arange(12) // 6, positions, *args)


def test_learned_masks_are_seeded():
    first = ConceptMasks(CONCEPTS, 16, learned=True, seed=7).masks()
    assert torch.equal(first, ConceptMasks(CONCEPTS, 16, learned=True, seed=7).masks())
    assert not torch.equal(first, ConceptMasks(CONCEPTS, 16, learned=True, seed=8).masks())


# --------------------------------------------------------------------------------------------
# The eight models of the chapter, and their evaluation
# --------------------------------------------------------------------------------------------

SMALL_NET = {"embedding_dim": 16, "widths": (4, 8)}


def built(key, smoke, **options):
    torch.manual_seed(0)
    start = EmbeddingNet(**SMALL_NET).eval()
    setup = dict(classes_per_batch=2, clips_per_class=6, batches_per_epoch=3, tracks_per_batch=2, seed=0)
    return start, build_model(key, start, smoke, **{**setup, **options})


@pytest.mark.parametrize("key", list(MODELS))
def test_every_model_starts_from_the_start_network_with_the_labels_its_loss_reads(key, smoke):
    start, (network, loss, labels, sampler) = built(key, smoke)
    assert network is not start
    for (name, value), expected in zip(network.state_dict().items(), start.state_dict().values()):
        assert torch.equal(value, expected), name
    assert network.normalize == (key != "class_raw")
    n_tags = smoke.tags.shape[1]
    expected_columns = {"triplet_track": 5, "proxy": n_tags, "class_raw": n_tags, "class": n_tags}.get(key, 4)
    assert labels.shape == (len(smoke.meta), expected_columns)
    sampler.set_epoch(0)
    rows = next(iter(sampler))
    embeddings = network(torch.tensor(smoke.logmel[rows]))
    value = loss(embeddings.float(), torch.as_tensor(labels[rows]))
    assert value.ndim == 0 and torch.isfinite(value)
    is_disentangled = isinstance(getattr(loss, "concept_loss", loss), DisentangledLoss) and (
        getattr(loss, "concept_loss", loss).masks is not None
    )
    assert is_disentangled == (key in DISENTANGLED)


def test_one_seed_gives_the_same_proxies_and_batches(smoke):
    _, (_, first, _, first_sampler) = built("proxy_dis", smoke)
    _, (_, again, _, again_sampler) = built("proxy_dis", smoke)
    for a, b in zip(first.parameters(), again.parameters()):
        assert torch.equal(a, b)
    for sampler in (first_sampler, again_sampler):
        sampler.set_epoch(1)
    assert all(np.array_equal(a, b) for a, b in zip(first_sampler, again_sampler))
    with pytest.raises(KeyError, match="unknown model"):
        built("siamese", smoke)


def test_track_regularized_batches_end_with_pairs_of_spaced_clips_of_one_track(smoke):
    sampler = track_regularized_batches(smoke, 2, 6, tracks_per_batch=2, batches_per_epoch=3, seed=0)
    tracks, positions = label_matrix(smoke, CONCEPTS, track=True)[:, -1], smoke.meta["clip"].to_numpy()
    sampler.set_epoch(0)
    for rows in sampler:
        assert len(rows) == 2 * (6 - 2) + 4
        pairs = rows[-4:].reshape(2, 2)
        assert all(tracks[a] == tracks[b] and abs(positions[a] - positions[b]) >= 2 for a, b in pairs)
        assert tracks[pairs[0, 0]] != tracks[pairs[1, 0]]


def test_concept_recall_is_the_share_of_clips_whose_nearest_other_piece_clip_shares_the_label(smoke):
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(len(smoke.meta), 8, generator=generator))
    table = concept_recall(embeddings, smoke.meta, ks=(1,))
    distances = 1 - embeddings.numpy() @ embeddings.numpy().T
    pieces = smoke.meta.piece_id.to_numpy()
    distances[pieces[:, None] == pieces[None, :]] = np.inf
    nearest = distances.argmin(axis=1)
    for concept in CONCEPTS:
        labels = smoke.meta[concept].to_numpy()
        assert table.loc[concept, 1] == pytest.approx(np.mean(labels[nearest] == labels))


def test_tag_scores_are_cosines_to_class_vectors_or_block_centroids(smoke):
    scored = scorable_tags(smoke)
    for index, name in enumerate(smoke.tag_names):
        concept, value = name.split(":", 1)
        usable = smoke.tags[:, index].sum() > 0 and value in smoke.labels(concept)[1]
        assert (index in scored) == usable
    generator = torch.Generator().manual_seed(1)
    test, train_ = torch.randn(5, 16, generator=generator), torch.randn(len(smoke.meta), 16, generator=generator)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    _, (_, loss, _, _) = built("class", smoke)
    expected = unit(test.numpy()) @ unit(loss.class_vectors().detach().numpy()).T
    scores = tag_score_matrix("class", loss, test, None, smoke, scored)
    np.testing.assert_allclose(scores, expected[:, scored], atol=1e-5)
    scores = tag_score_matrix("triplet_dis", None, test, train_, smoke, scored)
    for column, tag in enumerate(scored):
        block = CONCEPTS.index(smoke.tag_names[tag].split(":")[0])
        part = slice(4 * block, 4 * block + 4)
        centroid = train_.numpy()[smoke.tags[:, tag] > 0, part].mean(axis=0)
        np.testing.assert_allclose(scores[:, column], unit(test.numpy()[:, part]) @ unit(centroid[None])[0], atol=1e-5)


def test_triplet_tables_stack_complete_spaces_before_sub_spaces():
    embeddings = torch.randn(12, 8, generator=torch.Generator().manual_seed(2))
    triplets = {"genre": (np.array([0, 1]), np.array([2, 3]), np.array([4, 5]))}
    masks = {c: np.repeat(np.eye(4)[i], 2) for i, c in enumerate(CONCEPTS)}
    with_masks = triplet_accuracy_table(embeddings, triplets, masks=masks)
    plain = triplet_accuracy_table(embeddings, triplets)
    assert list(with_masks.columns) == [*CONCEPTS, "overall"] and np.isnan(with_masks.loc["complete", "mood"])
    assert triplet_accuracy_table(embeddings, {}).empty
    table = spaces_table({"a": with_masks, "b": plain})
    assert list(table.index) == [("complete", "a"), ("complete", "b"), ("subspace", "a")]


def test_step_seconds_times_every_model(smoke):
    models = {key: built(key, smoke)[1] for key in ("triplet", "class")}
    seconds = step_seconds(models, smoke.logmel, rounds=2, device="cpu")
    assert set(seconds) == {"triplet", "class"} and all(0 < s < 60 for s in seconds.values())
