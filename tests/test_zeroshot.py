"""Zero-shot tagging: the descriptions against the recipe and by hand, the folds, the protocol
(no held-out tag reaches training) and a synthetic world where descriptions determine the clips."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pytest

from mlcourse import zeroshot
from mlcourse.data.build import read_recipe
from mlcourse.data.render import INSTRUMENT_FAMILIES
from mlcourse.zeroshot import (
    PROGRAM_PROPERTIES,
    genre_attributes,
    held_out_folds,
    instrument_attributes,
    nearest_seen_tags,
    per_tag_zero_shot,
    tag_attributes,
    usable_attributes,
    zero_shot_scores,
    zero_shot_summary,
    zero_shot_table,
)

TAGS = [f"genre:{g}" for g in ("chorale", "jig", "reel")] + ["mood:calm", "instrument:flutes", "instrument:brass"]


def small_recipe():
    works = pd.DataFrame({
        "piece_id": ["a", "b", "c", "d"], "genre": ["jig", "jig", "reel", "chorale"],
        "era": ["traditional", "traditional", "traditional", "baroque"], "n_voices": [1, 1, 1, 4],
        "mode": ["major", "minor", "major", "minor"], "meter": ["6/8", "9/8", "4/4", "3/4"],
    })  # fmt: skip
    versions = pd.DataFrame({
        "piece_id": ["a", "a", "b", "c", "d", "e"],
        "accompaniment": ["drone", "percussion", "none", "bass", "none", "drone"],
        "tempo_bpm": [120, 90, 100, 99, 70, 150],
        "families": ["flutes", "strings", "flutes organ", "brass", "voices", "reeds"],
    })  # fmt: skip
    return works, versions


def test_genre_attributes_by_hand():
    works, versions = small_recipe()
    table = genre_attributes(works, versions)
    assert list(table.index) == ["chorale", "jig", "reel"]
    jig = table.loc["jig"]
    assert jig["era:traditional"] == 1 and jig["texture:single line"] == 1 and jig["mode:major"] == 0.5
    assert jig["metre:compound"] == 1 and jig["metre:duple"] == 0
    # jig versions: a (drone, 120), a (percussion, 90), b (none, 100): version e belongs to no work
    assert jig["accompaniment:drone"] == pytest.approx(1 / 3) and jig["tempo:fast"] == pytest.approx(2 / 3)
    assert jig["plays:flutes"] == pytest.approx(2 / 3) and jig["plays:organ"] == pytest.approx(1 / 3)
    assert "plays:reeds" not in table.columns
    chorale = table.loc["chorale"]
    assert chorale["texture:four or more voices"] == 1 and chorale["metre:triple"] == 1 and chorale["era:baroque"] == 1
    for group in ("era:", "metre:", "accompaniment:"):
        assert np.allclose(table.filter(like=group).sum(axis=1), 1)  # each group's shares sum to one


def test_genre_attributes_of_the_recipe_describe_the_genres_as_the_recipe_made_them():
    works, versions = read_recipe()
    train = works[works.split == "train"]
    table = genre_attributes(train, versions)
    assert set(table.index) == set(works.genre)
    assert table.loc["jig", "metre:compound"] > 0.9 and table.loc["reel", "metre:compound"] == 0
    assert table.loc["chorale", "era:baroque"] == 1 and table.loc["chorale", "accompaniment:none"] == 1
    assert table.loc["folksong", "texture:single line"] == 1
    # Only the given pieces describe a genre: the test pieces change nothing.
    other = works[works.split != "train"].assign(meter="6/8", n_voices=9, era="medieval")
    pd.testing.assert_frame_equal(genre_attributes(pd.concat([train, other[other.genre == "zzz"]]), versions), table)


def test_instrument_attributes_are_the_shares_of_the_programs_properties():
    table = instrument_attributes()
    assert list(table.index) == list(INSTRUMENT_FAMILIES)
    for family, programs in INSTRUMENT_FAMILIES.items():
        for prop in table.columns:
            assert table.loc[family, prop] == pytest.approx(np.mean([prop in PROGRAM_PROPERTIES[p] for p in programs]))
    assert table.loc["keyboard", "struck"] == 0.75 and table.loc["strings", "bowed"] == 1
    with pytest.raises(ValueError, match="no properties for GM program"):
        instrument_attributes({"synths": [81]})


def test_tag_attributes_give_each_concept_its_own_columns():
    works, versions = small_recipe()
    table = tag_attributes(TAGS[:3] + ["mood:calm"], works, versions, pieces=["a", "b", "c", "d"])
    assert list(table.index) == ["genre:chorale", "genre:jig", "genre:reel"]  # mood has no description
    assert (table["concept:genre"] == 1).all() and (table[list(instrument_attributes().columns)] == 0).all().all()
    table = tag_attributes(TAGS, works, versions, pieces=["a", "b", "c", "d"])
    flutes = table.loc["instrument:flutes"]
    assert flutes["concept:instrument"] == 1 and flutes["air"] == 1 and flutes.filter(like="era:").sum() == 0
    with pytest.raises(ValueError, match="no description for the tag 'genre:reel'"):
        tag_attributes(TAGS, works, versions, pieces=["a", "b", "d"])  # no training reel
    with pytest.raises(ValueError, match="none of the tags"):
        tag_attributes(["mood:calm"], works, versions, pieces=["a"])


def test_folds_hold_every_tag_once_and_every_concept_in_each_fold():
    tags = [f"genre:{i}" for i in range(10)] + [f"instrument:{i}" for i in range(9)]
    folds = held_out_folds(tags, 5, seed=3)
    assert sorted(t for fold in folds for t in fold) == sorted(tags)
    for fold in folds:
        assert {t.split(":")[0] for t in fold} == {"genre", "instrument"}
    assert folds == held_out_folds(tags, 5, seed=3) and folds != held_out_folds(tags, 5, seed=4)
    with pytest.raises(ValueError, match="fewer than the 10 folds"):
        held_out_folds(tags, 10)


def test_usable_attributes_and_nearest_seen_tags_by_hand():
    table = pd.DataFrame(
        {"a": [1, 1, 1, 0], "b": [0, 1, 0, 0], "c": [0, 0, 0, 1]},
        index=["genre:x", "genre:y", "genre:z", "instrument:w"], dtype=float,
    )  # fmt: skip
    assert usable_attributes(table, ["genre:x", "genre:y"]) == ["b"]  # a is constant, c never set
    assert usable_attributes(table, ["genre:x", "instrument:w"]) == ["a", "c"]
    nearest = nearest_seen_tags(table.iloc[:3], ["genre:x", "genre:y"])
    assert nearest["genre:z"] == "genre:x" and nearest["genre:x"] == "genre:y"
    assert nearest_seen_tags(table.iloc[:3], ["genre:x", "genre:y"], columns=["b"])["genre:z"] == "genre:x"
    with pytest.raises(ValueError, match="no other seen tag of 'instrument'"):
        nearest_seen_tags(table, ["genre:x", "genre:y"])


def synthetic_world(seed=0):
    """Six genres described by three binary attributes; a clip is its genre's description, mixed
    into 16 features, plus noise. Seen genres teach each attribute's direction."""
    rng = np.random.default_rng(seed)
    descriptions = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=float)
    tags = [f"genre:g{i}" for i in range(6)]
    attributes = pd.DataFrame(descriptions, index=tags, columns=["p", "q", "r"])
    mixing = rng.normal(size=(3, 16))

    def clips(n):
        codes = np.repeat(np.arange(6), n)
        return (descriptions[codes] @ mixing + 0.3 * rng.normal(size=(len(codes), 16))).astype(np.float32), codes

    (train_x, train_codes), (test_x, test_codes) = clips(40), clips(20)
    return attributes, train_x, train_codes, test_x, test_codes


