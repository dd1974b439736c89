"""The account circuit breaker: one verdict over a whole pass of one channel. Pure.

If one pass would move more than ``share_pct`` % of a channel's priced listings by more than
``move_pct`` % each (a replayed 1p competitor feed, a bad cost import, a broken strategy), the
daemon sends nothing for that channel, records a ``blocked`` action per listing and keeps the
breaker tripped until ``repricerd resume``. The per-listing guards (``strategies.guards``) cannot
see this: each move may be allowed on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_UP, Decimal

from pydantic import BaseModel, ConfigDict, Field

_TENTH = Decimal("0.1")


def percent_text(value: Decimal) -> str:
    """A percentage for messages: rounded up (away from zero) to 0.1, without a trailing ".0".

    Rounding up means an amount just over a limit never reads as equal to the limit.
    """
    return f"{value.quantize(_TENTH, rounding=ROUND_UP):f}".removesuffix(".0")


class BreakerSettings(BaseModel):
    """Account circuit breaker: if one pass would move more than ``share_pct`` % of a channel's
    listings by more than ``move_pct`` %, nothing is sent and the breaker trips."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share_pct: Decimal = Field(default=Decimal("20"), gt=0, le=100)
    move_pct: Decimal = Field(default=Decimal("10"), gt=0, le=1000)
    min_listings: int = Field(
        default=10, ge=1, description="channels with fewer priced listings never trip it"
    )
    window_s: int = Field(
        default=3600,
        ge=0,
        le=7 * 86_400,
        description="big moves of event-driven passes count together over this many seconds",
    )
    rearm_after_s: int = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description="after `repricerd resume`, the breaker stays disarmed this long (seconds), "
        "so the move the operator just approved can proceed under the step and drift guards",
    )


def is_big_move(old: Decimal | None, new: Decimal, settings: BreakerSettings) -> bool:
    """True if ``old`` → ``new`` moves by strictly more than ``move_pct`` % (a first price,
    with no usable ``old``, is not a move)."""
    return (
        old is not None
        and old.is_finite()
        and old > 0
        and abs(new - old) * 100 > old * settings.move_pct
    )


def breaker_verdict(
    moves: Sequence[tuple[Decimal | None, Decimal]],
    total_listings: int,
    settings: BreakerSettings,
    earlier_big: int = 0,
) -> str | None:
    """Why the pass must be stopped, or ``None`` to let it through.

    ``moves`` are (current price, price asked for) of every listing of one channel whose
    strategy asked for a price in this pass, whether the guards let it through or stopped it
    (the strategy's wish when it went further than what was let through). ``total_listings``
    counts every listing the pass decided for that channel, holds and blocks included. A
    listing without a usable current price (``None``, zero, negative or not finite) counts as
    not moving: a first price has nothing to move from. The breaker trips when strictly more
    than ``share_pct`` % of ``total_listings`` would move by strictly more than ``move_pct`` %
    of their current price, and never with fewer than ``min_listings`` listings.
    ``earlier_big`` adds listings of the same channel that made a big move shortly before, in
    other passes (event-driven reprices of a few SKUs each): a collapse that arrives SKU by SKU
    must trip the breaker too.
    """
    if total_listings < 0 or len(moves) + earlier_big > total_listings:
        raise ValueError(f"{len(moves)} moves out of {total_listings} listings")
    if total_listings < settings.min_listings:
        return None
    move_pct = settings.move_pct
    big = earlier_big + sum(1 for old, new in moves if is_big_move(old, new, settings))
    share = settings.share_pct
    if big * 100 <= share * total_listings:
        return None
    return (
        f"would move {big} of {total_listings} listings "
        f"({percent_text(Decimal(big * 100) / total_listings)} %) by more than {move_pct} %; "
        f"limit {share} %"
    )
