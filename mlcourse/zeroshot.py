"""Zero-shot tagging: describe a tag, and find its clips though no training clip had it.

A classifier learns one vector per tag from the clips that have it, so a tag without training
clips has no vector. The ISMIR 2020 tutorial's part on audio and words (Choi et al., "Zero-shot
learning for audio-based music classification and tagging", ISMIR 2019) co-embeds clips and
*descriptions* of tags instead: a second encoder turns a tag's side information (word vectors,
or which instruments a genre uses) into its vector, so any tag that can be described can be
searched for. No word vectors can be downloaded here, so the descriptions come from what the
dataset's recipe knows about each tag:

* :func:`genre_attributes`: for each genre, from the recipe's tables of the *training* pieces:
  its era, texture (single line, four or more voices), mode, metre, the accompaniment its
  versions get, how often they are fast, and which instrument families play them;
* :data:`PROGRAM_PROPERTIES` and :func:`instrument_attributes`: for each instrument family, the
  share of its General MIDI programs that are struck, plucked, bowed, blown or sung, played
  from a keyboard, sustained, and so on;
* :func:`tag_attributes`: both, one row per genre and instrument tag (each concept in its own
  columns), the table that :class:`~mlcourse.losses.AttributeClassificationLoss` encodes.

The protocol (:func:`zero_shot_scores`) holds tags out in folds (:func:`held_out_folds`): for
each fold, every training clip that has a held-out tag is left out, a clip encoder and the
attribute encoder are trained on the other tags, and the held-out tags are scored on the test
clips from their descriptions alone. Attributes that no seen tag varies in are dropped
(:func:`usable_attributes`): nothing could have taught the encoder what they mean. Two
baselines frame the result: random scores, and the *nearest seen tag* (:func:`nearest_seen_tags`),
which scores a held-out tag as the seen tag with the most similar description; and a supervised
model, trained with every tag, shows what the tags' own clips would have given.
:func:`zero_shot_table` scores them all per concept, :func:`zero_shot_summary` over several
seeds, and :func:`per_tag_zero_shot` tag by tag.

Taught in notebooks/07_cross_modal.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .checks import require_positive_int
from .data.render import INSTRUMENT_FAMILIES
from .losses import AttributeClassificationLoss
from .metrics import per_tag_auc, tag_scores, tag_to_track_retrieval
from .reality import mean_and_spread, train_loss
from .train import embed

__all__ = [
    "CONCEPTS",
    "FAST_BPM",
    "PROGRAM_PROPERTIES",
    "ZeroShotScores",
    "genre_attributes",
    "held_out_folds",
    "instrument_attributes",
    "nearest_seen_tags",
    "tag_attributes",
    "train_attribute_tagger",
    "usable_attributes",
    "per_tag_zero_shot",
    "zero_shot_scores",
    "zero_shot_summary",
    "zero_shot_table",
]

CONCEPTS = ("genre", "instrument")
"""The concepts whose tags have descriptions."""

FAST_BPM = 100
"""A version at this tempo or faster counts as fast (the recipe's line between calm and happy)."""

# How each General MIDI program of the recipe's families makes its sound, from its GM name.
PROGRAM_PROPERTIES = {
    0: ("struck", "keyboard"),  # acoustic grand piano
    1: ("struck", "keyboard"),  # bright acoustic piano
    4: ("struck", "keyboard"),  # electric piano
    6: ("plucked", "keyboard"),  # harpsichord
    8: ("struck", "keyboard"),  # celesta
    11: ("struck", "vibrato"),  # vibraphone
    12: ("struck",),  # marimba
    13: ("struck",),  # xylophone
    16: ("keyboard", "sustained"),  # drawbar organ
    19: ("keyboard", "sustained", "blown", "air"),  # church organ (flue pipes)
    20: ("keyboard", "sustained", "blown", "reed"),  # reed organ
    21: ("keyboard", "sustained", "blown", "reed"),  # accordion
    24: ("plucked",),  # nylon-string guitar
    25: ("plucked",),  # steel-string guitar
    46: ("plucked",),  # harp
    105: ("plucked",),  # banjo
    40: ("bowed", "sustained", "vibrato"),  # violin
    41: ("bowed", "sustained", "vibrato"),  # viola
    42: ("bowed", "sustained", "vibrato"),  # cello
    48: ("bowed", "sustained", "vibrato", "ensemble"),  # string ensemble
    52: ("sung", "sustained", "vibrato", "ensemble"),  # choir aahs
    53: ("sung", "sustained", "vibrato"),  # voice oohs
    54: ("sung", "sustained"),  # synth voice
    56: ("blown", "lip", "sustained"),  # trumpet
    57: ("blown", "lip", "sustained"),  # trombone
    60: ("blown", "lip", "sustained"),  # French horn
    61: ("blown", "lip", "sustained", "ensemble"),  # brass section
    64: ("blown", "reed", "sustained", "vibrato"),  # soprano sax
    65: ("blown", "reed", "sustained", "vibrato"),  # alto sax
    68: ("blown", "reed", "sustained"),  # oboe
    71: ("blown", "reed", "sustained"),  # clarinet
    72: ("blown", "air", "sustained"),  # piccolo
    73: ("blown", "air", "sustained", "vibrato"),  # flute
    74: ("blown", "air", "sustained"),  # recorder
    75: ("blown", "air", "sustained"),  # pan flute
}
_PROPERTIES = ("struck", "plucked", "bowed", "blown", "sung", "keyboard", "sustained", "reed", "lip", "air",
               "vibrato", "ensemble")  # fmt: skip


def _metre(meter):
    """'6/8' -> 'compound', '3/4' -> 'triple', '4/4' -> 'duple': the grouping the numerator says."""
    beats = int(str(meter).split("/")[0])
    return "compound" if beats in (6, 9, 12) else "triple" if beats == 3 else "duple"


def _shares(values, groups, prefix):
    """The share of each value within each group, as columns ``prefix:value``."""
    return pd.crosstab(np.asarray(groups), np.asarray(values), normalize="index").add_prefix(f"{prefix}:")


def genre_attributes(works, versions):
    """Describe each genre by what the recipe records about its pieces and their renderings.

    Every column is a share among the genre's pieces (era, texture, mode, metre) or among their
    versions (accompaniment, tempo, the families that play), so each lies in [0, 1]:

    * ``era:<era>``; ``texture:single line`` (one voice) and ``texture:four or more voices``;
      ``mode:major``; ``metre:duple``, ``metre:triple`` and ``metre:compound`` (6, 9 or 12 in
      the numerator);
    * ``accompaniment:<style>`` (none, drone, bass, percussion), ``tempo:fast`` (at least
      :data:`FAST_BPM` quarter notes a minute) and ``plays:<family>`` (the share of versions
      in which the family plays).

    Args:
        works: The recipe's works table (``mlcourse.data.build.read_recipe``), restricted to
            the pieces allowed to describe the genres (the training pieces).
        versions: The recipe's versions table; only the versions of ``works``' pieces are used.

    Returns:
        A DataFrame, one row per genre (sorted), one column per attribute.

    Raises:
        ValueError: If ``works`` is empty, or no version belongs to its pieces.

    Example:
        >>> works = pd.DataFrame({"piece_id": ["a", "b"], "genre": ["jig", "reel"], "era": "traditional",
        ...                       "n_voices": 1, "mode": ["major", "minor"], "meter": ["6/8", "4/4"]})
        >>> versions = pd.DataFrame({"piece_id": ["a", "b"], "accompaniment": ["drone", "none"],
        ...                          "tempo_bpm": [120, 80], "families": ["flutes", "strings organ"]})
        >>> described = genre_attributes(works, versions)
        >>> described.loc["jig", ["metre:compound", "accompaniment:drone", "plays:flutes"]].tolist()
        [1.0, 1.0, 1.0]

    Taught in notebooks/07_cross_modal.ipynb
    """
    if len(works) == 0:
        raise ValueError("works is empty: pass the recipe's works of the training pieces.")
    genre_of = works.set_index("piece_id").genre
    versions = versions[versions.piece_id.isin(genre_of.index)]
    if len(versions) == 0:
        raise ValueError("no version belongs to the pieces of works: pass the recipe's versions table.")
    genres, version_genres = works.genre.to_numpy(), genre_of.loc[versions.piece_id].to_numpy()
    voices = works.n_voices.astype(int)
    parts = [
        _shares(works.era, genres, "era"),
        pd.DataFrame({"texture:single line": (voices == 1).to_numpy(),
                      "texture:four or more voices": (voices >= 4).to_numpy(),
                      "mode:major": (works["mode"] == "major").to_numpy()}, index=genres).groupby(level=0).mean(),
        _shares(works.meter.map(_metre), genres, "metre"),
        _shares(versions.accompaniment, version_genres, "accompaniment"),
        pd.Series((versions.tempo_bpm.astype(float) >= FAST_BPM).to_numpy(), index=version_genres,
                  name="tempo:fast").groupby(level=0).mean(),
        versions.families.str.get_dummies(sep=" ").set_axis(version_genres).groupby(level=0).mean()
        .add_prefix("plays:"),
    ]  # fmt: skip
    return pd.concat(parts, axis=1).fillna(0.0).astype(float).sort_index()


def instrument_attributes(families=None):
    """Describe each instrument family by the properties of its General MIDI programs.

    Column ``p`` of a family is the share of its programs that have property ``p`` in
    :data:`PROGRAM_PROPERTIES` (struck, plucked, bowed, blown, sung, keyboard, sustained, reed,
    lip, air, vibrato, ensemble).

    Args:
        families: ``{family: [GM programs]}``; the recipe's
            :data:`~mlcourse.data.render.INSTRUMENT_FAMILIES` by default.

    Returns:
        A DataFrame, one row per family (in the given order), one column per property.

    Raises:
        ValueError: If a program has no entry in :data:`PROGRAM_PROPERTIES`.

    Example:
        >>> instrument_attributes({"keys": [0, 6]}).loc["keys", ["struck", "plucked", "keyboard"]].tolist()
        [0.5, 0.5, 1.0]

    Taught in notebooks/07_cross_modal.ipynb
    """
    families = INSTRUMENT_FAMILIES if families is None else families
    rows = {}
    for family, programs in families.items():
        unknown = [p for p in programs if p not in PROGRAM_PROPERTIES]
        if unknown:
            raise ValueError(f"no properties for GM program(s) {unknown} of {family!r}: add them to PROGRAM_PROPERTIES")
        rows[family] = {p: np.mean([p in PROGRAM_PROPERTIES[program] for program in programs]) for p in _PROPERTIES}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(_PROPERTIES))


