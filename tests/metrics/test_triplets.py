"""mlcourse.metrics.triplets: the shares of hard, semi-hard and easy triplets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcourse.metrics import triplet_kind_shares
from mlcourse.miners import mine_triplets, triplet_gaps


def test_triplet_kinds_follow_the_miners_boundaries():
    rng = np.random.default_rng(0)
    embeddings = torch.nn.functional.normalize(torch.tensor(rng.standard_normal((24, 3))), dim=1)
    labels = torch.tensor(rng.integers(0, 4, size=24))
    distances = torch.cdist(embeddings, embeddings)
    gaps = triplet_gaps(distances, *mine_triplets(distances, labels, 0.2, strategy="none"))
    shares = triplet_kind_shares(gaps, margin=0.2)
    for kind, strategy in [("hard", "hard"), ("semi-hard", "semihard"), ("easy", "easy")]:
        mined = len(mine_triplets(distances, labels, 0.2, strategy=strategy)[0])
        assert shares[kind] == pytest.approx(mined / len(gaps))
    assert sum(shares.values()) == pytest.approx(1.0)


def test_a_gap_on_a_boundary_is_the_harder_kind():
    assert triplet_kind_shares(np.array([0.0, 0.2, 0.2000001]), margin=0.2) == pytest.approx(
        {"hard": 1 / 3, "semi-hard": 1 / 3, "easy": 1 / 3}
    )


@pytest.mark.parametrize("gaps, margin, message", [([], 0.2, "no gaps"), ([0.1], 0.0, "margin must be")])
def test_triplet_kind_shares_refuse_what_has_no_shares(gaps, margin, message):
    with pytest.raises(ValueError, match=message):
        triplet_kind_shares(np.array(gaps), margin)
