"""Evaluation triplets per concept: the triplet-prediction task of Lee et al. (ISMIR 2020).

A triplet (anchor, positive, negative) of a concept asks whether the embedding puts the
positive, which shares the anchor's label of that concept (say, genre "jig"), nearer the anchor
than the negative, which has another label. The paper scores such triplets in the complete
embedding and in the concept's sub-space (:func:`mlcourse.metrics.concept_triplet_accuracy`).

Two rules keep the task honest:

* The positive and the negative come from other pieces than the anchor: two clips of one
  piece share everything, so a same-piece positive would be trivially near.
* With ``controlled=True`` the negative agrees with the anchor on every *other* concept
  (a "controlled" triplet). On a random triplet, a genre negative often differs in era or
  instrument too, so the genre sub-space could be credited for what another concept does;
  on a controlled one, only the concept itself tells positive from negative. The course's
  dataset sets instrument, tempo and key independently of the composition, which makes such
  triplets plentiful, something human-rated triplets cannot offer. Not for every concept,
  though: each genre belongs to one era, so a negative sharing the anchor's genre never has
  another era, and controlled era triplets must leave genre out of the concepts controlled
  for (the ``concepts`` argument). Genre itself can be controlled only among the genres that
  share an era (reels, jigs, hornpipes ... are all "traditional").

Each anchor clip is used at most once, so the triplets of a concept are distinct. An anchor is
drawn only among the clips having at least one valid positive and one valid negative; when
there are fewer such clips than triplets asked for, every one of them is used and a warning
says how many triplets there are (no clip at all raises a ValueError).

Taught in notebooks/06_disentangled.ipynb
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..checks import require_positive_int
from .build import CONCEPTS

__all__ = ["NoTripletsError", "sample_all_concept_triplets", "sample_concept_triplets"]


def sample_concept_triplets(meta, concept, n_triplets, *, seed=0, controlled=False, concepts=CONCEPTS):
    """Draw (anchor, positive, negative) triplets of clips for one concept.

    Anchors are drawn without replacement among the clips having a valid positive and a valid
    negative; each anchor's positive and negative are drawn uniformly among its valid ones.

    Args:
        meta: pandas DataFrame of the held-out clips, one row per clip, with a ``piece_id``
            column and a column per concept of ``concepts`` (e.g. the test rows of
            ``ClipDataset.meta``). The indices returned are row positions in it, so embed the
            clips in the same order.
        concept: The concept of the triplets, one of ``concepts``.
        n_triplets: How many triplets to draw, a positive int.
        seed: Seed of ``numpy.random.default_rng``; the same seed gives the same triplets.
        controlled: If True, the negative also has the anchor's label on every other concept.
        concepts: The concept columns; the "other concepts" of ``controlled`` are these.

    Returns:
        ``(anchors, positives, negatives)``: three (T,) int64 numpy arrays of row positions in
        ``meta``, T = ``n_triplets``, or fewer (with a warning) when fewer clips can anchor.
        ``meta[concept]`` is equal at anchor and positive and differs at the negative; the
        positive's and the negative's ``piece_id`` differ from the anchor's.

    Raises:
        ValueError: If ``concept`` is not one of ``concepts``, a needed column is missing or has
            missing values, ``n_triplets`` is not a positive int, or no clip has both a valid
            positive and a valid negative.

    Warns:
        UserWarning: When fewer than ``n_triplets`` clips can anchor a triplet.

    Taught in notebooks/06_disentangled.ipynb
    """
    codes = _concept_codes(meta, concept, concepts)
    require_positive_int(n_triplets, "n_triplets")
    others = [codes[other] for other in concepts if other != concept]
    context = _group_codes(others if controlled else [], len(meta))
    label, piece = codes[concept], codes["piece_id"]
    candidates = _Candidates(label, piece, context)
    can_anchor = np.flatnonzero((candidates.n_positives > 0) & (candidates.n_negatives > 0))
    _check_enough_anchors(len(can_anchor), n_triplets, concept, controlled, codes)
    rng = np.random.default_rng(seed)
    anchors = np.sort(rng.choice(can_anchor, min(n_triplets, len(can_anchor)), replace=False))
    positives = candidates.draw(rng, anchors, within=label, same_label=True)
    negatives = candidates.draw(rng, anchors, within=context, same_label=False)
    return anchors.astype(np.int64), positives, negatives


def sample_all_concept_triplets(meta, n_per_concept, *, seed=0, controlled=False, concepts=CONCEPTS, controls=None):
    """Draw triplets of every concept.

    A concept no clip can anchor a triplet of is left out with a warning rather than stopping
    the others. It happens with ``controlled=True`` when another concept fixes this one: in the
    course's dataset each genre belongs to one era, so no era negative can share the anchor's
    genre; ``controls={"era": ["mood", "instrument"]}`` controls era triplets for mood and
    instrument only.

    Args:
        meta: pandas DataFrame of the held-out clips, as in :func:`sample_concept_triplets`.
        n_per_concept: Triplets per concept, a positive int.
        seed: Seed; each concept draws from its own stream derived from it.
        controlled: Whether the triplets are controlled (see :func:`sample_concept_triplets`).
        concepts: The concepts to draw triplets of, and to control for.
        controls: ``{concept: [other concepts]}``: the concepts a controlled triplet of
            ``concept`` holds fixed, where it cannot be all the others, e.g.
            ``{"era": ["mood", "instrument"]}`` in the course's dataset. A concept not named
            here is controlled for every other concept.

    Returns:
        ``{concept: (anchors, positives, negatives)}`` in the order of ``concepts``, ready for
        :func:`mlcourse.metrics.concept_triplet_accuracy`.

    Raises:
        ValueError: As :func:`sample_concept_triplets`, if no concept has a triplet, or if
            ``controls`` names a concept that is not in ``concepts``.

    Warns:
        UserWarning: For each concept left out, and each with fewer triplets than asked for.

    Taught in notebooks/06_disentangled.ipynb
    """
    controls = controls or {}
    unknown = {c for concept, held in controls.items() for c in [concept, *held]} - set(concepts)
    if unknown:
        raise ValueError(f"controls names concepts that are not in concepts: {sorted(unknown)}")
    triplets = {}
    for position, concept in enumerate(concepts):
        held = [c for c in concepts if c == concept or c in controls.get(concept, concepts)]
        try:
            triplets[concept] = sample_concept_triplets(
                meta, concept, n_per_concept, seed=[seed, position], controlled=controlled, concepts=held
            )
        except NoTripletsError as error:
            warnings.warn(f"{concept} is left out: {error}", stacklevel=2)
    if not triplets:
        raise NoTripletsError("No concept has a triplet in meta: use more clips.")
    return triplets


class _Candidates:
    """Which clips can be each clip's positive or negative, and drawing among them.

    Args:
        label: (N,) int codes of the concept. piece: (N,) int codes of the pieces.
        context: (N,) int codes of the groups a negative must come from (controlled: the
            labels of the other concepts; otherwise one group of every clip).
    """

    def __init__(self, label, piece, context):
        self.label, self.piece = label, piece
        size = _group_sizes
        # Inclusion-exclusion: clips of the group, less those of the anchor's label or piece.
        self.n_positives = size([label]) - size([label, piece])
        self.n_negatives = (
            size([context]) - size([context, label]) - size([context, piece]) + size([context, label, piece])
        )

    def draw(self, rng, anchors, within, same_label):
        """For each anchor, a clip of its ``within`` group from another piece.

        The clip's label is the anchor's (``same_label``) or not. Every anchor must have such a clip.

        Draws uniformly from the group and redraws the clips that break a rule, so each valid
        clip is equally likely; only the redrawn anchors are drawn again each round.
        """
        members = _GroupMembers(within)
        chosen = members.draw(rng, anchors)
        invalid = self._invalid(anchors, chosen, same_label)
        while invalid.any():
            chosen[invalid] = members.draw(rng, anchors[invalid])
            invalid[invalid] = self._invalid(anchors[invalid], chosen[invalid], same_label)
        return chosen

    def _invalid(self, anchors, chosen, same_label):
        label_breaks = (self.label[chosen] == self.label[anchors]) != same_label
        return label_breaks | (self.piece[chosen] == self.piece[anchors])


class _GroupMembers:
    """The clips of each group, to draw a random member of a clip's own group.

    Args:
        groups: (N,) int codes in [0, G).
    """

    def __init__(self, groups):
        self.groups = groups
        self.by_group = np.argsort(groups, kind="stable")
        self.sizes = np.bincount(groups)
        self.starts = np.cumsum(self.sizes) - self.sizes

    def draw(self, rng, rows):
        """(len(rows),) int64 positions: a uniformly drawn member of each row's group."""
        groups = self.groups[rows]
        offsets = (rng.random(len(rows)) * self.sizes[groups]).astype(np.int64)
        return self.by_group[self.starts[groups] + offsets].astype(np.int64)


