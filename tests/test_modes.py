import pytest

from mlcourse.data.build import SIZES
from mlcourse.modes import MODES, setting


def test_modes_are_the_dataset_sizes():
    assert list(MODES) == list(SIZES)


@pytest.mark.parametrize("mode, expected", [("smoke", 1), ("workshop", 4), ("full", 12)])
def test_none_is_the_modes_default(mode, expected):
    assert setting(None, mode, smoke=1, workshop=4, full=12) == expected


def test_a_value_overrides_every_mode():
    assert [setting(0, mode, smoke=1, workshop=4, full=12) for mode in MODES] == [0, 0, 0]
    assert setting([3, 5], "full", smoke=[0], workshop=[0, 1], full=[0, 1, 2]) == [3, 5]


def test_an_unknown_mode_names_the_known_ones():
    with pytest.raises(ValueError, match="smoke, workshop, full"):
        setting(None, "workshops", smoke=1, workshop=4, full=12)
