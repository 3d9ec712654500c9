"""Win, billing and loss notices over HTTP, against the ledger the bids reserved in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from prometheus_client import generate_latest

from domain.bidding.ledger import NOTICE_MAX_AGE, InMemoryLedger
from tests.integration.api.conftest import Platform

JSON = {"content-type": "application/json"}


async def won_bid(platform: Platform, conformance_dir: Path) -> dict[str, Any]:
    example = conformance_dir / "examples" / "bid-requests" / "simple-banner.json"
    response = await platform.client.post("/v1/bid", content=example.read_bytes(), headers=JSON)
    bid: dict[str, Any] = response.json()["seatbid"][0]["bid"][0]
    return bid


def filled(url: str, price: str = "1.25", loss: str = "102") -> str:
    """What the exchange does to our URL: substitute its macros."""
    path = url.removeprefix("http://127.0.0.1:8080")
    return path.replace("${AUCTION_PRICE}", quote(price)).replace("${AUCTION_LOSS}", loss)


async def test_win_books_spend_once(platform: Platform, conformance_dir: Path) -> None:
    bid = await won_bid(platform, conformance_dir)
    ledger = await platform.runtime.ledger()
    assert isinstance(ledger, InMemoryLedger)

    first = await platform.client.get(filled(bid["nurl"]))
    again = await platform.client.get(filled(bid["nurl"]))
    billing = await platform.client.get(filled(bid["burl"]))

    assert [first.status_code, again.status_code, billing.status_code] == [204, 204, 204]
    assert ledger.spend_view(bid["cid"]).spent_micros == 1_250


async def test_loss_books_no_spend(platform: Platform, conformance_dir: Path) -> None:
    bid = await won_bid(platform, conformance_dir)
    ledger = await platform.runtime.ledger()
    assert (await platform.client.get(filled(bid["lurl"]))).status_code == 204
    assert ledger.spend_view(bid["cid"]).spent_micros == 0


async def test_forged_notice_is_403_and_books_nothing(
    platform: Platform, conformance_dir: Path
) -> None:
    bid = await won_bid(platform, conformance_dir)
    forged = filled(bid["nurl"]).replace("&bp=", "&bp=9")
    response = await platform.client.get(forged)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_signature"
    ledger = await platform.runtime.ledger()
    assert ledger.spend_view(bid["cid"]).spent_micros == 0


@pytest.mark.parametrize(
    ("query", "code"),
    [("", "missing_parameter"), ("?b=1&c=2&u=&t=x&bp=1&fx=1&s=abc", "bad_signature")],
)
async def test_malformed_notice_is_4xx(platform: Platform, query: str, code: str) -> None:
    response = await platform.client.get(f"/v1/notice/win{query}")
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"] == code


async def test_unknown_notice_kind_is_422(platform: Platform) -> None:
    response = await platform.client.get("/v1/notice/impression")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("age", "status"), [(NOTICE_MAX_AGE * 0.99, 204), (NOTICE_MAX_AGE * 1.01, 410)]
)
async def test_notice_older_than_the_ledger_can_vouch_for_is_410(
    platform: Platform, conformance_dir: Path, age: timedelta, status: int
) -> None:
    # Past NOTICE_MAX_AGE the ledger may have forgotten the notice: a replay would book twice.
    bid = await won_bid(platform, conformance_dir)
    signed = dict(parse_qsl(urlsplit(bid["nurl"]).query))
    old = platform.runtime.notice_signer().urls(
        bid_id=signed["b"],
        campaign_id=signed["c"],
        user_key=signed["u"] or None,
        bid_time=datetime.now(UTC) - age,
        bid_price_micros=int(signed["bp"]),
        fx=float(signed["fx"]),
    )
    response = await platform.client.get(filled(old.nurl))
    assert response.status_code == status
    ledger = await platform.runtime.ledger()
    if status == 410:
        assert response.json()["error"]["code"] == "expired_notice"
        assert ledger.spend_view(bid["cid"]).spent_micros == 0
    else:
        assert ledger.spend_view(bid["cid"]).spent_micros == 1_250


async def test_bad_price_is_400(platform: Platform, conformance_dir: Path) -> None:
    bid = await won_bid(platform, conformance_dir)
    response = await platform.client.get(filled(bid["nurl"], price="free"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_price"


def test_over_budget_series_is_exposed_before_the_first_such_notice() -> None:
    # Exposed before the first one: increase() in the CampaignBudgetExceeded alert cannot see
    # a series born at 1.
    exposed = generate_latest().decode()
    for kind in ("win", "billing"):
        assert f'campaign_notices_total{{kind="{kind}",result="over_budget"}} ' in exposed
