"""Config model of a Walmart Marketplace (US) channel, and the money/time helpers of its wire.

Walmart sends and expects money as JSON *numbers* (doubles): bodies are written with
``connectors.wire``'s exact writer (``Decimal`` → its literal, floats refused) and responses are
read with every fractional number as ``Decimal``, so 24.99 never becomes 24.989999999999998.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connectors.walmart.const import (
    DEFAULT_ENDPOINT,
    DEFAULT_SERVICE_NAME,
    DEFAULT_SINGLE_MAX_BATCH,
    TOKEN_PATH,
)
from connectors.wire import loads_exact, quantize, to_decimal

__all__ = ["WalmartSettings", "epoch_ms", "money", "parse_time"]


class WalmartSettings(BaseModel):
    """``kind: walmart``: one seller account on Walmart Marketplace US (client credentials)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["walmart"]
    endpoint: str = Field(default=DEFAULT_ENDPOINT, pattern=r"^https?://")
    auth_endpoint: str = Field(
        default="",
        pattern=r"^(https?://.*)?$",
        description="token URL (default {endpoint}/v3/token)",
    )
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    service_name: str = Field(
        default=DEFAULT_SERVICE_NAME, min_length=1, description="sent as WM_SVC.NAME"
    )
    seller_id: str | None = Field(
        default=None, description="our partnerId: offers carrying it are ours, never competitors"
    )
    currency: Literal["USD"] = "USD"
    ship_node: str | None = Field(
        default=None,
        description="ship node whose quantity we manage (default: the account's default node)",
    )
    inventory_feed_type: Literal["inventory", "MP_INVENTORY"] = Field(
        default="inventory", description="MP_INVENTORY (multi-node, v1.5) needs ship_node"
    )
    price_feed_type: str = Field(
        default="price",
        pattern=r"^[A-Za-z_]+$",
        description="feedType of bulk prices (newer docs: PRICE_AND_PROMOTION)",
    )
    wfs: bool = Field(
        default=True, description="read WFS inventory so WFS items are known marketplace-held"
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC key: WM_SEC.SIGNATURE, or the subscription's clientSecret"
    )
    webhook_auth_header: str = Field(
        default="Authorization", min_length=1, description="the subscription's authHeaderName"
    )
    webhook_basic_user: SecretStr | None = None
    webhook_basic_password: SecretStr | None = None
    webhook_path: str | None = Field(
        default=None,
        pattern=r"^/",
        description="path+query Walmart signs (default /webhooks/<channel name>)",
    )
    webhook_max_age_s: float = Field(default=300.0, gt=0, le=3600)
    single_max_batch: int = Field(
        default=DEFAULT_SINGLE_MAX_BATCH,
        ge=0,
        description="updates sent as single PUTs; a larger batch goes as a feed",
    )
    competitor_insights: bool = Field(
        default=True,
        description="poll the listing-quality insights (one call per SKU) for competitor prices; "
        "off: Buy Box competition from BUY_BOX_CHANGED webhooks only",
    )
    feed_poll_interval_s: float = Field(default=60.0, gt=0)
    feed_timeout_s: float = Field(default=1200.0, gt=0)
    request_timeout_s: float = Field(default=30.0, gt=0, le=300)

    @model_validator(mode="before")
    @classmethod
    def _default_auth_endpoint(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("auth_endpoint"):
            endpoint = str(data.get("endpoint") or DEFAULT_ENDPOINT).rstrip("/")
            return {**data, "auth_endpoint": endpoint + TOKEN_PATH}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> WalmartSettings:
        if self.inventory_feed_type == "MP_INVENTORY" and not self.ship_node:
            raise ValueError("inventory_feed_type MP_INVENTORY needs ship_node")
        if (self.webhook_basic_user is None) != (self.webhook_basic_password is None):
            raise ValueError("webhook_basic_user and webhook_basic_password go together")
        return self

    @property
    def api_base(self) -> str:
        """The endpoint without a trailing slash."""
        return self.endpoint.rstrip("/")


def money(value: Any, currency: str = "USD") -> Decimal | None:
    """A wire amount (number, numeric string or ``{"amount": ...}``) → cents, or None."""
    if isinstance(value, Mapping):
        value = value.get("amount")
    amount = to_decimal(value)
    return quantize(amount, currency) if amount is not None else None


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 (``2025-07-03T14:12:42.913Z``) or epoch milliseconds → aware UTC."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return epoch_ms(value)
    if not isinstance(value, str) or not value:
        return None
    if value.isdigit():
        return epoch_ms(int(value))
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def epoch_ms(value: int | Decimal) -> datetime | None:
    """Epoch milliseconds → aware UTC (None when out of range)."""
    try:
        return datetime.fromtimestamp(float(value) / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def error_details(content: bytes, status: int) -> tuple[str, str]:
    """Walmart's first error as (code, "description: info").

    Bodies come as ``{"errors": [...]}`` (GatewayError), or, from older endpoints, as
    ``{"errors": {"error": [...]}}`` / ``{"errors": {"error": {...}}}`` (guide §2.7).
    """
    try:
        body = loads_exact(content) if content else None
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if isinstance(errors, Mapping):
        errors = errors.get("error")
    first = errors[0] if isinstance(errors, list) and errors else errors
    if not isinstance(first, Mapping) or not first.get("code"):
        return f"HTTP{status}", "no Walmart error body"
    parts = [str(first[k]) for k in ("description", "info") if first.get(k)]
    return str(first["code"]), ": ".join(parts) or str(first.get("field") or "")
