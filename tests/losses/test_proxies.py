"""mlcourse.losses, classification and proxies: values and gradients against
pytorch-metric-learning, multi-label forms against loops, training, and the input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses as pml_losses

from mlcourse.losses import (
    ClassificationLoss,
    ProxyNCALoss,
    check_class_labels,
    logits_loss,
    normalized_softmax_logits,
    proxy_nca_logits,
    proxy_nca_loss,
)
from mlcourse.train import train

DTYPES = [torch.float32, torch.float64]
TOLERANCE = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-9, atol=1e-11)}
# (seed, batch size, number of classes, embedding dimension)
BATCHES = [(0, 7, 3, 4), (1, 32, 6, 16), (2, 50, 10, 8)]


def random_batch(seed, batch_size, n_classes, dim, dtype):
    """Embeddings (requiring grad), class codes, and multi-hot tags with an empty row and a
    full row, so that clips with no tag and with no negative tag are covered."""
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(batch_size, dim, generator=generator, dtype=dtype)
    codes = torch.randint(0, n_classes, (batch_size,), generator=generator)
    tags = (torch.rand(batch_size, n_classes, generator=generator) < 0.3).long()
    tags[0] = 0
    tags[1] = 1
    return embeddings.requires_grad_(), codes, tags


def gradients(loss, *tensors):
    return torch.autograd.grad(loss, tensors)


# --------------------------------------------------------------------------------------------
# Against pytorch-metric-learning
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("temperature", [0.05, 0.5])
def test_normalized_classifier_equals_pml_normalized_softmax(dtype, batch, temperature):
    seed, batch_size, n_classes, dim = batch
    embeddings, codes, _ = random_batch(seed, batch_size, n_classes, dim, dtype)
    ours = ClassificationLoss(n_classes, dim, temperature=temperature).to(dtype)
    theirs = pml_losses.NormalizedSoftmaxLoss(n_classes, dim, temperature=temperature)
    with torch.no_grad():
        # pml keeps its class vectors as the columns of a (D, C) matrix.
        theirs.W.data = ours.weight.detach().T.clone().to(dtype)
    our_loss, their_loss = ours(embeddings, codes), theirs(embeddings, codes)
    torch.testing.assert_close(our_loss, their_loss, **TOLERANCE[dtype])
    our_grads = gradients(our_loss, embeddings, ours.weight)
    their_grads = gradients(their_loss, embeddings, theirs.W)
    torch.testing.assert_close(our_grads[0], their_grads[0], **TOLERANCE[dtype])
    torch.testing.assert_close(our_grads[1], their_grads[1].T, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("softmax_scale", [1.0, 9.0])
def test_proxy_nca_equals_pml_proxy_nca(dtype, batch, softmax_scale):
    seed, batch_size, n_classes, dim = batch
    embeddings, codes, _ = random_batch(seed, batch_size, n_classes, dim, dtype)
    ours = ProxyNCALoss(n_classes, dim, softmax_scale=softmax_scale).to(dtype)
    theirs = pml_losses.ProxyNCALoss(n_classes, dim, softmax_scale=softmax_scale)
    with torch.no_grad():
        theirs.proxies.data = ours.proxies.detach().clone()
    our_loss, their_loss = ours(embeddings, codes), theirs(embeddings, codes)
    torch.testing.assert_close(our_loss, their_loss, **TOLERANCE[dtype])
    our_grads = gradients(our_loss, embeddings, ours.proxies)
    their_grads = gradients(their_loss, embeddings, theirs.proxies)
    for our_grad, their_grad in zip(our_grads, their_grads):
        torch.testing.assert_close(our_grad, their_grad, **TOLERANCE[dtype])


# --------------------------------------------------------------------------------------------
# Against independent computations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
def test_unnormalized_classifier_equals_a_linear_layer_and_cross_entropy(dtype, batch):
    seed, batch_size, n_classes, dim = batch
    embeddings, codes, _ = random_batch(seed, batch_size, n_classes, dim, dtype)
    ours = ClassificationLoss(n_classes, dim, normalize=False).to(dtype)
    with torch.no_grad():
        ours.bias.normal_()
    linear = torch.nn.Linear(dim, n_classes, dtype=dtype)
    linear.load_state_dict({"weight": ours.weight.detach(), "bias": ours.bias.detach()})
    our_loss = ours(embeddings, codes)
    their_loss = torch.nn.functional.cross_entropy(linear(embeddings), codes)
    torch.testing.assert_close(our_loss, their_loss, **TOLERANCE[dtype])
    our_grads = gradients(our_loss, embeddings, ours.weight, ours.bias)
    their_grads = gradients(their_loss, embeddings, linear.weight, linear.bias)
    for our_grad, their_grad in zip(our_grads, their_grads):
        torch.testing.assert_close(our_grad, their_grad, **TOLERANCE[dtype])


def loop_binary_cross_entropy(logits, tags):
    """Mean over clips and tags of -[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))]."""
    total = 0.0
    for row, tag_row in zip(logits, tags):
        for z, y in zip(row, tag_row):
            probability = 1.0 / (1.0 + math.exp(-z))
            total -= math.log(probability) if y else math.log(1.0 - probability)
    return total / logits.size


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("batch", BATCHES)
def test_multi_label_classifier_equals_a_loop(normalize, batch):
    seed, batch_size, n_classes, dim = batch
    embeddings, _, tags = random_batch(seed, batch_size, n_classes, dim, torch.float64)
    ours = ClassificationLoss(n_classes, dim, normalize=normalize, temperature=0.2, multi_label=True).double()
    e, w = embeddings.detach().numpy(), ours.weight.detach().numpy()
    if normalize:
        logits = (e / np.linalg.norm(e, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T / 0.2
    else:
        logits = e @ w.T + ours.bias.detach().numpy()
    expected = loop_binary_cross_entropy(logits, tags.numpy())
    assert float(ours(embeddings, tags).detach()) == pytest.approx(expected, rel=1e-10)


def loop_multi_label_proxy_nca(embeddings, proxies, tags, softmax_scale):
    """The multi-label Proxy-NCA loss of the docstring, clip by clip and tag by tag."""
    clip_losses = []
    for e, tag_row in zip(embeddings, tags):
        e = e / np.linalg.norm(e)
        similarity = [math.exp(-softmax_scale * float(np.sum((e - p / np.linalg.norm(p)) ** 2))) for p in proxies]
        positives = [c for c, y in enumerate(tag_row) if y]
        negative_sum = sum(similarity[c] for c, y in enumerate(tag_row) if not y)
        terms = [-math.log(similarity[t] / (similarity[t] + negative_sum)) for t in positives]
        if terms:
            clip_losses.append(sum(terms) / len(terms))
    return sum(clip_losses) / len(clip_losses) if clip_losses else 0.0


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("softmax_scale", [1.0, 9.0])
def test_multi_label_proxy_nca_equals_a_loop(batch, softmax_scale):
    seed, batch_size, n_classes, dim = batch
    embeddings, _, tags = random_batch(seed, batch_size, n_classes, dim, torch.float64)
    ours = ProxyNCALoss(n_classes, dim, softmax_scale, multi_label=True).double()
    expected = loop_multi_label_proxy_nca(
        embeddings.detach().numpy(), ours.proxies.detach().numpy(), tags.numpy(), softmax_scale
    )
    loss = ours(embeddings, tags)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-10)
    # The full row (clip 1) has no negative tag: its gradient must be 0, not NaN.
    embedding_grad, proxy_grad = gradients(loss, embeddings, ours.proxies)
    assert torch.isfinite(proxy_grad).all()
    assert torch.equal(embedding_grad[1], torch.zeros(dim, dtype=torch.float64))


def test_multi_label_proxy_nca_gradient_matches_finite_differences():
    embeddings, _, tags = random_batch(3, 6, 4, 5, torch.float64)
    proxies = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda e, p: proxy_nca_loss(e, tags, p, 3.0, multi_label=True), (embeddings, proxies)
    )


def test_multi_label_proxy_nca_without_any_tag_is_a_differentiable_zero():
    embeddings = torch.randn(4, 3, requires_grad=True)
    loss = ProxyNCALoss(5, 3, multi_label=True)(embeddings, torch.zeros(4, 5))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(embeddings.grad, torch.zeros(4, 3))


def test_proxy_nca_is_a_normalized_softmax_at_temperature_one_over_twice_the_scale():
    # ||e - p||^2 = 2 - 2 cos(e, p) for unit vectors: the logits differ by a constant per row.
    embeddings, codes, _ = random_batch(4, 20, 5, 6, torch.float64)
    proxies = torch.randn(5, 6, dtype=torch.float64)
    nca = proxy_nca_logits(embeddings, proxies, softmax_scale=4.0)
    cosine = normalized_softmax_logits(embeddings, proxies, temperature=1 / 8)
    torch.testing.assert_close(nca - cosine, torch.full_like(nca, -8.0))
    torch.testing.assert_close(proxy_nca_loss(embeddings, codes, proxies, 4.0), logits_loss(cosine, codes))


def test_last_stats_and_class_vectors():
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.1]])
    for loss_fn in (ClassificationLoss(3, 2), ProxyNCALoss(3, 2)):
        vectors = loss_fn.weight if isinstance(loss_fn, ClassificationLoss) else loss_fn.proxies
        with torch.no_grad():
            vectors.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0], [-3.0, 0.0]]))
        loss_fn(embeddings, torch.tensor([0, 1, 1]))
        assert loss_fn.last_stats["accuracy"] == pytest.approx(2 / 3)
        torch.testing.assert_close(loss_fn.class_vectors(), torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
        loss_fn.multi_label = True
        loss_fn(embeddings, torch.tensor([[0, 1, 0], [0, 1, 1], [0, 0, 0]]))
        assert loss_fn.last_stats["top_tag_hit"] == pytest.approx(1 / 2)


def test_float64_embeddings_train_float32_class_vectors():
    loss_fn = ProxyNCALoss(3, 4)
    loss_fn(torch.randn(5, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1])).backward()
    assert loss_fn.proxies.grad.dtype == torch.float32 and loss_fn.proxies.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


class FixedBatches:
    """The sampler interface of mlcourse.train: index arrays, ``len`` and ``set_epoch``."""

    def __init__(self, n_samples, batch_size):
        self.batches = [
            np.arange(start, min(start + batch_size, n_samples)) for start in range(0, n_samples, batch_size)
        ]

    def set_epoch(self, epoch):
        pass

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


@pytest.mark.parametrize(
    "make_loss",
    [
        lambda: ClassificationLoss(4, 8, temperature=0.1),
        lambda: ClassificationLoss(4, 8, normalize=False),
        lambda: ProxyNCALoss(4, 8, softmax_scale=4.0),
        lambda: ProxyNCALoss(4, 8, softmax_scale=4.0, multi_label=True),
    ],
)
def test_training_lowers_the_loss_and_moves_the_class_vectors(make_loss):
    generator = torch.Generator().manual_seed(0)
    codes = torch.arange(64) % 4
    features = 3 * torch.eye(4, 12)[codes] + 0.3 * torch.randn(64, 12, generator=generator)
    loss_fn = make_loss()
    labels = torch.eye(4, dtype=torch.long)[codes] if loss_fn.multi_label else codes
    model = torch.nn.Linear(12, 8)
    before_vectors = loss_fn.class_vectors().clone()
    with torch.no_grad():
        before = float(loss_fn(model(features), labels))
    train(model, loss_fn, features, labels, FixedBatches(64, 16), epochs=10, lr=0.05, device="cpu", progress=False)
    with torch.no_grad():
        after = float(loss_fn(model(features), labels))
    assert after < 0.5 * before
    assert (loss_fn.class_vectors() - before_vectors).abs().max() > 1e-2


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_loss", [ClassificationLoss, ProxyNCALoss])
def test_bad_labels_are_explained(make_loss):
    single, multi = make_loss(3, 4), make_loss(3, 4, multi_label=True)
    embeddings = torch.randn(5, 4)
    bad_single = {
        "lie in": torch.tensor([0, 1, 2, 3, 0]),
        "lie in \\[0, 3\\)": torch.tensor([0, -1, 2, 1, 0]),
        "one label per sample": torch.tensor([0, 1, 2]),
        "1-D": torch.zeros(5, 3, dtype=torch.long),
        "integer class codes": torch.tensor([0.0, 1, 2, 1, 0]),
    }
    for message, labels in bad_single.items():
        with pytest.raises(ValueError, match=message):
            single(embeddings, labels)
    bad_multi = {
        "shape \\(B, C\\)": torch.zeros(5, 4),
        "only 0s and 1s": torch.tensor([[0, 2, 1]] * 5),
        "threshold": torch.full((5, 3), 0.5),
    }
    for message, labels in bad_multi.items():
        with pytest.raises(ValueError, match=message):
            multi(embeddings, labels)
    with pytest.raises(ValueError, match="embedding_dim=6"):
        single(torch.randn(5, 6), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="shape \\(B, D\\)"):
        single(torch.randn(4), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="labels are required"):
        single(embeddings, None)


def test_bad_hyper_parameters_are_explained():
    for temperature in (0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="temperature must be a number > 0"):
            ClassificationLoss(3, 4, temperature=temperature)
        with pytest.raises(ValueError, match="temperature must be a number > 0"):
            normalized_softmax_logits(torch.randn(2, 4), torch.randn(3, 4), temperature)
    with pytest.raises(ValueError, match="softmax_scale must be a number > 0"):
        ProxyNCALoss(3, 4, softmax_scale=0)
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        ProxyNCALoss(0, 4)
    with pytest.raises(ValueError, match="embedding_dim must be a positive integer"):
        ClassificationLoss(3, 2.5)
    with pytest.raises(ValueError, match="differ: move one"):
        proxy_nca_logits(torch.randn(2, 4), torch.randn(3, 4, dtype=torch.float64))


def test_check_class_labels_accepts_numpy_and_bool_tags():
    codes = check_class_labels(np.array([2, 0, 1], dtype=np.uint8), 3, 3, multi_label=False)
    assert codes.dtype == torch.int64 and codes.tolist() == [2, 0, 1]
    tags = check_class_labels(np.eye(3, dtype=bool), 3, 3, multi_label=True)
    assert tags.dtype == torch.bool


def test_class_counts_may_be_numpy_integers():
    """``n_classes=labels.max() + 1``, as the error messages suggest, is a numpy integer."""
    labels = np.array([0, 2, 1, 2])
    for loss in (ClassificationLoss(labels.max() + 1, np.int64(4)), ProxyNCALoss(labels.max() + 1, 4)):
        assert loss.class_vectors().shape == (3, 4)


@pytest.mark.parametrize("make", [lambda **kw: ClassificationLoss(5, 8, **kw), lambda **kw: ProxyNCALoss(5, 8, **kw)])
def test_class_vectors_are_seeded_by_seed_and_by_the_global_generator_without_one(make):
    assert torch.equal(make(seed=3).class_vectors(), make(seed=3).class_vectors())
    assert not torch.equal(make(seed=3).class_vectors(), make(seed=4).class_vectors())
    torch.manual_seed(0)
    first = make().class_vectors()
    torch.manual_seed(0)
    assert torch.equal(first, make().class_vectors())
