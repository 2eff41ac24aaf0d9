"""HTML exports that need no network: the course's executed notebooks as stand-alone pages.

nbconvert's ``lab`` template loads require.js, the widget manager and MathJax from public CDNs;
in a workshop room without network the widgets' outputs stay empty and the maths unrendered.
The exports made here instead:

* show every widget by the static picture that its output carries beside the live widget (the
  embedding explorer puts a PNG of its map there): :func:`static_outputs` drops the live views
  that have one, and the widget state, so no widget script is needed;
* load no script from the network: the ``offline`` template leaves out require.js and the
  widget manager, and MathJax comes from a local copy (:func:`copy_mathjax`, from the
  ``jupyter-server-mathjax`` package) next to the pages.

Used by ``python -m coursetools.run`` (``build/notebooks/*.html``) and ``python -m coursetools.site``.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TEMPLATES = Path(__file__).resolve().parent / "templates"
MATHJAX_FOLDER = "mathjax"
MATHJAX_CONFIG = "MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"  # the configurations the local copy has


def static_outputs(nb):
    """Make a notebook's widget outputs static, in place: the picture instead of the live view.

    An output whose data holds a widget view *and* a picture (``image/png``) keeps the picture
    only; a widget view without a picture is dropped whole (with no widget state saved, it would
    show nothing anyway). The notebook's saved widget state (``metadata.widgets``) is removed.

    Args:
        nb: An ``nbformat`` notebook node.

    Returns:
        The number of widget views replaced by their picture.
    """
    replaced = 0
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                if "image/png" not in data:
                    continue
                del data[WIDGET_VIEW]
                replaced += 1
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept
    nb.metadata.pop("widgets", None)
    return replaced


def mathjax_source() -> Path:
    """The folder of the local MathJax 2.7 (the ``jupyter-server-mathjax`` package's copy).

    The package is found, not imported: importing it would load the Jupyter server, which
    the pages do not need.

    Raises:
        FileNotFoundError: If the package is missing (``pip install jupyter-server-mathjax``).
    """
    spec = importlib.util.find_spec("jupyter_server_mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "no local MathJax: install the course again (`make install`), or `pip install jupyter-server-mathjax`"
        )
    return Path(spec.submodule_search_locations[0]).resolve() / "static"


def copy_mathjax(folder: Path) -> Path:
    """Copy the local MathJax into ``folder/mathjax`` (once; an existing copy is kept).

    Returns:
        The folder of the copy.
    """
    target = Path(folder) / MATHJAX_FOLDER
    if not (target / "MathJax.js").exists():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(mathjax_source(), partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)  # whole or not at all
    return target


def offline_html(nb, mathjax_url: str, **resources) -> str:
    """The HTML page of an executed notebook, loading nothing from the network.

    Args:
        nb: An ``nbformat`` notebook node; its widget outputs are made static (:func:`static_outputs`).
        mathjax_url: Where the page finds ``MathJax.js`` (with its configuration), relative to the page.
        **resources: Extra values for the template (the site passes its navigation).

    Returns:
        The page, as text.
    """
    from nbconvert import HTMLExporter

    static_outputs(nb)
    exporter = HTMLExporter(extra_template_basedirs=[str(TEMPLATES)], template_name="offline", mathjax_url=mathjax_url)
    body, _ = exporter.from_notebook_node(nb, resources={"course": resources})
    return body