def _group_codes(columns, n_items):
    """(N,) int codes of the distinct combinations of the (N,) int ``columns``.

    With no column, every clip is in one group (code 0).
    """
    if not columns:
        return np.zeros(n_items, dtype=np.int64)
    _, codes = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    return codes.reshape(-1)


def _group_sizes(columns):
    """(N,) the size of each clip's group of clips equal on every one of the ``columns``."""
    codes = _group_codes(columns, len(columns[0]))
    return np.bincount(codes)[codes]


def _concept_codes(meta, concept, concepts):
    """``{column: (N,) int codes}`` of the concepts and ``piece_id``, checked."""
    if not isinstance(meta, pd.DataFrame):
        raise ValueError(f"meta must be a pandas DataFrame of clips, got {type(meta).__name__}.")
    concepts = list(concepts)
    if concept not in concepts:
        raise ValueError(f"Unknown concept {concept!r}: use one of {', '.join(map(repr, concepts))}.")
    needed = concepts + ["piece_id"]
    missing = [column for column in needed if column not in meta.columns]
    if missing:
        raise ValueError(
            f"meta lacks the column(s) {missing}: pass the clips' metadata, e.g. "
            "dataset.meta[dataset.meta.split == 'test']."
        )
    incomplete = [column for column in needed if meta[column].isna().any()]
    if incomplete:
        raise ValueError(f"meta has missing values in {incomplete}: drop or fill those rows.")
    return {column: pd.factorize(meta[column])[0].astype(np.int64) for column in needed}


