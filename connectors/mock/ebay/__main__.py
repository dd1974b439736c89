"""Run the mock eBay standalone: ``python -m connectors.mock.ebay --catalog FILE``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connectors.mock.ebay.app import start
from connectors.mock.ebay.state import EbayMockState


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m connectors.mock.ebay", description=__doc__)
    parser.add_argument("--catalog", type=Path, required=True, help="catalog CSV to seed from")
    parser.add_argument("--channel", default="ebay-demo", help="catalog id:<channel> column")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8111)
    parser.add_argument("--competitors", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seller", default="repricerd_demo", help="our eBay username")
    parser.add_argument("--notify-url", default=None, help="notification destination endpoint")
    parser.add_argument("--order-interval", type=float, default=None, help="seconds per sale")
    parser.add_argument("--no-rate-limits", action="store_true")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    # Secrets come from the environment, never argv; defaults are the mock's well-known ones.
    secrets: dict[str, Any] = {}
    for env, name in (
        ("EBAY_MOCK_CLIENT_SECRET", "client_secret"),
        ("EBAY_MOCK_REFRESH_TOKEN", "refresh_token"),
        ("EBAY_MOCK_VERIFICATION_TOKEN", "verification_token"),
    ):
        if os.environ.get(env):
            secrets[name] = SecretStr(os.environ[env])
    if os.environ.get("EBAY_MOCK_CLIENT_ID"):
        secrets["client_id"] = os.environ["EBAY_MOCK_CLIENT_ID"]
    state = EbayMockState.from_catalog(
        args.catalog,
        channel=args.channel,
        competitors=args.competitors,
        seed=args.seed,
        seller_username=args.seller,
        notify_url=args.notify_url,
        order_interval_s=args.order_interval,
        enforce_rate_limits=not args.no_rate_limits,
        **secrets,
    )
    runner, base_url = await start(state, args.host, args.port)
    print(f"mock eBay listening on {base_url} ({len(state.market.listings)} listings)")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    """Serve until interrupted."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parser().parse_args()))


if __name__ == "__main__":
    main()
