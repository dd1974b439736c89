"""Rule models (the ``pricing.rules`` list of the YAML) and first-match selection."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from fnmatch import translate
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from strategies.competitive import BuyBoxParams, LowestPriceParams
from strategies.inventory import ExcessInventoryParams, SalesVelocityParams
from strategies.rounding import CENTS, Rounding
from strategies.simple import CostPlusParams, FixedParams, HoldParams


class RuleMatch(BaseModel):
    """Which listings a rule applies to; every given criterion must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: tuple[str, ...] = Field(default=(), description="SKU globs, e.g. CLEAR-*")
    tags: tuple[str, ...] = Field(default=(), description="product tags; any one matches")
    channel: tuple[str, ...] = Field(default=(), description="channel names")

    @field_validator("sku", "tags", "channel", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @cached_property
    def _sku_regex(self) -> re.Pattern[str] | None:
        # One compiled alternation of every glob: a single match() per listing per rule.
        if not self.sku:
            return None
        return re.compile("|".join(f"(?:{translate(pattern)})" for pattern in self.sku))

    def matches(self, *, sku: str, tags: Sequence[str], channel: str) -> bool:
        """True if the listing satisfies every criterion given."""
        regex = self._sku_regex
        if regex is not None and regex.match(sku) is None:
            return False
        if self.tags and not set(self.tags).intersection(tags):
            return False
        return not (self.channel and channel not in self.channel)


class _RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    match: RuleMatch | None = None
    rounding: Rounding = Field(default=CENTS, description="price endings before the guards")
    min_price: Decimal | None = Field(
        default=None,
        gt=0,
        description="floor for matched listings (the higher of this and the product's)",
    )
    max_price: Decimal | None = Field(
        default=None,
        gt=0,
        description="ceiling for matched listings (the lower of this and the product's)",
    )

    @field_validator("max_price")
    @classmethod
    def _max_not_below_min(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        low = info.data.get("min_price")
        if value is not None and low is not None and value < low:
            raise ValueError(f"max_price {value} is below min_price {low}")
        return value


class HoldRule(_RuleBase):
    """Keep prices as they are."""

    strategy: Literal["hold"]
    params: HoldParams = HoldParams()


class FixedRule(_RuleBase):
    """Set one configured price."""

    strategy: Literal["fixed"]
    params: FixedParams


class CostPlusRule(_RuleBase):
    """Cost × (1 + margin) + fees."""

    strategy: Literal["cost_plus"]
    params: CostPlusParams


class BuyBoxRule(_RuleBase):
    """Beat / match / stay above the Buy Box; hold or probe upward while it is ours."""

    strategy: Literal["buy_box"]
    params: BuyBoxParams = BuyBoxParams()


class LowestPriceRule(_RuleBase):
    """Beat / match / stay above the lowest qualifying landed price."""

    strategy: Literal["lowest_price"]
    params: LowestPriceParams = LowestPriceParams()


class ExcessInventoryRule(_RuleBase):
    """Mark excess or aged stock down toward the floor; step back up when cover is short."""

    strategy: Literal["excess_inventory"]
    params: ExcessInventoryParams


class SalesVelocityRule(_RuleBase):
    """Raise or lower by a step when units sold in a window miss the target."""

    strategy: Literal["sales_velocity"]
    params: SalesVelocityParams


AnyRule = (
    HoldRule
    | FixedRule
    | CostPlusRule
    | BuyBoxRule
    | LowestPriceRule
    | ExcessInventoryRule
    | SalesVelocityRule
)
Rule = Annotated[AnyRule, Field(discriminator="strategy")]


def rule_label(index: int, rule: _RuleBase) -> str:
    """Name a rule for the audit log: its ``name`` or its position in the YAML."""
    return rule.name or f"rules[{index}]"


def select_rule(
    rules: Sequence[AnyRule],
    *,
    sku: str,
    tags: Sequence[str],
    channel: str,
) -> tuple[int, AnyRule]:
    """Return the first rule that matches (the config guarantees a default at the end)."""
    for index, rule in enumerate(rules):
        if rule.match is None or rule.match.matches(sku=sku, tags=tags, channel=channel):
            return index, rule
    raise LookupError("no rule matched and no default rule is configured")
