from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import create_engine

from adapters.db.types import Money, UtcDateTime

# Engines are only built for their dialects; nothing connects.
SQLITE = create_engine("sqlite://").dialect
POSTGRES = create_engine("postgresql+psycopg://u@localhost/db").dialect


def test_money_is_exact_text_on_sqlite() -> None:
    money = Money()

    stored = money.process_bind_param(Decimal("987654321012.123456"), SQLITE)

    assert stored == "987654321012.123456"
    assert money.process_result_value(stored, SQLITE) == Decimal("987654321012.123456")


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [
        (Decimal("1.0000005"), Decimal("1.000001")),
        (Decimal("-1.0000005"), Decimal("-1.000001")),
        (Decimal("2.50000049"), Decimal("2.500000")),
    ],
)
def test_money_rounds_to_six_places_half_away_from_zero(amount: Decimal, rounded: Decimal) -> None:
    money = Money()

    assert Decimal(money.process_bind_param(amount, SQLITE)) == rounded
    assert money.process_bind_param(amount, POSTGRES) == rounded


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("1e12"),
        Decimal("999999999999.9999995"),
        Decimal("1e40"),
        Decimal("NaN"),
        Decimal("Infinity"),
    ],
)
def test_money_refuses_amounts_numeric_18_6_cannot_hold(amount: Decimal) -> None:
    with pytest.raises(ValueError, match=r"amount|finite"):
        Money().process_bind_param(amount, SQLITE)


def test_utc_datetime_stores_utc_and_reads_back_aware() -> None:
    kind = UtcDateTime()
    paris = datetime(2026, 3, 29, 3, 0, 0, 7, tzinfo=timezone(timedelta(hours=2)))

    on_sqlite = kind.process_bind_param(paris, SQLITE)
    on_postgres = kind.process_bind_param(paris, POSTGRES)

    assert on_sqlite == datetime(2026, 3, 29, 1, 0, 0, 7)
    assert on_postgres == datetime(2026, 3, 29, 1, 0, 0, 7, tzinfo=UTC)
    read = kind.process_result_value(on_sqlite, SQLITE)
    assert read == paris
    assert read is not None
    assert read.tzinfo is UTC


def test_utc_datetime_refuses_naive_values() -> None:
    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_param(datetime(2026, 1, 1), POSTGRES)
