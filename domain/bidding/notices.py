"""Win, billing and loss notice URLs: built into each bid, verified when the exchange calls them.

Everything the ledger needs to settle a bid travels in the URL, signed with HMAC-SHA256, so any
API process can settle any bidder's bid without a lookup. The exchange only fills in the macros:
``${AUCTION_PRICE}`` (or ``${AUCTION_PRICE:B64}``, base64url of the same text) and
``${AUCTION_LOSS}``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from domain.bidding.ports import NoticeKind, SettledNotice
from domain.money import cpm_to_impression_micros

PRICE_MACRO = "${AUCTION_PRICE}"
PRICE_MACRO_B64 = "${AUCTION_PRICE:B64}"
LOSS_MACRO = "${AUCTION_LOSS}"
_SIGNED = ("b", "c", "u", "t", "bp", "fx")


@functools.lru_cache(maxsize=4096)
def _quoted(campaign_id: str) -> str:
    """The campaign id escaped for a query string: the same few hundred ids, bid after bid."""
    return quote(campaign_id, safe="")


class NoticeError(ValueError):
    """A notice we refuse: forged (bad signature, 403), expired (too old to settle, 410), or
    else malformed (400)."""

    def __init__(
        self, code: str, message: str, *, forged: bool = False, expired: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.forged = forged
        self.expired = expired


@dataclass(frozen=True, slots=True)
class NoticeUrls:
    nurl: str
    burl: str
    lurl: str


class NoticeSigner:
    def __init__(self, key: bytes, base_url: str, *, price_macro_b64: bool = False) -> None:
        if len(key) < 16:
            raise ValueError("notice signing key must be at least 16 bytes")
        # Keyed once: copying a keyed HMAC skips hashing the key pads for every bid.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self._base = base_url.rstrip("/")
        self._price = f"pb={PRICE_MACRO_B64}" if price_macro_b64 else f"p={PRICE_MACRO}"

    def _signature(self, values: Mapping[str, str]) -> str:
        return self._sign("|".join(values[name] for name in _SIGNED))

    def _sign(self, message: str) -> str:
        mac = self._keyed.copy()
        mac.update(message.encode())
        return base64.urlsafe_b64encode(mac.digest()[:16]).rstrip(b"=").decode()

    def urls(
        self,
        *,
        bid_id: str,
        campaign_id: str,
        user_key: str | None,
        bid_time: datetime,
        bid_price_micros: int,
        fx: float,
    ) -> NoticeUrls:
        """``fx``: bid-currency units per campaign-currency unit, to book spend in the latter."""
        user = user_key or ""
        millis = int(bid_time.timestamp() * 1000)
        rate = repr(fx)
        # The signed fields in _SIGNED's order, as _signature joins them when verifying.
        signature = self._sign(f"{bid_id}|{campaign_id}|{user}|{millis}|{bid_price_micros}|{rate}")
        # Runs for every bid: only the campaign id can hold characters that need escaping (the
        # rest are our own hex, digits and base64url), so only it is quoted (once per id).
        query = (
            f"b={bid_id}&c={_quoted(campaign_id)}&u={user}&t={millis}"
            f"&bp={bid_price_micros}&fx={rate}&s={signature}"
        )
        return NoticeUrls(
            nurl=f"{self._base}/v1/notice/win?{query}&{self._price}",
            burl=f"{self._base}/v1/notice/billing?{query}&{self._price}",
            lurl=f"{self._base}/v1/notice/loss?{query}&{self._price}&r={LOSS_MACRO}",
        )

    def verify(self, kind: str, params: Mapping[str, str]) -> SettledNotice:
        """Check the signature and decode a notice's query parameters."""
        if kind not in (NoticeKind.WIN, NoticeKind.BILLING, NoticeKind.LOSS):
            raise NoticeError("unknown_notice", f"no notice kind {kind!r}")
        missing = [name for name in (*_SIGNED, "s") if name not in params]
        if missing:
            raise NoticeError(
                "missing_parameter", f"missing query parameters: {', '.join(missing)}"
            )
        if not hmac.compare_digest(self._signature(params), params["s"]):
            raise NoticeError("bad_signature", "notice signature does not match", forged=True)
        try:
            bid_time = datetime.fromtimestamp(int(params["t"]) / 1000, tz=UTC)
            bid_price_micros = int(params["bp"])
            fx = float(params["fx"])
        except (ValueError, OverflowError) as error:  # signed but undecodable: our own bug
            raise NoticeError("malformed_notice", str(error)) from error
        clearing = _clearing_price_micros(params, fx)
        if clearing is not None:
            clearing = min(clearing, bid_price_micros)  # never book more than we offered
        loss_reason = _loss_reason(params.get("r"))
        return SettledNotice(
            kind=kind,
            bid_id=params["b"],
            campaign_id=params["c"],
            user_key=params["u"] or None,
            bid_time=bid_time,
            bid_price_micros=bid_price_micros,
            clearing_price_micros=(
                clearing if clearing is not None or kind == NoticeKind.LOSS else bid_price_micros
            ),
            loss_reason=loss_reason,
        )


def _clearing_price_micros(params: Mapping[str, str], fx: float) -> int | None:
    """The exchange's clearing CPM, converted to micro-units of the campaign's currency."""
    text = params.get("p")
    if text is None or text == PRICE_MACRO:
        encoded = params.get("pb")
        if encoded is None or encoded == PRICE_MACRO_B64:
            return None
        try:
            padded = encoded + "=" * (-len(encoded) % 4)
            text = base64.urlsafe_b64decode(padded.encode()).decode()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise NoticeError("bad_price", "price is not base64url text") from error
    try:
        cpm = float(text)
    except ValueError as error:
        raise NoticeError("bad_price", f"price {text!r} is not a number") from error
    if not math.isfinite(cpm) or cpm < 0 or fx <= 0:
        raise NoticeError("bad_price", f"price {text!r} is not a valid CPM")
    return cpm_to_impression_micros(cpm / fx)


def _loss_reason(text: str | None) -> int | None:
    if text is None or text == LOSS_MACRO or text == "":
        return None
    try:
        return int(text)
    except ValueError as error:
        raise NoticeError("bad_loss_reason", f"loss reason {text!r} is not an integer") from error
