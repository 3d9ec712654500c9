"""`campaign-express up` as a user runs it: a process, its ports, its data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.analytics import ChdbStore
from tests.support.openrtb_schema import example_requests, schema_errors
from tests.support.processes import CliProcess
from tests.support.services import free_port

pytestmark = pytest.mark.slow

SEED_METRICS = (
    "campaign_bid_requests_total",
    "campaign_bid_latency_seconds",
    "campaign_inference_duration_seconds",
    "campaign_cache_hits_total",
    "campaign_cache_misses_total",
    "campaign_nats_messages_processed_total",
    "campaign_analytics_events_batched_total",
    "campaign_active_campaigns",
    "campaign_agent_queue_depth",
)
BANNER_EXAMPLES = {"simple-banner.json", "mobile-app.json", "pmp-direct-deal.json"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "CE_HOME": str(tmp_path / "home"),
        "CE_API_PORT": str(free_port()),
        "CE_GRPC_PORT": str(free_port()),
        "CE_METRICS_PORT": str(free_port()),
    }


@pytest.fixture
def up(env: dict[str, str], tmp_path: Path) -> Iterator[CliProcess]:
    process = CliProcess(["up", "--demo"], env, tmp_path / "up-1.log")
    try:
        process.wait_for_output("running", timeout_s=120)
        yield process
    finally:
        process.terminate()


def post_examples(api: str) -> dict[str, httpx.Response]:
    headers = {"content-type": "application/json"}
    return {
        example.name: httpx.post(f"{api}/v1/bid", content=example.read_bytes(), headers=headers)
        for example in example_requests()
    }


def test_up_serves_bids_docs_metrics_and_grpc(up: CliProcess, env: dict[str, str]) -> None:
    api = f"http://127.0.0.1:{env['CE_API_PORT']}"
    output = up.output()
    assert "profiles     100,000" in output
    assert f"REST API     {api}" in output

    for name, response in post_examples(api).items():
        assert response.status_code in (200, 204), name
        assert response.headers["x-openrtb-version"] == "2.6"
        if name in BANNER_EXAMPLES:
            assert response.status_code == 200, name
        if response.status_code == 200:
            assert schema_errors(response.json()) == [], name

    assert httpx.get(f"{api}/docs").status_code == 200
    assert httpx.get(f"{api}/ready").json()["status"] == "ready"
    metrics = httpx.get(f"http://127.0.0.1:{env['CE_METRICS_PORT']}/metrics").text
    for name in SEED_METRICS:
        assert f"# TYPE {name.removesuffix('_total')}" in metrics, name
    assert 'campaign_bid_requests_total{outcome="bid"}' in metrics
    assert "campaign_active_campaigns 30.0" in metrics


def test_up_stops_cleanly_and_keeps_its_data(
    up: CliProcess, env: dict[str, str], tmp_path: Path
) -> None:
    api = f"http://127.0.0.1:{env['CE_API_PORT']}"
    first = post_examples(api)
    assert up.terminate() == 0

    again = CliProcess(["up", "--demo"], env, tmp_path / "up-2.log")
    try:
        again.wait_for_output("running", timeout_s=120)
        assert "profiles" not in again.output()  # the demo tenant was already there
        second = post_examples(api)
    finally:
        assert again.terminate() == 0
    assert {n: r.status_code for n, r in second.items()} == {
        n: r.status_code for n, r in first.items()
    }

    store = ChdbStore(Path(env["CE_HOME"]) / "clickhouse")
    try:
        rows = store.query(
            "SELECT count() FROM campaign_express.analytics_events "
            "WHERE event_type IN ('bid', 'no_bid')"
        )
    finally:
        store.close()
    assert rows == [(2 * len(first),)]


def test_demo_and_migrate_commands(env: dict[str, str], tmp_path: Path) -> None:
    migrate = CliProcess(["migrate"], env, tmp_path / "migrate.log")
    assert migrate.wait() == 0
    assert "database at revision" in migrate.output()
    demo = CliProcess(["demo", "--profiles", "500"], env, tmp_path / "demo.log")
    assert demo.wait() == 0
    summary = demo.output()
    assert "tenant       demo" in summary
    assert "profiles     500" in summary
