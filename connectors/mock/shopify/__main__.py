"""Run one mock Shopify store standalone: ``python -m connectors.mock.shopify --catalog FILE``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from pathlib import Path

import structlog
from pydantic import SecretStr

from connectors.mock.shopify.app import start
from connectors.mock.shopify.state import ShopifyMockState

log = structlog.get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m connectors.mock.shopify")
    parser.add_argument("--catalog", type=Path, required=True, help="catalog CSV (id:<channel>)")
    parser.add_argument("--channel", default="shop-demo", help="catalog column suffix")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--webhook-url", default=None, help="where webhooks are POSTed")
    parser.add_argument("--shopper-rate", type=float, default=0.0, help="orders per minute")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--token-ttl", type=int, default=86399, help="life of client-credentials tokens (s)"
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    # Secrets come from the environment (same names the demo config references), never argv.
    state = ShopifyMockState.from_catalog(
        args.catalog,
        channel=args.channel,
        seed=args.seed,
        access_token=SecretStr(os.environ.get("SHOPIFY_MOCK_ACCESS_TOKEN", "shpat_mock_token")),
        webhook_secret=SecretStr(
            os.environ.get("SHOPIFY_MOCK_WEBHOOK_SECRET", "mock_webhook_secret")
        ),
        # A Dev Dashboard app's credentials (client-credentials grant), when both are set.
        client_id=os.environ.get("SHOPIFY_MOCK_CLIENT_ID") or None,
        client_secret=_optional_secret("SHOPIFY_MOCK_CLIENT_SECRET"),
        token_ttl_s=args.token_ttl,
        webhook_url=args.webhook_url,
        shopper_orders_per_min=args.shopper_rate,
    )
    runner, base_url = await start(state, args.host, args.port)
    log.info("mock_shopify.listening", base_url=base_url, variants=len(state.variants))
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _optional_secret(name: str) -> SecretStr | None:
    value = os.environ.get(name)
    return SecretStr(value) if value else None


def main() -> None:
    """Parse arguments and serve until interrupted."""
    args = _parser().parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