def tag_attributes(tag_names, works, versions, pieces):
    """The descriptions of the genre and instrument tags: one row per tag, each concept in its columns.

    A genre tag's row holds :func:`genre_attributes` (computed from ``pieces`` only) and zeros
    in the instrument columns; an instrument tag's row the reverse. Two columns
    ``concept:genre`` and ``concept:instrument`` say which kind of tag a row describes. Tags of
    other concepts (mood, era) are left out: they have no description here.

    Args:
        tag_names: The dataset's tag names, ``concept:value`` (``ClipDataset.tag_names``).
        works, versions: The recipe's tables (``mlcourse.data.build.read_recipe``).
        pieces: The piece ids whose metadata may describe the genres: the training pieces.

    Returns:
        A DataFrame indexed by the described tags (in the order of ``tag_names``).

    Raises:
        ValueError: If a genre or instrument tag has no description (another collection, or
            none of its pieces among ``pieces``), or no tag of ``tag_names`` is described.

    Taught in notebooks/07_cross_modal.ipynb
    """
    genres = genre_attributes(works[works.piece_id.isin(set(pieces))], versions)
    described = {"genre": genres, "instrument": instrument_attributes()}
    columns = ["concept:genre", "concept:instrument", *genres.columns, *described["instrument"].columns]
    rows = {}
    for tag in tag_names:
        concept, _, value = str(tag).partition(":")
        if concept not in CONCEPTS:
            continue
        if value not in described[concept].index:
            raise ValueError(
                f"no description for the tag {tag!r}: descriptions come from the rendered dataset's recipe "
                f"(its training pieces, for genres), which knows {sorted(described[concept].index)}."
            )
        rows[tag] = {f"concept:{concept}": 1.0, **described[concept].loc[value].to_dict()}
    if not rows:
        raise ValueError(f"none of the tags has a description: zero-shot tagging here describes {CONCEPTS} tags.")
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).fillna(0.0)


