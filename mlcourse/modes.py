"""The three modes of the course, and the settings that depend on them.

Every notebook runs in one of three modes, named after the dataset size it loads: ``smoke`` (a
few clips, for the tests), ``workshop`` (about two minutes a notebook on a laptop CPU) and
``full`` (the whole dataset, longer training). A notebook's epochs, seeds and sizes sit in its
parameters cell as ``None``, which means "the mode's default"; set one to a value to override
it, in the cell or with papermill (``papermill -p EPOCHS 8 ...``).

Example:
    >>> setting(None, "workshop", smoke=1, workshop=4, full=12)
    4
    >>> setting(8, "workshop", smoke=1, workshop=4, full=12)
    8

Taught in ``notebooks/00_data_tour.ipynb``.
"""

MODES = ("smoke", "workshop", "full")


def check_mode(mode):
    """Return ``mode`` if it is one of :data:`MODES`, else raise a ValueError naming them."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)} (MLCOURSE_MODE)")
    return mode


def setting(value, mode, *, smoke, workshop, full):
    """A notebook setting: ``value`` where the learner set one, else the mode's default.

    Args:
        value: The value of the parameters cell; ``None`` means "the mode's default".
        mode: One of :data:`MODES`.
        smoke, workshop, full: The default of each mode.

    Returns:
        ``value``, or the default of ``mode`` when ``value`` is None.

    Raises:
        ValueError: If ``mode`` is not one of :data:`MODES`.
    """
    defaults = {"smoke": smoke, "workshop": workshop, "full": full}
    return defaults[check_mode(mode)] if value is None else value
