"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Money: exact NUMERIC on PostgreSQL, canonical decimal text on SQLite (see daemon.db.types.Money).
MONEY = sa.String(40).with_variant(sa.Numeric(18, 4), "postgresql")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pass_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("old_price", MONEY, nullable=True),
        sa.Column("new_price", MONEY, nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("floor", MONEY, nullable=True),
        sa.Column("ceiling", MONEY, nullable=True),
        sa.Column("old_quantity", sa.Integer(), nullable=True),
        sa.Column("new_quantity", sa.Integer(), nullable=True),
        sa.Column("strategy", sa.String(length=50), nullable=True),
        sa.Column("rule", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.Column("guard_verdicts", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("response_code", sa.String(length=100), nullable=True),
        sa.Column("response_message", sa.String(length=2000), nullable=True),
        sa.Column("marketplace_ref", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.create_index("ix_action_open", ["channel", "kind", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_action_pass_id"), ["pass_id"], unique=False)
        batch_op.create_index("ix_action_sku_time", ["sku", "created_at"], unique=False)

    op.create_table(
        "channel_state",
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.String(length=500), nullable=True),
        sa.Column("breaker_tripped", sa.Boolean(), nullable=False),
        sa.Column("breaker_reason", sa.String(length=1000), nullable=True),
        sa.Column("breaker_rearm_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel"),
    )
    op.create_table(
        "listing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("external_ids", sa.JSON(), nullable=False),
        sa.Column("fulfillment", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price", MONEY, nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("price_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_decision", sa.String(length=64), nullable=True),
        sa.Column("discovered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "sku", name="uq_listing_channel_sku"),
    )
    with op.batch_alter_table("listing", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_listing_sku"), ["sku"], unique=False)

    op.create_table(
        "offer_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("buy_box_price", MONEY, nullable=True),
        sa.Column("buy_box_seller", sa.String(length=100), nullable=True),
        sa.Column("reference_price", MONEY, nullable=True),
        sa.Column("offers", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("offer_snapshot", schema=None) as batch_op:
        batch_op.create_index(
            "ix_offer_snapshot_listing_time", ["channel", "sku", "observed_at"], unique=False
        )

    op.create_table(
        "product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("cost", MONEY, nullable=True),
        sa.Column("fees", MONEY, nullable=True),
        sa.Column("min_price", MONEY, nullable=True),
        sa.Column("max_price", MONEY, nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("kit_components", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sku"),
    )
    op.create_table(
        "stock_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("counted", sa.Integer(), nullable=True),
        sa.Column("external_ref", sa.String(length=300), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_ref"),
    )
    with op.batch_alter_table("stock_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stock_event_sku"), ["sku"], unique=False)
        batch_op.create_index("ix_stock_event_kind_time", ["kind", "occurred_at"], unique=False)

    op.create_table(
        "webhook_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=30), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "dedupe_key", name="uq_webhook_dedupe"),
    )
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_event_processed_at"), ["processed_at"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_event_processed_at"))

    op.drop_table("webhook_event")
    with op.batch_alter_table("stock_event", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_event_kind_time")
        batch_op.drop_index(batch_op.f("ix_stock_event_sku"))

    op.drop_table("stock_event")
    op.drop_table("product")
    with op.batch_alter_table("offer_snapshot", schema=None) as batch_op:
        batch_op.drop_index("ix_offer_snapshot_listing_time")

    op.drop_table("offer_snapshot")
    with op.batch_alter_table("listing", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_listing_sku"))

    op.drop_table("listing")
    op.drop_table("channel_state")
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.drop_index("ix_action_sku_time")
        batch_op.drop_index(batch_op.f("ix_action_pass_id"))
        batch_op.drop_index("ix_action_open")

    op.drop_table("action")
