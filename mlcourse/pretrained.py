"""Models trained in full mode, kept small, so that a CPU workshop can show what long training reaches.

A workshop trains each model for a few epochs. The same notebook in full mode, on a GPU, trains
it for many more (``python bench/gpu_check.py`` runs notebooks 03, 06 and 09 so). A notebook
hands its trained models to :func:`keep`, which writes nothing unless ``MLCOURSE_SAVE_MODELS``
names a folder; there each model is saved as a float16 state dict, a few hundred kB, with its
sha256 in the folder's ``MANIFEST.json`` beside the command that made it. The folder the course
reads is ``data/models/``, kept in the repository. :func:`load` checks a file's hash before it
reads it, and reads only tensors (``torch.load(weights_only=True)``), so a damaged or foreign
file is refused, never run.

Example::

    print(pretrained.describe("03_contrastive"))    # how it was trained, or how to train it
    if pretrained.available("03_contrastive"):
        network = pretrained.load(EmbeddingNet(embedding_dim=128), "03_contrastive")
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import torch

from .files import atomic_file, repo_root

SAVE_ENV = "MLCOURSE_SAVE_MODELS"
"""Environment variable naming the folder :func:`keep` saves into (unset: it saves nothing)."""
MANIFEST = "MANIFEST.json"


def models_dir() -> Path:
    """The folder the course reads its full-mode models from: ``<repo root>/data/models``."""
    return repo_root() / "data" / "models"


def _manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def save(model: torch.nn.Module, name: str, folder: Path, *, notebook: str, command: str, **trained) -> Path:
    """Save ``model``'s weights as float16 into ``folder/<name>.pt`` and list it in the manifest.

    Args:
        model: The trained network.
        name: The model's name, e.g. ``"03_contrastive"`` (letters, digits, ``_`` and ``-``).
        folder: Where to save.
        notebook: The notebook that trained it.
        command: The command that reproduces it.
        **trained: How it was trained (``mode``, ``epochs``, ``device``), listed in the manifest
            and shown by :func:`describe`.

    Returns:
        The path of the saved file.
    """
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"a model's name is letters, digits, '_' and '-', got {name!r}")
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    state = {key: value.half() if value.is_floating_point() else value for key, value in state.items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    folder = Path(folder)
    path = folder / f"{name}.pt"
    with atomic_file(path) as file:
        file.write(data)
    manifest = _manifest(folder)
    manifest[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "notebook": notebook,
                      "command": command, "trained": trained}  # fmt: skip
    with atomic_file(folder / MANIFEST, "w") as file:
        json.dump(manifest, file, indent=2, sort_keys=True)
        file.write("\n")
    return path


def keep(model: torch.nn.Module, name: str, notebook: str, *, mode: str, epochs: int) -> Path | None:
    """Save ``model`` if ``MLCOURSE_SAVE_MODELS`` names a folder (see :func:`save`); else do nothing.

    Args:
        model: The trained network.
        name: Its name, e.g. ``"03_contrastive"``.
        notebook: The notebook that trained it.
        mode: The mode it was trained in (``"full"`` for the models the course ships).
        epochs: How many epochs it was trained for.

    Returns:
        The saved file's path, or None.
    """
    folder = os.environ.get(SAVE_ENV)
    if not folder:
        return None
    command = f"{SAVE_ENV}=data/models python bench/gpu_check.py"
    device = next(model.parameters()).device
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return save(model, name, Path(folder), notebook=notebook, command=command, mode=mode, epochs=epochs, device=where)


def available(name: str, folder: Path | None = None) -> bool:
    """Whether a model of that name is listed in the folder's manifest (default: ``data/models``)."""
    return name in _manifest(Path(folder) if folder is not None else models_dir())


def describe(name: str, folder: Path | None = None) -> str:
    """One line on the saved model ``name``: how it was trained, or, if it is missing, how to train it."""
    folder = Path(folder) if folder is not None else models_dir()
    entry = _manifest(folder).get(name)
    if entry is None:
        return (
            f"no full-mode model {name!r} in {folder} yet: `{SAVE_ENV}=data/models python "
            f"bench/gpu_check.py` trains it on a GPU (about 10 minutes), and this cell then compares it with "
            f"this run"
        )
    trained = entry.get("trained", {})
    how = ", ".join(f"{key} {trained[key]}" for key in ("mode", "epochs", "device") if key in trained)
    return f"full-mode model {name!r} ({how or 'no details listed'}), reproduced by `{entry['command']}`"


def load(model: torch.nn.Module, name: str, folder: Path | None = None) -> torch.nn.Module:
    """Load a saved model's weights into ``model`` (same class and sizes), after checking its hash.

    Args:
        model: A network built as the saved one was; its weights are replaced, in its own dtype.
        name: The saved model's name.
        folder: Where it was saved (default: ``data/models``).

    Returns:
        ``model``, in eval mode.

    Raises:
        FileNotFoundError: If the model is not listed or its file is missing.
        ValueError: If the file's sha256 is not the listed one (a damaged or replaced file).
    """
    folder = Path(folder) if folder is not None else models_dir()
    entry = _manifest(folder).get(name)
    path = folder / f"{name}.pt"
    if entry is None or not path.exists():
        raise FileNotFoundError(
            f"no full-mode model {name!r} in {folder}: they are trained on a GPU by "
            f"`MLCOURSE_SAVE_MODELS={folder} python bench/gpu_check.py`"
        )
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ValueError(f"{path} is not the file {MANIFEST} lists (its sha256 differs): restore it with git")
    state = torch.load(io.BytesIO(data), weights_only=True)
    dtype = next(model.parameters()).dtype
    model.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()
