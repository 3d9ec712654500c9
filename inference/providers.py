"""Inference providers: the same CoLaNet forward pass behind one protocol, on numpy or onnxruntime.

``make_provider`` is the one way the rest of the system gets a provider: it loads (or creates)
the weights in the models directory and, for onnxruntime, exports the graph when the ``.onnx``
file is missing or older than the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from domain.bidding.model_shape import FEATURE_DIMS
from domain.bidding.ports import FloatMatrix, Scores
from inference.colanet import (
    CoLaNetWeights,
    FloatArray,
    PackedCoLaNet,
    as_feature_batch,
    load_or_create,
    weights_path,
)

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

# Best first. onnxruntime falls back to the CPU for any node a faster provider cannot run.
PREFERRED_EXECUTION_PROVIDERS: Final = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "ROCMExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)
_EXECUTION_PROVIDER_SUFFIX: Final = "ExecutionProvider"


@dataclass(frozen=True, slots=True)
class InferenceResult:
    """CoLaNet's two heads for one feature row."""

    offer_scores: FloatArray  # (OFFER_SLOTS,)
    variant_scores: FloatArray  # (VARIANT_SLOTS,)


class Provider(Protocol):
    """One CoLaNet backend. Calls are synchronous and cheap (tens of microseconds)."""

    @property
    def name(self) -> str:
        """Short backend name, fit for a metric label (``numpy``, ``onnx-cpu``, ``onnx-cuda``)."""
        ...

    @property
    def max_batch_size(self) -> int:
        """The most rows :meth:`predict_batch` accepts in one call."""
        ...

    def predict(self, features: FloatArray) -> InferenceResult:
        """Scores for one row of shape (FEATURE_DIMS,)."""
        ...

    def predict_batch(self, features: FloatMatrix) -> Scores:
        """Scores for rows of shape (n, FEATURE_DIMS), n <= max_batch_size, in order."""
        ...


def _checked_batch(features: FloatMatrix, max_batch_size: int) -> FloatMatrix:
    batch = as_feature_batch(features)
    if batch.shape[0] > max_batch_size:
        raise ValueError(
            f"{batch.shape[0]} rows exceed this provider's max_batch_size of {max_batch_size}"
        )
    return batch


def _single_row(features: FloatArray) -> FloatMatrix:
    if features.shape != (FEATURE_DIMS,):
        raise ValueError(f"predict takes one row of shape ({FEATURE_DIMS},), got {features.shape}")
    return features.reshape(1, FEATURE_DIMS)


def _validated_max_batch_size(max_batch_size: int) -> int:
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
    return max_batch_size


class NumpyProvider:
    """CoLaNet on numpy: no extra runtime, the default backend."""

    def __init__(self, weights: CoLaNetWeights, max_batch_size: int = 64) -> None:
        self._network = PackedCoLaNet(weights)
        self._max_batch_size = _validated_max_batch_size(max_batch_size)

    @property
    def name(self) -> str:
        return "numpy"

    @property
    def max_batch_size(self) -> int:
        return self._max_batch_size

    def predict(self, features: FloatArray) -> InferenceResult:
        scores = self.predict_batch(_single_row(features))
        return InferenceResult(offer_scores=scores.offer[0], variant_scores=scores.variant[0])

    def predict_batch(self, features: FloatMatrix) -> Scores:
        return self._network.forward(_checked_batch(features, self._max_batch_size))


def select_execution_providers(requested: Sequence[str] = ()) -> list[str]:
    """The execution providers to open a session with, best first.

    Empty ``requested`` picks every available one of :data:`PREFERRED_EXECUTION_PROVIDERS`, in
    that order. Names asked for explicitly must all be available in this onnxruntime build.
    """
    import onnxruntime

    available: list[str] = onnxruntime.get_available_providers()
    if not requested:
        chosen: list[str] = [name for name in PREFERRED_EXECUTION_PROVIDERS if name in available]
        # Builds always carry the CPU provider; this guards against an exotic one that does not.
        return chosen or list(available)
    known: list[str] = onnxruntime.get_all_providers()
    for name in requested:
        if name not in available:
            why = "is not available in" if name in known else "is not an execution provider of"
            raise ValueError(
                f"{name!r} {why} this onnxruntime build; available: {', '.join(available)}"
            )
    return list(requested)


class OnnxProvider:
    """CoLaNet on onnxruntime, on the best execution provider the host offers."""

    def __init__(
        self,
        model_path: Path,
        providers: Sequence[str] = (),
        intra_op_threads: int = 1,
        max_batch_size: int = 64,
    ) -> None:
        # Imported here so numpy-backend processes never pay onnxruntime's import time and memory.
        import onnxruntime

        if intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be at least 1, got {intra_op_threads}")
        execution_providers = select_execution_providers(providers)
        options = onnxruntime.SessionOptions()
        # The fleet runs several agents per core: one thread each, or they oversubscribe the CPU.
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning pool threads would burn the cores the other agents need between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: InferenceSession = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=execution_providers
        )
        self._input_name: str = self._session.get_inputs()[0].name
        self._output_names: list[str] = [output.name for output in self._session.get_outputs()]
        self._active: list[str] = self._session.get_providers()
        self._max_batch_size = _validated_max_batch_size(max_batch_size)

    @property
    def name(self) -> str:
        return "onnx-" + self._active[0].removesuffix(_EXECUTION_PROVIDER_SUFFIX).lower()

    @property
    def max_batch_size(self) -> int:
        return self._max_batch_size

    @property
    def execution_providers(self) -> list[str]:
        """The execution providers the session runs on, best first."""
        return list(self._active)

    def predict(self, features: FloatArray) -> InferenceResult:
        scores = self.predict_batch(_single_row(features))
        return InferenceResult(offer_scores=scores.offer[0], variant_scores=scores.variant[0])

    def predict_batch(self, features: FloatMatrix) -> Scores:
        batch = _checked_batch(features, self._max_batch_size)
        outputs: list[Any] = self._session.run(self._output_names, {self._input_name: batch})
        offer, variant = outputs
        return Scores(offer=offer, variant=variant)


def make_provider(
    backend: Literal["numpy", "onnx"],
    models_dir: Path,
    onnx_providers: Sequence[str] = (),
    max_batch_size: int = 64,
) -> Provider:
    """The provider for ``backend`` over the weights in ``models_dir`` (created on first run)."""
    weights = load_or_create(models_dir)
    if backend == "numpy":
        return NumpyProvider(weights, max_batch_size=max_batch_size)
    if backend == "onnx":
        from inference.onnx_export import export_onnx, onnx_path

        graph = onnx_path(models_dir)
        if _is_stale(graph, weights_path(models_dir)):
            export_onnx(weights, models_dir)
        return OnnxProvider(graph, providers=onnx_providers, max_batch_size=max_batch_size)
    raise ValueError(f"unknown inference backend {backend!r}; expected 'numpy' or 'onnx'")


def _is_stale(derived: Path, source: Path) -> bool:
    """Whether ``derived`` is missing or older than the ``source`` it was built from."""
    try:
        derived_mtime = derived.stat().st_mtime_ns
    except FileNotFoundError:
        return True
    return derived_mtime < source.stat().st_mtime_ns
