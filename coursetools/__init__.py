"""Tools that run and check the course; not course content (that is :mod:`mlcourse`).

- :mod:`coursetools.run`: executes every notebook headlessly and prints the headline results
  (``make course`` is ``python -m coursetools.run``);
- :mod:`coursetools.labbrowser`: opens a notebook in JupyterLab in headless Chromium, for the
  explorer's browser test and its benchmark.
"""
