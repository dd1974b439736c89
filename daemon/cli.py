"""The ``repricerd`` command line. Exit codes: 0 ok, 1 invalid input or config, 2 usage."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from daemon import __version__
from daemon.clock import SystemClock
from daemon.config import LoadedConfig, config_path, load_config
from daemon.errors import ConfigError
from daemon.logging import configure_logging

T = TypeVar("T")
CONFIG_HELP = "config file (default: $REPRICERD_CONFIG or config/repricerd.yaml)"


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _print_problems(err: ConfigError) -> None:
    for line in [str(p) for p in err.problems] or [str(err)]:
        click.echo(f"error: {line}", err=True)


def _load(config: str | None, *, log_level: str = "warning") -> LoadedConfig:
    """Load the config or print every problem and exit 1."""
    path = config_path(config)
    try:
        loaded = load_config(path)
    except ConfigError as err:
        _print_problems(err)
        click.echo(f"{path}: {len(err.problems) or 1} problem(s)", err=True)
        sys.exit(1)
    redactor = configure_logging(level=os.environ.get("REPRICERD_LOG_LEVEL", log_level))
    redactor.set_known(loaded.secrets)
    return loaded


def _database(loaded: LoadedConfig) -> Any:
    from daemon.db.engine import Database

    return Database(loaded.settings.database)


config_option = click.option(
    "-c", "--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="repricerd")
def main() -> None:
    """repricerd keeps prices and stock right across marketplaces."""


@main.command()
@config_option
@click.option("--once", is_flag=True, help="run reconcile, reprice and stock sync once, then exit")
@click.option(
    "--mock-marketplaces",
    "with_mocks",
    is_flag=True,
    help="also serve, in this process, the mock marketplaces the config's loopback endpoints "
    "point at (the demo)",
)
def run(config: str | None, once: bool, with_mocks: bool) -> None:
    """Run the daemon (scheduler + HTTP server)."""
    from daemon.app import run_forever, run_once
    from daemon.mocks import beside

    path = config_path(config)
    try:
        loaded = load_config(path)
    except ConfigError as err:
        _print_problems(err)
        sys.exit(1)
    redactor = configure_logging(level=os.environ.get("REPRICERD_LOG_LEVEL", "info"))
    redactor.set_known(loaded.secrets)
    try:

        def work() -> Coroutine[Any, Any, int]:
            return run_once(loaded, redactor) if once else run_forever(loaded, redactor)

        code = _run(beside(loaded, work) if with_mocks else work())
    except ConfigError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    if not once:
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown of every imported module: the daemon has closed
    and flushed everything, and that teardown takes seconds on a busy host, eating into the
    grace period between SIGTERM and SIGKILL."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@main.command(name="mock-marketplaces")
@config_option
@click.option(
    "--port-base",
    type=click.IntRange(1, 65000),
    default=None,
    help="serve amazon on N+1, walmart N+2, ebay N+3, shopify N+4 (default: each channel's "
    "endpoint port)",
)
def mock_marketplaces(config: str | None, port_base: int | None) -> None:
    """Run the mock marketplaces the config points at, standalone, until interrupted."""
    from daemon.mocks import serve

    loaded = _load(config, log_level="info")
    try:
        sys.exit(_run(serve(loaded, port_base)))
    except ConfigError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    except OSError as err:
        click.echo(f"error: cannot listen: {err}", err=True)
        sys.exit(1)


@main.command()
@config_option
def check(config: str | None) -> None:
    """Validate the config and strategies; print every error with file:line."""
    loaded = _load(config)
    settings = loaded.settings
    click.echo(
        f"{loaded.path}: ok — {len(settings.channels)} channel(s), "
        f"{len(settings.pricing.rules)} pricing rule(s)"
    )


@main.command(name="import")
@config_option
@click.argument("catalog", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(config: str | None, catalog: Path) -> None:
    """Load or update products from a CSV: sku, cost, min/max price, stock, channel ids."""
    from rich.progress import Progress

    from daemon.catalog import import_catalog
    from daemon.db.migrate import upgrade

    loaded = _load(config)

    async def go() -> Any:
        db = _database(loaded)
        try:
            await upgrade(db)
            with Progress(console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task(f"importing {catalog.name}", total=None)
                return await import_catalog(
                    db,
                    catalog,
                    clock=SystemClock(),
                    default_currency=loaded.settings.catalog.currency,
                    known_channels=set(loaded.settings.channels),
                    progress=lambda done, total: progress.update(task, completed=done, total=total),
                )
        finally:
            await db.dispose()

    try:
        report = _run(go())
    except ConfigError as err:
        _print_problems(err)
        click.echo("nothing was imported", err=True)
        sys.exit(1)
    click.echo(
        f"{catalog}: {report.rows} rows — {report.products_created} products created, "
        f"{report.products_updated} updated, {report.listings} listings, "
        f"{report.stock_counts} stock counts"
    )


@main.command()
@config_option
@click.option("--sku", "sku_glob", help="SKU glob, e.g. 'MUG-*'")
@click.option("--since", help="how far back, e.g. 30m, 24h, 7d")
@click.option("--kind", type=click.Choice(["price", "stock"]))
@click.option("--channel")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
def history(
    config: str | None,
    sku_glob: str | None,
    since: str | None,
    kind: str | None,
    channel: str | None,
    limit: int,
    fmt: str,
) -> None:
    """Show the action log, newest first."""
    from daemon.history import fetch_history, render_history
    from strategies.base import parse_duration

    try:
        window = parse_duration(since) if since else None
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--since") from err
    loaded = _load(config)

    async def go() -> list[dict[str, Any]]:
        db = _database(loaded)
        try:
            return await fetch_history(
                db,
                now=SystemClock().now(),
                sku_glob=sku_glob,
                since=window,
                kind=kind,
                channel=channel,
                limit=limit,
            )
        finally:
            await db.dispose()

    render_history(_run(go()), Console(), fmt)  # type: ignore[arg-type]


@main.command()
@config_option
@click.argument("sku")
@click.option("--channel")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def explain(config: str | None, sku: str, channel: str | None, fmt: str) -> None:
    """Show the latest decisions for a SKU with their full trace."""
    from daemon.history import fetch_explain, fetch_listed_channels, render_explain

    loaded = _load(config)

    async def go() -> tuple[list[dict[str, Any]], list[str]]:
        db = _database(loaded)
        try:
            rows = await fetch_explain(db, sku, channel=channel)
            return rows, await fetch_listed_channels(db, sku, channel=channel)
        finally:
            await db.dispose()

    rows, listed_on = _run(go())
    render_explain(rows, Console(), fmt, sku=sku, listed_on=listed_on)  # type: ignore[arg-type]


@main.command()
@config_option
@click.option("--channel", help="only this channel (default: every channel)")
@click.option("--reason", default="paused by operator", show_default=True)
def pause(config: str | None, channel: str | None, reason: str) -> None:
    """Kill switch: stop all writes now (queued intents stay queued)."""
    _switch(config, channel, pause=True, reason=reason)
    click.echo(
        f"paused {'channel ' + channel if channel else 'all channels'}: "
        "writes stop at the next batch"
    )


@main.command()
@config_option
@click.option("--channel", help="only this channel (default: every channel)")
def resume(config: str | None, channel: str | None) -> None:
    """Allow writes again; also clears a tripped circuit breaker."""
    _switch(config, channel, pause=False, reason="")
    click.echo(f"resumed {'channel ' + channel if channel else 'all channels'}")


def _switch(config: str | None, channel: str | None, *, pause: bool, reason: str) -> None:
    from daemon import controls
    from daemon.db.migrate import upgrade

    loaded = _load(config)
    if channel is not None and channel not in loaded.settings.channels:
        click.echo(
            f"error: unknown channel {channel!r}; "
            f"configured: {', '.join(loaded.settings.channels)}",
            err=True,
        )
        sys.exit(1)

    async def go() -> None:
        db = _database(loaded)
        try:
            await upgrade(db)
            if pause:
                await controls.pause(db, SystemClock(), channel=channel, reason=reason)
            else:
                rearm = timedelta(seconds=loaded.settings.pricing.guards.breaker.rearm_after_s)
                await controls.resume(db, SystemClock(), channel=channel, rearm_after=rearm)
        finally:
            await db.dispose()

    _run(go())


@main.command()
@config_option
@click.option("--channel", multiple=True, help="channel(s) to plan (default: all)")
@click.option("--sku", "sku_glob", help="SKU glob, e.g. 'MUG-*'")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
def simulate(config: str | None, channel: tuple[str, ...], sku_glob: str | None, fmt: str) -> None:
    """Plan one repricing pass from stored data: proposed changes and guard verdicts.

    Writes nothing to marketplaces and records nothing.
    """
    import httpx

    from connectors import CHANNELS
    from connectors.base import ChannelDeps
    from daemon.db.migrate import upgrade
    from daemon.simulate import render_plan
    from daemon.simulate import simulate as plan_pass

    loaded = _load(config)
    settings = loaded.settings
    unknown = [c for c in channel if c not in settings.channels]
    if unknown:
        click.echo(f"error: unknown channel(s): {', '.join(unknown)}", err=True)
        sys.exit(1)

    async def go() -> Any:
        db = _database(loaded)
        async with httpx.AsyncClient() as http:
            deps = ChannelDeps(http=http, clock=SystemClock())
            # Built, never opened: only their seller ids are read (our offers are not rivals).
            own = frozenset(
                ch.capabilities.own_seller_id
                for name, cfg in settings.channels.items()
                if (ch := CHANNELS[cfg.kind](name, cfg, deps)).capabilities.own_seller_id
            )
        try:
            await upgrade(db)
            return await plan_pass(
                db,
                settings,
                channels=channel or tuple(settings.channels),
                sku_glob=sku_glob,
                now=SystemClock().now(),
                own_seller_ids=own,
            )
        finally:
            await db.dispose()

    # A table piped to a file or pager keeps full rows instead of wrapping at 80 columns.
    width = None if sys.stdout.isatty() else (200 if fmt == "table" else 10_000)
    render_plan(_run(go()), Console(width=width), fmt)  # type: ignore[arg-type]


@main.command()
@config_option
@click.option("--channel", multiple=True, help="channel(s) to sync (default: all)")
@click.option("--sku", "sku_glob", help="SKU glob")
def sync(config: str | None, channel: tuple[str, ...], sku_glob: str | None) -> None:
    """Run one stock sync pass now and exit."""
    from daemon.app import Passes, start_runtime

    loaded = _load(config, log_level="info")
    unknown = [c for c in channel if c not in loaded.settings.channels]
    if unknown:
        click.echo(f"error: unknown channel(s): {', '.join(unknown)}", err=True)
        sys.exit(1)

    async def go() -> int:
        from daemon.logging import SecretRedactor

        rt = await start_runtime(loaded, SecretRedactor(loaded.secrets), SystemClock())
        try:
            passes = Passes(rt)
            await passes.run("stock_sync", channel, sku_glob)
            return 1 if passes.failures else 0
        finally:
            await rt.close()

    sys.exit(_run(go()))


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@config_option
def upgrade(config: str | None) -> None:
    """Apply migrations up to the newest revision."""
    from daemon.db.engine import redacted_url
    from daemon.db.migrate import upgrade as do_upgrade

    loaded = _load(config)

    async def go() -> tuple[str | None, str | None]:
        database = _database(loaded)
        try:
            return await do_upgrade(database)
        finally:
            await database.dispose()

    before, after = _run(go())
    click.echo(f"{redacted_url(loaded.settings.database)}: {before or 'empty'} → {after}")
