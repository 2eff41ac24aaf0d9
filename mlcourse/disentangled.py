"""Disentangled embeddings: one loss per concept, each on its own sub-space; track regularization.

A clip of music is similar to another in several ways at once: same genre, same mood, same
instrument, same era. One embedding trained on all concepts mixes them, so a nearest
neighbour may share the genre but not the mood. A *disentangled* embedding gives each concept
a sub-space of its own (Conditional Similarity Networks, Veit et al., 2017; Lee et al., ICASSP
2020 and ISMIR 2020): with 4 concepts and 256 dimensions, genre owns dimensions 0-63, mood
64-127, and so on, and each concept's loss only sees its own dimensions.

The two losses live with the other losses, in :mod:`mlcourse.losses.disentangled`:

* :class:`DisentangledLoss` adds up (averages) one loss per concept, each computed on that
  concept's masked embedding (see :class:`mlcourse.models.ConceptMasks`); without masks, it is
  the plain multi-concept model, every loss on the complete embedding. The per-concept losses
  can be of any kind with a ``loss(embeddings, labels)`` call: triplet, proxy or
  classification.
* :class:`TrackRegularizedLoss` adds a loss whose positives are other clips of the same track
  (non-overlapping segments of one rendering, drawn by
  :class:`mlcourse.data.samplers.TrackBatches`): ``L = L_concept + lambda * L_track``.

Labels are a (B, S) matrix of integer codes, one column per concept, plus a last column of
track ids for :class:`TrackRegularizedLoss`; :func:`label_matrix` builds it from a dataset.

Taught in notebooks/06_disentangled.ipynb
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from .data import CONCEPTS
from .data.samplers import ConcatBatches, ConceptBalancedBatches, TrackBatches
from .losses import ClassificationLoss, DisentangledLoss, ProxyNCALoss, TrackRegularizedLoss, TripletMarginLoss
from .metrics import class_centroids, concept_triplet_accuracy, recall_at_k, tag_scores
from .models import ConceptMasks, EmbeddingNet
from .train import choose_device

__all__ = [
    "DISENTANGLED",
    "DISTANCE",
    "DisentangledLoss",
    "MODELS",
    "PAPER_TABLE_1",
    "PAPER_TABLE_2",
    "TrackRegularizedLoss",
    "build_model",
    "concept_recall",
    "label_matrix",
    "scorable_tags",
    "spaces_table",
    "step_seconds",
    "tag_score_matrix",
    "track_regularized_batches",
    "triplet_accuracy_table",
]

# The eight models of Lee et al. (ISMIR 2020), table 1, in the paper's order.
MODELS = {
    "triplet": "Triplet",
    "triplet_dis": "Triplet, disentangled",
    "triplet_track": "Triplet + track reg.",
    "proxy": "Proxy",
    "proxy_dis": "Proxy, disentangled",
    "class_raw": "Classification w/o norm.",
    "class": "Classification",
    "class_dis": "Classification, disentangled",
}
DISENTANGLED = ("triplet_dis", "triplet_track", "proxy_dis", "class_dis")
# The distance of each model's geometry: cosine for the normalised ones (the same order as the
# Euclidean distance on the unit sphere), Euclidean on the raw outputs of model 6.
DISTANCE = {key: "euclidean" if key == "class_raw" else "cosine" for key in MODELS}

# Lee et al., ISMIR 2020, table 1 (Million Song Dataset, Last.fm tags): R@K in %, tag AUC, and
# training time relative to model 7.
PAPER_TABLE_1 = pd.DataFrame(
    {
        "triplet": [31.8, 45.2, 59.9, 73.0, 0.815, 1.87],
        "triplet_dis": [36.5, 50.5, 64.1, 76.0, 0.825, 2.37],
        "triplet_track": [33.9, 47.5, 61.9, 74.3, 0.813, 3.05],
        "proxy": [45.0, 58.5, 71.0, 80.9, 0.890, 1.11],
        "proxy_dis": [44.7, 58.2, 70.7, 80.6, 0.890, 1.29],
        "class_raw": [6.1, 11.5, 21.1, 35.9, 0.887, 1.00],
        "class": [43.8, 57.8, 70.3, 80.3, 0.887, 1.00],
        "class_dis": [44.7, 58.4, 70.7, 80.9, 0.890, 1.27],
    },
    index=["R@1", "R@2", "R@4", "R@8", "tag AUC", "time ratio"],
).T

# Lee et al., ISMIR 2020, table 2: triplet accuracy per concept, in the complete space and in the
# concept's sub-space.
PAPER_TABLE_2 = pd.DataFrame.from_dict(
    {
        ("complete", "triplet"): [0.771, 0.725, 0.653, 0.701, 0.712],
        ("complete", "triplet_dis"): [0.762, 0.744, 0.696, 0.733, 0.733],
        ("complete", "triplet_track"): [0.757, 0.733, 0.673, 0.715, 0.720],
        ("complete", "proxy"): [0.774, 0.742, 0.645, 0.693, 0.714],
        ("complete", "proxy_dis"): [0.762, 0.742, 0.660, 0.716, 0.720],
        ("complete", "class_raw"): [0.783, 0.745, 0.659, 0.723, 0.728],
        ("complete", "class"): [0.776, 0.747, 0.647, 0.704, 0.719],
        ("complete", "class_dis"): [0.758, 0.742, 0.659, 0.715, 0.719],
        ("subspace", "triplet_dis"): [0.790, 0.785, 0.798, 0.797, 0.792],
        ("subspace", "triplet_track"): [0.775, 0.748, 0.743, 0.742, 0.752],
        ("subspace", "proxy_dis"): [0.777, 0.740, 0.734, 0.700, 0.738],
        ("subspace", "class_dis"): [0.775, 0.739, 0.732, 0.701, 0.737],
    },
    orient="index",
    columns=[*CONCEPTS, "overall"],
)


def label_matrix(dataset, concepts, track=False):
    """The labels of several concepts as one (N, S) int64 matrix (+ a track column).

    Args:
        dataset: A :class:`mlcourse.data.ClipDataset` (e.g. ``load_dataset("smoke")``).
        concepts: Concept names, e.g. ``mlcourse.data.CONCEPTS``; column ``i`` holds the codes
            of ``concepts[i]`` (as ``dataset.labels``).
        track: Add a last column of track ids, codes of ``meta.version_id``.

    Returns:
        (N, S) or (N, S + 1) int64 array.

    Raises:
        ValueError: If a concept is not in the metadata.

    Taught in notebooks/06_disentangled.ipynb
    """
    columns = [dataset.labels(concept)[0] for concept in concepts]
    if track:
        columns.append(np.unique(dataset.meta["version_id"].astype(str), return_inverse=True)[1].reshape(-1))
    return np.stack(columns, axis=1).astype(np.int64)


def track_regularized_batches(
    train_set, classes_per_batch, clips_per_class, tracks_per_batch, batches_per_epoch, seed=0
):
    """Batches for track regularization: P x K' clips balanced by concept, then track pairs.

    The track part holds ``tracks_per_batch`` tracks x 2 clips at least two clip positions apart
    (no shared audio); the concept part gives up as many clips, so a batch stays near
    ``classes_per_batch * clips_per_class``.

    Args:
        train_set: The training :class:`mlcourse.data.ClipDataset`.
        classes_per_batch, clips_per_class: P and K of the concept batches.
        tracks_per_batch: Tracks of the track part.
        batches_per_epoch: Batches of an epoch.
        seed: Seed of both samplers.

    Returns:
        A :class:`mlcourse.data.samplers.ConcatBatches`.

    Taught in notebooks/06_disentangled.ipynb
    """
    concept_part = ConceptBalancedBatches(
        label_matrix(train_set, CONCEPTS),
        classes_per_batch,
        clips_per_class - tracks_per_batch * 2 // classes_per_batch,
        batches_per_epoch=batches_per_epoch,
        seed=seed,
    )
    track_part = TrackBatches(
        label_matrix(train_set, CONCEPTS, track=True)[:, -1],
        train_set.meta["clip"].to_numpy(),
        tracks_per_batch,
        clips_per_track=2,
        min_gap=2,
        batches_per_epoch=batches_per_epoch,
        seed=seed,
    )
    return ConcatBatches(concept_part, track_part)


def build_model(
    key,
    start,
    train_set,
    *,
    classes_per_batch,
    clips_per_class,
    batches_per_epoch,
    margin=0.2,
    proxy_scale=10.0,
    track_weight=0.5,
    tracks_per_batch=6,
    learned_masks=False,
    mask_start="blocks",
    seed=0,
):
    """One of the eight models of :data:`MODELS`, ready to train: network, loss, labels, sampler.

    The network is a copy of ``start`` (every model starts from the same weights); the losses
    are those of the paper, per concept on each concept's block for the disentangled models.
    Their class vectors and proxies are drawn after ``torch.manual_seed(seed)``, so every model
    built with one seed starts alike.

    Args:
        key: A key of :data:`MODELS`.
        start: The untrained :class:`mlcourse.models.EmbeddingNet` every model starts from.
        train_set: The training :class:`mlcourse.data.ClipDataset`.
        classes_per_batch, clips_per_class, batches_per_epoch: The P x K batches of every model
            (:class:`mlcourse.data.samplers.ConceptBalancedBatches`).
        margin: The triplet margin.
        proxy_scale: The softmax scale of the proxy losses.
        track_weight: Lambda of track regularization (model 3).
        tracks_per_batch: Tracks in a batch of model 3 (see :func:`track_regularized_batches`).
        learned_masks: Learn the concept masks instead of fixing them (disentangled models).
        mask_start: Where learned masks start, ``"blocks"`` or ``"random"``
            (see :class:`mlcourse.models.ConceptMasks`).
        seed: Seed of the class vectors, proxies and samplers.

    Returns:
        ``(network, loss, labels, sampler)``: labels are the (N, 4) concept codes, (N, 5) with
        the track ids, or the (N, 28) multi-hot tags, as the loss expects; pass them with
        ``train_set.logmel`` to :func:`mlcourse.train.train`.

    Raises:
        KeyError: If ``key`` is not a key of :data:`MODELS`.

    Taught in notebooks/06_disentangled.ipynb
    """
    if key not in MODELS:
        raise KeyError(f"unknown model {key!r}: choose one of {list(MODELS)}")
    embedding_dim = start.head.out_features
    block = embedding_dim // len(CONCEPTS)
    concept_labels, tags = label_matrix(train_set, CONCEPTS), train_set.tags.astype(np.float32)
    n_classes = {c: len(train_set.labels(c)[1]) for c in CONCEPTS}
    torch.manual_seed(seed)  # class vectors and proxies start alike
    network = EmbeddingNet(embedding_dim, normalize=key != "class_raw", widths=start.backbone.widths)
    network.load_state_dict(start.state_dict())
    masks = ConceptMasks(CONCEPTS, embedding_dim, learned=learned_masks, start=mask_start)

    def triplet_losses():
        return {c: TripletMarginLoss(margin, "all") for c in CONCEPTS}

    if key == "triplet":
        loss, labels = DisentangledLoss(triplet_losses(), masks=None), concept_labels
    elif key == "triplet_dis":
        loss, labels = DisentangledLoss(triplet_losses(), masks), concept_labels
    elif key == "triplet_track":
        loss = TrackRegularizedLoss(
            DisentangledLoss(triplet_losses(), masks), TripletMarginLoss(margin, "all"), track_weight
        )
        labels = label_matrix(train_set, CONCEPTS, track=True)
    elif key == "proxy":
        loss, labels = ProxyNCALoss(tags.shape[1], embedding_dim, proxy_scale, multi_label=True), tags
    elif key == "proxy_dis":
        loss = DisentangledLoss({c: ProxyNCALoss(n_classes[c], block, proxy_scale) for c in CONCEPTS}, masks)
        labels = concept_labels
    elif key == "class_raw":
        loss, labels = ClassificationLoss(tags.shape[1], embedding_dim, normalize=False, multi_label=True), tags
    elif key == "class":
        loss, labels = ClassificationLoss(tags.shape[1], embedding_dim, multi_label=True), tags
    else:
        loss = DisentangledLoss({c: ClassificationLoss(n_classes[c], block) for c in CONCEPTS}, masks)
        labels = concept_labels
    if key == "triplet_track":
        sampler = track_regularized_batches(
            train_set, classes_per_batch, clips_per_class, tracks_per_batch, batches_per_epoch, seed
        )
    else:
        sampler = ConceptBalancedBatches(
            concept_labels, classes_per_batch, clips_per_class, batches_per_epoch=batches_per_epoch, seed=seed
        )
    return network, loss, labels, sampler


def concept_recall(embeddings, meta, distance="cosine", ks=(1, 2, 4, 8)):
    """R@K of every concept, a clip's own piece left out of its neighbours.

    Args:
        embeddings: (N, D) embeddings of the clips of ``meta``, in its order.
        meta: The clips' metadata (``ClipDataset.meta``): a column per concept and ``piece_id``.
        distance: One of :data:`mlcourse.distances.DISTANCES`.
        ks: The k of R@k.

    Returns:
        A DataFrame, one row per concept, one column per k.

    Taught in notebooks/06_disentangled.ipynb
    """
    pieces = meta.piece_id.to_numpy()
    return pd.DataFrame(
        {c: recall_at_k(embeddings, meta[c].to_numpy(), ks=ks, groups=pieces, distance=distance) for c in CONCEPTS}
    ).T


def step_seconds(models, features, rounds, device=None):
    """Median wall time of one training step of each model, the models taking turns.

    Each model trains on one batch of its own sampler, over and over; taking turns spreads any
    slowdown of a shared machine over all of them. Round 0 warms up and is not counted.

    Args:
        models: ``{key: (network, loss, labels, sampler)}`` as :func:`build_model` returns.
        features: (N, ...) training inputs.
        rounds: Counted rounds, a positive int.
        device: See :func:`mlcourse.train.choose_device`.

    Returns:
        ``{key: seconds}``.

    Taught in notebooks/06_disentangled.ipynb
    """
    device = choose_device(device)
    setups = {}
    for key, (network, loss, labels, sampler) in models.items():
        network.to(device).train()
        loss.to(device)
        optimizer = torch.optim.Adam(list(network.parameters()) + list(loss.parameters()))
        sampler.set_epoch(0)
        rows = next(iter(sampler))
        setups[key] = (
            network,
            loss,
            optimizer,
            torch.tensor(features[rows], device=device),
            torch.as_tensor(labels[rows], device=device),
        )
    times = {key: [] for key in models}
    for round_ in range(rounds + 1):
        for key, (network, loss, optimizer, batch, labels) in setups.items():
            start = time.perf_counter()
            value = loss(network(batch).float(), labels)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_:
                times[key].append(time.perf_counter() - start)
    return {key: float(np.median(t)) for key, t in times.items()}


def scorable_tags(train_set):
    """The tags a model of the chapter can score: indices into ``train_set.tag_names``.

    A tag needs a training clip (a centroid needs one) and a value that is a class of its
    concept in the training split (a disentangled model has a class vector for it).

    Taught in notebooks/06_disentangled.ipynb
    """
    scored = []
    for index, name in enumerate(train_set.tag_names):
        concept, value = name.split(":", 1)
        if train_set.tags[:, index].sum() > 0 and value in train_set.labels(concept)[1]:
            scored.append(index)
    return scored


def tag_score_matrix(key, loss, test_embeddings, train_embeddings, train_set, scored):
    """Tag scores of one model on the test clips, larger = more likely.

    Each model scores tags with what it learned: a triplet model with the centroids of the
    training clips of each tag, a proxy or classification model with its proxies or class
    vectors, model 6 with its logits; a disentangled model scores a concept's tags in the
    concept's block.

    Args:
        key: A key of :data:`MODELS`.
        loss: The model's trained loss (its proxies and class vectors).
        test_embeddings: (N_test, D) embeddings of the test clips.
        train_embeddings: (N_train, D) embeddings of the training clips (for the triplet models;
            None for the others).
        train_set: The training :class:`mlcourse.data.ClipDataset`.
        scored: The tags to score (:func:`scorable_tags`).

    Returns:
        (N_test, len(scored)) float array.

    Taught in notebooks/06_disentangled.ipynb
    """
    tags = train_set.tags.astype(np.float32)
    if key == "triplet":
        return tag_scores(test_embeddings, class_centroids(train_embeddings, tags[:, scored]))
    if key in ("proxy", "class"):
        return tag_scores(test_embeddings, loss.class_vectors().cpu())[:, scored]
    if key == "class_raw":
        with torch.no_grad():
            return loss.cpu().logits(test_embeddings).numpy()[:, scored]
    masks = ConceptMasks(CONCEPTS, test_embeddings.shape[1])
    concept_of = [train_set.tag_names[t].split(":", 1) for t in scored]
    scores = np.zeros((len(test_embeddings), len(scored)), dtype=np.float32)
    for concept in CONCEPTS:
        columns = [i for i, (c, _) in enumerate(concept_of) if c == concept]
        block = masks.block(concept)
        if key in ("triplet_dis", "triplet_track"):  # centroids of the training clips, in the block
            vectors = class_centroids(train_embeddings[:, block], tags[:, [scored[i] for i in columns]])
        else:  # the concept's own class vectors
            classes = train_set.labels(concept)[1]
            rows = [classes.index(concept_of[i][1]) for i in columns]
            vectors = loss.concept_losses[concept].class_vectors().cpu()[rows]
        scores[:, columns] = tag_scores(test_embeddings[:, block], vectors)
    return scores


def triplet_accuracy_table(embeddings, triplets, distance="cosine", masks=None):
    """Triplet accuracy per concept and overall, in the complete space (and the sub-spaces).

    :func:`mlcourse.metrics.concept_triplet_accuracy` with a column per concept of
    ``mlcourse.data.CONCEPTS`` and ``overall`` (NaN for a concept without triplets), and an
    empty table when there are no triplets at all.

    Taught in notebooks/06_disentangled.ipynb
    """
    columns = [*CONCEPTS, "overall"]
    if not triplets:
        return pd.DataFrame(columns=columns)
    return concept_triplet_accuracy(embeddings, triplets, distance=distance, masks=masks).reindex(columns=columns)


def spaces_table(tables):
    """One row per (space, model): the rows of each model's :func:`triplet_accuracy_table`.

    Args:
        tables: ``{key: table}`` in the order of the rows wanted.

    Returns:
        A DataFrame indexed by (``"complete"`` or ``"subspace"``, key), the complete spaces
        first, as table 2 of the paper.

    Taught in notebooks/06_disentangled.ipynb
    """
    rows = {
        (space, key): table.loc[space]
        for space in ("complete", "subspace")
        for key, table in tables.items()
        if space in table.index
    }
    return pd.DataFrame.from_dict(rows, orient="index")
