from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from domain.bidding.model_shape import FEATURE_DIMS, OFFER_SLOTS, VARIANT_SLOTS
from inference.colanet import WEIGHTS_FILE, CoLaNetWeights
from inference.onnx_export import ONNX_FILE, build_model
from inference.providers import (
    PREFERRED_EXECUTION_PROVIDERS,
    NumpyProvider,
    OnnxProvider,
    make_provider,
    select_execution_providers,
)
from tests.unit.inference.features import dense_features, sparse_features


@pytest.mark.parametrize("rows", [1, 16, 64])
def test_onnx_agrees_with_numpy_when_batches_are_random(
    numpy_provider: NumpyProvider, onnx_provider: OnnxProvider, rows: int
) -> None:
    rng = np.random.default_rng(rows)
    for x in (dense_features(rng, rows), sparse_features(rng, rows)):
        expected = numpy_provider.predict_batch(x)
        actual = onnx_provider.predict_batch(x)

        assert actual.offer.shape == (rows, OFFER_SLOTS)
        assert actual.variant.shape == (rows, VARIANT_SLOTS)
        assert actual.offer.dtype == np.float32
        np.testing.assert_allclose(actual.offer, expected.offer, rtol=0, atol=1e-5)
        np.testing.assert_allclose(actual.variant, expected.variant, rtol=0, atol=1e-5)


def test_onnx_agrees_with_numpy_when_predicting_one_row(
    numpy_provider: NumpyProvider, onnx_provider: OnnxProvider
) -> None:
    for row in dense_features(np.random.default_rng(21), 10):
        expected = numpy_provider.predict(row)
        actual = onnx_provider.predict(row)

        assert actual.offer_scores.shape == (OFFER_SLOTS,)
        assert actual.variant_scores.shape == (VARIANT_SLOTS,)
        np.testing.assert_allclose(actual.offer_scores, expected.offer_scores, atol=1e-5, rtol=0)
        np.testing.assert_allclose(
            actual.variant_scores, expected.variant_scores, atol=1e-5, rtol=0
        )


def test_predict_matches_the_batch_row_when_given_one_row(numpy_provider: NumpyProvider) -> None:
    x = sparse_features(np.random.default_rng(22), 4)
    batch = numpy_provider.predict_batch(x)

    single = numpy_provider.predict(x[2])

    np.testing.assert_allclose(single.offer_scores, batch.offer[2], atol=1e-6, rtol=0)
    np.testing.assert_allclose(single.variant_scores, batch.variant[2], atol=1e-6, rtol=0)


@pytest.mark.parametrize("provider_fixture", ["numpy_provider", "onnx_provider"])
def test_predict_batch_refuses_rows_when_more_than_max_batch_size(
    provider_fixture: str, request: pytest.FixtureRequest
) -> None:
    provider = request.getfixturevalue(provider_fixture)
    x = sparse_features(np.random.default_rng(23), provider.max_batch_size + 1)

    with pytest.raises(ValueError, match="max_batch_size"):
        provider.predict_batch(x)


@pytest.mark.parametrize("provider_fixture", ["numpy_provider", "onnx_provider"])
def test_providers_refuse_features_when_width_is_wrong(
    provider_fixture: str, request: pytest.FixtureRequest
) -> None:
    provider = request.getfixturevalue(provider_fixture)

    with pytest.raises(ValueError, match=str(FEATURE_DIMS)):
        provider.predict_batch(np.zeros((2, FEATURE_DIMS - 1), np.float32))
    with pytest.raises(ValueError, match=str(FEATURE_DIMS)):
        provider.predict(np.zeros(FEATURE_DIMS + 1, np.float32))


@pytest.mark.parametrize("provider_fixture", ["numpy_provider", "onnx_provider"])
def test_providers_return_empty_scores_when_batch_is_empty(
    provider_fixture: str, request: pytest.FixtureRequest
) -> None:
    provider = request.getfixturevalue(provider_fixture)

    scores = provider.predict_batch(np.zeros((0, FEATURE_DIMS), np.float32))

    assert scores.offer.shape == (0, OFFER_SLOTS)
    assert scores.variant.shape == (0, VARIANT_SLOTS)


def test_providers_score_float64_input_as_float32(
    numpy_provider: NumpyProvider, onnx_provider: OnnxProvider
) -> None:
    x = sparse_features(np.random.default_rng(24), 3)

    for provider in (numpy_provider, onnx_provider):
        scores = provider.predict_batch(x.astype(np.float64))
        assert scores.offer.dtype == np.float32
        np.testing.assert_allclose(scores.offer, provider.predict_batch(x).offer, atol=1e-6, rtol=0)