def held_out_folds(tag_names, n_folds=5, seed=0):
    """Split the tags of each concept into ``n_folds`` groups to hold out in turn.

    Within each concept the tags are shuffled by ``seed`` and dealt out one per fold in turn,
    so every tag is held out exactly once and each fold holds out some tags of every concept
    (with 10 genres and 9 families in 5 folds: 2 genres and 1 or 2 families).

    Args:
        tag_names: ``concept:value`` tag names.
        n_folds: Number of folds, at most the tags of the smallest concept.
        seed: Seed of the shuffle.

    Returns:
        A list of ``n_folds`` lists of tag names.

    Raises:
        ValueError: If ``n_folds`` is not a positive int, or a concept has fewer tags than folds.

    Example:
        >>> held_out_folds(["genre:a", "genre:b", "instrument:x", "instrument:y"], n_folds=2, seed=0)
        [['genre:a', 'instrument:x'], ['genre:b', 'instrument:y']]

    Taught in notebooks/07_cross_modal.ipynb
    """
    require_positive_int(n_folds, "n_folds")
    rng = np.random.default_rng(seed)
    tag_names = [str(t) for t in tag_names]
    folds = [[] for _ in range(n_folds)]
    for concept in dict.fromkeys(t.partition(":")[0] for t in tag_names):
        tags = [t for t in tag_names if t.partition(":")[0] == concept]
        if len(tags) < n_folds:
            raise ValueError(f"{concept!r} has {len(tags)} tags, fewer than the {n_folds} folds: use fewer folds.")
        for place, tag in enumerate(rng.permutation(tags)):
            folds[place % n_folds].append(str(tag))
    return folds


