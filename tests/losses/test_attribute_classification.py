"""AttributeClassificationLoss: class vectors made from descriptions, against ClassificationLoss,
an independent computation and finite differences; new classes; and the input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlcourse.losses import AttributeClassificationLoss, ClassificationLoss

TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-10, atol=1e-12)}


def batch(dtype, n=12, dim=5, n_classes=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, dim, generator=generator, dtype=dtype).requires_grad_()
    codes = torch.arange(n) % n_classes
    tags = (torch.rand(n, n_classes, generator=generator) < 0.4).long()
    return embeddings, codes, tags


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("multi_label", [False, True])
def test_one_hot_descriptions_give_the_normalised_softmax(dtype, multi_label):
    """With the identity as descriptions, w_c = V[c]: ClassificationLoss with weight V."""
    embeddings, codes, tags = batch(dtype)
    labels = tags if multi_label else codes
    ours = AttributeClassificationLoss(torch.eye(4), 5, temperature=0.2, multi_label=multi_label, seed=1).to(dtype)
    theirs = ClassificationLoss(4, 5, temperature=0.2, multi_label=multi_label).to(dtype)
    with torch.no_grad():
        theirs.weight.copy_(ours.attribute_vectors)
    loss, reference = ours(embeddings, labels), theirs(embeddings, labels)
    torch.testing.assert_close(loss, reference, **TOLERANCE[dtype])
    (ours_e, ours_v) = torch.autograd.grad(loss, [embeddings, ours.attribute_vectors])
    (theirs_e, theirs_w) = torch.autograd.grad(reference, [embeddings, theirs.weight])
    torch.testing.assert_close(ours_e, theirs_e, **TOLERANCE[dtype])
    torch.testing.assert_close(ours_v, theirs_w, **TOLERANCE[dtype])


def test_logits_are_cosines_to_the_encoded_descriptions():
    rng = np.random.default_rng(0)
    attributes = rng.uniform(size=(3, 6))
    loss_fn = AttributeClassificationLoss(attributes, 4, temperature=0.5, seed=0).double()
    embeddings = rng.normal(size=(5, 4))
    vectors = loss_fn.attributes.numpy() @ loss_fn.attribute_vectors.detach().numpy()  # the stored descriptions
    cosines = (embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)) @ (
        vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    ).T
    np.testing.assert_allclose(loss_fn.logits(torch.from_numpy(embeddings)).detach().numpy(), cosines / 0.5)
    labels = np.array([0, 2, 1, 1, 0])
    log_softmax = cosines / 0.5 - np.log(np.exp(cosines / 0.5).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(5), labels].mean()
    assert loss_fn(torch.from_numpy(embeddings), torch.from_numpy(labels)).item() == pytest.approx(expected)


def test_the_gradient_reaches_every_attribute_vector_as_finite_differences_say():
    rng = np.random.default_rng(1)
    attributes = torch.from_numpy(rng.uniform(size=(3, 4)))
    embeddings = torch.from_numpy(rng.normal(size=(6, 5)))
    tags = torch.from_numpy((rng.uniform(size=(6, 3)) < 0.5).astype(np.int64))
    vectors = torch.from_numpy(rng.normal(size=(4, 5))).requires_grad_()

    def loss_of(v):
        logits = F.normalize(embeddings, dim=1) @ F.normalize(attributes @ v, dim=1).T / 0.3
        return F.binary_cross_entropy_with_logits(logits, tags.double())

    assert torch.autograd.gradcheck(loss_of, (vectors,))
    loss_fn = AttributeClassificationLoss(attributes, 5, temperature=0.3, multi_label=True).double()
    with torch.no_grad():
        loss_fn.attribute_vectors.copy_(vectors)
    loss = loss_fn(embeddings, tags)
    loss.backward()
    torch.testing.assert_close(loss_fn.attribute_vectors.grad, torch.autograd.grad(loss_of(vectors), vectors)[0])


def test_new_classes_get_vectors_from_their_descriptions_alone():
    loss_fn = AttributeClassificationLoss([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], 4, seed=0)
    vectors = loss_fn.attribute_vectors.detach()
    new = torch.tensor([[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
    torch.testing.assert_close(loss_fn.class_vectors(new), F.normalize(new @ vectors, dim=1))
    torch.testing.assert_close(loss_fn.class_vectors(), F.normalize(vectors[:2], dim=1))
    assert not loss_fn.class_vectors(new).requires_grad


def test_training_lowers_the_loss_and_moves_the_attribute_vectors():
    rng = np.random.default_rng(0)
    attributes = np.eye(3) + 0.2
    codes = np.repeat(np.arange(3), 20)
    embeddings = torch.from_numpy(rng.normal(size=(60, 4)) + 3 * np.eye(3, 4)[codes]).float()
    loss_fn = AttributeClassificationLoss(attributes, 4, seed=0)
    start = loss_fn.attribute_vectors.detach().clone()
    optimizer = torch.optim.Adam(loss_fn.parameters(), lr=0.05)
    with torch.no_grad():
        first = float(loss_fn(embeddings, torch.from_numpy(codes)))
    for _ in range(50):
        optimizer.zero_grad()
        loss = loss_fn(embeddings, torch.from_numpy(codes))
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 2 and not torch.equal(start, loss_fn.attribute_vectors.detach())
    assert loss_fn.last_stats["accuracy"] > 0.9


@pytest.mark.parametrize(
    "attributes, message",
    [
        (np.ones(3), "one description per class"),
        (np.zeros((2, 0)), "one description per class"),
        ([[1.0, np.nan]], "finite"),
        ([[1.0, 0.0], [0.0, 0.0]], r"rows \[1\] are all zeros"),
    ],
)
def test_bad_descriptions_are_explained(attributes, message):
    with pytest.raises(ValueError, match=message):
        AttributeClassificationLoss(attributes, 4)


def test_new_descriptions_must_have_the_trained_columns():
    loss_fn = AttributeClassificationLoss(np.eye(3), 4)
    with pytest.raises(ValueError, match="the 3 columns the loss was trained with, got 2"):
        loss_fn.class_vectors(np.eye(2))
    with pytest.raises(ValueError, match="temperature"):
        AttributeClassificationLoss(np.eye(3), 4, temperature=0)
    with pytest.raises(ValueError, match="embedding_dim"):
        AttributeClassificationLoss(np.eye(3), 0)
