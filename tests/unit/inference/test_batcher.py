from __future__ import annotations

import asyncio

import numpy as np
import pytest

from domain.bidding.model_shape import FEATURE_DIMS, OFFER_SLOTS
from domain.bidding.ports import FloatMatrix, Scorer, Scores
from inference.batcher import InferenceBatcher
from inference.colanet import CoLaNetWeights
from inference.providers import InferenceResult, NumpyProvider
from tests.unit.inference.features import sparse_features

# Every test finishes in milliseconds; this only turns a lost wake-up into a clear failure.
DEADLINE_S = 10


class CountingProvider:
    """A real NumpyProvider that records each batch it runs, and can be told to fail."""

    def __init__(self, inner: NumpyProvider) -> None:
        self._inner = inner
        self.batch_rows: list[int] = []
        self.failure: Exception | None = None

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def max_batch_size(self) -> int:
        return self._inner.max_batch_size

    def predict(self, features: FloatMatrix) -> InferenceResult:
        return self._inner.predict(features)

    def predict_batch(self, features: FloatMatrix) -> Scores:
        self.batch_rows.append(features.shape[0])
        if self.failure is not None:
            raise self.failure
        return self._inner.predict_batch(features)


@pytest.fixture
def counting(numpy_provider: NumpyProvider) -> CountingProvider:
    return CountingProvider(numpy_provider)


def _requests(seed: int, sizes: list[int]) -> list[FloatMatrix]:
    rng = np.random.default_rng(seed)
    return [sparse_features(rng, size) for size in sizes]


def _assert_scores_match(actual: Scores, provider: NumpyProvider, features: FloatMatrix) -> None:
    # Rows scored inside a bigger batch may differ from a lone pass in the last float bit
    # (BLAS picks other kernels); distinct rows differ by far more than this.
    expected = provider.predict_batch(features)
    np.testing.assert_allclose(actual.offer, expected.offer, atol=1e-6, rtol=0)
    np.testing.assert_allclose(actual.variant, expected.variant, atol=1e-6, rtol=0)


async def test_batcher_satisfies_the_scorer_port(counting: CountingProvider) -> None:
    scorer: Scorer = InferenceBatcher(counting, max_batch=64, max_wait_us=0)
    features = _requests(1, [3])[0]

    scores = await scorer.score(features)

    assert scores.offer.shape == (3, OFFER_SLOTS)


async def test_concurrent_submitters_share_one_batch_when_wait_is_zero(
    counting: CountingProvider, numpy_provider: NumpyProvider
) -> None:
    batcher = InferenceBatcher(counting, max_batch=64, max_wait_us=0)
    requests = _requests(2, [1, 2, 3, 4] * 4)  # 40 rows, one batch's worth

    async with asyncio.timeout(DEADLINE_S):
        results = await asyncio.gather(*(batcher.score(x) for x in requests))

    assert counting.batch_rows == [40]
    # The same computation as one direct call over the rows in submission order: bit for bit.
    direct = numpy_provider.predict_batch(np.concatenate(requests))
    np.testing.assert_array_equal(np.concatenate([r.offer for r in results]), direct.offer)
    np.testing.assert_array_equal(np.concatenate([r.variant for r in results]), direct.variant)
    for result, features in zip(results, requests, strict=True):
        _assert_scores_match(result, numpy_provider, features)


async def test_many_submitters_make_fewer_calls_than_submitters_when_batches_fill(
    counting: CountingProvider, numpy_provider: NumpyProvider
) -> None:
    batcher = InferenceBatcher(counting, max_batch=16, max_wait_us=0)
    sizes = [1, 2, 3, 4, 5] * 10
    requests = _requests(3, sizes)

    async with asyncio.timeout(DEADLINE_S):
        results = await asyncio.gather(*(batcher.score(x) for x in requests))

    assert len(counting.batch_rows) < len(requests)
    assert max(counting.batch_rows) <= 16
    assert sum(counting.batch_rows) == sum(sizes)
    for result, features in zip(results, requests, strict=True):
        _assert_scores_match(result, numpy_provider, features)


