"""The bid fleet over NATS: two `campaign-express bidder` processes behind an API process.

Real NATS, real Redis (the shared ledger), SQLite shared through its file.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.bus.campaign_changes import NatsCampaignChanges
from adapters.bus.nats_client import connect_nats
from adapters.db import CampaignRepository, Database, TenantRepository, upgrade
from adapters.settings import Settings
from api.main import create_app
from domain.campaigns import CampaignStatus, FrequencyCap
from tests.factories import make_campaign, make_creative
from tests.support.processes import CliProcess
from tests.support.services import free_port
from workers.runtime import Role, Runtime

pytestmark = pytest.mark.slow

JSON = {"content-type": "application/json"}
NOTICE_KEY = "fleet-test-notice-key-0123456789"


@dataclass
class Fleet:
    env: dict[str, str]
    database_url: str
    bidders: list[CliProcess]
    metrics_ports: list[int]
    campaigns: dict[str, str]  # role in the test -> campaign id


@pytest.fixture
def fleet(tmp_path: Path, nats_url: str, redis_url: str) -> Iterator[Fleet]:
    database_url = f"sqlite:///{tmp_path / 'campaign.db'}"
    upgrade(database_url)
    campaigns = asyncio.run(_seed(database_url))
    env = {
        "CE_HOME": str(tmp_path / "home"),
        "CE_DATABASE_URL": database_url,
        "CE_NATS_URL": nats_url,
        "CE_REDIS_URL": redis_url,
        "CE_BID_TRANSPORT": "nats",
        "CE_BID__NATS_SUBJECT": f"bids-{uuid.uuid4().hex[:8]}",
        "CE_ANALYTICS__STREAM": f"analytics-test-{uuid.uuid4().hex[:8]}",
        "CE_ANALYTICS__SUBJECT": f"analytics-test.{uuid.uuid4().hex[:8]}",
        "CE_NOTICE_SIGNING_KEY": NOTICE_KEY,
        # Only the NATS message may tell bidders about a change within the test's second.
        "CE_CAMPAIGN_REFRESH_INTERVAL_S": "60",
    }
    ports = [free_port(), free_port()]
    bidders = [
        CliProcess(
            ["bidder", "--agents", "4"],
            env | {"CE_METRICS_PORT": str(port), "CE_NODE_ID": f"bidder-{n}"},
            tmp_path / f"bidder-{n}.log",
        )
        for n, port in enumerate(ports, start=1)
    ]
    try:
        for bidder in bidders:
            bidder.wait_for_output("bidder running")
        yield Fleet(env, database_url, bidders, ports, campaigns)
    finally:
        for bidder in bidders:
            bidder.terminate()
        asyncio.run(_delete_stream(nats_url, env["CE_ANALYTICS__STREAM"]))


async def _seed(database_url: str) -> dict[str, str]:
    database = Database(database_url)
    try:
        tenant = await TenantRepository(database.async_session).ensure("fleet", seat="fleet-seat")
        repository = CampaignRepository(database.async_session)
        capped = make_campaign(
            tenant_id=tenant.id,
            id=str(uuid.uuid4()),
            max_bid=Decimal(5),
            frequency_cap=FrequencyCap(per_hour=3),
            creatives=[make_creative(id=str(uuid.uuid4()), w=300, h=250)],
        )
        # 10 impressions' worth: 5 CPM is 0.005 an impression.
        small_budget = make_campaign(
            tenant_id=tenant.id,
            id=str(uuid.uuid4()),
            max_bid=Decimal(5),
            budget=Decimal("0.05"),
            creatives=[make_creative(id=str(uuid.uuid4()), w=728, h=90)],
        )
        steady = make_campaign(
            tenant_id=tenant.id,
            id=str(uuid.uuid4()),
            max_bid=Decimal(2),
            creatives=[make_creative(id=str(uuid.uuid4()), w=320, h=50)],
        )
        for campaign in (capped, small_budget, steady):
            await repository.save(campaign)
        return {"capped": capped.id, "small_budget": small_budget.id, "steady": steady.id}
    finally:
        await database.dispose()


async def _delete_stream(nats_url: str, stream: str) -> None:
    nc = await connect_nats(nats_url, "fleet-test-cleanup")
    try:
        await nc.jetstream().delete_stream(stream)
    except Exception:  # the stream may never have been created
        pass
    finally:
        await nc.close()


@pytest.fixture
async def api(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    for name, value in fleet.env.items():
        monkeypatch.setenv(name, value)
    async with Runtime(Settings(), Role.API) as runtime:
        app = create_app(await runtime.api_services())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as client:
            yield client


def request(user: str, w: int, h: int, number: int = 0) -> bytes:
    return orjson.dumps(
        {
            "id": f"req-{user}-{number}",
            "imp": [{"id": "1", "banner": {"w": w, "h": h}}],
            "user": {"id": user},
            "tmax": 500,
        }
    )


async def send(client: httpx.AsyncClient, bodies: list[bytes]) -> list[httpx.Response]:
    return await asyncio.gather(*(client.post("/v1/bid", content=b, headers=JSON) for b in bodies))


def campaigns_bid(responses: list[httpx.Response]) -> Counter[str]:
    return Counter(
        r.json()["seatbid"][0]["bid"][0]["cid"] for r in responses if r.status_code == 200
    )


async def test_both_bidders_answer(fleet: Fleet, api: httpx.AsyncClient) -> None:
    responses = await send(api, [request(f"u{i}", 320, 50) for i in range(40)])
    assert {r.status_code for r in responses} == {200}
    bid = responses[0].json()["seatbid"][0]
    assert bid["seat"] == "fleet-seat"
    assert bid["bid"][0]["nurl"].startswith("http://127.0.0.1:8080/v1/notice/win?")
    subject = fleet.env["CE_BID__NATS_SUBJECT"]
    handled = [
        handled_bids(port, subject) for port in fleet.metrics_ports
    ]  # NATS spread the work: every process took some
    assert sum(handled) == 40
    assert min(handled) > 0


def handled_bids(metrics_port: int, subject: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "campaign_nats_messages_processed_total"
                and sample.labels.get("subject") == subject
            ):
                return sample.value
    return 0.0


async def test_frequency_cap_holds_across_both_bidders(
    fleet: Fleet, api: httpx.AsyncClient
) -> None:
    responses = await send(api, [request("same-user", 300, 250, n) for n in range(40)])
    assert campaigns_bid(responses) == Counter({fleet.campaigns["capped"]: 3})
    assert {r.status_code for r in responses} == {200, 204}


async def test_budget_holds_across_both_bidders(fleet: Fleet, api: httpx.AsyncClient) -> None:
    responses = await send(api, [request(f"user-{n}", 728, 90) for n in range(40)])
    assert campaigns_bid(responses) == Counter({fleet.campaigns["small_budget"]: 10})


async def test_paused_campaign_stops_bidding_within_a_second(
    fleet: Fleet, api: httpx.AsyncClient, nats_url: str
) -> None:
    steady = fleet.campaigns["steady"]
    before = await send(api, [request(f"before-{n}", 320, 50) for n in range(10)])
    assert campaigns_bid(before) == Counter({steady: 10})

    database = Database(fleet.database_url)
    nc = await connect_nats(nats_url, "fleet-test-operator")
    try:
        await CampaignRepository(database.async_session).set_status(steady, CampaignStatus.PAUSED)
        await NatsCampaignChanges(nc).publish(steady)
    finally:
        await nc.close()
        await database.dispose()
    await asyncio.sleep(1.0)

    after = await send(api, [request(f"after-{n}", 320, 50) for n in range(20)])
    assert campaigns_bid(after) == Counter()
    assert {r.status_code for r in after} == {204}


async def test_bidder_killed_mid_load_never_yields_a_5xx(
    fleet: Fleet, api: httpx.AsyncClient
) -> None:
    statuses: list[int] = []

    async def load(rounds: int) -> None:
        for n in range(rounds):
            batch = await send(api, [request(f"load-{n}-{i}", 320, 50, n) for i in range(10)])
            statuses.extend(r.status_code for r in batch)

    first = asyncio.create_task(load(30))
    await asyncio.sleep(0.3)
    fleet.bidders[0].kill()
    await first
    after_kill = len(statuses)
    await load(10)

    assert all(status in (200, 204) for status in statuses), Counter(statuses)
    # The surviving bidder keeps answering once NATS stops routing to the dead one.
    assert statuses[after_kill:].count(200) >= 90
