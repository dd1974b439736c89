"""The tables of the design contract, as SQLModel models.

Reading guide: ``action`` is both the audit log and the outbox (one row per intended write, created
before the marketplace call and completed on the same row); ``stock_event`` is the append-only
ledger; ``webhook_event`` is the durable inbox. "Why did SKU X not reprice?" is one query on
``action`` (see ``daemon.history``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from daemon.db.types import Money, UTCDateTime


class ActionKind(StrEnum):
    """What an action writes."""

    PRICE = "price"
    STOCK = "stock"


class ChannelHealth(StrEnum):
    """Whether a channel's connector works, as recorded in ``channel_state.health``."""

    OK = "ok"
    # Could not open, or its marketplace keeps failing (timeouts, 5xx): retried in the background.
    DEGRADED = "degraded"
    # The marketplace refused the credentials: retried, but an operator must fix them.
    AUTH_FAILED = "auth_failed"


class ActionStatus(StrEnum):
    """Life of an action row (the outbox state machine).

    planned → sent → confirmed | failed; planned → superseded (a newer intent for the same
    listing replaced it before it was sent); blocked (a guard, pause or breaker refused it; never
    sent); held (a decision not to change, recorded when its reason changes, so "why not?" has an
    answer). A reprice pass records its price intents as ``planned`` chunk by chunk behind the
    channel's pass gate (``channel_state.open_pass``): nothing dispatches them until the whole
    pass has been judged by the circuit breaker, which opens the gate or blocks them all.
    ``staged`` is the older form of the same wait (databases written before migration 0003).
    """

    STAGED = "staged"
    PLANNED = "planned"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    BLOCKED = "blocked"
    SUPERSEDED = "superseded"
    HELD = "held"


OPEN_STATUSES = (ActionStatus.PLANNED, ActionStatus.SENT)

# Seller SKUs as long as the marketplaces allow (Shopify 255; Amazon 40, Walmart 50, eBay 50).
SKU_LENGTH = 255
# A ledger reference is channel:action:order id:SKU (see daemon.stock), so it is wider still.
EXTERNAL_REF_LENGTH = 500


class StockEventKind(StrEnum):
    """Ledger entry kinds; ``count`` resets on-hand to an absolute number."""

    RECEIPT = "receipt"
    ORDER = "order"
    CANCEL = "cancel"
    RETURN = "return"
    ADJUSTMENT = "adjustment"
    COUNT = "count"


def _money(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(Money(), nullable=nullable))


def _time(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=sa.Column(sa.JSON, nullable=False))


class Product(SQLModel, table=True):
    """A seller SKU: cost, price bounds, tags and kit components (shared by every channel)."""

    __tablename__ = "product"

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=SKU_LENGTH, sa_column_kwargs={"unique": True}, nullable=False)
    title: str | None = Field(default=None, max_length=500)
    currency: str = Field(default="USD", max_length=3)
    cost: Decimal | None = _money()
    fees: Decimal | None = _money()
    min_price: Decimal | None = _money()
    max_price: Decimal | None = _money()
    tags: list[str] = _json(list)
    kit_components: dict[str, int] = _json(dict)
    created_at: datetime = _time(nullable=False)
    updated_at: datetime = _time(nullable=False)
    # Supply terms and storage of the inventory pass (NULL: the documented default applies,
    # daemon.inventory_pass DEFAULT_*).
    lead_time_days: int | None = None
    moq: int | None = None
    case_pack: int | None = None
    supplier: str | None = Field(default=None, max_length=100)
    unit_volume_cuft: Decimal | None = _money()
    size_tier: str | None = Field(default=None, max_length=20)