def usable_attributes(attributes, seen):
    """The attribute columns that vary among the seen tags: the ones training can teach.

    The encoder learns one vector per attribute from the seen tags alone. An attribute that
    every seen tag has to the same degree (often 0: ``lip`` when brass is held out) never
    changes a seen tag's vector, so its learned vector is only its random start; it is dropped.

    Args:
        attributes: The :func:`tag_attributes` table.
        seen: The seen tags, rows of ``attributes``.

    Returns:
        The list of usable column names, in the table's order.

    Taught in notebooks/07_cross_modal.ipynb
    """
    values = attributes.loc[list(seen)]
    return [column for column in attributes.columns if values[column].nunique() > 1]


def nearest_seen_tags(attributes, seen, columns=None):
    """For each tag, the seen tag of its concept whose description is nearest (Euclidean).

    Args:
        attributes: The :func:`tag_attributes` table.
        seen: The seen tags, rows of ``attributes``.
        columns: The columns to compare; all by default (:func:`usable_attributes` in the protocol).

    Returns:
        A Series ``{tag: nearest seen tag}`` over every row of ``attributes`` (a seen tag's
        nearest other seen tag); ties go to the first seen tag in table order.

    Raises:
        ValueError: If a tag's concept has no other seen tag.

    Taught in notebooks/07_cross_modal.ipynb
    """
    columns = list(attributes.columns) if columns is None else list(columns)
    seen = [t for t in attributes.index if t in set(seen)]
    nearest = {}
    for tag in attributes.index:
        concept = tag.partition(":")[0]
        candidates = [t for t in seen if t != tag and t.partition(":")[0] == concept]
        if not candidates:
            raise ValueError(f"no other seen tag of {concept!r} to stand in for {tag!r}")
        gaps = attributes.loc[candidates, columns].to_numpy() - attributes.loc[tag, columns].to_numpy()
        nearest[tag] = candidates[int(np.argmin((gaps**2).sum(axis=1)))]
    return pd.Series(nearest, name="nearest seen tag")


def train_attribute_tagger(features, tags, attributes, batch_labels, *, steps, seed=0, temperature=0.1,
                           classes_per_batch=8, samples_per_class=8, hidden=128, lr=3e-3, threads=1):  # fmt: skip
    """Train a clip encoder and an attribute encoder together on the tags of ``attributes``.

    The clip encoder is a :class:`~mlcourse.models.ResidualMLP` on pooled features; the
    attribute encoder is :class:`~mlcourse.losses.AttributeClassificationLoss` (one learned
    vector per attribute, a per-tag sigmoid on the cosines over ``temperature``). Batches hold
    ``classes_per_batch`` values of ``batch_labels`` (e.g. genres) with ``samples_per_class``
    clips each, trained as every loss of the reality check is (:func:`mlcourse.reality.train_loss`).

    Args:
        features: (N, F) float array of the clips (``mlcourse.data.features.pooled_features``).
        tags: (N, T) multi-hot array: the clips' tags, one column per row of ``attributes``.
        attributes: (T, A) array or DataFrame, the descriptions of those tags.
        batch_labels: (N,) labels the batches balance.
        steps: Training steps, a positive int.
        seed: Seeds the network, the attribute vectors and the batches.
        temperature, classes_per_batch, samples_per_class, hidden, lr: As named.
        threads: torch's CPU threads meanwhile (see :func:`mlcourse.reality.torch_threads`).

    Returns:
        ``(model, loss)``: the clip encoder in eval mode and the trained attribute encoder.

    Raises:
        ValueError: If the shapes disagree, or on what the sampler and the loop refuse.

    Taught in notebooks/07_cross_modal.ipynb
    """
    tags, attributes = np.asarray(tags, dtype=np.float32), np.asarray(attributes, dtype=np.float32)
    if tags.shape != (len(features), len(attributes)):
        raise ValueError(
            f"tags must be (N, T) = ({len(features)}, {len(attributes)}): one row per clip, one column per "
            f"described tag; got {tags.shape}"
        )
    codes = np.unique(np.asarray(batch_labels), return_inverse=True)[1]
    # Seeded by its own generator, the loss draws the same vectors made before or after the network.
    loss = AttributeClassificationLoss(attributes, np.shape(features)[1], temperature, multi_label=True, seed=seed)
    classes_per_batch = min(classes_per_batch, codes.max() + 1)
    model, _ = train_loss(lambda: loss, features, tags, steps=steps, classes_per_batch=classes_per_batch,
                          samples_per_class=samples_per_class, seed=seed, hidden=hidden, lr=lr, threads=threads,
                          batch_labels=codes)  # fmt: skip
    return model, loss


