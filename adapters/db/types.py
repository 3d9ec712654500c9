"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no exact decimal, no time zones and no JSONB; these types make both backends hand
back exactly what was stored, so the repositories never branch on the dialect.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

MONEY_PRECISION = 18
MONEY_SCALE = 6
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
_LIMIT = Decimal(10) ** (MONEY_PRECISION - MONEY_SCALE)
# Enough for the sign, 12 integer digits, the point and 6 decimals.
MONEY_SQLITE_TEXT_LENGTH = 32


class Money(TypeDecorator[Decimal]):
    """``NUMERIC(18, 6)`` on PostgreSQL; fixed-point text on SQLite.

    SQLite would keep a NUMERIC column as a double and lose digits past the 15th, so the
    value travels as text there. Both backends round to 6 places the same way and refuse
    values PostgreSQL would overflow on.
    """

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(MONEY_SQLITE_TEXT_LENGTH))
        return dialect.type_descriptor(Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = Decimal(value)
        if not amount.is_finite():
            raise ValueError(f"not a finite amount: {value!r}")
        # Checked before rounding too: quantize itself fails on numbers this large.
        exact = (
            amount.quantize(_QUANTUM, rounding=ROUND_HALF_UP) if abs(amount) < _LIMIT else amount
        )
        if abs(exact) >= _LIMIT:
            raise ValueError(f"amount {value} does not fit NUMERIC(18, 6)")
        if dialect.name == "sqlite":
            return format(exact, "f")
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE``; always UTC-aware on the way out, never naive on the way in.

    SQLite keeps no offset, so values are stored there as UTC wall time and get their zone
    back on reading.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give it a time zone")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JsonDocument(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL so later queries can index into it."""

    impl = JSON()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())
