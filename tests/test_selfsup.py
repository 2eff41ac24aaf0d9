"""Self-supervised training pieces: samplers, discriminators, the adversarial prior, steps, evaluation."""

from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import RidgeClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from torch.nn import functional as F

from mlcourse.data.samplers import AdjacentPairBatches, RandomBatches, pair_halves
from mlcourse.losses import adjacency_dssm_loss, nt_xent_loss
from mlcourse.models import AdjacencyDiscriminator, Discriminator, EmbeddingNet
from mlcourse.selfsup import (
    METHODS,
    AdjacencyDiscriminatorLoss,
    AdjacencyStep,
    AugmentedViewsStep,
    GaussianPrior,
    evaluate_embedding,
    evaluate_network,
    mean_and_std,
    representations,
    train_self_supervised,
)
from mlcourse.train import embed, train

# Six recordings of four clips each: clip k of recording r is row 4 r + k.
GROUPS = np.repeat(np.arange(6), 4)
NEXT = np.array([i + 1 if i % 4 < 3 else -1 for i in range(24)])


# --- samplers -------------------------------------------------------------------------------


def test_adjacent_pairs_are_successors_from_distinct_recordings():
    sampler = AdjacentPairBatches(NEXT, 5, groups=GROUPS, batches_per_epoch=20, seed=3)
    for batch in sampler:
        queries, positives = pair_halves(batch)
        assert np.array_equal(positives, NEXT[queries])
        assert len(set(GROUPS[queries])) == len(queries)
        assert (NEXT[queries] >= 0).all()


def test_adjacent_pairs_are_seeded_by_epoch():
    first = AdjacentPairBatches(NEXT, 4, groups=GROUPS, batches_per_epoch=3, seed=1)
    second = AdjacentPairBatches(NEXT, 4, groups=GROUPS, batches_per_epoch=3, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    second.set_epoch(1)
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))


def test_adjacent_pairs_reject_bad_input():
    with pytest.raises(ValueError, match="between 2 and the 6 recordings"):
        AdjacentPairBatches(NEXT, 7, groups=GROUPS)
    with pytest.raises(ValueError, match="outside"):
        AdjacentPairBatches(np.array([1, 5, -1]), 2)
    with pytest.raises(ValueError, match="one entry per clip"):
        AdjacentPairBatches(NEXT, 2, groups=GROUPS[:-1])


def test_random_batches_hold_distinct_clips():
    sampler = RandomBatches(50, 10, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5
    assert all(len(set(b)) == 10 and b.max() < 50 for b in batches)
    with pytest.raises(ValueError, match="batch_size"):
        RandomBatches(5, 6)


# --- discriminators and the prior ----------------------------------------------------------


def test_adjacency_discriminator_ignores_the_order_of_the_pair():
    torch.manual_seed(0)
    judge = AdjacencyDiscriminator(8)
    a, b = torch.randn(5, 8), torch.randn(5, 8)
    assert judge(a, b).shape == (5,)
    assert torch.allclose(judge(a, b), judge(b, a))
    with pytest.raises(ValueError, match="differ in shape"):
        judge(a, b[:, :4])


def test_discriminator_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"\(batch, 8\)"):
        Discriminator(8)(torch.zeros(3, 5))


def test_adjacency_discriminator_loss_is_the_bce_of_true_and_shifted_pairs():
    torch.manual_seed(1)
    loss_fn = AdjacencyDiscriminatorLoss(6)
    queries, positives = torch.randn(4, 6), torch.randn(4, 6)
    judge = loss_fn.discriminator
    expected = 0.5 * (
        -F.logsigmoid(judge(queries, positives)).mean() - F.logsigmoid(-judge(queries, positives[[3, 0, 1, 2]])).mean()
    )
    assert torch.allclose(loss_fn(queries, positives), expected, atol=1e-6)
    assert 0.0 <= loss_fn.last_accuracy <= 1.0


def test_prior_encoder_loss_is_minus_log_d():
    prior = GaussianPrior(4, seed=0)
    z = torch.randn(7, 4)
    expected = -F.logsigmoid(prior.discriminator(z)).mean()
    assert torch.allclose(prior.encoder_loss(z), expected, atol=1e-6)


