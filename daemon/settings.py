"""The configuration schema: strict pydantic models for every top-level YAML key.

Top-level keys: ``database``, ``server``, ``schedule``, ``channels``, ``inventory``, ``pricing``,
``catalog``, ``alerts``. Unknown keys are errors. Secrets are ``SecretStr`` and must be ``${ENV}``
references.
Relative paths (SQLite file, CSV files) are relative to the working directory.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeAlias, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from connectors.registry import settings_models
from inventory.fees import US_FEES, AgedTier, FeeTable, MonthlyRate
from strategies.base import Duration, DurationOrZero
from strategies.guards import GuardSettings
from strategies.rules import Rule

CHANNEL_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]


class Strict(BaseModel):
    """Base: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(Strict):
    """``server``: the HTTP listeners: public (webhooks, health, operator trigger) and admin
    (the console, status and metrics; on when ``console_password`` is set)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535, description="0 picks a free port")
    webhook_max_bytes: int = Field(default=256 * 1024, ge=1024, le=10 * 1024 * 1024)
    sync_token: SecretStr | None = Field(default=None, description="bearer token for POST /sync")
    shutdown_timeout_s: float = Field(default=6.0, gt=0, le=30)
    admin_host: str = Field(
        default="127.0.0.1", description="the admin listener (console, /status, /metrics)"
    )
    admin_port: int = Field(default=8081, ge=0, le=65535, description="0 picks a free port")
    console_password: SecretStr | None = Field(
        default=None,
        description="password of the operator console on the admin listener (off if unset)",
    )
    # How long one attempt to open a channel (its first marketplace calls) may take before the
    # channel is recorded degraded and retried with backoff (unset: 30 s).
    channel_open_timeout_s: float | None = Field(default=None, gt=0, le=600)
    lease_ttl_s: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="several replicas on PostgreSQL: how long a replica's ownership of a channel "
        "lasts without renewal (renewed every third of it); a dead replica's channels move "
        "within about this long",
    )


class ScheduleSettings(Strict):
    """``schedule``: how often each periodic pass runs."""

    reprice: Duration = timedelta(minutes=5)
    stock_sync: Duration = timedelta(minutes=10)
    reconcile: Duration = timedelta(hours=1)
    offers_poll: Duration | None = Field(
        default=None,
        description="poll competitor offers this often and reprice what changed (off if unset)",
    )
    orders_poll: Duration | None = Field(
        default=timedelta(minutes=5),
        description="list each channel's recent orders this often, applying those whose webhook "
        "never came (channels that can list orders; off if null)",
    )
    orders_lookback: Duration = Field(
        default=timedelta(hours=24),
        description="how far back the first orders poll of a channel looks (no order of it "
        "in the ledger yet)",
    )
    offer_debounce: Duration = Field(
        default=timedelta(seconds=5),
        description="an offer change waits this long for more before its SKUs are repriced",
    )
    offers_max_age: DurationOrZero = Field(
        default=timedelta(seconds=60),
        description="a reprice decides on a stored offer snapshot this young (a notification's "
        "offers, a recent poll) instead of polling the marketplace again; 0s: always poll",
    )
    misfire_grace: Duration = Field(
        default=timedelta(seconds=60),
        description="a pass that could not start on time still runs if this late",
    )
    inventory: Duration | None = Field(
        default=timedelta(days=1),
        description="aggregate the day's sales and stock, forecast demand, plan restock and "
        "inventory health this often (off if null)",
    )


# One model per connector kind, each owned by its connector package and listed in the registry
# (connectors.registry.KINDS), which the runtime's channel factories read too. Type checkers see
# the protocol every member meets; pydantic validates against the union, told apart by ``kind``.
if TYPE_CHECKING:
    from connectors.base import ChannelSettings as ChannelSettings
else:
    ChannelSettings: TypeAlias = Annotated[
        # A union of a tuple of models: X | Y cannot spell it (and ruff's rewrite would break it).
        Union[settings_models()],  # noqa: UP007
        Field(discriminator="kind"),
    ]


ExternalChanges = Literal["overwrite", "adopt"]


class ChannelAllocation(Strict):
    """``inventory.channels.<name>``: how much of the available stock a channel may show."""

    buffer: int | None = Field(default=None, ge=0, description="overrides inventory.buffer")
    share_pct: Decimal = Field(default=Decimal("100"), ge=0, le=100)
    max: int | None = Field(default=None, ge=0)
    exclude: bool = False
    external_changes: ExternalChanges | None = Field(
        default=None, description="overrides inventory.external_changes for this channel"
    )
    include_marketplace_held: bool = Field(
        default=False,
        description="also offer units the marketplaces hold (Amazon FBA, Walmart WFS) on this "
        "channel, e.g. a shop fulfilled through Multi-Channel Fulfillment; they are read from "
        "those listings, never written",
    )


class LastUnits(Strict):
    """``inventory.last_units``: when few units are left, only the priority channels show them."""

    below: int = Field(ge=1, description="applies while available units are below this")
    channels: list[str] = Field(min_length=1, description="the channels that keep showing stock")


class StorageRate(Strict):
    """Monthly storage fee per cubic foot of one size tier."""

    jan_sep: Decimal = Field(ge=0)
    oct_dec: Decimal = Field(ge=0)


class AgedSurcharge(Strict):
    """Aged-inventory surcharge per cubic foot (or per unit, whichever is greater) for an age."""

    min_age_days: int = Field(ge=0)
    max_age_days: int | None = Field(default=None, ge=0)
    per_cuft: Decimal = Field(ge=0)
    per_unit: Decimal = Field(default=Decimal(0), ge=0)

    @field_validator("max_age_days")
    @classmethod
    def _not_below_min(cls, value: int | None, info: ValidationInfo) -> int | None:
        # An inverted tier would match no unit: its surcharge would silently never apply.
        low = info.data.get("min_age_days")
        if value is not None and low is not None and value < low:
            raise ValueError(f"max_age_days {value} is below min_age_days {low}")
        return value


class StorageFeeTable(Strict):
    """``inventory.storage_fees[]``: one dated storage-fee table (in force from ``effective``)."""

    effective: date
    monthly: dict[str, StorageRate] = Field(min_length=1, description="by size tier")
    aged: list[AgedSurcharge] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    note: str = ""

    @field_validator("aged")
    @classmethod
    def _no_overlap(cls, value: list[AgedSurcharge]) -> list[AgedSurcharge]:
        # A unit's age picks the first tier that covers it: an overlap would hide a tier.
        ordered = sorted(value, key=lambda a: a.min_age_days)
        for before, after in pairwise(ordered):
            if before.max_age_days is None or before.max_age_days >= after.min_age_days:
                raise ValueError(
                    f"aged tiers from {before.min_age_days} and from {after.min_age_days} days "
                    "overlap"
                )
        return value

    def table(self) -> FeeTable:
        """The pure fee table (inventory.fees) this entry describes."""
        return FeeTable(
            effective=self.effective,
            monthly=tuple(
                MonthlyRate(tier, rate.jan_sep, rate.oct_dec) for tier, rate in self.monthly.items()
            ),
            aged=tuple(
                AgedTier(a.min_age_days, a.max_age_days, a.per_cuft, a.per_unit) for a in self.aged
            ),
            sources=tuple(self.sources),
            note=self.note,
        )


class InventorySettings(Strict):
    """``inventory``: buffers, per-channel allocation, and what to do about outside changes;
    the restock and health settings of the nightly inventory pass."""

    buffer: int = Field(default=0, ge=0, description="units never offered anywhere")
    channels: dict[str, ChannelAllocation] = Field(default_factory=dict)
    last_units: LastUnits | None = None
    external_changes: ExternalChanges = Field(
        default="overwrite",
        description="a quantity changed on the channel itself (a manual edit): 'overwrite' puts "
        "the ledger's allocation back; 'adopt' takes the channel's number as a stock count",
    )

    service_level: Decimal = Field(
        default=Decimal("0.95"), gt=0, lt=1, description="cycle service level of safety stock"
    )
    target_cover_days: int = Field(
        default=60, ge=1, le=3650, description="days of demand an order covers once it lands"
    )
    restock_alert_days: list[int] = Field(
        default_factory=lambda: [21, 14],
        description="alert once when cover falls below each of these days",
    )
    restock_alert_digest_over: int = Field(
        default=20,
        ge=1,
        description="more restock alerts than this raised at once (a first run on a large "
        "catalogue) are announced as one digest; each SKU's alert is still recorded once",
    )
    history_days: int = Field(
        default=365, ge=28, le=1460, description="days of sales history the forecast fits"
    )
    storage_fees: list[StorageFeeTable] | None = Field(
        default=None, description="dated storage-fee tables (default: Amazon US, in the code)"
    )

    @field_validator("restock_alert_days")
    @classmethod
    def _positive_days(cls, value: list[int]) -> list[int]:
        if any(day < 1 for day in value) or len(set(value)) != len(value):
            raise ValueError("restock_alert_days must be distinct whole days >= 1")
        return sorted(value, reverse=True)

    def fee_tables(self) -> tuple[FeeTable, ...]:
        """The storage-fee tables in force over time (the built-in US table if none given)."""
        if not self.storage_fees:
            return (US_FEES,)
        return tuple(entry.table() for entry in self.storage_fees)

    def external_policy(self, channel: str) -> ExternalChanges:
        """The outside-change policy that applies to ``channel``."""
        rule = self.channels.get(channel)
        return rule.external_changes if rule and rule.external_changes else self.external_changes


class PricingSettings(Strict):
    """``pricing``: guards and the ordered rules (first match wins, last is the default)."""

    guards: GuardSettings = GuardSettings()
    rules: list[Rule] = Field(min_length=1)


class CatalogSettings(Strict):
    """``catalog``: defaults for products and an optional CSV imported at start-up."""

    currency: Currency = "USD"
    import_on_start: Path | None = None


class AlertSettings(Strict):
    """``alerts``: conditions raised once as ``alert`` log events and POSTed to a webhook."""

    # A Slack incoming-webhook URL is a credential: like every secret, a ${ENV} reference.
    webhook_url: SecretStr | None = Field(
        default=None, description="receiver of alert JSON (Slack or generic); unset: logs only"
    )
    inbox_stuck_after: Duration = Field(
        default=timedelta(minutes=5),
        description="alert when a channel's oldest unprocessed webhook is older than this",
    )
    degraded_after: Duration = Field(
        default=timedelta(minutes=10),
        description="alert when a channel stays degraded longer than this",
    )

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http:// or https:// URL")
        return value


class Settings(Strict):
    """The whole configuration file."""

    database: str = "sqlite:///var/repricerd.db"
    server: ServerSettings = ServerSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    channels: dict[Annotated[str, Field(pattern=CHANNEL_NAME)], ChannelSettings] = Field(
        min_length=1
    )
    inventory: InventorySettings = InventorySettings()
    pricing: PricingSettings
    catalog: CatalogSettings = CatalogSettings()
    alerts: AlertSettings = AlertSettings()


def semantic_problems(settings: Settings) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-field checks pydantic cannot place on one field, each with its YAML path."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    names = set(settings.channels)
    for name in settings.inventory.channels:
        if name not in names:
            problems.append((("inventory", "channels", name), f"unknown channel {name!r}"))
    last_units = settings.inventory.last_units
    for index, name in enumerate(last_units.channels if last_units else ()):
        if name not in names:
            problems.append(
                (("inventory", "last_units", "channels", index), f"unknown channel {name!r}")
            )
    rules = settings.pricing.rules
    for index, rule in enumerate(rules):
        if rule.match is not None:
            for channel in rule.match.channel:
                if channel not in names:
                    problems.append(
                        (
                            ("pricing", "rules", index, "match", "channel"),
                            f"unknown channel {channel!r}",
                        )
                    )
        elif index != len(rules) - 1:
            problems.append(
                (("pricing", "rules", index), "a rule without match must be the last (the default)")
            )
    for index, parity in enumerate(settings.pricing.guards.parity):
        for key in ("channel", "reference"):
            if getattr(parity, key) not in names:
                problems.append(
                    (
                        ("pricing", "guards", "parity", index, key),
                        f"unknown channel {getattr(parity, key)!r}",
                    )
                )
    if rules and rules[-1].match is not None:
        problems.append(
            (
                ("pricing", "rules", len(rules) - 1, "match"),
                "the last rule is the default: it must have no match",
            )
        )
    return problems