class Listing(SQLModel, table=True):
    """A product offered on one channel, identified by (channel, sku)."""

    __tablename__ = "listing"
    __table_args__ = (sa.UniqueConstraint("channel", "sku", name="uq_listing_channel_sku"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=100)
    sku: str = Field(max_length=SKU_LENGTH, index=True)
    external_id: str | None = Field(default=None, max_length=200)
    external_ids: dict[str, str] = _json(dict)
    fulfillment: str = Field(default="merchant", max_length=20)
    currency: str = Field(default="USD", max_length=3)
    price: Decimal | None = _money()
    quantity: int | None = None
    status: str = Field(default="active", max_length=30)
    # When the live price last changed, by our write or anyone else's (reconcile): the drift
    # guard must anchor on a price someone set by hand, not only on our own history.
    price_changed_at: datetime | None = _time()
    # Digest of the last decision recorded for this listing, so an unchanged "hold" is not
    # written again every pass (the action log stays bounded and still explains itself).
    last_decision: str | None = Field(default=None, max_length=64)
    # Marketplace time of the newest quantity report applied (inventory_levels/update...): an
    # older report arriving late is recorded as skipped, never applied over a newer one.
    quantity_seen_at: datetime | None = _time()
    discovered_at: datetime = _time(nullable=False)
    updated_at: datetime = _time(nullable=False)


class StockEvent(SQLModel, table=True):
    """Append-only ledger entry; ``external_ref`` is unique so a replayed event applies once."""

    __tablename__ = "stock_event"
    # Sales windows and inventory age scan recent events of a few kinds every reprice pass; the
    # console's SKU page reads one SKU's recent events.
    __table_args__ = (
        sa.Index("ix_stock_event_kind_time", "kind", "occurred_at"),
        sa.Index("ix_stock_event_sku_time", "sku", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=SKU_LENGTH, index=True)
    kind: str = Field(max_length=20)
    delta: int
    counted: int | None = None
    external_ref: str = Field(
        max_length=EXTERNAL_REF_LENGTH, sa_column_kwargs={"unique": True}, nullable=False
    )
    channel: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=500)
    occurred_at: datetime = _time(nullable=False)
    recorded_at: datetime = _time(nullable=False)


class OfferSnapshot(SQLModel, table=True):
    """Competitor offers and the Buy Box for one listing, as seen at one time."""

    __tablename__ = "offer_snapshot"
    # The console reads a channel's snapshots in time order (Buy Box share per day).
    __table_args__ = (
        sa.Index("ix_offer_snapshot_listing_time", "channel", "sku", "observed_at"),
        sa.Index("ix_offer_snapshot_channel_time", "channel", "observed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=100)
    sku: str = Field(max_length=SKU_LENGTH)
    source: str = Field(max_length=20)
    buy_box_price: Decimal | None = _money()
    buy_box_seller: str | None = Field(default=None, max_length=100)
    reference_price: Decimal | None = _money()
    offers: list[dict[str, Any]] = _json(list)
    # Fingerprint of the competition (Buy Box and competitors' landed prices): a new snapshot
    # is stored only when it changes, and change detection reads this, not the offers JSON.
    fingerprint: str | None = Field(default=None, max_length=32)
    observed_at: datetime = _time(nullable=False)


class Action(SQLModel, table=True):
    """One intended write (price or stock) and its outcome: the audit log and the outbox."""

    __tablename__ = "action"
    __table_args__ = (
        # Every outbox, status and console query names the channel and the status (open
        # intents, failures, confirmed writes since a time), most the kind too.
        sa.Index("ix_action_channel_status", "channel", "status", "kind", "completed_at"),
        sa.Index("ix_action_sku_time", "sku", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pass_id: str = Field(max_length=40, index=True)
    kind: str = Field(max_length=10)
    channel: str = Field(max_length=100)
    sku: str = Field(max_length=SKU_LENGTH)
    status: str = Field(max_length=20)
    old_price: Decimal | None = _money()
    new_price: Decimal | None = _money()
    currency: str | None = Field(default=None, max_length=3)
    # Bounds sent with a price (marketplace-side min/max are a second, independent guard).
    floor: Decimal | None = _money()
    ceiling: Decimal | None = _money()
    old_quantity: int | None = None
    new_quantity: int | None = None
    strategy: str | None = Field(default=None, max_length=50)
    rule: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=1000)
    trace: list[dict[str, Any]] = _json(list)
    guard_verdicts: list[dict[str, Any]] = _json(list)
    # Explain on demand (migration 0015): a price decision's compact inputs and the digest of
    # the pricing config it ran under; ``explain`` re-derives ``trace`` from them (stored empty).
    inputs: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON, nullable=True))
    config: str | None = Field(default=None, max_length=16)
    idempotency_key: str = Field(max_length=80, sa_column_kwargs={"unique": True}, nullable=False)
    attempts: int = 0
    response_code: str | None = Field(default=None, max_length=100)
    response_message: str | None = Field(default=None, max_length=2000)
    marketplace_ref: str | None = Field(default=None, max_length=200)
    created_at: datetime = _time(nullable=False)
    sent_at: datetime | None = _time()
    completed_at: datetime | None = _time()


class DecisionConfig(SQLModel, table=True):
    """A pricing config (rules, guards, own seller ids) that decisions ran under, by digest."""

    __tablename__ = "decision_config"

    digest: str = Field(max_length=16, primary_key=True)
    config: dict[str, Any] = _json(dict)
    created_at: datetime = _time(nullable=False)


class WebhookEvent(SQLModel, table=True):
    """Durable webhook inbox: stored (deduped) before the sender gets its 2xx."""

    __tablename__ = "webhook_event"
    __table_args__ = (sa.UniqueConstraint("channel", "dedupe_key", name="uq_webhook_dedupe"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=100)
    dedupe_key: str = Field(max_length=200)
    topic: str = Field(max_length=100)
    payload: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    received_at: datetime = _time(nullable=False)
    processed_at: datetime | None = _time(index=True)
    outcome: str | None = Field(default=None, max_length=30)
    error: str | None = Field(default=None, max_length=2000)


class ChannelState(SQLModel, table=True):
    """Operator switches and health per channel; channel ``*`` is the global kill switch."""

    __tablename__ = "channel_state"

    channel: str = Field(primary_key=True, max_length=100)
    paused: bool = False
    paused_reason: str | None = Field(default=None, max_length=500)
    breaker_tripped: bool = False
    breaker_reason: str | None = Field(default=None, max_length=1000)
    # Set by `resume`: the breaker is not evaluated again before this time.
    breaker_rearm_at: datetime | None = _time()
    last_success_at: datetime | None = _time()
    last_error_at: datetime | None = _time()
    last_error: str | None = Field(default=None, max_length=2000)
    # The reprice pass still recording its decisions here: its price intents are not sent until
    # the breaker has judged the whole pass (one row to update instead of every intent).
    open_pass: str | None = Field(default=None, max_length=40)
    # When the channel's last complete orders poll started: the next one starts there (minus
    # an overlap), whatever webhooks brought meanwhile, so orders missed during an outage are
    # still listed.
    orders_polled_at: datetime | None = _time()
    # Whether the channel's connector works (ChannelHealth; NULL: never opened yet), and since
    # when it has been in that health. Paused and breaker_tripped come from the switches above.
    health: str | None = Field(default=None, max_length=20)
    health_since: datetime | None = _time()
    # Since when the switches above have been set (status shows it), NULL while they are not.
    paused_at: datetime | None = _time()
    breaker_tripped_at: datetime | None = _time()
    updated_at: datetime = _time(nullable=False)


class RevisionBudget(SQLModel, table=True):
    """Daily counters of a marketplace's per-day limits, shared by every run and replica: eBay
    revisions per listing (``listing_key``: listingId or ``sku:…``) and calls per API family
    (``call:<family>``), per eBay day (US Pacific). Spent with one atomic upsert."""

    __tablename__ = "revision_budget"

    channel: str = Field(primary_key=True, max_length=100)
    listing_key: str = Field(primary_key=True, max_length=200)
    day: date = Field(primary_key=True)
    revisions: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))


ALL_CHANNELS = "*"


class MarketplaceFeed(SQLModel, table=True):
    """A bulk feed a channel created (Amazon createFeed, Walmart POST /v3/feeds), recorded the
    moment its id came back: a restart resumes it instead of creating it again."""

    __tablename__ = "marketplace_feed"
    __table_args__ = (sa.UniqueConstraint("channel", "feed_id", name="uq_marketplace_feed"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=100)
    feed_id: str = Field(max_length=200)
    document_id: str | None = Field(default=None, max_length=200)
    kind: str = Field(max_length=20)  # price | stock
    # SUBMITTED until the marketplace's final status (DONE, FATAL, CANCELLED; PROCESSED, ERROR).
    status: str = Field(max_length=20)
    created_at: datetime = _time(nullable=False)
    finished_at: datetime | None = _time()


class MarketplaceFeedItem(SQLModel, table=True):
    """One update a feed carries, at its position in the feed (Amazon's messageId - 1,
    Walmart's item index): its action's idempotency key and SKU, and whether the ended feed
    did not apply it (its next push is then a new write)."""

    __tablename__ = "marketplace_feed_item"

    feed: int = Field(foreign_key="marketplace_feed.id", primary_key=True)
    position: int = Field(primary_key=True)
    idempotency_key: str = Field(max_length=80, index=True)
    sku: str = Field(max_length=SKU_LENGTH)
    unapplied: bool = False


class PassSuccess(SQLModel, table=True):
    """When each pass last succeeded on each channel (``repricerd status``, metrics)."""

    __tablename__ = "pass_success"

    channel: str = Field(primary_key=True, max_length=100)
    pass_name: str = Field(primary_key=True, max_length=20)
    last_success_at: datetime = _time(nullable=False)


class AlertRecord(SQLModel, table=True):
    """An alert raised (and maybe resolved), so a restart neither re-sends nor forgets it.

    ``key`` names the condition (``breaker_tripped:amazon-us``); a row with ``resolved_at`` NULL
    is active. ``notified_at`` / ``resolved_notified_at`` stay NULL until the webhook took the
    notification, so an unreachable receiver is retried at the next evaluation.
    """

    __tablename__ = "alert"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, index=True)
    kind: str = Field(max_length=40)
    severity: str = Field(max_length=10)
    channel: str | None = Field(default=None, max_length=100)
    summary: str = Field(max_length=1000)
    details: dict[str, Any] = _json(dict)
    raised_at: datetime = _time(nullable=False)
    resolved_at: datetime | None = _time(index=True)
    notified_at: datetime | None = _time()
    resolved_notified_at: datetime | None = _time()


MERCHANT_POOL = "merchant"


class InventoryDay(SQLModel, table=True):
    """One SKU's day in one stock pool, written only for days with activity (a sale, a receipt
    or a change of on hand): a day without a row kept the previous row's ``on_hand``.

    ``pool`` is ``merchant`` (the ledger) or the name of a channel whose marketplace holds the
    units (FBA, WFS). Narrow on purpose (integers, no row id on SQLite): 100,000 SKUs × 2 years
    must stay small.
    """

    __tablename__ = "inventory_day"
    __table_args__ = {"sqlite_with_rowid": False}

    product_id: int = Field(primary_key=True)
    pool: str = Field(primary_key=True, max_length=100)
    day: date = Field(primary_key=True)
    sold: int = 0
    received: int = 0
    on_hand: int = 0
    inbound: int | None = None


class InventoryRun(SQLModel, table=True):
    """The inventory pass's progress: the last day aggregated, the newest FBA ledger read (its
    rows' ``read_at``: rows read after it are new to the pass), and its last complete run."""

    __tablename__ = "inventory_run"

    id: int = Field(default=1, primary_key=True)
    aggregated_through: date | None = None
    ledger_read_at: datetime | None = _time()
    finished_at: datetime | None = _time()
    skus: int = 0
    seconds: float = 0.0


class RestockRow(SQLModel, table=True):
    """The restock plan of one SKU as the inventory pass last computed it (read by the CLI,
    the console and the restock alerts); ``days_of_supply`` is also the last cover the next run
    compares with for threshold crossings."""

    __tablename__ = "restock"

    sku: str = Field(primary_key=True, max_length=SKU_LENGTH)
    supplier: str | None = Field(default=None, max_length=100)
    on_hand: int = 0
    on_hand_pools: dict[str, int] = _json(dict)
    inbound: int = 0
    daily_demand: float = 0.0
    sigma: float = 0.0
    demand_class: int = 0
    days_of_supply: Decimal | None = _money()
    lead_time_days: int = 0
    safety_stock: int = 0
    reorder_point: int = 0
    order_quantity: int = 0
    order_by: date | None = None
    order_value: Decimal | None = _money()
    forecast_start: date
    computed_at: datetime = _time(nullable=False)


class InventoryHealthRow(SQLModel, table=True):
    """Inventory health of one SKU in one pool as the inventory pass last computed it."""

    __tablename__ = "inventory_health"

    sku: str = Field(primary_key=True, max_length=SKU_LENGTH)
    pool: str = Field(primary_key=True, max_length=100)
    on_hand: int = 0
    age_0_90: int = 0
    age_91_180: int = 0
    age_181_270: int = 0
    age_271_365: int = 0
    age_365_plus: int = 0
    excess_units: int = 0
    units_sold_90d: int = 0
    sell_through: Decimal | None = _money()
    stranded_units: int = 0
    # Storage fee + aged surcharge for this month and the next two (None: no volume known).
    storage_fee_3m: Decimal | None = _money()
    fee_months: list[dict[str, Any]] = _json(list)
    computed_at: datetime = _time(nullable=False)


class Replica(SQLModel, table=True):
    """One running daemon process (several share a PostgreSQL): its heartbeat says it is alive."""

    __tablename__ = "replica"

    id: str = Field(primary_key=True, max_length=64)
    host: str = Field(max_length=255)
    pid: int
    started_at: datetime = _time(nullable=False)
    heartbeat_at: datetime = _time(nullable=False, index=True)


class ChannelLease(SQLModel, table=True):
    """Which replica owns a channel (one marketplace account) and under which epoch.

    The epoch grows by one at every acquisition; work for a channel is fenced on
    (holder, epoch) and an unexpired lease, so a replica that lost its lease cannot claim or
    complete anything even if it does not know yet (``daemon.leases.fence``).
    """

    __tablename__ = "channel_lease"

    channel: str = Field(primary_key=True, max_length=100)
    holder: str | None = Field(default=None, max_length=64)
    epoch: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    acquired_at: datetime | None = _time()
    renewed_at: datetime | None = _time()
    expires_at: datetime = _time(nullable=False)


class OperatorAction(SQLModel, table=True):
    """What an operator did from the console (login, pause, resume, a pass run, a breaker
    released): who, when, on which channel, with what detail. Append-only."""

    __tablename__ = "operator_action"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _time(nullable=False, index=True)
    actor: str = Field(max_length=200)  # "console@127.0.0.1"
    action: str = Field(max_length=40)  # login | login_failed | logout | pause | resume | ...
    channel: str | None = Field(default=None, max_length=100)
    detail: str = Field(default="", max_length=2000)


class FbaLedgerEvent(SQLModel, table=True):
    """One row of Amazon's Inventory Ledger (``GET_LEDGER_DETAIL_VIEW_DATA``), stored once: the
    report has no row id, so its natural key is unique and a re-read adds nothing (it only
    refreshes Amazon's reconciled / unreconciled counts)."""

    __tablename__ = "fba_ledger_event"
    __table_args__ = (
        sa.UniqueConstraint(
            "channel",
            "occurred_at",
            "fnsku",
            "event_type",
            "reference_id",
            "quantity",
            "fulfillment_center",
            "reason",
            "disposition",
            name="uq_fba_ledger_event",
        ),
        # The inventory pass reads one chunk of SKUs of one channel's ledger at a time.
        sa.Index("ix_fba_ledger_event_channel_msku_day", "channel", "msku", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=100)
    day: date = Field(index=True)
    occurred_at: datetime = _time(nullable=False)
    fnsku: str = Field(max_length=40, index=True)
    asin: str = Field(max_length=40)
    msku: str = Field(max_length=SKU_LENGTH)
    title: str = Field(max_length=500)
    event_type: str = Field(max_length=40)
    reference_id: str = Field(max_length=100)
    quantity: int
    fulfillment_center: str = Field(max_length=20)
    disposition: str = Field(max_length=40)
    reason: str = Field(max_length=10)
    country: str = Field(max_length=10)
    reconciled_quantity: int | None = None
    unreconciled_quantity: int | None = None
    read_at: datetime = _time(nullable=False)


class FbaReimbursement(SQLModel, table=True):
    """One row of Amazon's FBA reimbursements report, unique by reimbursement id and FNSKU."""

    __tablename__ = "fba_reimbursement"
    __table_args__ = (
        # A reimbursement may hold several line items: one per FNSKU, order and reason (a
        # reversal may carry the id of what it reverses).
        sa.UniqueConstraint(
            "channel",
            "reimbursement_id",
            "fnsku",
            "amazon_order_id",
            "reason",
            name="uq_fba_reimbursement",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=100)
    approved_at: datetime = _time(nullable=False)
    reimbursement_id: str = Field(max_length=40)
    case_id: str = Field(max_length=40)
    amazon_order_id: str = Field(max_length=40)
    reason: str = Field(max_length=60)
    sku: str = Field(max_length=SKU_LENGTH)
    fnsku: str = Field(max_length=40, index=True)
    asin: str = Field(max_length=40)
    product_name: str = Field(max_length=500)
    condition: str = Field(max_length=40)
    currency: str = Field(max_length=3)
    amount_per_unit: Decimal | None = _money()
    amount_total: Decimal = _money(nullable=False)
    quantity_cash: int
    quantity_inventory: int
    quantity_total: int
    original_reimbursement_id: str = Field(max_length=40)
    original_reimbursement_type: str = Field(max_length=60)
    read_at: datetime = _time(nullable=False)


class FbaInventory(SQLModel, table=True):
    """The latest unsuppressed Manage FBA Inventory row of each SKU (a snapshot, replaced)."""

    __tablename__ = "fba_inventory"

    channel: str = Field(primary_key=True, max_length=100)
    sku: str = Field(primary_key=True, max_length=SKU_LENGTH)
    fnsku: str = Field(max_length=40)
    asin: str = Field(max_length=40)
    product_name: str = Field(max_length=500)
    condition: str = Field(max_length=40)
    your_price: Decimal | None = _money()
    mfn_listing_exists: bool
    mfn_fulfillable: int | None = None
    afn_listing_exists: bool
    afn_warehouse: int
    afn_fulfillable: int
    afn_unsellable: int
    afn_reserved: int
    afn_total: int
    per_unit_volume: Decimal | None = _money()
    afn_inbound_working: int
    afn_inbound_shipped: int
    afn_inbound_receiving: int
    afn_researching: int
    afn_reserved_future_supply: int
    afn_future_supply_buyable: int
    read_at: datetime = _time(nullable=False)
