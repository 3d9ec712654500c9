"""Feature rows shaped like the bid path's: sparse, non-negative, in [0, 1]."""

from __future__ import annotations

import numpy as np

from domain.bidding.model_shape import FEATURE_DIMS
from domain.bidding.ports import FloatMatrix


def sparse_features(rng: np.random.Generator, rows: int, one_hot_share: float = 0.5) -> FloatMatrix:
    """``rows`` rows of 20-40 non-zeros each; ``one_hot_share`` of them exactly 1.0.

    One-hot encodings (device type, geo, tier) give the 1.0s, recency and affinity scores the
    fractions in between.
    """
    features = np.zeros((rows, FEATURE_DIMS), dtype=np.float32)
    for row in features:
        count = int(rng.integers(20, 41))
        columns = rng.choice(FEATURE_DIMS, size=count, replace=False)
        values = rng.uniform(0.0, 1.0, size=count).astype(np.float32)
        values[rng.random(count) < one_hot_share] = 1.0
        row[columns] = values
    return features


def dense_features(rng: np.random.Generator, rows: int) -> FloatMatrix:
    """Arbitrary rows, negative values included: for comparing backends, not for realism."""
    return rng.normal(0.0, 0.5, size=(rows, FEATURE_DIMS)).astype(np.float32)
