"""Self-supervised metric learning: supervision made from the data itself.

No label is used for training here. The positives come from the music:

- **adjacency** (Bretan & Heck, ISMIR 2019): a clip and the clip that follows it in the same
  recording are taken as similar, any two clips of other recordings as not;
- **augmentation** (SimCLR, Chen et al. 2020): two randomly altered copies ("views") of one
  clip are similar (see :mod:`mlcourse.augment` and :func:`mlcourse.losses.nt_xent_loss`).

Bretan & Heck train adjacency in two ways, and both fit the embedding to a Gaussian prior with
an adversary, as an adversarial autoencoder does:

- **A-DSSM**: the DSSM softmax over similarities ``1 / (1 + distance)`` of a query to its
  adjacent clip and to negatives (:func:`mlcourse.losses.adjacency_dssm_loss`), plus the prior;
- **A-AdjD**: a *small* discriminator learns to tell adjacent pairs from other pairs
  (:class:`AdjacencyDiscriminatorLoss`); in a second stage the prior is added.

The prior (:class:`GaussianPrior`) keeps the network from meeting the similarity constraint
cheaply, by spreading everything apart, and so keeps the examples hard: the paper's "ratio of
easy to hard examples" is measured by :func:`mlcourse.losses.easy_negative_fraction`, which the
training steps here record at every step.

The steps plug into the one training loop, :func:`mlcourse.train.train`, as its ``step``
argument; :func:`train_self_supervised` trains any of the four methods that way.
:func:`evaluate_embedding` then asks what the embedding learned without labels: k-NN and a
linear probe on each concept, and version identification; :func:`evaluate_network` asks it of
a network's representation (the backbone's output) and of its embedding.

On audio, adjacent clips share more than the music: the recording's level, EQ, room and noise
floor. A network can tell adjacent pairs apart by those alone (a *shortcut*), so the adjacency
steps can alter each clip of a pair independently (``augment=``), as SimCLR alters its views.

Taught in notebooks/08_self_supervised.ipynb
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from .data.samplers import AdjacentPairBatches, RandomBatches, pair_halves
from .losses import AdjacencyDiscriminatorLoss, AdjacencyDSSMLoss, NTXentLoss, easy_negative_fraction
from .metrics import knn_accuracy, mean_average_precision
from .models import Discriminator, EmbeddingNet
from .train import EMBED_BATCH, embed, train

METHODS = ("DSSM", "A-DSSM", "A-AdjD", "SimCLR")


class GaussianPrior:
    """An adversary that pushes embeddings towards a standard Gaussian distribution.

    A :class:`~mlcourse.models.Discriminator` learns to tell samples of N(0, I) ("real") from
    embeddings ("fake"); the embedding network learns to fool it. The discriminator has its
    own optimiser and is trained here, one step per training step, on embeddings detached from
    the network; its parameters are deliberately *not* given to the training loop's optimiser,
    which would otherwise help the network and the discriminator in the same direction.

    Args:
        embedding_dim: D, size of the embeddings.
        hidden: Width of the discriminator's hidden layers.
        lr: Learning rate of the discriminator's Adam optimiser.
        seed: Seed of the Gaussian samples and of the discriminator's initial weights.

    Attributes:
        discriminator_losses: The discriminator's loss at each of its steps.

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(self, embedding_dim, hidden=64, lr=1e-3, seed=0):
        generator = torch.Generator().manual_seed(int(seed))
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            self.discriminator = Discriminator(int(embedding_dim), hidden=hidden)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=lr)
        self.generator = generator
        self.discriminator_losses = []

    def _real_samples(self, like):
        """Samples of N(0, I) shaped like ``like``, drawn on the CPU (reproducible), then moved."""
        return torch.randn(like.shape, generator=self.generator).to(like.device, like.dtype)

    def discriminator_step(self, embeddings):
        """One step of the discriminator: real Gaussian samples -> 1, embeddings -> 0."""
        self.discriminator.to(embeddings.device).train()
        fake = embeddings.detach().float()
        real = self._real_samples(fake)
        logits = self.discriminator(torch.cat([real, fake]))
        targets = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).to(logits.device)
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.discriminator_losses.append(loss.item())
        return loss.detach()

    def encoder_loss(self, embeddings):
        """The network's adversarial loss: how badly its embeddings fail to pass for "real".

        The non-saturating form of GANs, ``-log D(z)``: strong gradients while the
        discriminator still wins easily.
        """
        self.discriminator.to(embeddings.device)
        logits = self.discriminator(embeddings.float())
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


