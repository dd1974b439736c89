"""Config model of an Amazon SP-API channel, and exact JSON for money on the wire.

Listings attributes carry money as a JSON *number*; a ``float`` on the way would turn 19.99 into
19.989999999999998 somewhere, so bodies are written by ``dumps_exact`` (``Decimal`` → the exact
decimal literal) and responses are read by ``loads_exact`` (every JSON number → ``Decimal``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.amazon.const import DEFAULT_PATCH_MAX_BATCH, LWA_ENDPOINT, REGION_ENDPOINTS


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


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON with every number that has a fraction or exponent as an exact ``Decimal``."""
    return json.loads(text, parse_float=Decimal)


def dumps_exact(value: Any) -> bytes:
    """Serialize to compact JSON, writing ``Decimal`` as its exact literal; floats are refused."""
    out: list[str] = []
    _emit(value, out)
    return "".join(out).encode("utf-8")


def _emit(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool | str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send non-finite amount {value}")
        out.append(format(value, "f"))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        raise TypeError("money must be Decimal, not float, on the SP-API wire")
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, got {type(key).__name__}")
            out.append("," if i else "")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _emit(item, out)
        out.append("}")
    elif isinstance(value, Sequence):
        out.append("[")
        for i, item in enumerate(value):
            out.append("," if i else "")
            _emit(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot serialize {type(value).__name__} to JSON")


# ISO 4217 minor units that differ from 2 (the marketplaces' currencies only).
_MINOR_UNITS = {"JPY": 0}


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit (cents for USD, EUR, GBP...; yen for JPY)."""
    return amount.quantize(Decimal(1).scaleb(-_MINOR_UNITS.get(currency, 2)))


def to_decimal(value: Any) -> Decimal | None:
    """A wire amount (JSON number already parsed as Decimal/int, or a decimal string) → Decimal."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal | int | str):
        try:
            result = Decimal(value)
        except ArithmeticError:
            return None
        return result if result.is_finite() else None
    if isinstance(value, float):  # only if a caller parsed without loads_exact
        return Decimal(str(value))
    return None
