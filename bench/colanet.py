"""CoLaNet inference benchmark: numpy vs onnxruntime, and what request batching buys.

Measures, in one process on this machine:

1. ``predict_batch`` at batch 1, 16 and 64 for the numpy and onnxruntime providers: the median
   of many single calls in microseconds, the two backends timed alternately call by call so both
   see the same machine state, and the ratio onnx/numpy.
2. The batcher: each round, 32 coroutines score 16 rows each. ``InferenceBatcher`` with
   ``max_wait_us=0`` (their rows coalesced into passes of 64) against the same 32 coroutines
   calling ``predict_batch`` directly (32 passes of 16). Prints rows/s and the ratio
   batched/direct, for both backends; then the same with 4 rows each, a small bid's slate.

Weights are created from the default seed in a temporary directory; nothing is written to
``CE_HOME``. Run it from the repository root::

    .venv/bin/python bench/colanet.py [--calls 3000] [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import onnxruntime

from domain.bidding.model_shape import FEATURE_DIMS
from domain.bidding.ports import FloatMatrix, Scores
from inference.batcher import InferenceBatcher
from inference.providers import OnnxProvider, Provider, make_provider

BATCH_SIZES = (1, 16, 64)
COROUTINES = 32
ROWS_PER_COROUTINE = (16, 4)
WARMUP_CALLS = 300


def sparse_rows(rng: np.random.Generator, rows: int) -> FloatMatrix:
    """Rows like the bid path's: 20-40 non-zeros in [0, 1]."""
    features = np.zeros((rows, FEATURE_DIMS), dtype=np.float32)
    for row in features:
        count = int(rng.integers(20, 41))
        row[rng.choice(FEATURE_DIMS, size=count, replace=False)] = rng.uniform(0, 1, count)
    return features


def time_call_us(predict_batch: Callable[[FloatMatrix], Scores], x: FloatMatrix) -> float:
    started = time.perf_counter_ns()
    predict_batch(x)
    return (time.perf_counter_ns() - started) / 1_000


def bench_providers(numpy_provider: Provider, onnx_provider: Provider, calls: int) -> None:
    rng = np.random.default_rng(1)
    print(f"predict_batch, median of {calls} calls per cell, in µs")
    print(f"{'batch':>5}  {'numpy':>8}  {'onnx':>8}  {'onnx/numpy':>10}")
    for batch in BATCH_SIZES:
        x = sparse_rows(rng, batch)
        for _ in range(WARMUP_CALLS):
            numpy_provider.predict_batch(x)
            onnx_provider.predict_batch(x)
        numpy_us: list[float] = []
        onnx_us: list[float] = []
        for _ in range(calls):
            numpy_us.append(time_call_us(numpy_provider.predict_batch, x))
            onnx_us.append(time_call_us(onnx_provider.predict_batch, x))
        numpy_median = statistics.median(numpy_us)
        onnx_median = statistics.median(onnx_us)
        print(
            f"{batch:>5}  {numpy_median:>8.1f}  {onnx_median:>8.1f}  "
            f"{onnx_median / numpy_median:>10.2f}"
        )


async def run_round(
    score: Callable[[FloatMatrix], Awaitable[Scores]], rows: list[FloatMatrix]
) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(score(x) for x in rows))
    return time.perf_counter() - started


async def bench_batcher(provider: Provider, rows_each: int, rounds: int) -> None:
    rng = np.random.default_rng(2)
    requests = [sparse_rows(rng, rows_each) for _ in range(COROUTINES)]
    passes = 0

    def count_pass(rows: int, seconds: float) -> None:
        nonlocal passes
        passes += 1

    batcher = InferenceBatcher(provider, max_batch=64, max_wait_us=0, on_batch=count_pass)

    async def direct(features: FloatMatrix) -> Scores:
        return provider.predict_batch(features)

    for _ in range(WARMUP_CALLS // 10):
        await run_round(batcher.score, requests)
        await run_round(direct, requests)
    passes = 0
    batched_s = direct_s = 0.0
    for _ in range(rounds):
        batched_s += await run_round(batcher.score, requests)
        direct_s += await run_round(direct, requests)
    rows = rounds * COROUTINES * rows_each
    batched_rate = rows / batched_s
    direct_rate = rows / direct_s
    print(
        f"{provider.name:>9}  {rows_each:>9}  {direct_rate:>13,.0f}  {batched_rate:>14,.0f}  "
        f"{batched_rate / direct_rate:>14.2f}  {passes / rounds:>12.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per table cell")
    parser.add_argument("--rounds", type=int, default=300, help="timed rounds per batcher row")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="colanet-bench-") as models:
        numpy_provider = make_provider("numpy", Path(models))
        onnx_provider = make_provider("onnx", Path(models))
        assert isinstance(onnx_provider, OnnxProvider)
        print(
            f"numpy {np.__version__}, onnxruntime {onnxruntime.__version__} on "
            f"{', '.join(onnx_provider.execution_providers)}, one intra-op thread\n"
        )
        bench_providers(numpy_provider, onnx_provider, args.calls)
        print(
            f"\nbatcher: {COROUTINES} coroutines each scoring the rows below per round, "
            f"max_batch=64, max_wait_us=0, {args.rounds} rounds"
        )
        print(
            f"{'backend':>9}  {'rows each':>9}  {'direct rows/s':>13}  {'batched rows/s':>14}  "
            f"{'batched/direct':>14}  {'passes/round':>12}"
        )
        for rows_each in ROWS_PER_COROUTINE:
            for provider in (numpy_provider, onnx_provider):
                asyncio.run(bench_batcher(provider, rows_each, args.rounds))


if __name__ == "__main__":
    main()