def test_exported_graph_passes_the_onnx_checker_when_built() -> None:
    model = build_model(CoLaNetWeights.create())

    onnx.checker.check_model(model, full_check=True)
    assert [opset.version for opset in model.opset_import] == [17]
    assert [node.name for node in model.graph.input] == ["features"]
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param  # symbolic, so any batch size runs
    assert [node.name for node in model.graph.output] == ["offer_scores", "variant_scores"]


def test_make_provider_builds_the_onnx_file_when_missing(models_dir: Path) -> None:
    provider = make_provider("onnx", models_dir)

    assert (models_dir / WEIGHTS_FILE).exists()
    assert (models_dir / ONNX_FILE).exists()
    assert provider.name.startswith("onnx-")
    x = sparse_features(np.random.default_rng(25), 5)
    expected = make_provider("numpy", models_dir).predict_batch(x)
    np.testing.assert_allclose(provider.predict_batch(x).offer, expected.offer, atol=1e-5, rtol=0)


def test_make_provider_rebuilds_the_onnx_file_when_older_than_weights(models_dir: Path) -> None:
    make_provider("onnx", models_dir)
    graph = models_dir / ONNX_FILE
    weights_stat = (models_dir / WEIGHTS_FILE).stat()
    # A graph from some other weights, left behind before the current weights arrived.
    graph.write_bytes(build_model(CoLaNetWeights.create(seed=99)).SerializeToString())
    stale_ns = weights_stat.st_mtime_ns - 1_000_000_000
    os.utime(graph, ns=(stale_ns, stale_ns))

    provider = make_provider("onnx", models_dir)

    assert graph.stat().st_mtime_ns >= weights_stat.st_mtime_ns
    x = sparse_features(np.random.default_rng(26), 5)
    expected = make_provider("numpy", models_dir).predict_batch(x)
    np.testing.assert_allclose(provider.predict_batch(x).offer, expected.offer, atol=1e-5, rtol=0)


def test_make_provider_keeps_the_onnx_file_when_newer_than_weights(models_dir: Path) -> None:
    make_provider("onnx", models_dir)
    graph = models_dir / ONNX_FILE
    fresh_ns = (models_dir / WEIGHTS_FILE).stat().st_mtime_ns + 1_000_000_000
    os.utime(graph, ns=(fresh_ns, fresh_ns))

    make_provider("onnx", models_dir)

    assert graph.stat().st_mtime_ns == fresh_ns


def test_make_provider_passes_max_batch_size_when_given(models_dir: Path) -> None:
    assert make_provider("numpy", models_dir, max_batch_size=8).max_batch_size == 8
    assert make_provider("onnx", models_dir, max_batch_size=8).max_batch_size == 8


def test_onnx_provider_picks_the_best_available_when_none_requested(
    onnx_provider: OnnxProvider,
) -> None:
    available = onnxruntime.get_available_providers()
    best = next(name for name in PREFERRED_EXECUTION_PROVIDERS if name in available)

    assert onnx_provider.execution_providers[0] == best
    assert select_execution_providers()[0] == best


def test_onnx_provider_refuses_execution_provider_when_not_available(models_dir: Path) -> None:
    unavailable = [
        name
        for name in onnxruntime.get_all_providers()
        if name not in onnxruntime.get_available_providers()
    ]
    if not unavailable:
        pytest.skip("this onnxruntime build has every execution provider")
    make_provider("onnx", models_dir)

    with pytest.raises(ValueError, match="CPUExecutionProvider") as refused:
        OnnxProvider(models_dir / ONNX_FILE, providers=[unavailable[0]])
    assert unavailable[0] in str(refused.value)


def test_onnx_provider_refuses_execution_provider_when_name_is_unknown(
    models_dir: Path,
) -> None:
    make_provider("onnx", models_dir)

    with pytest.raises(ValueError, match=r"not an execution provider.*CPUExecutionProvider"):
        OnnxProvider(models_dir / ONNX_FILE, providers=["WarpDriveExecutionProvider"])


def test_onnx_provider_runs_on_cpu_when_cpu_requested_explicitly(models_dir: Path) -> None:
    make_provider("onnx", models_dir)

    provider = OnnxProvider(models_dir / ONNX_FILE, providers=["CPUExecutionProvider"])

    assert provider.execution_providers == ["CPUExecutionProvider"]
    assert provider.name == "onnx-cpu"


def test_make_provider_refuses_backend_when_unknown(models_dir: Path) -> None:
    with pytest.raises(ValueError, match="tensorflow"):
        make_provider("tensorflow", models_dir)  # type: ignore[arg-type]