class AdjacencyStep:
    """A training step on adjacent pairs, for ``train(..., step=AdjacencyStep(...))``.

    The batch (from :class:`~mlcourse.data.samplers.AdjacentPairBatches`) holds B queries then
    their B successors. Both halves are embedded in one pass; the loss is
    ``loss_fn(queries, positives)`` (A-DSSM: an :class:`~mlcourse.losses.AdjacencyDSSMLoss`;
    A-AdjD: an :class:`AdjacencyDiscriminatorLoss`), plus ``prior_weight`` times the
    adversarial prior's loss if a :class:`GaussianPrior` is given, after one step of its
    discriminator.

    Args:
        prior: A :class:`GaussianPrior`, or None for no prior.
        prior_weight: Weight of the prior's loss.
        augment: A callable that alters a batch of clips (e.g. :class:`mlcourse.augment.Augment`),
            applied to queries and successors alike, each clip with its own random settings;
            None trains on the pairs as they are.

    Attributes:
        easy_fractions: At each step, the fraction of (query, negative) pairs already "easy"
            (the negative farther from the query than its positive).
        prior_losses: At each step, the network's adversarial loss (empty without a prior).

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(self, prior=None, prior_weight=1.0, augment=None):
        self.prior, self.prior_weight, self.augment = prior, float(prior_weight), augment
        self.easy_fractions, self.prior_losses = [], []

    def __call__(self, model, loss_fn, features, labels, batch):
        queries, positives = pair_halves(batch)
        clips = features[np.concatenate([queries, positives])]
        if self.augment is not None:
            with torch.no_grad():
                clips = self.augment(clips)
        embeddings = model(clips)
        with torch.autocast(features.device.type, enabled=False):
            embeddings = embeddings.float()
            query_embeddings, positive_embeddings = embeddings.chunk(2)
            loss = loss_fn(query_embeddings, positive_embeddings)
            self.easy_fractions.append(easy_negative_fraction(query_embeddings, positive_embeddings))
            if self.prior is not None:
                self.prior.discriminator_step(embeddings)
                prior_loss = self.prior.encoder_loss(embeddings)
                self.prior_losses.append(prior_loss.item())
                loss = loss + self.prior_weight * prior_loss
        return loss


class AugmentedViewsStep:
    """A SimCLR training step: two augmented views of each clip, ``loss_fn(view1, view2)``.

    The augmentations run on the features' device, inside the step, so every epoch sees new
    views and a GPU does the work when there is one.

    Args:
        augment: A callable mapping a (B, 128, T) batch of log-mels to an augmented batch,
            e.g. :class:`mlcourse.augment.Augment`.

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(self, augment):
        self.augment = augment

    def __call__(self, model, loss_fn, features, labels, batch):
        clips = features[batch]
        with torch.no_grad():
            views = torch.cat([self.augment(clips), self.augment(clips)])
        embeddings = model(views)
        with torch.autocast(features.device.type, enabled=False):
            first, second = embeddings.float().chunk(2)
            return loss_fn(first, second)


