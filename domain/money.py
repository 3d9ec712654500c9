"""Currencies and micro-units. Budgets and spend are integers of micro-units (1e-6 of a unit)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal

MICROS = 1_000_000
_CPM_TO_MICROS_PER_IMPRESSION = MICROS // 1000


def to_micros(amount: Decimal | float) -> int:
    return int((Decimal(str(amount)) * MICROS).to_integral_value(rounding=ROUND_HALF_UP))


def cpm_to_impression_micros(cpm: float) -> int:
    """What one impression costs at a CPM price, in micro-units of the same currency."""
    return round(cpm * _CPM_TO_MICROS_PER_IMPRESSION)


def impression_micros_to_cpm(micros: int) -> float:
    return micros / _CPM_TO_MICROS_PER_IMPRESSION


class FxTable:
    """Conversion through USD with fixed rates (value of one unit in USD), as settings give them."""

    def __init__(self, rates_usd: Mapping[str, float]) -> None:
        self._rates = {code.upper(): rate for code, rate in rates_usd.items() if rate > 0}

    def knows(self, currency: str) -> bool:
        return currency.upper() in self._rates

    def rate(self, from_currency: str, to_currency: str) -> float | None:
        """Units of ``to_currency`` per unit of ``from_currency``; None if either is unknown."""
        source = self._rates.get(from_currency.upper())
        target = self._rates.get(to_currency.upper())
        if source is None or target is None:
            return None
        return source / target

    def first_known(self, currencies: Iterable[str] | None, default: str = "USD") -> str | None:
        """The first acceptable currency we can price in (OpenRTB ``cur``: absent means USD)."""
        if not currencies:
            return default if self.knows(default) else None
        for currency in currencies:
            if self.knows(currency):
                return currency.upper()
        return None
