"""Run every benchmark and print its figures (``make bench`` / ``python -m bench``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
from pathlib import Path

from bench import (
    amazon_push,
    buy_box_pass,
    console,
    ebay_push,
    forecast,
    order_latency,
    reprice_pass,
    shopify_push,
    walmart_push,
    webhook_ingest,
)

BENCHES = {
    "reprice_pass": reprice_pass.main,
    "buy_box_pass": buy_box_pass.main,
    # ~90 s: paced by the cost bucket on the real clock; --listings below 10,000 shortens it.
    "shopify_push": shopify_push.main,
    "amazon_push": amazon_push.main,
    "webhook_ingest": webhook_ingest.main,  # ~25 s: a real daemon and a load process
    "order_latency": order_latency.main,  # ~30 s
    "ebay_push": ebay_push.main,  # at most 10,000 listings whatever --listings says
    "walmart_push": walmart_push.main,
    # ~3 min: generates 30 days of history for the listings, then times the console's pages.
    "console": console.main,
    # ~1 min: accuracy on 8,000 synthetic series, then 10,000 and --listings SKUs timed.
    "forecast": forecast.main,
}


def main() -> int:
    """Run the selected benchmarks and write bench/out/latest.json."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", default=list(BENCHES), help=f"any of {list(BENCHES)}")
    parser.add_argument("--listings", type=int, default=100_000)
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s): {unknown}")
    results = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
        },
    }
    for name in args.names:
        results[name] = asyncio.run(BENCHES[name](listings=args.listings))
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
