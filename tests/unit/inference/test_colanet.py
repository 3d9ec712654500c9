from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from domain.bidding.model_shape import FEATURE_DIMS, HIDDEN_UNITS, OFFER_SLOTS, VARIANT_SLOTS
from inference.colanet import (
    WEIGHTS_FILE,
    CoLaNetWeights,
    PackedCoLaNet,
    forward_numpy,
    load_or_create,
)
from tests.unit.inference.features import dense_features, sparse_features


def _reference_forward(weights: CoLaNetWeights, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network as written on paper, in float64, to check the optimised pass against."""
    x64 = x.astype(np.float64)
    v = x64 @ weights.w_hidden + weights.b_hidden
    h = v * (v > weights.threshold)
    offer = 1.0 / (1.0 + np.exp(-(h @ weights.w_offer + weights.b_offer)))
    variant = 1.0 / (1.0 + np.exp(-(h @ weights.w_variant + weights.b_variant)))
    return offer, variant


def test_created_files_are_identical_when_created_in_two_directories(tmp_path: Path) -> None:
    load_or_create(tmp_path / "first")
    load_or_create(tmp_path / "second")

    first = (tmp_path / "first" / WEIGHTS_FILE).read_bytes()
    second = (tmp_path / "second" / WEIGHTS_FILE).read_bytes()
    assert first == second


def test_load_returns_the_created_weights_when_read_back(models_dir: Path) -> None:
    created = load_or_create(models_dir)

    assert CoLaNetWeights.load(models_dir / WEIGHTS_FILE) == created
    assert load_or_create(models_dir) == CoLaNetWeights.create()


def test_load_or_create_keeps_existing_weights_when_file_exists(models_dir: Path) -> None:
    trained = CoLaNetWeights.create(seed=7)
    trained.save(models_dir / WEIGHTS_FILE)

    assert load_or_create(models_dir) == trained
    assert load_or_create(models_dir) != CoLaNetWeights.create()


def test_save_leaves_only_the_weights_file_when_done(models_dir: Path) -> None:
    CoLaNetWeights.create().save(models_dir / WEIGHTS_FILE)

    assert [path.name for path in models_dir.iterdir()] == [WEIGHTS_FILE]


def test_create_gives_different_weights_when_seeds_differ() -> None:
    assert CoLaNetWeights.create(seed=1) != CoLaNetWeights.create(seed=2)


def test_weights_are_float32_and_read_only_when_built_from_float64() -> None:
    created = CoLaNetWeights.create()
    rebuilt = replace(created, w_hidden=created.w_hidden.astype(np.float64))

    assert rebuilt.w_hidden.dtype == np.float32
    with pytest.raises(ValueError, match="read-only"):
        rebuilt.w_hidden[0, 0] = 1.0


def test_weights_refuse_construction_when_a_shape_is_wrong() -> None:
    created = CoLaNetWeights.create()

    with pytest.raises(ValueError, match="w_offer"):
        replace(created, w_offer=np.zeros((HIDDEN_UNITS, OFFER_SLOTS + 1), np.float32))


def test_load_refuses_file_when_an_array_is_missing(models_dir: Path) -> None:
    models_dir.mkdir()
    path = models_dir / WEIGHTS_FILE
    np.savez(path, w_hidden=np.zeros((FEATURE_DIMS, HIDDEN_UNITS), np.float32))

    with pytest.raises(ValueError, match="threshold"):
        CoLaNetWeights.load(path)


def test_forward_matches_the_paper_network_when_inputs_are_random() -> None:
    weights = CoLaNetWeights.create()
    x = dense_features(np.random.default_rng(3), 64)

    scores = forward_numpy(weights, x)
    offer, variant = _reference_forward(weights, x)

    assert scores.offer.dtype == np.float32
    assert scores.variant.dtype == np.float32
    assert scores.offer.shape == (64, OFFER_SLOTS)
    assert scores.variant.shape == (64, VARIANT_SLOTS)
    np.testing.assert_allclose(scores.offer, offer, rtol=0, atol=1e-5)
    np.testing.assert_allclose(scores.variant, variant, rtol=0, atol=1e-5)


def test_forward_stays_finite_without_warnings_when_logits_are_huge() -> None:
    # Warnings are errors in this suite: an overflowing exp would fail the test by itself.
    weights = CoLaNetWeights.create()
    x = dense_features(np.random.default_rng(4), 16) * np.float32(1e4)

    scores = forward_numpy(weights, x)

    for head in (scores.offer, scores.variant):
        assert np.all(np.isfinite(head))
        assert head.min() >= 0.0
        assert head.max() <= 1.0
        assert head.min() < 1e-6  # some logits really are hugely negative...
        assert head.max() > 1 - 1e-6  # ...and some hugely positive


def test_hidden_neurons_fire_partially_when_inputs_are_typical() -> None:
    weights = CoLaNetWeights.create()
    x = sparse_features(np.random.default_rng(5), 1000)

    membrane = x @ weights.w_hidden + weights.b_hidden
    fired = membrane > weights.threshold

    # Neither a dead layer nor a linear one: the threshold is doing the work of a spike.
    assert 0.15 < fired.mean() < 0.7
    assert fired.any(axis=0).all(), "every neuron fires for some input"
    assert not fired.all(axis=0).any(), "no neuron fires for every input"


@pytest.mark.parametrize("one_hot_share", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_scores_spread_without_saturating_when_inputs_are_typical(
    seed: int, one_hot_share: float
) -> None:
    weights = CoLaNetWeights.create()
    x = sparse_features(np.random.default_rng(seed), 500, one_hot_share)

    scores = forward_numpy(weights, x)

    for head in (scores.offer, scores.variant):
        low, high = np.percentile(head, [10, 90])
        assert low < 0.25
        assert high > 0.75
        saturated = (head < 0.01) | (head > 0.99)
        assert saturated.mean() < 0.05
        # Rows rank offers differently and offers score differently across rows.
        assert head.std(axis=1).mean() > 0.1
        assert head.std(axis=0).mean() > 0.1


def test_packed_network_matches_forward_numpy_when_reused() -> None:
    weights = CoLaNetWeights.create()
    packed = PackedCoLaNet(weights)
    x = sparse_features(np.random.default_rng(6), 8)

    first = packed.forward(x)
    second = packed.forward(x)

    np.testing.assert_array_equal(first.offer, second.offer)
    np.testing.assert_array_equal(first.offer, forward_numpy(weights, x).offer)
    np.testing.assert_array_equal(first.variant, forward_numpy(weights, x).variant)
