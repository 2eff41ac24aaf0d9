"""mlcourse.pretrained: full-mode models saved small, loaded only when they are the files listed."""

from __future__ import annotations

import hashlib
import json
import pickle

import pytest
import torch

from mlcourse import pretrained
from mlcourse.models import EmbeddingNet

SIZES = {"embedding_dim": 16, "widths": (4, 8)}


def trained_like(**sizes):
    torch.manual_seed(0)
    network = EmbeddingNet(**(sizes or SIZES))
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(torch.randn_like(parameter))  # weights unlike a fresh network's
    return network.eval()


def test_a_saved_model_loads_as_its_float16_weights_and_is_small(tmp_path):
    network = trained_like(embedding_dim=16)  # the course's widths: 110,000 weights
    path = pretrained.save(network, "tiny", tmp_path, notebook="03_siamese_contrastive", command="python x.py")
    torch.save(network.state_dict(), tmp_path / "float32.pt")
    assert path.stat().st_size < 0.55 * (tmp_path / "float32.pt").stat().st_size  # two bytes a weight, not four
    entry = json.loads((tmp_path / "MANIFEST.json").read_text())["tiny"]
    assert entry["notebook"] == "03_siamese_contrastive" and entry["bytes"] == path.stat().st_size

    torch.manual_seed(1)
    loaded = pretrained.load(EmbeddingNet(embedding_dim=16), "tiny", tmp_path)
    assert not loaded.training and pretrained.available("tiny", tmp_path) and not pretrained.available("x", tmp_path)
    for (key, before), after in zip(network.state_dict().items(), loaded.state_dict().values()):
        expected = before.half().float() if before.is_floating_point() else before
        assert torch.equal(after, expected), key
    clips = torch.randn(3, 128, 130)
    torch.testing.assert_close(loaded(clips), network(clips), atol=2e-2, rtol=0)


def test_keep_saves_only_where_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(pretrained.SAVE_ENV, raising=False)
    assert pretrained.keep(trained_like(), "tiny", "03", mode="full", epochs=15) is None
    monkeypatch.setenv(pretrained.SAVE_ENV, str(tmp_path / "models"))
    assert pretrained.keep(trained_like(), "tiny", "03", mode="full", epochs=15) == tmp_path / "models" / "tiny.pt"
    assert pretrained.available("tiny", tmp_path / "models")


def test_describe_says_how_a_model_was_trained_or_how_to_train_it(tmp_path, monkeypatch):
    missing = pretrained.describe("tiny", tmp_path)
    assert missing.startswith("no full-mode model 'tiny'") and "bench/gpu_check.py" in missing
    monkeypatch.setenv(pretrained.SAVE_ENV, str(tmp_path))
    pretrained.keep(trained_like(), "tiny", "03", mode="full", epochs=15)
    entry = json.loads((tmp_path / "MANIFEST.json").read_text())["tiny"]
    assert entry["trained"] == {"mode": "full", "epochs": 15, "device": "cpu"}
    assert pretrained.describe("tiny", tmp_path) == (
        "full-mode model 'tiny' (mode full, epochs 15, device cpu), reproduced by "
        "`MLCOURSE_SAVE_MODELS=data/models python bench/gpu_check.py`"
    )


def test_a_missing_damaged_or_foreign_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="bench/gpu_check.py"):
        pretrained.load(EmbeddingNet(**SIZES), "tiny", tmp_path)
    path = pretrained.save(trained_like(), "tiny", tmp_path, notebook="03", command="c")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256 differs"):
        pretrained.load(EmbeddingNet(**SIZES), "tiny", tmp_path)

    # A file that is not only tensors is refused even when the manifest lists its hash.
    torch.save({"weights": pickle.loads(pickle.dumps(ValueError("not a tensor")))}, path)
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    manifest["tiny"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(pickle.UnpicklingError):
        pretrained.load(EmbeddingNet(**SIZES), "tiny", tmp_path)


def test_a_name_must_be_a_plain_file_name(tmp_path):
    with pytest.raises(ValueError, match="letters, digits"):
        pretrained.save(trained_like(), "../escape", tmp_path, notebook="03", command="c")
