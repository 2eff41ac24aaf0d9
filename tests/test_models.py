"""The embedding network: shapes, normalisation, dtype handling, bad input."""

from __future__ import annotations

import pytest
import torch

from mlcourse.models import ConvBackbone, EmbeddingNet, count_parameters


def test_embedding_shape_and_unit_norm():
    net = EmbeddingNet(embedding_dim=32).eval()
    embeddings = net(torch.randn(5, 128, 130))
    assert embeddings.shape == (5, 32)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(5))


def test_without_normalisation_norms_vary():
    net = EmbeddingNet(embedding_dim=32, normalize=False).eval()
    norms = net(torch.randn(5, 128, 130)).norm(dim=1)
    assert norms.std() > 0


def test_float16_features_give_the_float32_result():
    # The dataset stores float16 log-mels; the network must read them in its own dtype.
    net = EmbeddingNet(embedding_dim=16).eval()
    features = torch.randn(3, 128, 130).half()
    torch.testing.assert_close(net(features), net(features.float()))


def test_backbone_output_size_follows_widths():
    backbone = ConvBackbone(widths=(4, 8, 12))
    assert backbone.output_size == 12
    assert backbone(torch.randn(2, 128, 130)).shape == (2, 12)


def test_count_parameters_matches_a_hand_count():
    net = EmbeddingNet(embedding_dim=8, widths=(4,))
    # input batch norm (2) + conv 1->4 3x3 without bias (36) + its batch norm (8) + head 4->8 (40)
    assert count_parameters(net) == 2 + 36 + 8 + 40


def test_wrong_input_shape_says_what_to_pass():
    with pytest.raises(ValueError, match=r"shape \(batch, 128, 130\)"):
        EmbeddingNet()(torch.randn(128, 130))


@pytest.mark.parametrize("bad", [{"embedding_dim": 0}, {"widths": ()}, {"widths": (8, 0)}])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError):
        EmbeddingNet(**bad)
