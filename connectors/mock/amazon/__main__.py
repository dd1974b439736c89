"""Run the mock SP-API standalone: ``python -m connectors.mock.amazon --catalog FILE``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

from connectors.mock.amazon.app import start
from connectors.mock.amazon.state import AmazonMockState


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m connectors.mock.amazon", description=__doc__)
    parser.add_argument("--catalog", type=Path, required=True, help="catalog CSV to seed from")
    parser.add_argument("--channel", default="amazon", help="catalog id:<channel> column")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--competitors", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seller-id", default="A3DEMOSELLER")
    parser.add_argument("--webhook-url", default=None, help="where notifications are pushed")
    parser.add_argument("--notify-interval", type=float, default=None, help="seconds")
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument(
        "--public-url",
        default=None,
        help="base of presigned document URLs (default: bound address)",
    )
    parser.add_argument(
        "--feed-processing", type=float, default=2.0, help="seconds from createFeed to DONE"
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    state = AmazonMockState.from_catalog(
        args.catalog,
        channel=args.channel,
        competitors=args.competitors,
        seed=args.seed,
        seller_id=args.seller_id,
        webhook_url=args.webhook_url,
        notify_interval_s=args.notify_interval,
        enforce_rate_limits=not args.no_rate_limits,
        feed_processing_s=args.feed_processing,
        public_url=args.public_url,
    )
    runner, base_url = await start(state, args.host, args.port)
    print(
        f"mock SP-API listening on {base_url} ({len(state.market.listings)} listings)", flush=True
    )
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