def test_descriptions_find_the_clips_of_tags_never_trained_with():
    attributes, train_x, train_codes, test_x, test_codes = synthetic_world()
    folds = [["genre:g3"], ["genre:g4"], ["genre:g5"], ["genre:g0"], ["genre:g1"], ["genre:g2"]]
    seen_by_training = []
    real = zeroshot.train_attribute_tagger

    def spy(features, tags, described, batch_labels, **kwargs):
        seen_by_training.append((len(features), list(getattr(described, "index", [])), set(batch_labels)))
        return real(features, tags, described, batch_labels, **kwargs)

    with mock.patch.object(zeroshot, "train_attribute_tagger", spy):
        result = zero_shot_scores(train_x, np.eye(6)[train_codes], test_x, attributes, folds, train_codes,
                                  steps=150, classes_per_batch=5, samples_per_class=8)  # fmt: skip
    # Each fold trains without the held-out genre's clips and without its description.
    for (n_clips, described, genres), fold in zip(seen_by_training, folds):
        held = int(fold[0][-1])
        assert n_clips == 200 and fold[0] not in described and held not in genres
    table = zero_shot_table(result.scores, np.eye(6)[test_codes], result.tags)
    assert list(table.columns) == ["macro AUC", "R@1", "P@10"]
    auc = table["macro AUC"].droplevel("concept")
    assert auc["zero-shot"] > 0.9 and auc["supervised (every tag trained)"] > 0.9
    assert abs(auc["random"] - 0.5) < 0.1
    # A genre with two attributes is not its nearest seen genre: the description does better.
    assert auc["zero-shot"] > auc["nearest seen tag"] + 0.1
    assert result.lost == {t: [] for t in result.tags} and len(result.kept_share) == 6
    # Two runs summed up: their mean and spread, per column.
    summary = zero_shot_summary([result, result], np.eye(6)[test_codes])
    assert np.allclose(summary["macro AUC"], table["macro AUC"]) and (summary["macro AUC std"] == 0).all()
    per_tag = per_tag_zero_shot([result], np.eye(6)[test_codes])
    assert list(per_tag.index) == result.tags and (per_tag["attributes dropped"] == "-").all()
    assert per_tag["zero-shot"].mean() == pytest.approx(auc["zero-shot"])


def test_the_folds_must_cover_the_table():
    attributes, train_x, train_codes, test_x, _ = synthetic_world()
    with pytest.raises(ValueError, match="exactly once"):
        zero_shot_scores(train_x, np.eye(6)[train_codes], test_x, attributes, [["genre:g0"]], train_codes, steps=1)
