"""What the bid path and the notices record lands in ClickHouse (chdb), once each."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx

from adapters.analytics import ChdbStore
from adapters.settings import Settings
from api.main import create_app
from workers.runtime import Role, Runtime

JSON = {"content-type": "application/json"}


async def test_bids_and_notices_land_with_the_right_counts(
    settings: Settings, conformance_dir: Path
) -> None:
    banner = (conformance_dir / "examples" / "bid-requests" / "simple-banner.json").read_bytes()
    unmatched = b'{"id": "nothing", "imp": [{"id": "1", "banner": {"w": 1, "h": 1}}]}'
    async with Runtime(settings, Role.EMBEDDED) as runtime:
        app = create_app(await runtime.api_services())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bidder.test"
        ) as client:
            bids = [await client.post("/v1/bid", content=banner, headers=JSON) for _ in range(7)]
            for _ in range(3):
                await client.post("/v1/bid", content=unmatched, headers=JSON)
            await client.post("/v1/bid", content=b"{broken", headers=JSON)
            for response in bids[:4]:
                nurl = response.json()["seatbid"][0]["bid"][0]["nurl"]
                path = nurl.removeprefix("http://127.0.0.1:8080").replace("${AUCTION_PRICE}", "1")
                await client.get(path)
                await client.get(path)  # a duplicate delivery records nothing more
    # Leaving the runtime flushed the batcher and closed chdb: read what was written.
    store = ChdbStore(settings.clickhouse_path)
    try:
        rows = store.query(
            "SELECT event_type, count() FROM campaign_express.analytics_events GROUP BY event_type"
        )
        campaigns = store.query(
            "SELECT DISTINCT campaign_id FROM campaign_express.analytics_events "
            "WHERE event_type = 'bid'"
        )
    finally:
        store.close()
    counts = Counter(dict(rows))
    # The malformed request never reached the pipeline: it is counted in metrics only.
    assert counts == Counter({"bid": 7, "no_bid": 3, "win": 4})
    bid_campaigns = {response.json()["seatbid"][0]["bid"][0]["cid"] for response in bids}
    assert {campaign for (campaign,) in campaigns} == bid_campaigns
