"""Config model of the in-memory mock channel (``kind: mock``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class MockSettings(BaseModel):
    """``kind: mock``: an in-memory marketplace for demos and tests (no network)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["mock"]
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    seed_catalog: Path | None = Field(
        default=None,
        description="CSV whose rows with an id:<channel> column are this marketplace's listings",
    )
    competitors: int = Field(default=3, ge=0, le=20, description="competing sellers per listing")
    seed: int = Field(default=0, description="random seed of the simulated market")
    drop_rate: float = Field(default=0.0, ge=0, le=1, description="share of writes silently lost")
    fail_rate: float = Field(default=0.0, ge=0, le=1, description="share of pushes failing (503)")
    accept_writes: bool = Field(
        default=False,
        description="answer ACCEPTED (queued; reconcile verifies it) like Amazon, not CONFIRMED",
    )
    marketplace_held_stock: bool = Field(
        default=False, description="the marketplace owns the stock (like FBA): never written"
    )
    max_batch: int = Field(default=100, ge=1, le=10_000)
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC key of X-Mock-Signature; without it webhooks get 401"
    )
