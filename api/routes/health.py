"""``/health`` (process up), ``/live`` (its workers alive), ``/ready`` (its dependencies answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class DependencyCheck:
    """A configured dependency and a cheap call that proves it answers."""

    name: str
    probe: Callable[[], Awaitable[object]]


async def _run(check: DependencyCheck) -> tuple[str, str]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await check.probe()
    except Exception as error:  # a readiness probe reports every failure, it does not raise
        return check.name, f"failed: {type(error).__name__}: {error}"[:300]
    return check.name, "ok"


@router.get("/health", summary="The process is up")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/live", summary="The process's background workers are running")
async def live(request: Request) -> JSONResponse:
    liveness: Callable[[], dict[str, bool]] = request.app.state.liveness
    workers = liveness()
    dead = [name for name, alive in workers.items() if not alive]
    status = 503 if dead else 200
    return JSONResponse({"status": "dead" if dead else "live", "workers": workers}, status)


@router.get("/ready", summary="Every configured dependency answers")
async def ready(request: Request) -> JSONResponse:
    checks: list[DependencyCheck] = request.app.state.dependency_checks
    results = dict(await asyncio.gather(*(_run(check) for check in checks)))
    failed = any(result != "ok" for result in results.values())
    return JSONResponse(
        {"status": "not_ready" if failed else "ready", "checks": results},
        status_code=503 if failed else 200,
    )
