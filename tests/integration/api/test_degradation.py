"""When Redis fails or hangs, bids degrade to no-bid in time: never a 5xx, never a late answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from adapters import metrics
from api.main import create_app
from tests.integration.api.conftest import embedded_settings
from tests.support.services import PrivateRedis
from workers.runtime import Role, Runtime

JSON = {"content-type": "application/json"}


@pytest.fixture
def redis() -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis().start()
    yield server
    server.stop()


def banner(user: str, tmax: int = 200) -> bytes:
    return orjson.dumps(
        {
            "id": f"req-{user}",
            "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 0.01}],
            "user": {"id": user},
            "tmax": tmax,
        }
    )


def outcome_count(name: str) -> float:
    value = metrics.bid_requests.labels(name)._value.get()
    return float(value)


async def test_redis_stopped_mid_run_degrades_to_no_bid(
    tmp_path: Path, demo_database: str, redis: PrivateRedis
) -> None:
    settings = embedded_settings(tmp_path / "home", demo_database, redis_url=redis.url)
    statuses: list[int] = []
    async with Runtime(settings, Role.EMBEDDED) as runtime:
        app = create_app(await runtime.api_services())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bidder.test"
        ) as client:
            before = [await client.post("/v1/bid", content=banner(f"user-{i:06d}"), headers=JSON)
                      for i in range(1, 11)]  # fmt: skip
            redis.stop()
            after = [await client.post("/v1/bid", content=banner(f"user-{i:06d}"), headers=JSON)
                     for i in range(11, 41)]  # fmt: skip
            statuses = [response.status_code for response in before + after]
    assert all(response.status_code == 200 for response in before)
    assert all(status in (200, 204) for status in statuses)
    # Caps and budgets cannot be held without the ledger: no bid rather than overspend.
    assert all(response.status_code == 204 for response in after)


async def test_hung_redis_answers_no_bid_within_tmax(
    tmp_path: Path, demo_database: str, redis: PrivateRedis
) -> None:
    settings = embedded_settings(
        tmp_path / "home",
        demo_database,
        redis_url=redis.url,
        cache={"redis_timeout_ms": 5_000},  # longer than tmax: only the deadline can save us
        bid={"tmax_margin_ms": 5},
    )
    async with Runtime(settings, Role.EMBEDDED) as runtime:
        app = create_app(await runtime.api_services())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bidder.test"
        ) as client:
            warm = await client.post("/v1/bid", content=banner("user-000001"), headers=JSON)
            timeouts = outcome_count("timeout")
            redis.pause()
            try:
                response = await client.post(
                    "/v1/bid", content=banner("user-000002", tmax=40), headers=JSON
                )
            finally:
                redis.resume()
    assert warm.status_code == 200
    assert response.status_code == 204
    assert outcome_count("timeout") == timeouts + 1