def train_self_supervised(
    method,
    features,
    next_index,
    recordings,
    *,
    embedding_dim=32,
    epochs=3,
    batches_per_epoch=None,
    batch_size=32,
    temperature=0.1,
    augment=None,
    seed=0,
    device=None,
):
    """Train one self-supervised method from scratch, without labels.

    - ``"DSSM"``, ``"A-DSSM"``: :class:`~mlcourse.losses.AdjacencyDSSMLoss` on adjacent pairs
      (:class:`~mlcourse.data.samplers.AdjacentPairBatches`: B clips of B different recordings
      and the clip that follows each), A-DSSM with a :class:`GaussianPrior`;
    - ``"A-AdjD"``: :class:`AdjacencyDiscriminatorLoss`, in two stages: the first half of the
      epochs alone, the rest with the prior;
    - ``"SimCLR"``: :class:`~mlcourse.losses.NTXentLoss` on two augmented views of each of B
      random clips (:class:`AugmentedViewsStep`).

    The network is an :class:`~mlcourse.models.EmbeddingNet` initialised from ``seed``, so it
    starts as ``torch.manual_seed(seed); EmbeddingNet(embedding_dim, normalize=...)`` does: the
    untrained network of the same seed is its own starting point. Its embeddings are
    unit-normalised for SimCLR (NT-Xent compares cosines) and unbounded for the adjacency
    methods (the prior needs the room).

    Args:
        method: One of :data:`METHODS`.
        features: (N, ...) training inputs, e.g. log-mels or piano rolls.
        next_index: (N,) index of each clip's successor, -1 for none (``dataset.next_index``).
        recordings: (N,) recording of each clip; a batch holds one pair per recording.
        embedding_dim: Size of the embedding.
        epochs, batches_per_epoch: Training length (None: one pass over the pairs or clips).
        batch_size: Pairs (adjacency) or clips (SimCLR) per batch.
        temperature: NT-Xent's temperature.
        augment: Alters a batch of clips inside each step (:class:`mlcourse.augment.Augment`).
            Adjacency: each clip of a pair independently, or None for the pairs as they are;
            SimCLR: the two views, so it is required.
        seed: Seeds the initialisation, the batches and the prior.
        device: See :func:`mlcourse.train.choose_device`.

    Returns:
        ``(net, easy_fractions)``: the trained network, in eval mode, and at each step the
        fraction of easy negatives (:func:`mlcourse.losses.easy_negative_fraction`; empty for
        SimCLR).

    Raises:
        ValueError: For an unknown method, or SimCLR without ``augment``.

    Taught in notebooks/08_self_supervised.ipynb
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if method == "SimCLR" and augment is None:
        raise ValueError("SimCLR needs an augment: its positives are two augmented views of a clip")
    torch.manual_seed(seed)
    net = EmbeddingNet(embedding_dim, normalize=(method == "SimCLR"))
    common = dict(seed=seed, device=device, progress=False)
    if method == "SimCLR":
        clips = RandomBatches(len(features), batch_size, batches_per_epoch=batches_per_epoch, seed=seed)
        train(
            net,
            NTXentLoss(temperature),
            features,
            None,
            clips,
            epochs=epochs,
            step=AugmentedViewsStep(augment),
            **common,
        )
        return net, []
    pairs = AdjacentPairBatches(
        next_index, batch_size, groups=recordings, batches_per_epoch=batches_per_epoch, seed=seed
    )
    if method == "A-AdjD":
        loss = AdjacencyDiscriminatorLoss(embedding_dim)
        first_epochs = max(1, epochs // 2)
        stages = [
            (AdjacencyStep(augment=augment), first_epochs, seed),
            (
                AdjacencyStep(prior=GaussianPrior(embedding_dim, seed=seed), augment=augment),
                max(1, epochs - first_epochs),
                seed + 1000,
            ),
        ]
    else:
        loss = AdjacencyDSSMLoss()
        prior = GaussianPrior(embedding_dim, seed=seed) if method == "A-DSSM" else None
        stages = [(AdjacencyStep(prior=prior, augment=augment), epochs, seed)]
    for step, stage_epochs, stage_seed in stages:
        train(net, loss, features, None, pairs, epochs=stage_epochs, step=step, **{**common, "seed": stage_seed})
    return net, [fraction for step, _, _ in stages for fraction in step.easy_fractions]


def representations(net, features, batch_size=EMBED_BATCH, device=None):
    """A network's representation (its backbone's output) and its embedding, in one pass.

    The representation is what the backbone computes before the embedding head; the
    embedding is the head's output (unit-normalised if the network normalises). SimCLR
    (Chen et al., 2020, section 4.2) found the representation before the head the better
    feature for other tasks: the head may discard what the training loss does not need.

    Args:
        net: An :class:`~mlcourse.models.EmbeddingNet`.
        features: (N, ...) inputs.
        batch_size, device: As in :func:`mlcourse.train.embed`.

    Returns:
        ``(representation, embedding)``: (N, backbone size) and (N, embedding size) float32
        tensors on the CPU.

    Taught in notebooks/08_self_supervised.ipynb
    """
    representation = embed(net.backbone, features, batch_size=batch_size, device=device)
    with torch.no_grad():
        embedding = net.head(representation.to(net.head.weight.device)).float().cpu()
    return representation, F.normalize(embedding, dim=1) if net.normalize else embedding


def evaluate_network(net, train_inputs, train_meta, test_inputs, test_meta):
    """:func:`evaluate_embedding` of a network's representation and of its embedding.

    Args:
        net: An :class:`~mlcourse.models.EmbeddingNet`.
        train_inputs, test_inputs: The clips' inputs (log-mels or piano rolls).
        train_meta, test_meta: The datasets' ``meta`` tables.

    Returns:
        ``{"representation": scores, "embedding": scores}``, each a dict of
        :func:`evaluate_embedding`.

    Taught in notebooks/08_self_supervised.ipynb
    """
    train_representation, train_embedding = representations(net, train_inputs)
    test_representation, test_embedding = representations(net, test_inputs)
    return {
        "representation": evaluate_embedding(train_representation, train_meta, test_representation, test_meta),
        "embedding": evaluate_embedding(train_embedding, train_meta, test_embedding, test_meta),
    }


def evaluate_embedding(
    train_embeddings, train_meta, test_embeddings, test_meta, concepts=("genre", "mood", "instrument", "era"), k=5
):
    """What an embedding learned without labels: concepts and versions, on held-out pieces.

    For each concept: the accuracy of a k-nearest-neighbour vote among the training clips, and
    of a *linear probe*, a linear classifier fitted to the standardised training embeddings
    (scikit-learn's ridge classifier with its default regularisation: least squares onto the
    one-hot classes, solved in closed form, fast and deterministic); the test pieces never
    appear in training. And version identification: the mAP of ranking the
    test clips of other versions of the query's piece first, the clips of the query's own
    version (the same recording) left out.

    Args:
        train_embeddings, test_embeddings: (N, D) arrays or tensors.
        train_meta, test_meta: the datasets' ``meta`` tables (concept columns, piece_id,
            version_id).
        concepts: Concepts to probe.
        k: Neighbours of the k-NN vote.

    Returns:
        dict, e.g. ``{"genre kNN": 0.31, "genre probe": 0.35, ..., "version mAP": 0.12}``.

    Taught in notebooks/08_self_supervised.ipynb
    """
    from sklearn.linear_model import RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_x, test_x = np.asarray(train_embeddings, dtype=np.float32), np.asarray(test_embeddings, dtype=np.float32)
    if len(train_x) != len(train_meta) or len(test_x) != len(test_meta):
        raise ValueError(
            f"one embedding per clip: got {len(train_x)} / {len(test_x)} embeddings for "
            f"{len(train_meta)} / {len(test_meta)} clips"
        )
    results = {}
    for concept in concepts:
        train_y, test_y = train_meta[concept].astype(str).to_numpy(), test_meta[concept].astype(str).to_numpy()
        results[f"{concept} kNN"] = knn_accuracy(test_x, test_y, gallery=train_x, gallery_labels=train_y, k=k)
        probe = make_pipeline(StandardScaler(), RidgeClassifier())
        results[f"{concept} probe"] = float(probe.fit(train_x, train_y).score(test_x, test_y))
    results["version mAP"] = mean_average_precision(
        test_x, test_meta.piece_id.to_numpy(), groups=test_meta.version_id.to_numpy()
    )
    return results


def mean_and_std(table, by="method"):
    """Mean ± standard deviation over seeds of every numeric column, one row per method.

    Args:
        table: pandas DataFrame with one row per (method, seed) run.
        by: The column naming the method.

    Returns:
        DataFrame of strings "mean ± std" (std with one degree of freedom, 0 for one run).

    Taught in notebooks/08_self_supervised.ipynb
    """
    numeric = table.drop(columns=[by]).select_dtypes("number").columns.drop("seed", errors="ignore")
    grouped = table.groupby(by, sort=False)[list(numeric)]
    means, stds = grouped.mean(), grouped.std(ddof=1).fillna(0.0)
    return means.combine(stds, lambda m, s: m.map("{:.3f}".format) + " ± " + s.map("{:.3f}".format))
