"""Guard configuration (``pricing.guards``): limits, parity rules and the breaker settings.

The models precompute what ``strategies.guards.apply_guards`` needs per call (factors, the
parity rules of each channel), because the guards run 100,000 times per pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import cached_property
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from strategies.base import TraceStep
from strategies.breaker import BreakerSettings


class ParityRule(BaseModel):
    """Keep ``channel``'s price at most ``max_above_pct`` above our price on ``reference``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str
    reference: str
    max_above_pct: Decimal = Field(default=Decimal("0"), ge=0, le=100)

    @model_validator(mode="after")
    def _two_channels(self) -> ParityRule:
        if self.channel == self.reference:
            raise ValueError("parity needs two different channels")
        return self


class _Parity(NamedTuple):
    """A parity rule as the hot path uses it: peer channel, cap factor, ok trace step."""

    reference: str
    factor: Decimal
    pct: Decimal
    ok: TraceStep
    skipped: TraceStep


class GuardSettings(BaseModel):
    """``pricing.guards`` in the YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_margin_pct: Decimal = Field(
        default=Decimal("0"), ge=0, le=1000, description="floor = cost × (1 + this) + fees"
    )
    max_step_pct: Decimal = Field(
        default=Decimal("10"), gt=0, le=100, description="largest move per change, % of current"
    )

    max_daily_move_pct: Decimal = Field(
        default=Decimal("25"),
        gt=0,
        le=100,
        description="largest move within any rolling 24 h, % of the price 24 h ago",
    )
    reference_band_pct: Decimal = Field(
        default=Decimal("35"),
        gt=0,
        le=1000,
        description="refuse a price further than this from the reference price",
    )
    reference_min_history: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="own confirmed prices needed before their 30-day median serves as reference",
    )
    parity: tuple[ParityRule, ...] = Field(
        default=(), description="cross-channel parity: a channel not above another by more than N%"
    )
    breaker: BreakerSettings = Field(default_factory=lambda: BreakerSettings())

    # Config-derived constants, computed once per config (apply_guards runs 100,000× a pass).

    @cached_property
    def margin_factor(self) -> Decimal:
        """1 + min_margin_pct / 100, computed once per config."""
        return 1 + self.min_margin_pct / 100

    @cached_property
    def step_fraction(self) -> Decimal:
        """max_step_pct / 100, computed once per config."""
        return self.max_step_pct / 100

    @cached_property
    def daily_fraction(self) -> Decimal:
        """max_daily_move_pct / 100, computed once per config."""
        return self.max_daily_move_pct / 100

    @cached_property
    def band_fraction(self) -> Decimal:
        """reference_band_pct / 100, computed once per config."""
        return self.reference_band_pct / 100

    @cached_property
    def drift_covers_step(self) -> bool:
        """True if the drift band around a price contains the step band around it."""
        return self.max_daily_move_pct >= self.max_step_pct

    @cached_property
    def step_ok(self) -> TraceStep:
        """The trace step of a target within the step band (shared, never rebuilt)."""
        return TraceStep("guard:max_step", "ok", f"within ±{self.max_step_pct}%")

    @cached_property
    def drift_ok(self) -> TraceStep:
        """The trace step of a target within the 24 h drift band."""
        return TraceStep(
            "guard:max_drift", "ok", f"within ±{self.max_daily_move_pct}% of our price 24 h ago"
        )

    @cached_property
    def reference_skipped(self) -> tuple[TraceStep, ...]:
        """The trace step of a listing without a reference, by number of own prices."""
        need = self.reference_min_history
        return tuple(
            TraceStep(
                "guard:reference_band",
                "skipped",
                f"no marketplace reference and {count} own prices in 30 days (need {need})",
            )
            for count in range(need)
        )

    @cached_property
    def parity_by_channel(self) -> Mapping[str, tuple[_Parity, ...]]:
        """The parity rules that constrain each channel, prepared for the hot path."""
        rules: dict[str, list[_Parity]] = {}
        for rule in self.parity:
            pct = rule.max_above_pct
            rules.setdefault(rule.channel, []).append(
                _Parity(
                    rule.reference,
                    1 + pct / 100,
                    pct,
                    TraceStep("guard:parity", "ok", f"not above {rule.reference} + {pct}%"),
                    TraceStep(
                        "guard:parity", "skipped", f"no valid price of this SKU on {rule.reference}"
                    ),
                )
            )
        return {channel: tuple(found) for channel, found in rules.items()}
