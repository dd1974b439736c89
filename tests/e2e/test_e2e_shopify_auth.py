"""The real daemon against the mock shop as a Dev Dashboard app (client-credentials grant).

Same harness as ``test_e2e_shopify``: the channel has only a client ID and secret, fetches its
token from the mock's ``/admin/oauth/access_token`` and must survive its tokens expiring in the
middle of a run (the mock answers Shopify's 401; the connector fetches one new token and re-sends).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_e2e_shopify import (
    CLIENT_ID,
    PRODUCTS,
    assert_converged,
    daemon_once,
    open_actions,
    shop_env,
)


async def test_tokens_expiring_mid_run_are_replaced_and_every_push_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with shop_env(tmp_path, monkeypatch, client_credentials=True) as env:
        config = env.config.read_text()
        assert f"client_id: {CLIENT_ID}" in config
        assert "access_token" not in config
        assert "webhook_secret" not in config  # the client secret keys the HMAC
        # Every token expires as the first price write and as the stock write arrive.
        env.expire_tokens_before["productVariantsBulkUpdate"] = 1
        env.expire_tokens_before["inventorySetQuantities"] = 1

        assert await daemon_once(env) == 0

        assert +env.expire_tokens_before == {}  # both expiries happened mid-run
        assert_converged(env)
        assert await open_actions(env) == []
        counters = env.state.counters
        # One token at start-up, one after each expiry (concurrent refusals share a grant).
        assert counters.token_grants == 3
        assert counters.unauthorized >= 2
        assert counters.token_refusals == 0
        assert counters.operations["productVariantsBulkUpdate"] == PRODUCTS
        assert counters.operations["inventorySetQuantities"] == 1
        effects = env.effects_per_key()
        assert effects
        assert max(effects.values()) == 1

        # A second run (a new process: a new grant) finds nothing left to write.
        assert await daemon_once(env) == 0
        assert counters.token_grants == 4
        assert counters.operations["inventorySetQuantities"] == 1
