"""/health, /live and /ready: what a load balancer and Kubernetes probes read."""

from __future__ import annotations

from pathlib import Path

import httpx

from api.main import create_app
from tests.integration.api.conftest import Platform, embedded_settings
from tests.support.services import PrivateRedis
from workers.runtime import Role, Runtime


async def test_health_and_live_answer(platform: Platform) -> None:
    assert (await platform.client.get("/health")).json() == {"status": "ok"}
    live = await platform.client.get("/live")
    assert live.status_code == 200
    assert live.json()["workers"] == {"catalog": True}


async def test_ready_checks_every_configured_dependency(platform: Platform) -> None:
    response = await platform.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "analytics": "ok"}}


async def test_ready_is_503_naming_the_dependency_that_is_down(
    tmp_path: Path, demo_database: str
) -> None:
    redis = PrivateRedis().start()
    settings = embedded_settings(tmp_path / "home", demo_database, redis_url=redis.url)
    try:
        async with Runtime(settings, Role.EMBEDDED) as runtime:
            app = create_app(await runtime.api_services())
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bidder.test"
            ) as client:
                assert (await client.get("/ready")).json()["checks"]["redis"] == "ok"
                redis.stop()
                response = await client.get("/ready")
    finally:
        redis.stop()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["redis"].startswith("failed")
    assert body["checks"]["database"] == "ok"
