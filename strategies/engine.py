"""Decide one listing: select the rule, run its strategy safely, then the guards. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from strategies import STRATEGIES
from strategies.base import Decision, Snapshot, TraceStep
from strategies.guards import GuardOutcome, GuardSettings, Verdict, apply_guards
from strategies.rounding import Rounding, apply_rounding
from strategies.rules import AnyRule, rule_label, select_rule


class Outcome(NamedTuple):
    """A listing's full decision: which rule, what the strategy said, what the guards allowed."""

    rule: str
    strategy: str
    decision: Decision
    guards: GuardOutcome

    @property
    def verdict(self) -> Verdict:
        """SEND, HOLD or BLOCKED."""
        return self.guards.verdict

    @property
    def price(self) -> Decimal | None:
        """The price to send (only when the verdict is SEND)."""
        return self.guards.price

    @property
    def reason(self) -> str:
        """One line for the audit log."""
        return self.guards.reason


def run_strategy(rule: AnyRule, snapshot: Snapshot) -> Decision:
    """Call the rule's strategy; a strategy that raises holds this SKU instead of the batch."""
    try:
        return STRATEGIES[rule.strategy](snapshot, rule.params)
    except Exception as err:
        return Decision.hold(
            f"strategy {rule.strategy} failed: {type(err).__name__}: {err}",
            TraceStep("strategy", "error", repr(err)),
        )


def bounded(snapshot: Snapshot, rule: AnyRule) -> Snapshot:
    """Apply a rule's own min/max on top of the product's (tighter one wins)."""
    low, high = snapshot.min_price, snapshot.max_price
    if rule.min_price is not None:
        low = rule.min_price if low is None else max(low, rule.min_price)
    if rule.max_price is not None:
        high = rule.max_price if high is None else min(high, rule.max_price)
    if (low, high) == (snapshot.min_price, snapshot.max_price):
        return snapshot
    return snapshot._replace(min_price=low, max_price=high)


def rounded(decision: Decision, rounding: Rounding) -> Decision:
    """Apply the rule's price ending to the strategy's target (before the guards)."""
    target = decision.target
    if target is None or not target.is_finite():
        return decision
    result = apply_rounding(target, rounding)
    if result == target:
        return decision
    step = TraceStep("rounding", rounding.mode, f"{target} → {result}")
    return decision._replace(target=result, trace=(*decision.trace, step))


def decide(snapshot: Snapshot, rules: Sequence[AnyRule], guards: GuardSettings) -> Outcome:
    """Select the first matching rule, run its strategy, and guard the result."""
    index, rule = select_rule(rules, sku=snapshot.sku, tags=snapshot.tags, channel=snapshot.channel)
    snapshot = bounded(snapshot, rule)
    decision = rounded(run_strategy(rule, snapshot), rule.rounding)
    return Outcome(
        rule_label(index, rule), rule.strategy, decision, apply_guards(snapshot, decision, guards)
    )
