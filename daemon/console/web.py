"""The console's routes on the admin listener: login, overview, SKU pages, actions log (and its
CSV), problems, config, and the operator actions (pause, resume, run a pass, release a breaker).

Every page needs a logged-in session (else 303 to /login); every POST needs the session's CSRF
token (else 403); every action is recorded in ``operator_action`` before the page answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup
from pydantic import SecretStr

from daemon import controls
from daemon.config import LoadedConfig
from daemon.console import audit
from daemon.console.auth import COOKIE, Session, Sessions, password_matches
from daemon.console.charts import price_chart, sparkline, stock_chart
from daemon.console.data import BuyBoxTracker, load_overview, load_problems, load_sku_page
from daemon.console.review import breaker_moves
from daemon.console.series import ChannelOverview
from daemon.db.engine import Database
from daemon.db.models import ActionKind, ActionStatus
from daemon.history import fetch_history, to_csv
from daemon.logging import get_logger
from daemon.passes import PASS_NAMES
from daemon.runtime import ReloadResult
from daemon.settings import ScheduleSettings
from daemon.status import read_status
from domain.clock import Clock

STATIC_DIR: Final = Path(__file__).parent / "static"
PAGE_SIZE: Final = 100
CSV_MAX_ROWS: Final = 100_000
# The time filter of the actions log: the choices offered, as (label, timedelta).
RANGES: Final[Mapping[str, timedelta | None]] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
_log = get_logger(component="console")


@dataclass(frozen=True)
class ConsoleContext:
    """What the console may use, injected by the daemon (callables follow hot reloads)."""

    db: Database
    clock: Clock
    password: Callable[[], SecretStr | None]
    channels: Callable[[], Sequence[str]]
    config: Callable[[], LoadedConfig]
    last_reload: Callable[[], ReloadResult | None]
    request_pass: Callable[[str, tuple[str, ...], tuple[str, ...]], Awaitable[str]]
    breaker_rearm: Callable[[], timedelta]
    own_seller_ids: Callable[[], Collection[str]]
    schedule: Callable[[], ScheduleSettings]


CONSOLE: Final = web.AppKey("repricerd_console_ctx", ConsoleContext)
SESSIONS: Final = web.AppKey("repricerd_console_sessions", Sessions)
TRACKER: Final = web.AppKey("repricerd_console_buy_box", BuyBoxTracker)


def add_console(app: web.Application, ctx: ConsoleContext) -> None:
    """Mount the console on ``app`` (the admin listener's)."""
    app[CONSOLE] = ctx
    app[SESSIONS] = Sessions(ctx.clock)
    # Kept across page loads: each overview reads only the offer snapshots stored since the last.
    app[TRACKER] = BuyBoxTracker()
    app.cleanup_ctx.append(_warm_buy_box)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("daemon.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _when
    env.filters["age"] = _age
    env.filters["pct"] = _pct
    env.globals["buy_box_sparkline"] = _buy_box_sparkline
    app.middlewares.append(_guard)
    app.router.add_get("/", _root)
    app.router.add_get("/login", _login_page)
    app.router.add_post("/login", _login)
    app.router.add_post("/logout", _logout)
    app.router.add_get("/console/", _overview)
    app.router.add_get("/console/sku/{sku:.+}", _sku_page)
    app.router.add_get("/console/actions", _actions)
    app.router.add_get("/console/actions.csv", _actions_csv)
    app.router.add_get("/console/problems", _problems)
    app.router.add_get("/console/config", _config)
    app.router.add_get("/console/channel/{channel}/breaker", _breaker_review)
    app.router.add_post("/console/channel/{channel}/{action}", _channel_action)
    app.router.add_get("/console/sku/", _sku_search)
    app.router.add_static(
        "/console/static/", STATIC_DIR, name="console_static", append_version=True
    )


# -- session guard ----------------------------------------------------------------------------


def _needs_login(path: str) -> bool:
    """The console's pages (not the login page, its CSS, /status or /metrics)."""
    return path == "/" or (path.startswith("/console/") and not path.startswith("/console/static/"))


@web.middleware
async def _guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """No session: 303 to /login. A POST without the session's CSRF token: 403."""
    sessions = request.app[SESSIONS]
    session = sessions.get(request.cookies.get(COOKIE))
    if request.method == "POST":
        form = await request.post()
        token = form.get("csrf")
        if session is None or not sessions.csrf_ok(
            session, token if isinstance(token, str) else None
        ):
            _log.warning("console_csrf_refused", path=request.path, remote=request.remote)
            raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page")
        if request.path != "/login" and not session.authenticated:
            raise web.HTTPSeeOther("/login")
    elif _needs_login(request.path) and (session is None or not session.authenticated):
        target = request.path_qs if request.path.startswith("/console/") else "/console/"
        raise web.HTTPSeeOther("/login?" + urlencode({"next": target}))
    response = await handler(request)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    return response


def _session(request: web.Request) -> Session | None:
    """The request's live session (the guard let it through), or None."""
    return request.app[SESSIONS].get(request.cookies.get(COOKIE))


def _actor(request: web.Request) -> str:
    return f"console@{request.remote or 'unknown'}"


def _set_cookie(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.id,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )


def _render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    session: Session | None = None,
) -> web.Response:
    """Render a page with what every page needs: the CSRF token, login state, current path."""
    session = session or _session(request)
    return aiohttp_jinja2.render_template(
        template,
        request,
        {
            "csrf": session.csrf if session else "",
            "logged_in": session is not None and session.authenticated,
            "path": request.path,
            **context,
        },
        status=status,
    )


def _buy_box_sparkline(channel: ChannelOverview) -> Markup:
    """The channel's Buy Box share at each of the last seven UTC day ends, in percent."""
    points = [
        (share.at, None if share.ratio is None else share.ratio * 100)
        for share in channel.buy_box_days
    ]
    label = f"{channel.status.channel} Buy Box share"
    # Built with every text escaped (daemon.console.charts): safe as markup.
    return Markup(sparkline(points, label=label))  # noqa: S704


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _age(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    seconds = max(0, int((now - value).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


# -- login ------------------------------------------------------------------------------------


async def _root(_request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/console/")


def _safe_next(value: str | None) -> str:
    # Only a console path: never an absolute or scheme-relative URL (open redirect).
    if value and value.startswith("/console/") and not value.startswith("//"):
        return value
    return "/console/"


async def _login_page(request: web.Request) -> web.StreamResponse:
    session = _session(request)
    if session is not None and session.authenticated:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    if session is None:
        session = request.app[SESSIONS].new(authenticated=False)
    response = _render(
        request,
        "login.html",
        {"next": _safe_next(request.query.get("next")), "error": None},
        session=session,
    )
    _set_cookie(request, response, session)
    return response


async def _login(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONSOLE]
    sessions = request.app[SESSIONS]
    address = request.remote or "unknown"
    form = await request.post()
    target = _safe_next(str(form.get("next") or ""))
    wait = sessions.wait_s(address)
    if wait > 0:
        response = _render(
            request,
            "login.html",
            {"next": target, "error": f"too many failed attempts: try again in {wait:.0f} s"},
            status=429,
        )
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    expected = ctx.password()
    given = form.get("password")
    if (
        expected is None
        or not isinstance(given, str)
        or not password_matches(given, expected.get_secret_value())
    ):
        sessions.failed(address)
        await audit.record(ctx.db, ctx.clock, actor=_actor(request), action="login_failed")
        _log.warning("console_login_failed", remote=address)
        return _render(
            request, "login.html", {"next": target, "error": "wrong password"}, status=401
        )
    sessions.succeeded(address)
    sessions.end(request.cookies.get(COOKIE))
    # A new id at login: an id planted before it (session fixation) is worth nothing.
    session = sessions.new(authenticated=True)
    await audit.record(ctx.db, ctx.clock, actor=_actor(request), action="login")
    _log.info("console_login", remote=address)
    response = web.HTTPSeeOther(target)
    _set_cookie(request, response, session)
    raise response


async def _logout(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONSOLE]
    request.app[SESSIONS].end(request.cookies.get(COOKIE))
    await audit.record(ctx.db, ctx.clock, actor=_actor(request), action="logout")
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def _warm_buy_box(app: web.Application) -> AsyncIterator[None]:
    """Count every channel's Buy Box once in the background when the listener starts.

    The first count reads 30 days of offer snapshots (seconds at 100,000 listings); later
    overviews only add what was stored since, so the operator's first page is fast too.
    """
    ctx = app[CONSOLE]

    async def warm() -> None:
        try:
            await load_overview(
                ctx.db,
                ctx.clock,
                list(ctx.channels()),
                own_seller_ids=ctx.own_seller_ids(),
                tracker=app[TRACKER],
            )
        except Exception as err:  # the first page load counts instead
            _log.warning("console_warm_up_failed", error=(str(err) or type(err).__name__)[:200])

    task = asyncio.create_task(warm())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# -- overview and actions -------------------------------------------------------------------


async def _overview(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONSOLE]
    overview = await load_overview(
        ctx.db,
        ctx.clock,
        list(ctx.channels()),
        own_seller_ids=ctx.own_seller_ids(),
        tracker=request.app[TRACKER],
    )
    return _render(
        request,
        "overview.html",
        {
            "now": overview.at,
            "overview": overview,
            "passes": PASS_NAMES,
            "recent": await audit.recent(ctx.db, limit=15),
            "message": request.query.get("done"),
        },
    )


def _channel_of(request: web.Request) -> str:
    channel = request.match_info["channel"]
    if channel not in request.app[CONSOLE].channels():
        raise web.HTTPNotFound(text=f"unknown channel {channel!r}")
    return channel


async def _channel_action(request: web.Request) -> web.StreamResponse:
    """Pause, resume, run a pass now, or release a tripped breaker; recorded, then 303."""
    ctx = request.app[CONSOLE]
    channel = _channel_of(request)
    action = request.match_info["action"]
    actor = _actor(request)
    form = await request.post()
    detail = ""
    if action == "pause":
        await controls.pause(ctx.db, ctx.clock, channel=channel, reason=f"paused by {actor}")
    elif action in ("resume", "release"):
        # As `repricerd resume`: a tripped breaker is cleared and stays disarmed for
        # rearm_after_s, so the moves the operator just reviewed do not trip it again.
        await controls.resume(ctx.db, ctx.clock, channel=channel, rearm_after=ctx.breaker_rearm())
    elif action == "run":
        pass_name = form.get("pass")
        if pass_name not in PASS_NAMES:
            raise web.HTTPBadRequest(text=f"pass must be one of {', '.join(PASS_NAMES)}")
        assert isinstance(pass_name, str)
        pass_id = await ctx.request_pass(pass_name, (channel,), ())
        detail = f"pass={pass_name} request={pass_id}"
    else:
        raise web.HTTPNotFound(text=f"unknown action {action!r}")
    await audit.record(
        ctx.db, ctx.clock, actor=actor, action=action, channel=channel, detail=detail
    )
    _log.info("console_action", action=action, channel=channel, actor=actor, detail=detail)
    raise web.HTTPSeeOther(
        "/console/?" + urlencode({"done": f"{action} {channel} {detail}".strip()})
    )


async def _breaker_review(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONSOLE]
    channel = _channel_of(request)
    now = ctx.clock.now()
    status = await read_status(ctx.db, [channel], now, full=False)
    pass_id, moves = await breaker_moves(ctx.db, channel, now)
    return _render(
        request,
        "breaker.html",
        {
            "now": now,
            "channel": status.by_name[channel],
            "pass_id": pass_id,
            "moves": moves,
        },
    )


# -- actions log --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Filters:
    channel: str | None
    sku: str | None
    kind: str | None
    status: str | None
    range: str
    page: int
    id: int | None = None

    def query(self, **override: Any) -> str:
        values = {
            "channel": self.channel,
            "sku": self.sku,
            "kind": self.kind,
            "status": self.status,
            "range": self.range,
            "page": self.page,
            "id": self.id,
            **override,
        }
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _filters(request: web.Request) -> _Filters:
    q = request.query

    def choice(key: str, allowed: Sequence[str]) -> str | None:
        value = q.get(key) or None
        if value is not None and value not in allowed:
            raise web.HTTPBadRequest(text=f"{key} must be one of {', '.join(allowed)}")
        return value

    try:
        page = max(1, int(q.get("page", "1")))
        action_id = int(q["id"]) if q.get("id") else None
    except ValueError:
        raise web.HTTPBadRequest(text="page and id must be numbers") from None
    return _Filters(
        channel=choice("channel", list(request.app[CONSOLE].channels())),
        sku=(q.get("sku") or "").strip()[:255] or None,
        kind=choice("kind", [k.value for k in ActionKind]),
        status=choice("status", [s.value for s in ActionStatus]),
        # One decision (a chart marker's link) is shown whatever its age.
        range=choice("range", list(RANGES)) or ("all" if action_id is not None else "24h"),
        page=page,
        id=action_id,
    )


async def _history(
    request: web.Request, f: _Filters, *, limit: int, offset: int
) -> list[dict[str, Any]]:
    ctx = request.app[CONSOLE]
    return await fetch_history(
        ctx.db,
        now=ctx.clock.now(),
        sku_glob=f.sku,
        since=RANGES[f.range],
        kind=f.kind,
        channel=f.channel,
        status=f.status,
        action_id=f.id,
        limit=limit,
        offset=offset,
    )


async def _actions(request: web.Request) -> web.StreamResponse:
    f = _filters(request)
    # One row more than a page tells whether there is a next page.
    rows = await _history(request, f, limit=PAGE_SIZE + 1, offset=(f.page - 1) * PAGE_SIZE)
    return _render(
        request,
        "actions.html",
        {
            "rows": rows[:PAGE_SIZE],
            "f": f,
            "more": len(rows) > PAGE_SIZE,
            "channels": request.app[CONSOLE].channels(),
            "kinds": [k.value for k in ActionKind],
            "statuses": [s.value for s in ActionStatus],
            "ranges": list(RANGES),
            "recent": await audit.recent(request.app[CONSOLE].db, limit=50),
        },
    )


async def _actions_csv(request: web.Request) -> web.StreamResponse:
    f = _filters(request)
    rows = await _history(request, f, limit=CSV_MAX_ROWS, offset=0)
    stamp = request.app[CONSOLE].clock.now().strftime("%Y%m%dT%H%M%SZ")
    return web.Response(
        text=to_csv(rows),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="repricerd-actions-{stamp}.csv"'},
    )


# -- SKU, problems, config ----------------------------------------------------------------------


async def _sku_page(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONSOLE]
    sku = request.match_info["sku"]
    page = await load_sku_page(
        ctx.db,
        ctx.clock,
        sku,
        own_seller_ids=ctx.own_seller_ids(),
        # The lowest competitor as the rule pricing each listing sees it (its filters).
        rules=ctx.config().settings.pricing.rules,
    )
    # The charts are SVG built with every text escaped (daemon.console.charts): safe as markup.
    prices = [
        (series, Markup(price_chart(series, start=page.start, end=page.end)))  # noqa: S704
        for series in page.prices
    ]
    stock = Markup(stock_chart(page.stock, start=page.start, end=page.end))  # noqa: S704
    return _render(
        request, "sku.html", {"page": page, "prices": prices, "stock": stock, "now": page.end}
    )


async def _sku_search(request: web.Request) -> web.StreamResponse:
    sku = request.query.get("sku", "").strip()
    if not sku:
        raise web.HTTPSeeOther("/console/")
    raise web.HTTPSeeOther(f"/console/sku/{quote(sku, safe='')}")


async def _problems(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONSOLE]
    problems = await load_problems(
        ctx.db, ctx.clock, channels=list(ctx.channels()), schedule=ctx.schedule()
    )
    return _render(request, "problems.html", {"problems": problems, "now": ctx.clock.now()})


async def _config(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONSOLE]
    loaded = ctx.config()
    rules = []
    for index, rule in enumerate(loaded.settings.pricing.rules):
        line = loaded.rule_lines[index] if index < len(loaded.rule_lines) else None
        body = rule.model_dump(mode="json", exclude_none=True, exclude={"name", "strategy"})
        rules.append(
            {
                "index": index,
                "name": rule.name or f"rules[{index}]",
                "strategy": rule.strategy,
                "match": body.pop("match", None),
                "body": body,
                "source": f"{loaded.path}:{line}" if line else str(loaded.path),
            }
        )
    guards = loaded.settings.pricing.guards.model_dump(mode="json", exclude_none=True)
    return _render(
        request,
        "config.html",
        {
            "file": loaded.path,
            "digest": loaded.digest[:12],
            "rules": rules,
            "guards": guards,
            "reload": ctx.last_reload(),
        },
    )
