"""The ``repricerd`` command line. Exit codes: 0 ok, 1 invalid input or config, 2 usage (and
3 from ``status``: a channel is not ok; from ``audit fba``: a report could not be read)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from daemon import __version__
from daemon.config import LoadedConfig, config_path, load_config
from daemon.logging import configure_logging
from domain.clock import SystemClock
from domain.errors import ConfigError

T = TypeVar("T")
CONFIG_HELP = "config file (default: $REPRICERD_CONFIG or config/repricerd.yaml)"


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _print_problems(err: ConfigError) -> None:
    for line in [str(p) for p in err.problems] or [str(err)]:
        click.echo(f"error: {line}", err=True)


def _load(
    config: str | None, *, log_level: str = "warning", resolve_secrets: bool = True
) -> LoadedConfig:
    """Load the config or print every problem and exit 1.

    ``resolve_secrets=False`` for commands that only read the database: they run without the
    channels' secrets in the environment (see ``load_config``).
    """
    path = config_path(config)
    try:
        loaded = load_config(path, resolve_secrets=resolve_secrets)
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


class SchemaNotReady(Exception):
    """The database is not at this version's schema (never migrated, or behind)."""


async def require_schema(db: Any, url: str) -> None:
    """Raise ``SchemaNotReady`` (saying to run ``repricerd db upgrade``) unless the database
    is at the newest migration: a read-only command must not migrate, nor die in a traceback."""
    from daemon.db.engine import redacted_url
    from daemon.db.migrate import current_revision, head_revision

    current, head = await current_revision(db), head_revision()
    if current == head:
        return
    where = redacted_url(url)
    state = "has no repricerd tables" if current is None else f"is at revision {current}"
    raise SchemaNotReady(
        f"the database {where} {state}, this version needs {head}: run `repricerd db upgrade`"
    )


