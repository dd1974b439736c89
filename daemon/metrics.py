"""Prometheus metrics, on a registry owned by the running daemon (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """The daemon's metrics: passes, actions, push latency, webhooks and channel status."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.passes = Counter(
            "repricerd_passes_total",
            "Passes run, by pass and outcome",
            ["pass_name", "outcome"],
            registry=self.registry,
        )
        self.pass_seconds = Histogram(
            "repricerd_pass_duration_seconds",
            "Wall time of a pass",
            ["pass_name"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.actions = Counter(
            "repricerd_actions_total",
            "Action rows by channel, kind and status",
            ["channel", "kind", "status"],
            registry=self.registry,
        )
        self.push_seconds = Histogram(
            "repricerd_push_latency_seconds",
            "Marketplace push call latency",
            ["channel", "kind"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "repricerd_webhooks_total",
            "Webhook deliveries by channel and outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )
        # Authentic deliveries the inbox marked invalid (reason: unparsable, sku, quantity,
        # order_id, database): answered 200, never applied, never retried.
        self.webhooks_invalid = Counter(
            "repricerd_webhooks_invalid_total",
            "Stored webhook deliveries marked invalid, by channel and reason",
            ["channel", "reason"],
            registry=self.registry,
        )
        self.unknown_sku_lines = Counter(
            "repricerd_order_lines_unknown_sku_total",
            "Order lines ignored because their SKU is not in the catalogue",
            ["channel"],
            registry=self.registry,
        )
        # The gauges below are set from the status snapshot (daemon.status.publish) at every
        # scrape, so they are right from the first one.
        self.open_intents = Gauge(
            "repricerd_open_intents",
            "Actions planned or sent, not yet completed, per channel",
            ["channel"],
            registry=self.registry,
        )
        self.channel_up = Gauge(
            "repricerd_channel_up",
            "1 if the channel's state is ok (not paused, breaker armed, connector healthy)",
            ["channel"],
            registry=self.registry,
        )
        self.channel_state = Gauge(
            "repricerd_channel_state",
            "1 for the channel's current state (ok, degraded, auth_failed, paused, ...)",
            ["channel", "state"],
            registry=self.registry,
        )
        self.breaker_tripped = Gauge(
            "repricerd_breaker_tripped",
            "1 if the channel's circuit breaker tripped (price writes stopped)",
            ["channel"],
            registry=self.registry,
        )
        self.paused = Gauge(
            "repricerd_paused",
            "1 if writes to the channel are paused (by itself or all channels)",
            ["channel"],
            registry=self.registry,
        )
        self.inbox_backlog = Gauge(
            "repricerd_inbox_backlog",
            "Webhook deliveries stored and not processed yet",
            ["channel"],
            registry=self.registry,
        )
        self.inbox_oldest_seconds = Gauge(
            "repricerd_inbox_oldest_seconds",
            "Age of the oldest unprocessed webhook delivery (0 when the inbox is empty)",
            ["channel"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "repricerd_last_success_timestamp_seconds",
            "Unix time of the pass's last success on the channel",
            ["channel", "pass"],
            registry=self.registry,
        )
        # Several replicas: which process this is, and how many channels it owns.
        self.replica = "single"
        self.leases_held = Gauge(
            "repricerd_leases_held",
            "Channels whose lease this replica holds (several replicas on PostgreSQL)",
            ["replica"],
            registry=self.registry,
        )
        self.channel_owned = Gauge(
            "repricerd_channel_owned",
            "1 if this replica owns the channel's lease, else 0",
            ["replica", "channel"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """Exposition text for ``GET /metrics``."""
        return generate_latest(self.registry)
