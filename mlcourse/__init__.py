"""Metric Learning for Music Information Retrieval: the course's helper package.

The notebooks in ``notebooks/`` teach; this package holds the code they run:
``mlcourse.data`` builds the offline dataset of rendered scores and loads it, and
``mlcourse.results`` records each notebook's headline figures.
"""

__version__ = "0.1.0"
