"""Config model of an Amazon SP-API channel (money on its wire: ``connectors.wire``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.amazon.const import DEFAULT_PATCH_MAX_BATCH, LWA_ENDPOINT, REGION_ENDPOINTS

__all__ = ["AmazonCredentials", "AmazonSettings"]


class AmazonCredentials(BaseModel):
    """LWA app credentials and the seller's refresh token (from the environment, never YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    refresh_token: SecretStr


class AmazonSettings(BaseModel):
    """``kind: amazon``: one seller account on one Amazon marketplace (SP-API)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["amazon"]
    region: Literal["na", "eu", "fe"] = "na"
    endpoint: str = Field(
        default="", pattern=r"^https?://", description="SP-API base URL (default: region host)"
    )
    auth_endpoint: str = Field(
        default=LWA_ENDPOINT, pattern=r"^https?://", description="the LWA token URL, in full"
    )
    marketplace_id: str = Field(min_length=1)
    seller_id: str = Field(min_length=1)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    credentials: AmazonCredentials
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC key of X-Repricerd-Signature set by the SQS forwarder"
    )
    product_type: str = Field(
        default="PRODUCT", min_length=1, description="productType of offer-only patches"
    )
    patch_max_batch: int = Field(
        default=DEFAULT_PATCH_MAX_BATCH,
        ge=0,
        description="updates sent as individual PATCH calls; a larger batch goes as one feed",
    )
    feed_poll_interval_s: float = Field(default=30.0, gt=0)
    feed_timeout_s: float = Field(default=600.0, gt=0)
    request_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("auth_endpoint")
    @classmethod
    def _token_url(cls, value: str) -> str:
        # LWA is its own host: the token is POSTed to exactly this URL, so a bare base URL (a
        # mock's, say) would be a 404 at start-up; say so at config time instead.
        if urlsplit(value).path.rstrip("/") == "":
            raise ValueError(
                "auth_endpoint is the full token URL (e.g. https://api.amazon.com/auth/o2/token),"
                " not a base URL"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_endpoint(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("endpoint"):
            region = data.get("region", "na")
            if region in REGION_ENDPOINTS:
                return {**data, "endpoint": REGION_ENDPOINTS[region]}
        return data

    @property
    def api_base(self) -> str:
        """The endpoint without a trailing slash."""
        return self.endpoint.rstrip("/")