def test_prior_discriminator_learns_to_tell_gaussian_from_shifted_codes():
    prior = GaussianPrior(4, seed=0)
    fake = torch.full((64, 4), 3.0)  # far from N(0, I)
    losses = [prior.discriminator_step(fake).item() for _ in range(200)]
    assert losses[-1] < 0.2 * losses[0]
    assert prior.discriminator_losses == pytest.approx(losses)
    # It tells them apart: real samples score higher than the fake codes.
    real = torch.randn(256, 4, generator=torch.Generator().manual_seed(9))
    assert prior.discriminator(real).mean() > prior.discriminator(fake).mean() + 2


def test_prior_is_seeded():
    first, second = GaussianPrior(4, seed=5), GaussianPrior(4, seed=5)
    z = torch.randn(8, 4)
    assert first.discriminator_step(z).item() == second.discriminator_step(z).item()


# --- training steps -------------------------------------------------------------------------


class Linear(torch.nn.Module):
    """A tiny embedding network over flat features, for step tests."""

    def __init__(self, width=5, dim=3):
        super().__init__()
        torch.manual_seed(0)
        self.map = torch.nn.Linear(width, dim)

    def forward(self, x):
        return self.map(x.flatten(1).float())


def test_adjacency_step_embeds_queries_and_successors():
    model, features = Linear(), torch.randn(24, 5)
    batch = np.array([0, 4, 8, 1, 5, 9])
    step = AdjacencyStep()
    loss = step(model, adjacency_dssm_loss, features, None, batch)
    expected = adjacency_dssm_loss(model(features[[0, 4, 8]]), model(features[[1, 5, 9]]))
    assert torch.allclose(loss, expected)
    assert len(step.easy_fractions) == 1 and step.prior_losses == []


def test_adjacency_step_adds_the_prior_and_keeps_its_discriminator_out_of_the_model():
    model, features = Linear(), torch.randn(24, 5)
    batch = np.array([0, 4, 8, 1, 5, 9])
    prior = GaussianPrior(3, seed=0)
    step = AdjacencyStep(prior=prior, prior_weight=0.5)
    loss = step(model, adjacency_dssm_loss, features, None, batch)
    embeddings = model(features[batch])
    expected = adjacency_dssm_loss(*embeddings.chunk(2)) + 0.5 * prior.encoder_loss(embeddings)
    assert torch.allclose(loss, expected, atol=1e-6)
    assert len(prior.discriminator_losses) == 1 and len(step.prior_losses) == 1
    model_ids = {id(p) for p in model.parameters()}
    assert not any(id(p) in model_ids for p in prior.discriminator.parameters())


def test_augmented_views_step_compares_two_different_views():
    model, features = Linear(width=6), torch.randn(10, 2, 3)
    calls = []

    def augment(x):  # a deterministic "augmentation": a different offset at each call
        calls.append(1)
        return x + len(calls)

    loss = AugmentedViewsStep(augment)(model, nt_xent_loss, features, None, np.arange(4))
    expected = nt_xent_loss(model(features[:4] + 1), model(features[:4] + 2))
    assert torch.allclose(loss, expected, atol=1e-6)
    assert len(calls) == 2


def test_adjacency_step_augments_every_clip_of_the_pairs():
    model, features = Linear(), torch.randn(24, 5)
    batch = np.array([0, 4, 8, 1, 5, 9])
    seen = []

    def augment(x):  # records what it alters; "alters" each row by its own offset
        seen.append(x.clone())
        return x + torch.arange(len(x), dtype=x.dtype)[:, None]

    loss = AdjacencyStep(augment=augment)(model, adjacency_dssm_loss, features, None, batch)
    assert len(seen) == 1 and torch.equal(seen[0], features[batch])  # queries and successors, once
    altered = features[batch] + torch.arange(6, dtype=features.dtype)[:, None]
    expected = adjacency_dssm_loss(model(altered[:3]), model(altered[3:]))
    assert torch.allclose(loss, expected, atol=1e-6)