def _read_only(loaded: LoadedConfig, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(db)`` on a database at the current schema, or say how to get there; exit 1."""

    async def go() -> T:
        db = _database(loaded)
        try:
            await require_schema(db, loaded.settings.database)
            return await work(db)
        finally:
            await db.dispose()

    try:
        return _run(go())
    except SchemaNotReady as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)


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
@click.argument("catalog", type=click.Path(dir_okay=False, path_type=Path))
def import_(config: str | None, catalog: Path) -> None:
    """Load or update products from a CSV: sku, cost, min/max price, stock, channel ids."""
    from rich.progress import Progress

    from daemon.catalog import import_catalog
    from daemon.db.migrate import upgrade

    if not catalog.is_file():
        # Invalid input (exit 1), not a usage error (2): the command line itself was right.
        why = "is a directory" if catalog.is_dir() else "no such file"
        click.echo(f"error: {catalog}: {why}; nothing was imported", err=True)
        sys.exit(1)
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
    loaded = _load(config, resolve_secrets=False)

    async def go(db: Any) -> list[dict[str, Any]]:
        return await fetch_history(
            db,
            now=SystemClock().now(),
            sku_glob=sku_glob,
            since=window,
            kind=kind,
            channel=channel,
            limit=limit,
        )

    rows = _read_only(loaded, go)
    render_history(rows, Console(width=_pipe_width(fmt, "table")), fmt)  # type: ignore[arg-type]


def _pipe_width(fmt: str, table: str) -> int | None:
    """The console width: the terminal's on a TTY; off one (a pipe, a file, a pager), wide
    enough that a table keeps every column and machine formats are never wrapped."""
    if sys.stdout.isatty():
        return None
    return 200 if fmt == table else 10_000


@main.command()
@config_option
@click.argument("sku")
@click.option("--channel")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def explain(config: str | None, sku: str, channel: str | None, fmt: str) -> None:
    """Show the latest decisions for a SKU with their full trace."""
    from daemon.history import fetch_explain, fetch_listed_channels, render_explain

    loaded = _load(config, resolve_secrets=False)

    async def go(db: Any) -> tuple[list[dict[str, Any]], list[str]]:
        rows = await fetch_explain(db, sku, channel=channel)
        return rows, await fetch_listed_channels(db, sku, channel=channel)

    rows, listed_on = _read_only(loaded, go)
    if not rows and not listed_on:
        where = f" on channel {channel}" if channel else ""
        click.echo(
            f"error: unknown SKU {sku!r}{where}: no listing and no decision recorded "
            "(check the SKU, or import/discover it first)",
            err=True,
        )
        sys.exit(1)
    console = Console(width=_pipe_width(fmt, "text"))
    render_explain(rows, console, fmt, sku=sku, listed_on=listed_on)  # type: ignore[arg-type]


@main.command()
@config_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def status(config: str | None, fmt: str) -> None:
    """Each channel's state, last successes, inbox and recent write outcomes.

    Reads the database only (daemon running or not; no channel secrets needed). Exit 0 when
    every channel is ok, 3 when one is not.
    """
    from daemon.status import StatusSnapshot, read_status, render_status

    loaded = _load(config, resolve_secrets=False)

    async def go(db: Any) -> StatusSnapshot:
        return await read_status(db, tuple(loaded.settings.channels), SystemClock().now())

    snapshot = _read_only(loaded, go)
    # Piped to a file or pager, the table keeps full rows instead of wrapping at 80 columns.
    width = None if sys.stdout.isatty() else (200 if fmt == "table" else 10_000)
    render_status(snapshot, Console(width=width), fmt)  # type: ignore[arg-type]
    sys.exit(0 if snapshot.ok else 3)


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
    from daemon.simulate import render_plan
    from daemon.simulate import simulate as plan_pass

    loaded = _load(config, resolve_secrets=False)
    settings = loaded.settings
    unknown = [c for c in channel if c not in settings.channels]
    if unknown:
        click.echo(f"error: unknown channel(s): {', '.join(unknown)}", err=True)
        sys.exit(1)

    async def go(db: Any) -> Any:
        return await plan_pass(
            db,
            settings,
            channels=channel or tuple(settings.channels),
            sku_glob=sku_glob,
            now=SystemClock().now(),
            own_seller_ids=await _own_seller_ids(settings),
        )

    plan = _read_only(loaded, go)
    render_plan(plan, Console(width=_pipe_width(fmt, "table")), fmt)  # type: ignore[arg-type]


async def _own_seller_ids(settings: Any) -> frozenset[str]:
    """Our seller ids on every configured channel (our offers are never rivals)."""
    import httpx

    from connectors import CHANNELS
    from connectors.base import ChannelDeps

    async with httpx.AsyncClient() as http:
        deps = ChannelDeps(http=http, clock=SystemClock())
        # Built, never opened: only their seller ids are read.
        return frozenset(
            ch.capabilities.own_seller_id
            for name, cfg in settings.channels.items()
            if (ch := CHANNELS[cfg.kind](name, cfg, deps)).capabilities.own_seller_id
        )


@main.command()
@config_option
@click.option(
    "--candidate",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="the config to try (its `pricing` section is replayed)",
)
@click.option(
    "--baseline",
    default="current",
    show_default=True,
    help="`current` (the -c config) or another config file",
)
@click.option("--since", default="30d", show_default=True, help="how far back, e.g. 7d, 30d")
@click.option("--channel", multiple=True, help="channel(s) to replay (default: all)")
@click.option("--sku", "sku_glob", help="SKU glob, e.g. 'MUG-*'")
@click.option("--step", default="1h", show_default=True, help="time between replayed passes")
@click.option(
    "--elasticity",
    default="-1.5",
    show_default=True,
    help="price elasticity of demand (an assumption: units × (price / recorded) ** e)",
)
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="HTML report")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option(
    "--simulate", is_flag=True, help="no history: run against the mock market's competitor bots"
)
@click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True)
@click.option(
    "-j",
    "--jobs",
    default="auto",
    show_default=True,
    help="processes: 2 replays the candidate beside the baseline; auto is 2 on 2+ cores",
)
def backtest(
    config: str | None,
    candidate: str,
    baseline: str,
    since: str,
    channel: tuple[str, ...],
    sku_glob: str | None,
    step: str,
    elasticity: str,
    report: Path | None,
    fmt: str,
    simulate: bool,
    days: int,
    jobs: str,
) -> None:
    """Replay recorded history through the current pricing and a candidate, side by side.

    Reads the database only; nothing is sent or recorded.
    """
    from decimal import Decimal, InvalidOperation

    from daemon.backtest import BacktestRequest, backtest_channels
    from daemon.backtest_report import render_html, render_summary, summarise
    from daemon.backtest_simulate import simulate_channels
    from strategies.base import parse_duration

    try:
        window, every = parse_duration(since), parse_duration(step)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err
    try:
        slope = Decimal(elasticity)
    except InvalidOperation as err:
        raise click.BadParameter("a number, e.g. -1.5", param_hint="--elasticity") from err
    if not slope.is_finite():
        raise click.BadParameter("a finite number, e.g. -1.5", param_hint="--elasticity")
    processes = _backtest_jobs(jobs)
    if report is not None and not report.parent.is_dir():
        # Said now, not after a replay that may take many minutes.
        raise click.BadParameter(f"no directory {report.parent}", param_hint="--report")
    loaded = _load(config, resolve_secrets=False)
    settings = loaded.settings
    base = settings if baseline == "current" else _load(baseline, resolve_secrets=False).settings
    cand = _load(candidate, resolve_secrets=False).settings
    unknown = [c for c in channel if c not in settings.channels]
    if unknown:
        click.echo(f"error: unknown channel(s): {', '.join(unknown)}", err=True)
        sys.exit(1)
    # Whole hours: the replayed passes fall on round times.
    now = SystemClock().now().replace(minute=0, second=0, microsecond=0)
    err_console = Console(stderr=True)

    def request(own: frozenset[str], start: Any, end: Any) -> BacktestRequest:
        return BacktestRequest(
            channels=channel or tuple(settings.channels),
            baseline=base.pricing,
            candidate=cand.pricing,
            since=start,
            until=end,
            selection=sku_glob,
            step=every,
            elasticity=slope,
            own_seller_ids=own,
        )

    if simulate:
        results = simulate_channels(
            settings,
            request(frozenset(), now - timedelta(days=days), now),
            console=err_console,
        )
    else:

        async def go(db: Any) -> Any:
            own = await _own_seller_ids(settings)
            asked = request(own, now - window, now)
            return await backtest_channels(db, asked, err_console, jobs=processes)

        results = _read_only(loaded, go)
    summary = summarise(results)
    if report is not None:
        report.write_text(
            render_html(results, summary, title="repricerd backtest"), encoding="utf-8"
        )
        err_console.print(f"report written to {report}")
    render_summary(summary, Console(width=_pipe_width(fmt, "table")), fmt)  # type: ignore[arg-type]


def _backtest_jobs(value: str) -> int:
    """``--jobs``: ``auto`` (2 with two cores or more, else 1) or a count of at least 1."""
    if value == "auto":
        return 2 if (os.cpu_count() or 1) >= 2 else 1
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise click.BadParameter("auto or a number of at least 1", param_hint="--jobs")
    return count


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
def inventory() -> None:
    """Restock and inventory health, as the nightly inventory pass last computed them."""


def _inventory_report(config: str | None, fetch: Callable[[Any], Awaitable[Any]]) -> Any:
    """Read a stored report, or say the pass never ran and how to run it (exit 1)."""
    from daemon.inventory_report import NEVER_RUN, last_run

    loaded = _load(config, resolve_secrets=False)

    async def go(db: Any) -> Any:
        if await last_run(db) is None:
            return None
        return await fetch(db)

    rows = _read_only(loaded, go)
    if rows is None:
        click.echo(f"error: {NEVER_RUN}", err=True)
        sys.exit(1)
    return rows


FORMAT_OPTION = click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table"
)


@inventory.command()
@config_option
@click.option("--supplier", help="only what to order from this supplier")
@FORMAT_OPTION
def restock(config: str | None, supplier: str | None, fmt: str) -> None:
    """What to order, from whom and by when."""
    from daemon.inventory_report import RESTOCK_FIELDS, fetch_restock, render

    rows = _inventory_report(config, lambda db: fetch_restock(db, supplier))
    console = Console(width=_pipe_width(fmt, "table"))
    render(rows, RESTOCK_FIELDS, console, fmt, empty="nothing to order")  # type: ignore[arg-type]


@inventory.command()
@config_option
@FORMAT_OPTION
def health(config: str | None, fmt: str) -> None:
    """Age buckets, excess, sell-through, stranded units and storage fees per SKU and pool."""
    from daemon.inventory_report import HEALTH_FIELDS, fetch_health, render

    rows = _inventory_report(config, fetch_health)
    console = Console(width=_pipe_width(fmt, "table"))
    render(rows, HEALTH_FIELDS, console, fmt, empty="no stock on hand")  # type: ignore[arg-type]


@inventory.command()
@config_option
def refresh(config: str | None) -> None:
    """Run the inventory pass now on the database (no marketplace is called)."""
    from daemon.inventory_pass import run_inventory

    loaded = _load(config, log_level="info", resolve_secrets=False)
    summary = _read_only(
        loaded, lambda db: run_inventory(db, SystemClock(), loaded.settings.inventory)
    )
    click.echo(
        f"inventory: {summary['skus']} SKUs planned, sales and stock aggregated through "
        f"{summary['aggregated']['through']}, "
        f"{summary['to_order']} to order, {summary['crossings']} restock threshold(s) crossed "
        f"({summary['seconds']} s)"
    )


@main.group()
def audit() -> None:
    """Audits of what the marketplaces owe you."""


@audit.command(name="fba")
@config_option
@click.option("--channel", multiple=True, help="Amazon channel(s) to audit (default: all)")
@click.option("--since", default="90d", show_default=True, help="how far back, e.g. 60d")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option("--no-fetch", is_flag=True, help="audit the stored reports; ask Amazon for none")
def audit_fba(
    config: str | None, channel: tuple[str, ...], since: str, fmt: str, no_fetch: bool
) -> None:
    """FBA units lost or damaged in Amazon's warehouses and not made good: cases to file.

    Reads the inventory ledger, reimbursements and inventory reports (Reports API), stores them
    (a re-read adds nothing), then audits what is stored. Exit 3 when a report could not be
    read (FATAL, CANCELLED, still running, or a document without its documented columns): run
    again later.
    """
    import httpx

    from daemon.fba_audit import amazon_channels, render_audit, run_audit
    from domain.errors import ChannelError
    from strategies.base import parse_duration

    try:
        window = parse_duration(since)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--since") from err
    loaded = _load(config, resolve_secrets=not no_fetch)
    names = amazon_channels(loaded.settings, channel)
    if not names or len(names) < len(channel):
        known = amazon_channels(loaded.settings)
        unknown = [c for c in channel if c not in known]
        click.echo(
            f"error: {config_path(config)}: "
            + (f"no Amazon channel named {', '.join(unknown)}" if unknown else "no Amazon channel")
            + f" (Amazon channels: {', '.join(known) or 'none'})",
            err=True,
        )
        sys.exit(1)

    def progress(line: str) -> None:
        click.echo(line, err=True)

    async def go(db: Any) -> Any:
        async with httpx.AsyncClient() as http:
            return await run_audit(
                db,
                loaded.settings,
                http=http,
                clock=SystemClock(),
                sleep=asyncio.sleep,
                since=window,
                channels=names,
                fetch=not no_fetch,
                progress=progress,
            )

    try:
        report, fetched = _read_only(loaded, go)
    except ChannelError as err:
        # Refused credentials, an unreachable endpoint after the retries, a malformed document.
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    render_audit(report, Console(width=_pipe_width(fmt, "table")), fmt)  # type: ignore[arg-type]
    if any(f.status != "DONE" for f in fetched):
        sys.exit(3)


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
