"""CoLaNet: a two-layer spiking-style network, 256 features → 64 hidden → offer and variant heads.

The hidden layer behaves like integrate-and-fire neurons read out once: each neuron's membrane
potential is the weighted sum of its inputs, and it passes that potential on only when it crosses
its own firing threshold (``h = v · [v > θ]``). Two sigmoid heads read the fired potentials: one
score per offer slot and one per creative-variant slot.

The weights live in ``<models_dir>/colanet-v1.npz``. Until a trained file is dropped there, the
first process to start creates one from a fixed seed, identical byte for byte on every machine,
so every bidder in a fleet scores alike.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from domain.bidding.model_shape import FEATURE_DIMS, HIDDEN_UNITS, OFFER_SLOTS, VARIANT_SLOTS
from domain.bidding.ports import FloatMatrix, Scores
from inference._atomic import write_atomically

FloatArray = NDArray[np.float32]

WEIGHTS_FILE: Final = "colanet-v1.npz"
DEFAULT_SEED: Final = 20_260_101

_SHAPES: Final[dict[str, tuple[int, ...]]] = {
    "w_hidden": (FEATURE_DIMS, HIDDEN_UNITS),
    "b_hidden": (HIDDEN_UNITS,),
    "threshold": (HIDDEN_UNITS,),
    "w_offer": (HIDDEN_UNITS, OFFER_SLOTS),
    "b_offer": (OFFER_SLOTS,),
    "w_variant": (HIDDEN_UNITS, VARIANT_SLOTS),
    "b_variant": (VARIANT_SLOTS,),
}

# Typical feature rows are sparse and non-negative: 20-40 non-zeros in [0, 1], a squared norm of
# roughly 7 to 40. Input weights of std 4/√256 = 0.25 give membrane potentials of std ~0.8-1.4,
# so thresholds drawn from [0.1, 0.5] let about a third of the neurons fire. Head weights of std
# 2/√64 then spread the scores over ~0.1-0.9 instead of pinning them at 0 or 1.
_HIDDEN_WEIGHT_STD: Final = 4.0 / np.sqrt(FEATURE_DIMS)
_HIDDEN_BIAS_STD: Final = 0.05
_THRESHOLD_RANGE: Final = (0.1, 0.5)
_HEAD_WEIGHT_STD: Final = 2.0 / np.sqrt(HIDDEN_UNITS)
_HEAD_BIAS_STD: Final = 0.1

# Zip entries carry a modification time; a fixed one keeps created files identical byte for byte.
_ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True, eq=False)
class CoLaNetWeights:
    """CoLaNet's parameters, float32, read-only once built."""

    w_hidden: FloatArray  # (FEATURE_DIMS, HIDDEN_UNITS)
    b_hidden: FloatArray  # (HIDDEN_UNITS,)
    threshold: FloatArray  # (HIDDEN_UNITS,) firing threshold of each hidden neuron
    w_offer: FloatArray  # (HIDDEN_UNITS, OFFER_SLOTS)
    b_offer: FloatArray  # (OFFER_SLOTS,)
    w_variant: FloatArray  # (HIDDEN_UNITS, VARIANT_SLOTS)
    b_variant: FloatArray  # (VARIANT_SLOTS,)

    def __post_init__(self) -> None:
        for name, shape in _SHAPES.items():
            given = np.asarray(getattr(self, name))
            if given.shape != shape:
                raise ValueError(f"CoLaNet {name} must have shape {shape}, got {given.shape}")
            if not np.all(np.isfinite(given)):
                raise ValueError(f"CoLaNet {name} holds NaN or infinite values")
            # A private read-only copy: providers and exported graphs must never drift apart
            # because someone changed an array in place after the fact.
            array = np.array(given, dtype=np.float32, order="C", copy=True)
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CoLaNetWeights):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, and arrays are unhashable

    @classmethod
    def create(cls, seed: int = DEFAULT_SEED) -> CoLaNetWeights:
        """Untrained weights drawn from ``seed``, scaled so typical inputs give spread scores."""
        rng = np.random.default_rng(seed)

        def normal(std: float, shape: tuple[int, ...]) -> FloatArray:
            return rng.normal(0.0, std, shape).astype(np.float32)

        return cls(
            w_hidden=normal(_HIDDEN_WEIGHT_STD, _SHAPES["w_hidden"]),
            b_hidden=normal(_HIDDEN_BIAS_STD, _SHAPES["b_hidden"]),
            threshold=rng.uniform(*_THRESHOLD_RANGE, _SHAPES["threshold"]).astype(np.float32),
            w_offer=normal(_HEAD_WEIGHT_STD, _SHAPES["w_offer"]),
            b_offer=normal(_HEAD_BIAS_STD, _SHAPES["b_offer"]),
            w_variant=normal(_HEAD_WEIGHT_STD, _SHAPES["w_variant"]),
            b_variant=normal(_HEAD_BIAS_STD, _SHAPES["b_variant"]),
        )

    def to_npz_bytes(self) -> bytes:
        """The ``.npz`` file's content: same weights, same bytes."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for f in fields(self):
                entry = io.BytesIO()
                np.lib.format.write_array(entry, getattr(self, f.name), allow_pickle=False)
                info = zipfile.ZipInfo(f"{f.name}.npy", date_time=_ZIP_EPOCH)
                info.create_system = 3  # Unix, whatever platform wrote it
                info.external_attr = 0o644 << 16
                archive.writestr(info, entry.getvalue())
        return buffer.getvalue()

    def save(self, path: Path) -> None:
        """Write the weights to ``path`` (``.npz``) atomically."""
        write_atomically(path, self.to_npz_bytes())

    @classmethod
    def load(cls, path: Path) -> CoLaNetWeights:
        """Read weights saved by :meth:`save` (or any ``.npz`` with the same arrays)."""
        with np.load(path, allow_pickle=False) as archive:
            missing = sorted(set(_SHAPES) - set(archive.files))
            if missing:
                raise ValueError(f"{path} lacks CoLaNet arrays: {', '.join(missing)}")
            return cls(**{name: archive[name] for name in _SHAPES})


def weights_path(models_dir: Path) -> Path:
    return models_dir / WEIGHTS_FILE


def load_or_create(models_dir: Path) -> CoLaNetWeights:
    """The weights in ``models_dir``, created from :data:`DEFAULT_SEED` on first run."""
    path = weights_path(models_dir)
    if path.exists():
        return CoLaNetWeights.load(path)
    weights = CoLaNetWeights.create()
    weights.save(path)
    return weights


def as_feature_batch(features: FloatMatrix) -> FloatMatrix:
    """``features`` as a C-contiguous float32 (n, FEATURE_DIMS) matrix; no copy when it is one."""
    if features.ndim != 2 or features.shape[1] != FEATURE_DIMS:
        raise ValueError(
            f"CoLaNet takes feature rows of shape (n, {FEATURE_DIMS}), got {features.shape}"
        )
    return np.ascontiguousarray(features, dtype=np.float32)


class PackedCoLaNet:
    """The weights laid out for numpy's forward pass.

    Both heads sit side by side in one (HIDDEN_UNITS, OFFER_SLOTS + VARIANT_SLOTS) matrix, so a
    single matmul and a single sigmoid serve both: about 5 µs less per call at batch 1, a third
    of the pass.
    """

    __slots__ = ("_b_heads", "_b_hidden", "_threshold", "_w_heads", "_w_hidden")

    def __init__(self, weights: CoLaNetWeights) -> None:
        self._w_hidden: FloatArray = weights.w_hidden
        self._b_hidden: FloatArray = weights.b_hidden
        self._threshold: FloatArray = weights.threshold
        self._w_heads: FloatArray = np.ascontiguousarray(
            np.hstack([weights.w_offer, weights.w_variant]), dtype=np.float32
        )
        self._b_heads: FloatArray = np.hstack([weights.b_offer, weights.b_variant])

    def forward(self, x: FloatMatrix) -> Scores:
        """Scores for ``x``, a C-contiguous float32 (n, FEATURE_DIMS) matrix."""
        v: FloatArray = x @ self._w_hidden
        v += self._b_hidden
        # Integrate-and-fire read out once: a neuron passes its potential only past threshold.
        v *= v > self._threshold
        z: FloatArray = v @ self._w_heads
        z += self._b_heads
        scores = _sigmoid_inplace(z)
        return Scores(offer=scores[:, :OFFER_SLOTS], variant=scores[:, OFFER_SLOTS:])


def _sigmoid_inplace(z: FloatArray) -> FloatArray:
    """Logistic function over ``z``, overwriting it.

    ``exp`` only ever sees ``-|z|``, so large logits of either sign cannot overflow:
    σ(z) = 1 / (1 + e^-|z|) for z ≥ 0 and e^-|z| / (1 + e^-|z|) below.
    """
    non_negative = z >= 0
    np.abs(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    denominator = z + 1.0
    np.copyto(z, 1.0, where=non_negative)
    z /= denominator
    return z


def forward_numpy(weights: CoLaNetWeights, x: FloatMatrix) -> Scores:
    """CoLaNet's forward pass for ``x`` of shape (n, FEATURE_DIMS), float32 throughout.

    Providers that score repeatedly keep a :class:`PackedCoLaNet` instead of packing per call.
    """
    return PackedCoLaNet(weights).forward(as_feature_batch(x))
