"""mlcourse.data.triplets: the rules of every triplet, checked clip by clip on the smoke data."""

from __future__ import annotations

import numpy as np
import pytest

from mlcourse.data import CONCEPTS
from mlcourse.data.triplets import (
    NoTripletsError,
    sample_all_concept_triplets,
    sample_concept_triplets,
)


@pytest.fixture(scope="module")
def meta(smoke):
    """Every smoke clip but the first three, so that row positions differ from the index."""
    return smoke.meta.iloc[3:]


def check_rules(meta, concept, triplets, controlled, concepts=CONCEPTS):
    rows = meta.to_dict("records")
    for anchor, positive, negative in zip(*triplets):
        a, p, n = rows[anchor], rows[positive], rows[negative]
        assert a[concept] == p[concept] and a[concept] != n[concept]
        assert a["piece_id"] != p["piece_id"] and a["piece_id"] != n["piece_id"]
        if controlled:
            assert all(a[other] == n[other] for other in concepts if other != concept)


def loop_anchor_count(meta, concept, controlled, concepts=CONCEPTS):
    """How many clips have a valid positive and a valid negative, one clip at a time."""
    rows = meta.to_dict("records")
    count = 0
    for a in rows:
        has_positive = any(p[concept] == a[concept] and p["piece_id"] != a["piece_id"] for p in rows)
        has_negative = any(
            n[concept] != a[concept]
            and n["piece_id"] != a["piece_id"]
            and (not controlled or all(n[o] == a[o] for o in concepts if o != concept))
            for n in rows
        )
        count += has_positive and has_negative
    return count


@pytest.mark.parametrize("concept", CONCEPTS)
def test_random_triplets_follow_the_rules(meta, concept):
    triplets = sample_concept_triplets(meta, concept, 150, seed=1)
    assert [t.dtype for t in triplets] == [np.int64] * 3
    assert all(len(t) == 150 for t in triplets)
    assert len(np.unique(triplets[0])) == 150  # each clip anchors one triplet at most
    check_rules(meta, concept, triplets, controlled=False)


@pytest.mark.parametrize("concept", ["genre", "mood", "instrument"])
def test_controlled_triplets_follow_the_rules_and_use_every_possible_anchor(meta, concept):
    expected = loop_anchor_count(meta, concept, controlled=True)
    assert 0 < expected < len(meta)
    with pytest.warns(UserWarning, match=f"Only {expected} clips"):
        triplets = sample_concept_triplets(meta, concept, len(meta), seed=2, controlled=True)
    assert len(triplets[0]) == len(np.unique(triplets[0])) == expected
    check_rules(meta, concept, triplets, controlled=True)


def test_controlled_era_needs_genre_left_out(meta):
    with pytest.raises(NoTripletsError, match="genre determines era"):
        sample_concept_triplets(meta, "era", 10, controlled=True)
    concepts = ["mood", "instrument", "era"]
    triplets = sample_concept_triplets(meta, "era", 20, controlled=True, concepts=concepts)
    check_rules(meta, "era", triplets, controlled=True, concepts=concepts)


def test_seeds_reproduce_and_differ(meta):
    first = sample_concept_triplets(meta, "mood", 50, seed=7, controlled=True)
    again = sample_concept_triplets(meta, "mood", 50, seed=7, controlled=True)
    other = sample_concept_triplets(meta, "mood", 50, seed=8, controlled=True)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def valid_controlled_negatives(rows, anchor, concept):
    a = rows[anchor]
    return {
        j
        for j, n in enumerate(rows)
        if n[concept] != a[concept]
        and n["piece_id"] != a["piece_id"]
        and all(n[o] == a[o] for o in CONCEPTS if o != concept)
    }


def test_every_valid_negative_can_be_drawn(meta):
    """Draws over many seeds reach each valid negative of a clip, not a favoured few."""
    rows = meta.to_dict("records")
    anchor = next(i for i in range(len(rows)) if len(valid_controlled_negatives(rows, i, "instrument")) >= 3)
    drawn = set()
    for seed in range(100):
        with pytest.warns(UserWarning):
            anchors, _, negatives = sample_concept_triplets(meta, "instrument", len(meta), seed=seed, controlled=True)
        drawn.update(negatives[anchors == anchor].tolist())
    assert drawn == valid_controlled_negatives(rows, anchor, "instrument")


def test_sample_all_concept_triplets(meta):
    triplets = sample_all_concept_triplets(meta, 40, seed=3)
    assert list(triplets) == CONCEPTS
    for concept, concept_triplets in triplets.items():
        assert len(concept_triplets[0]) == 40
        check_rules(meta, concept, concept_triplets, controlled=False)
    with pytest.warns(UserWarning, match="era is left out"):
        controlled = sample_all_concept_triplets(meta, 40, seed=3, controlled=True)
    assert list(controlled) == ["genre", "mood", "instrument"]


def test_controls_name_what_a_controlled_triplet_holds_fixed(meta):
    held = {"era": ["mood", "instrument"]}
    triplets = sample_all_concept_triplets(meta, 40, seed=3, controlled=True, controls=held)
    assert list(triplets) == CONCEPTS
    by_hand = sample_concept_triplets(
        meta, "era", 40, seed=[3, CONCEPTS.index("era")], controlled=True, concepts=["mood", "instrument", "era"]
    )
    for drawn, expected in zip(triplets["era"], by_hand):
        np.testing.assert_array_equal(drawn, expected)
    check_rules(meta, "era", triplets["era"], controlled=True, concepts=["mood", "instrument", "era"])
    for concept in ["genre", "mood", "instrument"]:
        check_rules(meta, concept, triplets[concept], controlled=True)
    with pytest.raises(ValueError, match="tempo"):
        sample_all_concept_triplets(meta, 40, controlled=True, controls={"era": ["tempo"]})


@pytest.mark.parametrize("n_triplets", [0, -3, 2.5, True])
def test_bad_counts_raise(meta, n_triplets):
    with pytest.raises(ValueError, match="n_triplets must be a positive integer"):
        sample_concept_triplets(meta, "genre", n_triplets)


def test_bad_concepts_and_tables_raise(meta):
    with pytest.raises(ValueError, match="Unknown concept 'tempo'"):
        sample_concept_triplets(meta, "tempo", 10)
    with pytest.raises(ValueError, match="lacks the column"):
        sample_concept_triplets(meta.drop(columns="piece_id"), "genre", 10)
    with pytest.raises(ValueError, match="DataFrame"):
        sample_concept_triplets(meta.to_dict("list"), "genre", 10)
    with pytest.raises(NoTripletsError, match="No clip can anchor"):
        sample_concept_triplets(meta[meta.piece_id == meta.piece_id.iloc[0]], "mood", 10)