def _clips(n=24, seed=0):
    return torch.randn(n, 128, 130, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("method", METHODS)
def test_train_self_supervised_starts_from_the_untrained_network_of_its_seed(method):
    started_from = {}

    def record_start(net, *args, **kwargs):
        started_from.setdefault("state", {k: v.clone() for k, v in net.state_dict().items()})

    with mock.patch("mlcourse.selfsup.train", side_effect=record_start) as fake:
        net, easy = train_self_supervised(
            method,
            _clips(),
            NEXT,
            GROUPS,
            embedding_dim=8,
            epochs=2,
            batches_per_epoch=1,
            batch_size=3,
            augment=lambda x: x,
            seed=5,
        )
    torch.manual_seed(5)
    untrained = EmbeddingNet(8, normalize=(method == "SimCLR"))
    assert all(torch.equal(started_from["state"][k], v) for k, v in untrained.state_dict().items())
    assert net.normalize == (method == "SimCLR")
    stages = [call.kwargs["step"] for call in fake.call_args_list]
    assert len(stages) == (2 if method == "A-AdjD" else 1)  # A-AdjD: alone, then with the prior
    if method == "SimCLR":
        assert isinstance(stages[0], AugmentedViewsStep)
    else:
        assert [step.prior is not None for step in stages] == {
            "DSSM": [False],
            "A-DSSM": [True],
            "A-AdjD": [False, True],
        }[method]
        assert all(step.augment is not None for step in stages)


def test_train_self_supervised_records_easy_fractions_and_is_seeded():
    kwargs = dict(embedding_dim=8, epochs=2, batches_per_epoch=2, batch_size=3, seed=1, device="cpu")
    first, easy = train_self_supervised("A-AdjD", _clips(), NEXT, GROUPS, **kwargs)
    again, _ = train_self_supervised("A-AdjD", _clips(), NEXT, GROUPS, **kwargs)
    assert len(easy) == 4 and all(0 <= f <= 1 for f in easy)  # two stages of one epoch, two steps each
    assert not first.training
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    _, simclr_easy = train_self_supervised("SimCLR", _clips(), NEXT, GROUPS, augment=lambda x: x + 1, **kwargs)
    assert simclr_easy == []


def test_train_self_supervised_rejects_unknown_methods_and_simclr_without_augment():
    with pytest.raises(ValueError, match="unknown method"):
        train_self_supervised("BYOL", _clips(), NEXT, GROUPS)
    with pytest.raises(ValueError, match="SimCLR needs an augment"):
        train_self_supervised("SimCLR", _clips(), NEXT, GROUPS)


@pytest.mark.parametrize("normalize", [False, True])
def test_representations_are_the_backbone_and_the_network_outputs(normalize):
    torch.manual_seed(0)
    net = EmbeddingNet(8, normalize=normalize, widths=(4, 8)).eval()
    clips = _clips(10)
    representation, embedding = representations(net, clips, batch_size=4)
    with torch.no_grad():
        assert torch.allclose(representation, net.backbone(clips), atol=1e-5)
        assert torch.allclose(embedding, net(clips), atol=1e-5)


def test_evaluate_network_scores_the_representation_and_the_embedding():
    torch.manual_seed(0)
    net = EmbeddingNet(8, normalize=False, widths=(4, 8)).eval()
    train_meta, test_meta = _meta(4, 2, 3), _meta(3, 2, 3, seed=1)
    train_clips, test_clips = _clips(len(train_meta)), _clips(len(test_meta), seed=1)
    scores = evaluate_network(net, train_clips, train_meta, test_clips, test_meta)
    with torch.no_grad():
        expected = {
            "representation": evaluate_embedding(
                net.backbone(train_clips), train_meta, net.backbone(test_clips), test_meta
            ),
            "embedding": evaluate_embedding(net(train_clips), train_meta, net(test_clips), test_meta),
        }
    for part in expected:
        assert scores[part] == pytest.approx(expected[part], abs=1e-6)


def test_adjacency_training_pulls_adjacent_clips_together(smoke):
    """DSSM on the smoke training scores: adjacent clips end closer, relative to other pairs."""
    data = smoke.subset(smoke.meta.split.to_numpy() == "train")
    rolls = data.pianoroll
    groups = data.meta.version_id.to_numpy()
    has_next = np.flatnonzero(data.next_index >= 0)
    rng = np.random.default_rng(0)
    first, second = rng.integers(len(data), size=(2, 400))
    unrelated = groups[first] != groups[second]

    def ratio(net):
        z = embed(net, rolls).numpy()
        adjacent = np.linalg.norm(z[has_next] - z[data.next_index[has_next]], axis=1).mean()
        other = np.linalg.norm(z[first[unrelated]] - z[second[unrelated]], axis=1).mean()
        return adjacent / other

    torch.manual_seed(0)
    net = EmbeddingNet(16, normalize=False, widths=(8, 16))
    before = ratio(net)
    sampler = AdjacentPairBatches(data.next_index, 16, groups=groups, batches_per_epoch=15, seed=0)
    train(
        net,
        adjacency_dssm_loss,
        rolls,
        None,
        sampler,
        epochs=3,
        seed=0,
        device="cpu",
        step=AdjacencyStep(),
        progress=False,
    )
    after = ratio(net)
    assert after < 0.85 * before, (before, after)


# --- evaluation -----------------------------------------------------------------------------


def _meta(n_pieces, versions, clips, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for piece in range(n_pieces):
        for version in range(versions):
            for clip in range(clips):
                rows.append(
                    {
                        "piece_id": f"p{piece}",
                        "version_id": f"p{piece}-v{version}",
                        "genre": f"g{piece % 3}",
                        "mood": f"m{rng.integers(2)}",
                        "instrument": f"i{version}",
                        "era": f"e{piece % 2}",
                    }
                )
    return pd.DataFrame(rows)


def test_evaluate_embedding_agrees_with_scikit_learn():
    train_meta, test_meta = _meta(6, 2, 3, seed=0), _meta(4, 3, 2, seed=1)
    rng = np.random.default_rng(2)
    train_x, test_x = rng.normal(size=(len(train_meta), 5)), rng.normal(size=(len(test_meta), 5))
    scores = evaluate_embedding(train_x, train_meta, test_x, test_meta, k=3)
    for concept in ("genre", "instrument"):
        knn = KNeighborsClassifier(3).fit(train_x, train_meta[concept]).score(test_x, test_meta[concept])
        assert scores[f"{concept} kNN"] == pytest.approx(knn)
        scaler = StandardScaler().fit(train_x)
        probe = RidgeClassifier().fit(scaler.transform(train_x), train_meta[concept])
        assert scores[f"{concept} probe"] == pytest.approx(probe.score(scaler.transform(test_x), test_meta[concept]))


def test_version_map_is_one_for_a_piece_code_and_low_for_noise():
    train_meta, test_meta = _meta(3, 2, 2), _meta(5, 3, 2)
    codes = pd.factorize(test_meta.piece_id)[0]
    perfect = np.eye(5)[codes]
    noise = np.random.default_rng(0).normal(size=(len(test_meta), 5))
    train_x = np.random.default_rng(1).normal(size=(len(train_meta), 5))
    assert evaluate_embedding(train_x, train_meta, perfect, test_meta)["version mAP"] == pytest.approx(1.0)
    assert evaluate_embedding(train_x, train_meta, noise, test_meta)["version mAP"] < 0.6


def test_evaluate_embedding_rejects_mismatched_lengths():
    meta = _meta(3, 2, 2)
    with pytest.raises(ValueError, match="one embedding per clip"):
        evaluate_embedding(np.zeros((5, 2)), meta, np.zeros((len(meta), 2)), meta)


def test_mean_and_std_over_seeds():
    table = pd.DataFrame({"method": ["a", "a", "a", "b"], "seed": [0, 1, 2, 0], "score": [0.1, 0.2, 0.6, 0.5]})
    summary = mean_and_std(table)
    assert list(summary.columns) == ["score"]
    assert summary.loc["a", "score"] == f"{np.mean([0.1, 0.2, 0.6]):.3f} ± {np.std([0.1, 0.2, 0.6], ddof=1):.3f}"
    assert summary.loc["b", "score"] == "0.500 ± 0.000"