async def test_waiting_rows_go_first_when_a_request_would_overflow_the_batch(
    counting: CountingProvider,
) -> None:
    batcher = InferenceBatcher(counting, max_batch=4, max_wait_us=0)

    async with asyncio.timeout(DEADLINE_S):
        await asyncio.gather(*(batcher.score(x) for x in _requests(4, [3, 3, 1])))

    # Requests are never split across batches: the second waits for the next one.
    assert counting.batch_rows == [3, 4]


async def test_large_request_runs_alone_in_chunks_when_bigger_than_max_batch(
    counting: CountingProvider, numpy_provider: NumpyProvider
) -> None:
    batcher = InferenceBatcher(counting, max_batch=8, max_wait_us=0)
    small, large = _requests(5, [2, 20])

    async with asyncio.timeout(DEADLINE_S):
        small_result, large_result = await asyncio.gather(
            batcher.score(small), batcher.score(large)
        )

    assert sorted(counting.batch_rows) == [2, 4, 8, 8]
    _assert_scores_match(small_result, numpy_provider, small)
    _assert_scores_match(large_result, numpy_provider, large)


async def test_batches_stay_within_the_provider_limit_when_max_batch_is_higher(
    weights: CoLaNetWeights,
) -> None:
    limited = CountingProvider(NumpyProvider(weights, max_batch_size=8))
    batcher = InferenceBatcher(limited, max_batch=1000, max_wait_us=0)

    async with asyncio.timeout(DEADLINE_S):
        await asyncio.gather(*(batcher.score(x) for x in _requests(16, [1] * 20 + [30])))

    assert batcher.max_batch == 8
    assert max(limited.batch_rows) == 8
    assert sum(limited.batch_rows) == 50


async def test_provider_error_reaches_every_waiter_when_the_batch_fails(
    counting: CountingProvider,
) -> None:
    batcher = InferenceBatcher(counting, max_batch=64, max_wait_us=0)
    counting.failure = RuntimeError("device lost")

    async with asyncio.timeout(DEADLINE_S):
        outcomes = await asyncio.gather(
            *(batcher.score(x) for x in _requests(6, [1, 2, 3, 4, 5])), return_exceptions=True
        )

    assert counting.batch_rows == [15]
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
    assert {str(outcome) for outcome in outcomes} == {"device lost"}


async def test_batcher_recovers_when_a_failed_batch_is_followed_by_a_good_one(
    counting: CountingProvider, numpy_provider: NumpyProvider
) -> None:
    batcher = InferenceBatcher(counting, max_batch=64, max_wait_us=0)
    first, second = _requests(7, [2, 3])
    counting.failure = RuntimeError("transient")
    with pytest.raises(RuntimeError, match="transient"):
        await batcher.score(first)

    counting.failure = None
    result = await batcher.score(second)

    _assert_scores_match(result, numpy_provider, second)


async def test_cancelled_waiter_leaves_the_batch_to_the_others_when_cancelled_before_flush(
    counting: CountingProvider, numpy_provider: NumpyProvider
) -> None:
    # A wait far beyond the test's life: only a full batch can flush it.
    batcher = InferenceBatcher(counting, max_batch=5, max_wait_us=600_000_000)
    requests = _requests(8, [1, 1, 1, 1, 1])
    waiters = [asyncio.create_task(batcher.score(x)) for x in requests[:4]]
    await asyncio.sleep(0)  # every waiter has queued its row
    waiters[1].cancel()

    async with asyncio.timeout(DEADLINE_S):
        last = await batcher.score(requests[4])
        outcomes = await asyncio.gather(*waiters, return_exceptions=True)

    assert isinstance(outcomes[1], asyncio.CancelledError)
    assert counting.batch_rows == [4]  # the cancelled row was left out
    for outcome, features in zip(
        [outcomes[0], outcomes[2], outcomes[3], last],
        [requests[0], requests[2], requests[3], requests[4]],
        strict=True,
    ):
        assert isinstance(outcome, Scores)
        _assert_scores_match(outcome, numpy_provider, features)


async def test_no_forward_pass_runs_when_every_waiter_was_cancelled(
    counting: CountingProvider, numpy_provider: NumpyProvider
) -> None:
    batcher = InferenceBatcher(counting, max_batch=64, max_wait_us=1_000)
    waiters = [asyncio.create_task(batcher.score(x)) for x in _requests(9, [2, 2])]
    await asyncio.sleep(0)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)

    async with asyncio.timeout(DEADLINE_S):
        features = _requests(10, [3])[0]
        result = await batcher.score(features)

    assert counting.batch_rows == [3]
    _assert_scores_match(result, numpy_provider, features)


