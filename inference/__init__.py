"""CoLaNet inference for the bid path.

- :mod:`inference.colanet`: the network's weights (created from a fixed seed on first run, or
  dropped in trained) and its forward pass on numpy.
- :mod:`inference.onnx_export`: the same network as an ONNX graph for onnxruntime.
- :mod:`inference.providers`: the ``Provider`` protocol with numpy and onnxruntime backends,
  and ``make_provider`` to build the configured one from a models directory.
- :mod:`inference.batcher`: ``InferenceBatcher``, the pipeline's ``Scorer``: it coalesces
  concurrent scoring calls into one forward pass.
"""

from inference.batcher import BatchObserver, InferenceBatcher
from inference.colanet import CoLaNetWeights, forward_numpy, load_or_create
from inference.providers import (
    InferenceResult,
    NumpyProvider,
    OnnxProvider,
    Provider,
    make_provider,
)

__all__ = [
    "BatchObserver",
    "CoLaNetWeights",
    "InferenceBatcher",
    "InferenceResult",
    "NumpyProvider",
    "OnnxProvider",
    "Provider",
    "forward_numpy",
    "load_or_create",
    "make_provider",
]
