"""Run a notebook in JupyterLab or Notebook 7, in headless Chromium, as a learner would.

The browser test of the embedding explorer (``tests/test_explorer_browser.py``) and its
benchmark (``bench/bench_explorer.py``) both start a Jupyter server on loopback, open a notebook
in Debian's Chromium (``/usr/bin/chromium``) driven by Playwright, and run all its cells. No
browser is downloaded: Playwright only drives the Chromium that is installed
(``apt-get install chromium chromium-driver``).

Example::

    with jupyterlab(folder) as url, notebook_page(url, "explorer.ipynb") as page:
        page.locator(".mlcourse-map canvas").wait_for()
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from mlcourse.files import repo_root

__all__ = ["CHROMIUM", "INTERFACES", "TOKEN", "jupyterlab", "notebook_page"]

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "mlcourse-browser"  # the server listens on 127.0.0.1 only
# The two web interfaces: how to start each one's server, and where it opens a notebook.
INTERFACES = {
    "lab": {
        "module": "jupyterlab",
        "path": "lab/tree",
        "flags": ["--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly"],
    },
    "notebook": {
        "module": "notebook",
        "path": "notebooks",
        "flags": ["--JupyterNotebookApp.expose_app_in_browser=True"],
    },
}
# For a machine without a display, a GPU or a network; the last one lets the explorer's
# player start on a click as it does for a learner.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyterlab(folder, interface: str = "lab", startup_seconds: float = 90):
    """A JupyterLab (or Notebook 7) server on 127.0.0.1 serving `folder`; yields its URL.

    It has its own settings; its log goes to ``folder/jupyter.log``. The kernel is this Python
    (with mlcourse). `interface` is "lab" or "notebook".
    """
    if interface not in INTERFACES:
        raise ValueError(f"unknown interface {interface!r}: choose one of {', '.join(INTERFACES)}")
    server_app = INTERFACES[interface]
    folder = Path(folder)
    config = folder / ".jupyter-config"
    (config / "labconfig").mkdir(parents=True, exist_ok=True)
    # No news pop-up over the page.
    (config / "labconfig" / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}'
    )
    package_root = repo_root()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(folder / ".jupyter-runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(folder / ".jupyter-workspaces"),
        # The "python3" kernel runs the `python` found first on the PATH: make it this one.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(package_root), os.environ.get("PYTHONPATH")])),
    }
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        server_app["module"],
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={folder}",
        *server_app["flags"],
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log_path = folder / "jupyter.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + startup_seconds
            while True:
                try:
                    urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{server_app['module']} did not start; its log:\n{log_path.read_text()}")
                    time.sleep(0.5)
            yield url
        finally:
            server.terminate()  # also shuts its kernels down
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


@contextmanager
def notebook_page(url: str, notebook: str, viewport=(1100, 1300), screenshot=None, interface: str = "lab"):
    """Open `notebook` (relative to the server's folder) in headless Chromium and run all its cells.

    Yields the Playwright page as soon as the cells are queued. With `screenshot`, the page is
    saved there when the block ends, also when it fails (to see why).
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        try:
            page.goto(f"{url}/{INTERFACES[interface]['path']}/{notebook}?token={TOKEN}")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.context",
                timeout=90_000,
            )
            page.evaluate("""async () => {
                const app = window.jupyterapp;
                await app.shell.currentWidget.context.sessionContext.ready;
                if (app.commands.hasCommand('application:toggle-left-area')) {   // JupyterLab only
                    await app.commands.execute('application:toggle-left-area');
                }
                await app.commands.execute('notebook:run-all-cells');
            }""")
            yield page
        finally:
            if screenshot is not None:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
            browser.close()
