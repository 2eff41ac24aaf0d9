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


def test_channels_last_backbone_computes_what_a_plain_one_does():
    """The memory layout is a speed choice: the same layers in the default layout agree."""
    torch.manual_seed(0)
    backbone = ConvBackbone((4, 8, 16)).train()
    plain = ConvBackbone((4, 8, 16)).train()
    plain.load_state_dict(backbone.state_dict())
    plain.blocks.to(memory_format=torch.contiguous_format)
    assert backbone.blocks[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.blocks[0].weight.is_contiguous()
    x = torch.randn(6, 128, 130)
    expected = plain.blocks(plain.input_norm(x.unsqueeze(1)).contiguous()).mean(dim=(2, 3))
    torch.testing.assert_close(backbone(x), expected, atol=1e-5, rtol=1e-5)
    expected.sum().backward()
    backbone(x).sum().backward()
    torch.testing.assert_close(backbone.blocks[0].weight.grad, plain.blocks[0].weight.grad, atol=1e-4, rtol=1e-4)


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


# --------------------------------------------------------------------------------------------
# Chroma, recording and residual networks (notebook 09)
# --------------------------------------------------------------------------------------------


def test_chroma_net_is_exactly_invariant_to_transposition_and_not_to_other_changes():
    from mlcourse.models import ChromaNet

    torch.manual_seed(0)
    net = ChromaNet(embedding_dim=16).eval()
    chroma = torch.rand(4, 12, 130)
    with torch.no_grad():
        reference = net(chroma)
        for semitones in range(1, 12):
            torch.testing.assert_close(net(torch.roll(chroma, semitones, dims=1)), reference, atol=1e-5, rtol=0)
        # Not a constant map: swapping two pitch classes (no transposition) changes the embedding.
        swapped = chroma[:, [1, 0, *range(2, 12)]]
        assert (net(swapped) - reference).abs().max() > 1e-3


def test_chroma_net_blocks_are_equivariant_by_circular_convolution():
    # An independent check of the wrap-around: the first block's output for the input tiled
    # three octaves high, with no padding in pitch, is the circular result (middle octave).
    from mlcourse.models import ChromaNet

    torch.manual_seed(1)
    net = ChromaNet(embedding_dim=8, widths=(5,)).eval()
    chroma = torch.rand(2, 12, 40)
    convolution = net.convolutions[0]
    with torch.no_grad():
        tiled = torch.cat([chroma, chroma, chroma], dim=1).unsqueeze(1)  # (B, 1, 36, T)
        plain = torch.nn.functional.conv2d(tiled, convolution.weight, padding=(0, 1))  # (B, 5, 25, T)
        padded = torch.nn.functional.pad(chroma.unsqueeze(1), (0, 0, 6, 5), mode="circular")
        circular = convolution(padded)  # (B, 5, 12, T)
    # Output row k of the circular conv starts at input row k - 6 (mod 12): row k + 6 of the tiled input.
    torch.testing.assert_close(circular, plain[:, :, 6:18])


def test_chroma_net_rejects_wrong_shapes():
    from mlcourse.models import ChromaNet

    with pytest.raises(ValueError, match="chroma of shape"):
        ChromaNet()(torch.rand(2, 128, 130))


def test_recording_net_is_the_normalised_mean_of_its_clips():
    from mlcourse.models import ChromaNet, RecordingNet

    torch.manual_seed(2)
    clip_net = ChromaNet(embedding_dim=8).eval()
    recordings = torch.rand(3, 4, 12, 130)
    with torch.no_grad():
        each = clip_net(recordings.reshape(12, 12, 130)).reshape(3, 4, 8)
        expected = torch.nn.functional.normalize(each.mean(dim=1), dim=1)
        torch.testing.assert_close(RecordingNet(clip_net)(recordings), expected)


def test_residual_mlp_starts_as_the_identity_and_learns():
    from mlcourse.models import ResidualMLP

    torch.manual_seed(3)
    net = ResidualMLP(6, hidden=4)
    x = torch.randn(5, 6)
    torch.testing.assert_close(net(x), x)
    loss = (net(x) - 2 * x).pow(2).mean()
    loss.backward()
    assert net.correct.weight.grad.abs().sum() > 0