@dataclass
class ZeroShotScores:
    """What :func:`zero_shot_scores` gives back.

    Attributes:
        tags: The T scored tags (the rows of the attribute table), the columns of every score matrix.
        scores: ``{method: (N, T) array}`` of the test clips' scores for every tag, each tag
            scored by the fold that held it out: ``"zero-shot"``, ``"nearest seen tag"``,
            ``"random"`` and ``"supervised (every tag trained)"``.
        stand_ins: ``{tag: the seen tag that scored it for "nearest seen tag"}``.
        lost: ``{tag: attributes it has that were dropped}`` (no seen tag of its fold varied in them).
        kept_share: For each fold, the share of the training clips kept (no held-out tag).
    """

    tags: list
    scores: dict = field(default_factory=dict)
    stand_ins: dict = field(default_factory=dict)
    lost: dict = field(default_factory=dict)
    kept_share: list = field(default_factory=list)


def zero_shot_scores(train_x, train_tags, test_x, attributes, folds, batch_labels, *, steps, seed=0, **options):
    """Run the zero-shot protocol once: every fold, its baselines, and the supervised model.

    For each fold of held-out tags: the training clips that have none of them are kept, the
    attributes that vary among the seen tags are kept (:func:`usable_attributes`), the taggers
    are trained on the seen tags (:func:`train_attribute_tagger`), and every test clip is
    scored for the held-out tags from their descriptions (zero-shot) and as their nearest seen
    tag. The supervised model is trained once with every tag and every attribute.

    Args:
        train_x, test_x: (N, F) and (M, F) pooled features of the training and test clips.
        train_tags: (N, T) multi-hot tags of the training clips, one column per row of ``attributes``.
        attributes: The :func:`tag_attributes` table (T rows).
        folds: Lists of held-out tags (:func:`held_out_folds`), together holding every tag once.
        batch_labels: (N,) labels the training batches balance (the clips' genres).
        steps, seed, **options: As :func:`train_attribute_tagger` takes them.

    Returns:
        A :class:`ZeroShotScores`.

    Raises:
        ValueError: If the folds do not hold every tag of ``attributes`` exactly once, or the
            shapes disagree.

    Taught in notebooks/07_cross_modal.ipynb
    """
    tags = list(attributes.index)
    held = [t for fold in folds for t in fold]
    if sorted(held) != sorted(tags):
        raise ValueError("the folds must hold every tag of the attribute table exactly once (see held_out_folds)")
    train_tags, batch_labels = np.asarray(train_tags), np.asarray(batch_labels)
    result = ZeroShotScores(tags=tags)
    zero_shot, stand_in = np.zeros((len(test_x), len(tags))), np.zeros((len(test_x), len(tags)))
    for fold in folds:
        held_out = [tags.index(t) for t in fold]
        seen = [t for t in tags if t not in fold]
        seen_columns = [tags.index(t) for t in seen]
        keep = train_tags[:, held_out].sum(axis=1) == 0
        columns = usable_attributes(attributes, seen)
        model, loss = train_attribute_tagger(train_x[keep], train_tags[keep][:, seen_columns],
                                             attributes.loc[seen, columns], batch_labels[keep], steps=steps,
                                             seed=seed, **options)  # fmt: skip
        fold_scores = tag_scores(embed(model, test_x), loss.class_vectors(attributes[columns].to_numpy()))
        nearest = nearest_seen_tags(attributes.loc[seen + list(fold)], seen, columns)
        for tag, column in zip(fold, held_out):
            zero_shot[:, column] = fold_scores[:, column]
            stand_in[:, column] = fold_scores[:, tags.index(nearest[tag])]
            result.stand_ins[tag] = nearest[tag]
            result.lost[tag] = [c for c in attributes.columns if c not in columns and attributes.loc[tag, c] != 0]
        result.kept_share.append(float(keep.mean()))
    model, loss = train_attribute_tagger(
        train_x, train_tags, attributes, batch_labels, steps=steps, seed=seed, **options
    )
    result.scores = {
        "zero-shot": zero_shot,
        "nearest seen tag": stand_in,
        "random": np.random.default_rng(seed).standard_normal(zero_shot.shape),
        "supervised (every tag trained)": tag_scores(embed(model, test_x), loss.class_vectors(attributes.to_numpy())),
    }
    return result


