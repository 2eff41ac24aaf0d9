"""Metric Learning for Music Information Retrieval: the course's helper package.

The notebooks in ``notebooks/`` teach; this package holds the code they run. Each module's
docstring says what it holds, and each function's ends with the notebook that teaches it
("Taught in notebooks/NN_name.ipynb").

The vocabulary, used by every chapter:

- ``mlcourse.data``: the offline dataset (the recipe, rendering, features, the cache, loading,
  imported collections) and the batch samplers (01 onwards);
- ``mlcourse.linear``: Mahalanobis metrics, LDA and LMNN (01, 02);
- ``mlcourse.models``: the networks (03, 06, 08, 09);
- ``mlcourse.losses``: pair, triplet, proxy and classification, self-supervised and
  cross-modal losses, class vectors from descriptions, SupCon and multi-similarity (03, 04,
  05, 07, 08, 10);
- ``mlcourse.miners``: pair and triplet mining (03, 04);
- ``mlcourse.train``: the one training loop, its steps and checkpoints (03 onwards);
- ``mlcourse.metrics``: retrieval, classification, tagging and hashing metrics (01 onwards);
- ``mlcourse.augment``: audio augmentations of log-mel batches (07, 08);
- ``mlcourse.viz``, ``mlcourse.explorer``: plots and the embedding explorer;
- ``mlcourse.distributed``: training on several processes (``torchrun``);
- ``mlcourse.results``: each notebook's recorded headline results and checked claims;
- ``mlcourse.modes``: the three modes and each notebook's mode-dependent settings;
- ``mlcourse.distances``: the distances (Euclidean, squared, cosine) and the rule for a vector
  without a direction, shared by the losses, the metrics and the explorer;
- ``mlcourse.checks``, ``mlcourse.files``: argument checks, the device rule, the block budget
  and atomic writes, shared by all.

The chapters, which compose the vocabulary for one notebook each:

- ``mlcourse.disentangled``: 06, disentangled concept sub-spaces;
- ``mlcourse.crossmodal``, ``mlcourse.zeroshot``: 07, audio-to-score retrieval, and zero-shot
  tagging from descriptions of tags;
- ``mlcourse.selfsup``: 08, self-supervised training and evaluation without labels;
- ``mlcourse.versions``, ``mlcourse.segment``: 09, version identification and structural
  segmentation;
- ``mlcourse.reality``: 10, the losses compared under one protocol, and three leaks.

The tools that run and check the course are not part of it: they live in ``coursetools``.
The tests mirror this layout (``tests/losses/``, ``tests/metrics/``, ``tests/data/``,
``tests/test_<module>.py``).
"""

__version__ = "0.1.0"
