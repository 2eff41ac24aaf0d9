"""The recipe: note extraction from scores, skipping what does not parse, versions drawn fairly."""

import numpy as np
import pandas as pd
from music21 import chord, harmony, note, stream, tie

from mlcourse.data.build import read_recipe
from mlcourse.data.features import PITCH_CLASSES
from mlcourse.data.recipe import describe_work, draw_all_versions, extract_parts
from mlcourse.data.render import INSTRUMENT_FAMILIES, family_of_program


def test_extract_parts_merges_ties_and_ignores_chord_symbols():
    part = stream.Part()
    first, second = note.Note("C4", quarterLength=1.0), note.Note("C4", quarterLength=2.0)
    first.tie, second.tie = tie.Tie("start"), tie.Tie("stop")
    part.append([first, second, harmony.ChordSymbol("G"), chord.Chord(["E4", "G4"], quarterLength=1.0)])
    score = stream.Score([part])
    (notes,) = extract_parts(score)
    np.testing.assert_array_equal(notes, [[0.0, 3.0, 60], [3.0, 1.0, 64], [3.0, 1.0, 67]])


def test_a_work_that_does_not_parse_is_skipped_with_its_reason():
    work = describe_work(("chorale", "bach/no_such_chorale.mxl", None))
    assert work["skip_reason"].startswith("does not parse")
    assert work["source"] == "bach/no_such_chorale.mxl"


def test_recipe_versions_are_reproducible_and_consistent():
    works, versions = read_recipe()
    redrawn = draw_all_versions(works.to_dict("records"))
    pd.testing.assert_frame_equal(redrawn.reset_index(drop=True), versions, check_dtype=False)
    for version in versions.itertuples():
        programs = [int(p) for p in version.programs.split()]
        assert family_of_program(programs[0]) == version.instrument
        assert version.families.split() == sorted({family_of_program(p) for p in programs})
    # every version of a piece has its own lead family
    assert versions.groupby("piece_id").instrument.nunique().eq(versions.groupby("piece_id").size()).all()
    assert set(versions.instrument) == set(INSTRUMENT_FAMILIES)


def test_keys_are_spelled_as_the_chroma_rows():
    # One spelling of the twelve pitch classes: the key column of the recipe names each tonic
    # as the chroma rows do, and parsing a flat-key chorale again gives the committed row.
    works, _ = read_recipe()
    tonic_names = works.key.str.split().str[0]
    assert (tonic_names == [PITCH_CLASSES[t] for t in works.tonic]).all()
    row = works.set_index("piece_id").loc["chorale-005"]
    work = describe_work(("chorale", row.source, None))
    assert work["key"] == row.key == "Bb major"