async def test_timer_flushes_a_partial_batch_when_wait_is_positive(
    counting: CountingProvider, numpy_provider: NumpyProvider
) -> None:
    batcher = InferenceBatcher(counting, max_batch=64, max_wait_us=1_000)
    requests = _requests(11, [1, 2, 3])

    async with asyncio.timeout(DEADLINE_S):
        results = await asyncio.gather(*(batcher.score(x) for x in requests))

    assert counting.batch_rows == [6]  # nothing filled the batch: the timer sent it
    for result, features in zip(results, requests, strict=True):
        _assert_scores_match(result, numpy_provider, features)


async def test_rows_from_several_ticks_share_a_batch_when_wait_is_positive(
    counting: CountingProvider, numpy_provider: NumpyProvider
) -> None:
    batcher = InferenceBatcher(counting, max_batch=4, max_wait_us=600_000_000)
    requests = _requests(12, [1, 1, 1, 1])

    waiters = []
    for features in requests:
        waiters.append(asyncio.create_task(batcher.score(features)))
        await asyncio.sleep(0)  # each submission in its own loop iteration
    async with asyncio.timeout(DEADLINE_S):
        results = await asyncio.gather(*waiters)

    assert counting.batch_rows == [4]  # the fourth row filled the batch long before the timer
    for result, features in zip(results, requests, strict=True):
        _assert_scores_match(result, numpy_provider, features)


async def test_on_batch_hears_every_forward_pass_when_batches_run(
    counting: CountingProvider,
) -> None:
    passes: list[tuple[int, float]] = []
    batcher = InferenceBatcher(
        counting, max_batch=8, max_wait_us=0, on_batch=lambda rows, s: passes.append((rows, s))
    )

    async with asyncio.timeout(DEADLINE_S):
        await asyncio.gather(*(batcher.score(x) for x in _requests(13, [3, 3, 20])))

    assert [rows for rows, _ in passes] == counting.batch_rows
    assert all(seconds >= 0 for _, seconds in passes)


async def test_scores_arrive_when_the_batch_observer_fails(
    counting: CountingProvider, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(rows: int, seconds: float) -> None:
        raise RuntimeError("metrics down")

    batcher = InferenceBatcher(counting, max_batch=8, max_wait_us=0, on_batch=broken)

    result = await batcher.score(_requests(14, [2])[0])

    assert result.offer.shape == (2, OFFER_SLOTS)
    assert "observer failed" in caplog.text


async def test_bad_request_fails_alone_when_its_width_is_wrong(
    counting: CountingProvider, numpy_provider: NumpyProvider
) -> None:
    batcher = InferenceBatcher(counting, max_batch=64, max_wait_us=0)
    good = _requests(15, [2])[0]
    bad = np.zeros((2, FEATURE_DIMS + 1), np.float32)

    async with asyncio.timeout(DEADLINE_S):
        good_result, bad_result = await asyncio.gather(
            batcher.score(good), batcher.score(bad), return_exceptions=True
        )

    assert isinstance(bad_result, ValueError)
    assert isinstance(good_result, Scores)
    _assert_scores_match(good_result, numpy_provider, good)


async def test_empty_request_returns_empty_scores_without_a_forward_pass(
    counting: CountingProvider,
) -> None:
    batcher = InferenceBatcher(counting, max_batch=64, max_wait_us=0)

    scores = await batcher.score(np.zeros((0, FEATURE_DIMS), np.float32))

    assert scores.offer.shape == (0, OFFER_SLOTS)
    assert counting.batch_rows == []


@pytest.mark.parametrize(("max_batch", "max_wait_us"), [(0, 0), (8, -1)])
def test_batcher_refuses_settings_when_out_of_range(
    counting: CountingProvider, max_batch: int, max_wait_us: int
) -> None:
    with pytest.raises(ValueError, match="max_"):
        InferenceBatcher(counting, max_batch=max_batch, max_wait_us=max_wait_us)