def zero_shot_table(scores, test_tags, tags, recall_ks=(1,), precision_ks=(10,)):
    """Macro ROC-AUC and tag-to-track R@k and P@k of each method, per concept.

    Args:
        scores: ``{method: (N, T) scores}`` (``ZeroShotScores.scores``).
        test_tags: (N, T) multi-hot tags of the test clips, columns as ``tags``.
        tags: The T tag names.
        recall_ks, precision_ks: The k of R@k and of P@k (:func:`~mlcourse.metrics.tag_to_track_retrieval`).

    Returns:
        A DataFrame with a (method, concept) row index and the columns ``macro AUC``, then
        ``R@k`` and ``P@k``; a concept's figures average its tags that have test clips with and
        without the tag.

    Taught in notebooks/07_cross_modal.ipynb
    """
    test_tags = np.asarray(test_tags)
    concepts = np.array([str(t).partition(":")[0] for t in tags])
    wanted = [f"R@{k}" for k in recall_ks] + [f"P@{k}" for k in precision_ks]
    ks = sorted({*recall_ks, *precision_ks})
    rows = {}
    for method, matrix in scores.items():
        for concept in dict.fromkeys(concepts):
            columns = concepts == concept
            aucs = per_tag_auc(matrix[:, columns], test_tags[:, columns])
            retrieval = tag_to_track_retrieval(matrix[:, columns], test_tags[:, columns], ks)
            rows[(method, concept)] = {"macro AUC": float(np.mean(list(aucs.values()))),
                                       **{name: retrieval[name] for name in wanted}}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["method", "concept"])


def zero_shot_summary(runs, test_tags, **ks):
    """The mean and the spread over several runs (seeds) of :func:`zero_shot_table`.

    Args:
        runs: :class:`ZeroShotScores` of the runs, e.g. one per seed.
        test_tags: (N, T) multi-hot tags of the test clips.
        **ks: ``recall_ks`` and ``precision_ks`` of :func:`zero_shot_table`.

    Returns:
        A DataFrame indexed by (method, concept) with, for each column ``c`` of
        :func:`zero_shot_table`, ``c`` (the mean) and ``c std`` (the sample standard deviation,
        0 for one run): the layout of :func:`mlcourse.reality.mean_and_spread`, which
        :func:`mlcourse.reality.as_text` writes as ``mean ± std``.

    Taught in notebooks/07_cross_modal.ipynb
    """
    tables = pd.concat([zero_shot_table(run.scores, test_tags, run.tags, **ks) for run in runs])
    return mean_and_spread(tables, list(tables.columns), by=["method", "concept"])


def per_tag_zero_shot(runs, test_tags, methods=("zero-shot", "nearest seen tag")):
    """Each tag's ROC-AUC under some methods (the mean over runs), its stand-in and its lost attributes.

    Args:
        runs: :class:`ZeroShotScores` of the runs (the same folds, other seeds).
        test_tags: (N, T) multi-hot tags of the test clips.
        methods: The methods whose AUC to show.

    Returns:
        A DataFrame indexed by tag: one AUC column per method, ``stands in`` (the nearest seen
        tag) and ``attributes dropped`` (comma-separated, ``-`` for none). Tags without test
        clips on both sides of the tag are left out.

    Taught in notebooks/07_cross_modal.ipynb
    """
    aucs = pd.concat(
        [pd.DataFrame({m: per_tag_auc(run.scores[m], test_tags, run.tags) for m in methods}) for run in runs]
    )
    table = aucs.groupby(level=0, sort=False).mean()
    table["stands in"] = pd.Series(runs[0].stand_ins)
    table["attributes dropped"] = pd.Series({tag: ", ".join(lost) or "-" for tag, lost in runs[0].lost.items()})
    return table
