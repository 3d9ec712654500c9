"""Notice URLs: what a bid carries out, and what we accept back."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from domain.bidding.notices import NoticeError, NoticeSigner
from domain.bidding.ports import NoticeKind

KEY = b"k" * 32
BID_TIME = datetime(2026, 11, 28, 14, 0, 1, 250_000, tzinfo=UTC)


def issued(signer: NoticeSigner, kind: str = "win", fx: float = 1.0) -> dict[str, str]:
    urls = signer.urls(
        bid_id="bid-1",
        campaign_id="cmp-1",
        user_key="u-key",
        bid_time=BID_TIME,
        bid_price_micros=4_000,
        fx=fx,
    )
    url = {"win": urls.nurl, "billing": urls.burl, "loss": urls.lurl}[kind]
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_win_notice_round_trips_with_the_exchange_price() -> None:
    signer = NoticeSigner(KEY, "https://bids.example")
    notice = signer.verify("win", issued(signer) | {"p": "3.25"})
    assert notice.kind == NoticeKind.WIN
    assert (notice.bid_id, notice.campaign_id, notice.user_key) == ("bid-1", "cmp-1", "u-key")
    assert notice.bid_time == BID_TIME.replace(microsecond=250_000)
    assert notice.clearing_price_micros == 3_250


def test_b64_price_macro_is_decoded() -> None:
    signer = NoticeSigner(KEY, "https://bids.example", price_macro_b64=True)
    params = issued(signer)
    assert params["pb"] == "${AUCTION_PRICE:B64}"
    encoded = base64.urlsafe_b64encode(b"2.5").rstrip(b"=").decode()
    assert signer.verify("billing", params | {"pb": encoded}).clearing_price_micros == 2_500


def test_unsubstituted_price_books_the_bid_price() -> None:
    signer = NoticeSigner(KEY, "https://bids.example")
    assert signer.verify("win", issued(signer)).clearing_price_micros == 4_000


def test_price_above_our_bid_is_capped_at_the_bid() -> None:
    signer = NoticeSigner(KEY, "https://bids.example")
    assert signer.verify("win", issued(signer) | {"p": "99"}).clearing_price_micros == 4_000


def test_price_in_bid_currency_converts_to_campaign_currency() -> None:
    signer = NoticeSigner(KEY, "https://bids.example")
    # 1 campaign-currency unit buys 2 bid-currency units: 3.0 in the bid currency is 1.5.
    params = issued(signer, fx=2.0) | {"p": "3.0"}
    assert signer.verify("win", params).clearing_price_micros == 1_500


def test_loss_carries_its_reason() -> None:
    signer = NoticeSigner(KEY, "https://bids.example")
    params = issued(signer, "loss")
    assert params["r"] == "${AUCTION_LOSS}"
    assert signer.verify("loss", params | {"r": "102"}).loss_reason == 102
    assert signer.verify("loss", params).loss_reason is None


@pytest.mark.parametrize("field", ["b", "c", "u", "t", "bp", "fx"])
def test_tampered_field_is_forged(field: str) -> None:
    signer = NoticeSigner(KEY, "https://bids.example")
    params = issued(signer) | {field: "0"}
    with pytest.raises(NoticeError) as refused:
        signer.verify("win", params)
    assert refused.value.forged


def test_other_key_is_forged() -> None:
    params = issued(NoticeSigner(KEY, "https://bids.example"))
    with pytest.raises(NoticeError) as refused:
        NoticeSigner(b"x" * 32, "https://bids.example").verify("win", params)
    assert refused.value.code == "bad_signature"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"p": "cheap"}, "bad_price"),
        ({"p": "-1"}, "bad_price"),
        ({"p": "nan"}, "bad_price"),
        ({"r": "lost"}, "bad_loss_reason"),
    ],
)
def test_malformed_values_are_refused(change: dict[str, str], code: str) -> None:
    signer = NoticeSigner(KEY, "https://bids.example")
    with pytest.raises(NoticeError) as refused:
        signer.verify("loss" if "r" in change else "win", issued(signer, "loss") | change)
    assert refused.value.code == code
    assert not refused.value.forged


def test_missing_parameters_are_named() -> None:
    signer = NoticeSigner(KEY, "https://bids.example")
    params = issued(signer)
    del params["s"], params["bp"]
    with pytest.raises(NoticeError, match="bp, s"):
        signer.verify("win", params)


def test_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        NoticeSigner(b"short", "https://bids.example")
