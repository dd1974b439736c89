"""Run the mock Walmart API standalone: ``python -m connectors.mock.walmart --catalog FILE``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from pathlib import Path

import structlog

from connectors.mock.walmart.app import start
from connectors.mock.walmart.state import WalmartMockState

log = structlog.get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m connectors.mock.walmart", description=__doc__)
    parser.add_argument("--catalog", type=Path, required=True, help="catalog CSV to seed from")
    parser.add_argument("--channel", default="walmart", help="catalog id:<channel> column")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8111)
    parser.add_argument("--competitors", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--webhook-url", default=None, help="subscribe every event type here")
    parser.add_argument("--webhook-auth", default="HMAC", choices=("HMAC", "BASIC_AUTH", "NONE"))
    parser.add_argument("--feed-seconds", type=float, default=300.0, help="feed processing time")
    parser.add_argument("--notify-interval", type=float, default=None, help="seconds")
    parser.add_argument("--no-rate-limits", action="store_true")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    # Secrets come from the environment, never argv (defaults are the mock's test values).
    secrets: dict[str, str] = {}
    for env, name in (
        ("WALMART_MOCK_CLIENT_ID", "client_id"),
        ("WALMART_MOCK_CLIENT_SECRET", "client_secret"),
        ("WALMART_MOCK_WEBHOOK_SECRET", "webhook_secret"),
    ):
        if os.environ.get(env):
            secrets[name] = os.environ[env]
    state = WalmartMockState.from_catalog(
        args.catalog,
        channel=args.channel,
        competitors=args.competitors,
        seed=args.seed,
        webhook_url=args.webhook_url,
        webhook_auth=args.webhook_auth,
        feed_processing_s=args.feed_seconds,
        notify_interval_s=args.notify_interval,
        enforce_rate_limits=not args.no_rate_limits,
        **secrets,
    )
    runner, base_url = await start(state, args.host, args.port)
    log.info("walmart_mock.listening", base_url=base_url, listings=len(state.market.listings))
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
