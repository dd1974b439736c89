"""Column types that keep money exact and times aware on both SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

_CENT = Decimal("0.01")


class Money(TypeDecorator[Decimal]):
    """Exact decimal money: NUMERIC(18, 4) on PostgreSQL, canonical text on SQLite.

    SQLite has no decimal type and SQLAlchemy would round-trip NUMERIC through float, which is how
    a 19.99 becomes 19.989999. Text keeps every digit; we never compare prices in SQL.
    """

    impl = sa.String(40)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Pick NUMERIC where the database has it."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.Numeric(18, 4, asdecimal=True))
        return dialect.type_descriptor(sa.String(40))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        """Store a Decimal without going through float."""
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"money must be Decimal, got {type(value).__name__}")
        if not value.is_finite():
            raise ValueError(f"money must be finite, got {value}")
        if dialect.name == "postgresql":
            return value
        # Canonical text with at least cents, so reading back is a bare Decimal(text).
        text = format(value, "f")
        dot = text.find(".")
        if dot == -1:
            return text + ".00"
        return text + "0" if len(text) - dot == 2 else text

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Read back a canonical Decimal (see ``money_value``)."""
        return money_value(value)


def money_value(value: Any) -> Decimal | None:
    """A stored money value as a canonical Decimal: at least cents, no padding beyond that.

    PostgreSQL pads NUMERIC(18,4) to four places (18.0000), SQLite keeps the text we stored
    (18.00 or 18); both read back as 18.00. Bulk readers call this on raw driver values.
    """
    if value is None:
        return None
    if type(value) is str:
        return Decimal(value)  # SQLite: stored in canonical form by process_bind_param
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        amount = amount.normalize()
    return amount.quantize(_CENT) if amount.as_tuple().exponent > -2 else amount  # type: ignore[operator]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps; naive datetimes are refused rather than guessed."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        """Normalise to UTC; SQLite stores it naive, PostgreSQL as timestamptz."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: times are aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]
