"""mlcourse.metrics.hashing: packed Hamming distances against unpacked bits and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mlcourse.metrics import binarize, hamming_distances, hamming_nearest_neighbors, pack_bits

WIDTHS = [1, 7, 8, 13, 64, 100]  # bits: below a byte, a byte, between bytes, several words
BLOCK_SIZES = [1, 4, None]


def random_bits(n_items, n_bits, seed):
    return np.random.default_rng(seed).integers(0, 2, size=(n_items, n_bits), dtype=np.uint8)


def unpacked_hamming(query_bits, gallery_bits):
    return (query_bits[:, None, :] != gallery_bits[None, :, :]).sum(axis=2)


@pytest.mark.parametrize("n_bits", WIDTHS)
@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_packed_hamming_distances_equal_the_count_of_differing_bits(n_bits, block_size):
    query_bits, gallery_bits = random_bits(9, n_bits, seed=n_bits), random_bits(23, n_bits, seed=n_bits + 1)
    distances = hamming_distances(pack_bits(query_bits), pack_bits(gallery_bits), block_size=block_size)
    assert distances.dtype == np.int32 and distances.shape == (9, 23)
    np.testing.assert_array_equal(distances, unpacked_hamming(query_bits, gallery_bits))


def test_hamming_distances_take_tensors_and_all_bits_of_a_byte():
    codes = torch.tensor([[0], [255], [0b10101010], [0b01010101]], dtype=torch.uint8)
    expected = [[0, 8, 4, 4], [8, 0, 4, 4], [4, 4, 0, 8], [4, 4, 8, 0]]
    np.testing.assert_array_equal(hamming_distances(codes, codes), expected)
    np.testing.assert_array_equal(hamming_distances(codes.numpy(), codes), expected)


def brute_force_neighbors(query_bits, gallery_bits, k):
    distances = unpacked_hamming(query_bits, gallery_bits)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]  # stable: equal distances by index
    return np.take_along_axis(distances, order, axis=1), order


@pytest.mark.parametrize("n_bits", [5, 13, 64])  # 5 bits: most distances tie
@pytest.mark.parametrize("k", [1, 4, 30])
@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_hamming_neighbors_equal_a_brute_force_sort_with_ties_by_index(n_bits, k, block_size):
    query_bits, gallery_bits = random_bits(11, n_bits, seed=2 * n_bits), random_bits(30, n_bits, seed=2 * n_bits + 1)
    distances, indices = hamming_nearest_neighbors(
        pack_bits(query_bits), pack_bits(gallery_bits), k=k, block_size=block_size
    )
    expected_distances, expected_indices = brute_force_neighbors(query_bits, gallery_bits, k)
    assert distances.dtype == np.int32 and indices.dtype == np.int64
    np.testing.assert_array_equal(distances, expected_distances)
    np.testing.assert_array_equal(indices, expected_indices)


def test_identical_codes_are_ordered_by_index():
    codes = np.zeros((6, 2), dtype=np.uint8)
    distances, indices = hamming_nearest_neighbors(codes[:2], codes, k=6)
    np.testing.assert_array_equal(distances, np.zeros((2, 6)))
    np.testing.assert_array_equal(indices, [list(range(6))] * 2)


@pytest.mark.parametrize("n_bits", WIDTHS)
def test_binarize_then_pack_round_trips_through_unpackbits(n_bits):
    embeddings = np.random.default_rng(n_bits).standard_normal((12, n_bits))
    bits = binarize(embeddings)
    assert bits.dtype == np.uint8 and bits.shape == (12, n_bits)
    np.testing.assert_array_equal(bits, embeddings >= 0)
    codes = pack_bits(bits)
    assert codes.dtype == np.uint8 and codes.shape == (12, math.ceil(n_bits / 8))
    np.testing.assert_array_equal(np.unpackbits(codes, axis=1, count=n_bits), bits)
    np.testing.assert_array_equal(pack_bits(torch.from_numpy(bits).bool()), codes)


def test_binarize_maps_zero_to_one_and_takes_tensors():
    embeddings = torch.tensor([[0.0, -0.0, -1e-30, 1e-30]])
    np.testing.assert_array_equal(binarize(embeddings), [[1, 1, 0, 1]])
    np.testing.assert_array_equal(binarize(embeddings.double().numpy()), [[1, 1, 0, 1]])


def test_the_hamming_distance_of_sign_codes_tracks_the_angle():
    """Charikar's SimHash: for pairs in random orientations, E[Hamming / D] = angle / pi.

    A random orientation makes each coordinate plane a random hyperplane for the pair, which
    separates the pair with probability angle / pi. Each pair's fraction of differing bits lies
    in [0, 1] and the pairs are independent, so by Hoeffding's inequality the mean of 2,000 pairs
    is more than 0.04 from angle / pi with probability at most 2 exp(-2 * 2000 * 0.04^2) < 0.004.
    """
    rng = np.random.default_rng(0)
    n_pairs, n_bits = 2000, 64
    for angle in np.pi * np.array([1, 2, 3, 4, 5]) / 6:
        x = rng.standard_normal((n_pairs, n_bits))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        u = rng.standard_normal((n_pairs, n_bits))
        u -= (u * x).sum(axis=1, keepdims=True) * x
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        y = np.cos(angle) * x + np.sin(angle) * u
        distances = np.diag(hamming_distances(pack_bits(binarize(x)), pack_bits(binarize(y))))
        assert abs(distances.mean() / n_bits - angle / np.pi) < 0.04, angle


def test_binarize_refuses_what_has_no_sign():
    with pytest.raises(ValueError, match="NaN"):
        binarize(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="2-D"):
        binarize(np.ones(4))


def test_pack_bits_refuses_what_are_not_bits():
    with pytest.raises(ValueError, match="binarize"):
        pack_bits(np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="all be 0 or 1"):
        pack_bits(np.array([[0, 2]]))
    with pytest.raises(ValueError, match="2-D"):
        pack_bits(np.array([0, 1]))
    with pytest.raises(ValueError, match="2-D"):
        pack_bits(np.zeros((3, 0), dtype=bool))


@pytest.mark.parametrize("search", [hamming_distances, hamming_nearest_neighbors])
def test_the_hamming_searches_refuse_codes_that_are_not_packed_or_do_not_match(search):
    codes = pack_bits(random_bits(10, 16, seed=0))
    with pytest.raises(ValueError, match="uint8"):
        search(codes.astype(np.int64), codes)
    with pytest.raises(ValueError, match="uint8"):
        search(codes, random_bits(10, 16, seed=0).astype(np.float32))
    with pytest.raises(ValueError, match="same width"):
        search(codes, codes[:, :1])
    with pytest.raises(ValueError, match="2-D"):
        search(codes[0], codes)
    with pytest.raises(ValueError, match="block_size"):
        search(codes, codes, block_size=0)


@pytest.mark.parametrize("k", [0, 5, True, 2.0])
def test_hamming_neighbors_refuse_k_out_of_range(k):
    codes = pack_bits(random_bits(4, 16, seed=0))
    with pytest.raises(ValueError, match="k"):
        hamming_nearest_neighbors(codes, codes, k=k)
