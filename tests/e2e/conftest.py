"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import pytest

from tests.e2e.amazon_fixtures import CLIENT_SECRET, REFRESH_TOKEN, WEBHOOK_SECRET


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The channel's secrets, as the ${ENV} references of the config expect."""
    monkeypatch.setenv("E2E_AMZ_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_AMZ_REFRESH_TOKEN", REFRESH_TOKEN)
    monkeypatch.setenv("E2E_AMZ_WEBHOOK_SECRET", WEBHOOK_SECRET)