class NoTripletsError(ValueError):
    """No clip of the table can anchor a triplet of the concept asked for."""


def _check_enough_anchors(n_anchors, n_triplets, concept, controlled, codes):
    kind = "controlled " if controlled else ""
    if n_anchors == 0:
        nesting = _nesting_hint(concept, codes) if controlled else ""
        raise NoTripletsError(
            f"No clip can anchor a {kind}{concept} triplet: none has both a positive of its "
            f"{concept} from another piece and a valid negative.{nesting} Use more clips (a "
            "larger split or dataset)" + (", or controlled=False." if controlled else ".")
        )
    if n_anchors < n_triplets:
        warnings.warn(
            f"Only {n_anchors} clips can anchor a {kind}{concept} triplet, so {n_anchors} "
            f"triplets are returned instead of {n_triplets} (each clip anchors one at most).",
            stacklevel=3,
        )


def _nesting_hint(concept, codes):
    """A sentence naming the other concepts whose label fixes ``concept``'s label, if any."""
    determining = [
        other
        for other in codes
        if other not in (concept, "piece_id") and pd.DataFrame(codes).groupby(other)[concept].nunique().max() == 1
    ]
    if not determining:
        return ""
    return (
        f" Here {', '.join(determining)} determines {concept} (each of its labels has one "
        f"{concept}), so a negative that agrees on it cannot differ in {concept}: leave it out "
        f"of the concepts to control for (argument concepts)."
    )
