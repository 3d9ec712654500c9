from __future__ import annotations

from pathlib import Path

import pytest

from inference.colanet import CoLaNetWeights, load_or_create
from inference.onnx_export import export_onnx
from inference.providers import NumpyProvider, OnnxProvider


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def weights(models_dir: Path) -> CoLaNetWeights:
    return load_or_create(models_dir)


@pytest.fixture
def numpy_provider(weights: CoLaNetWeights) -> NumpyProvider:
    return NumpyProvider(weights)


@pytest.fixture
def onnx_provider(weights: CoLaNetWeights, models_dir: Path) -> OnnxProvider:
    return OnnxProvider(export_onnx(weights, models_dir))
