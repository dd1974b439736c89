"""The console's web layer without a browser: login backoff, sessions, CSRF, redirects, the
audit trail, the admin listener's routes, and the data the config view and actions log read."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from daemon.app import Daemon
from daemon.config import load_config
from daemon.console import audit
from daemon.console.auth import COOKIE, FREE_FAILURES
from daemon.console.web import ConsoleContext, add_console
from daemon.db.engine import Database
from daemon.db.models import ActionKind, ActionStatus
from daemon.history import fetch_history
from daemon.intents import PlannedWrite
from daemon.logging import SecretRedactor
from daemon.runtime import Runtime
from daemon.server import ServerHandle, build_admin_app, start_server
from domain.clock import ManualClock
from tests.daemon_fixtures import loaded, make_runtime, server_context, settings
from tests.test_lifecycle import database_url

PASSWORD = "unit-test-console-password"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def _no_pass(name: str, channels: tuple[str, ...], skus: tuple[str, ...]) -> str:
    return f"{name}-{len(channels)}-{len(skus)}"


@pytest.fixture
async def admin(db: Database, clock: ManualClock) -> AsyncIterator[tuple[str, Runtime]]:
    """The admin listener over a runtime with channels alpha and beta."""
    rt = await make_runtime(db, clock, settings())
    console = ConsoleContext(
        db=db,
        clock=clock,
        password=lambda: SecretStr(PASSWORD),
        channels=lambda: list(rt.settings.channels),
        config=lambda: rt.config,
        last_reload=lambda: rt.last_reload,
        request_pass=_no_pass,
        breaker_rearm=lambda: timedelta(minutes=30),
        own_seller_ids=rt.own_seller_ids,
        schedule=lambda: rt.settings.schedule,
    )
    ctx = server_context(rt, lambda _name: None)
    app = build_admin_app(ctx, lambda a: add_console(a, console))
    handle: ServerHandle = await start_server(ctx, "127.0.0.1", 0, app=app)
    try:
        yield f"http://127.0.0.1:{handle.port}", rt
    finally:
        await handle.stop()
        await rt.close()


async def _login_form(client: httpx.AsyncClient, base: str) -> str:
    page = await client.get(f"{base}/login")
    match = CSRF.search(page.text)
    assert match is not None
    return match.group(1)


async def _log_in(client: httpx.AsyncClient, base: str, password: str = PASSWORD) -> Any:
    csrf = await _login_form(client, base)
    return await client.post(
        f"{base}/login", data={"csrf": csrf, "password": password, "next": "/console/"}
    )


async def test_login_rotates_the_session_and_logout_ends_it(
    admin: tuple[str, Runtime], db: Database
) -> None:
    """The anonymous id of the login page is replaced at login; after logout the old cookie
    opens nothing. Both are recorded with who."""
    base, _rt = admin
    async with httpx.AsyncClient() as client:
        await _login_form(client, base)
        anonymous = client.cookies[COOKIE]
        response = await _log_in(client, base)
        assert response.status_code == 303
        assert response.headers["location"] == "/console/"
        assert "httponly" in response.headers["set-cookie"].lower()
        assert "samesite=strict" in response.headers["set-cookie"].lower()
        logged_in = client.cookies[COOKIE]
        assert logged_in != anonymous
        overview = await client.get(f"{base}/console/")
        assert overview.status_code == 200
        csrf = CSRF.search(overview.text)
        assert csrf is not None
        assert (
            await client.post(f"{base}/logout", data={"csrf": csrf.group(1)})
        ).status_code == 303
    async with httpx.AsyncClient(cookies={COOKIE: logged_in}) as replay:
        assert (await replay.get(f"{base}/console/")).status_code == 303
    actions = [e.action for e in await audit.recent(db)]
    assert actions[:2] == ["logout", "login"]


async def test_guessing_is_slowed_down_per_address(
    admin: tuple[str, Runtime], clock: ManualClock, db: Database
) -> None:
    """After FREE_FAILURES wrong passwords the address waits (429, Retry-After), even for the
    right password; the wait doubles; once it passed, the right password works."""
    base, _rt = admin
    async with httpx.AsyncClient() as client:
        for _ in range(FREE_FAILURES):
            assert (await _log_in(client, base, "wrong")).status_code == 401
        locked = await _log_in(client, base)
        assert locked.status_code == 429
        assert locked.headers["retry-after"] == "1"
        clock.advance(1)
        assert (await _log_in(client, base, "wrong")).status_code == 401
        again = await _log_in(client, base)
        assert again.status_code == 429
        assert again.headers["retry-after"] == "2"
        clock.advance(2)
        assert (await _log_in(client, base)).status_code == 303
    failed = [e for e in await audit.recent(db) if e.action == "login_failed"]
    assert len(failed) == FREE_FAILURES + 1
    assert failed[0].actor == "console@127.0.0.1"


async def test_redirects_stay_inside_the_console(admin: tuple[str, Runtime]) -> None:
    """No session: 303 to /login with the page as ``next``; a foreign ``next`` is ignored."""
    base, _rt = admin
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base}/console/problems?x=1")
        assert response.status_code == 303
        location = httpx.URL(response.headers["location"])
        assert location.path == "/login"
        assert location.params["next"] == "/console/problems?x=1"
        csrf = await _login_form(client, base)
        response = await client.post(
            f"{base}/login",
            data={"csrf": csrf, "password": PASSWORD, "next": "//evil.example/console/"},
        )
        assert response.headers["location"] == "/console/"


async def test_posts_need_the_csrf_token_and_actions_are_recorded(
    admin: tuple[str, Runtime], db: Database
) -> None:
    """Pause without the token: 403 and nothing changes; with it: paused and recorded; a pass
    request goes through the /sync path with the channel."""
    base, _rt = admin
    async with httpx.AsyncClient() as client:
        await _log_in(client, base)
        page = await client.get(f"{base}/console/")
        csrf = CSRF.search(page.text)
        assert csrf is not None
        refused = await client.post(f"{base}/console/channel/alpha/pause", data={})
        assert refused.status_code == 403
        login_without = await client.post(f"{base}/login", data={"password": PASSWORD})
        assert login_without.status_code == 403
        done = await client.post(
            f"{base}/console/channel/alpha/pause", data={"csrf": csrf.group(1)}
        )
        assert done.status_code == 303
        ran = await client.post(
            f"{base}/console/channel/beta/run", data={"csrf": csrf.group(1), "pass": "reprice"}
        )
        assert ran.status_code == 303
        bad = await client.post(
            f"{base}/console/channel/beta/run", data={"csrf": csrf.group(1), "pass": "nope"}
        )
        assert bad.status_code == 400
        unknown = await client.post(
            f"{base}/console/channel/gamma/pause", data={"csrf": csrf.group(1)}
        )
        assert unknown.status_code == 404
        overview = await client.get(f"{base}/console/")
    assert 'data-channel="alpha"' in overview.text
    assert 'data-state="paused"' in overview.text
    entries = await audit.recent(db)
    assert [(e.action, e.channel, e.detail) for e in entries[:2]] == [
        ("run", "beta", "pass=reprice request=reprice-1-0"),
        ("pause", "alpha", ""),
    ]


async def test_status_and_metrics_are_on_the_admin_listener(admin: tuple[str, Runtime]) -> None:
    """/status and /metrics answer on the admin listener without a console session."""
    base, _rt = admin
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{base}/status")).json()["channels"].keys() == {"alpha", "beta"}
        assert "repricerd_" in (await client.get(f"{base}/metrics")).text


async def test_actions_csv_follows_the_filters(
    admin: tuple[str, Runtime], db: Database, clock: ManualClock
) -> None:
    """The CSV has the history header and only the filtered channel's rows; a bad filter is a
    400, not an empty file."""
    base, rt = admin
    await _stock_actions(rt, clock, (("alpha", "A", 1), ("beta", "B", 2), ("alpha", "C", 3)))
    async with httpx.AsyncClient() as client:
        await _log_in(client, base)
        csv = await client.get(f"{base}/console/actions.csv?channel=alpha&range=all")
        assert csv.status_code == 200
        assert csv.headers["content-type"].startswith("text/csv")
        header, *rows = csv.text.splitlines()
        assert header.startswith("id,time,channel,sku")
        assert len(rows) == 2
        assert all(",alpha," in row for row in rows)
        assert (await client.get(f"{base}/console/actions?kind=nope")).status_code == 400


async def _stock_actions(
    rt: Runtime, clock: ManualClock, rows: tuple[tuple[str, str, int], ...]
) -> None:
    """Record one stock write per (channel, SKU, hours ago); SKU B's failed."""
    await rt.outbox.record(
        [
            PlannedWrite(
                pass_id="p",
                kind=ActionKind.STOCK,
                channel=channel,
                sku=sku,
                status=ActionStatus.FAILED if sku == "B" else ActionStatus.CONFIRMED,
                new_quantity=1,
                idempotency_key=f"k-{sku}",
                created_at=clock.now() - timedelta(hours=hours),
            )
            for channel, sku, hours in rows
        ]
    )


async def test_history_filters_by_status_range_id_and_pages(
    db: Database, clock: ManualClock
) -> None:
    """fetch_history's console filters: status, a start..end range, one id, and offset."""
    rt = await make_runtime(db, clock, settings())
    try:
        await _stock_actions(rt, clock, (("alpha", "A", 1), ("alpha", "B", 2), ("alpha", "C", 30)))
        now = clock.now()
        failed = await fetch_history(db, now=now, status="failed")
        assert [r["sku"] for r in failed] == ["B"]
        ranged = await fetch_history(
            db, now=now, start=now - timedelta(hours=3), end=now - timedelta(minutes=30)
        )
        assert {r["sku"] for r in ranged} == {"A", "B"}
        one = await fetch_history(db, now=now, action_id=failed[0]["id"])
        assert [r["id"] for r in one] == [failed[0]["id"]]
        everything = await fetch_history(db, now=now, channel="alpha", kind="stock")
        second_page = await fetch_history(
            db, now=now, channel="alpha", kind="stock", limit=1, offset=1
        )
        assert second_page == everything[1:2]
    finally:
        await rt.close()


def test_each_rule_keeps_the_line_it_came_from(tmp_path: Path) -> None:
    """load_config records the line of every pricing rule (the config view shows file:line)."""
    path = tmp_path / "r.yaml"
    path.write_text(
        "channels: {alpha: {kind: mock}}\n"
        "pricing:\n"
        "  rules:\n"
        "    - name: first\n"
        "      match: {sku: 'A*'}\n"
        "      strategy: hold\n"
        "    - strategy: cost_plus\n"
        "      params: {margin_pct: 30}\n"
    )
    assert load_config(path, environ={}).rule_lines == (4, 7)


async def test_a_reload_records_its_result(
    tmp_path: Path, db: Database, clock: ManualClock
) -> None:
    """A rejected reload keeps its problems for the config view; an accepted one says so."""
    path = tmp_path / "r.yaml"
    good = "channels: {alpha: {kind: mock}}\npricing: {rules: [{strategy: hold}]}\n"
    path.write_text(good)
    rt = await make_runtime(db, clock, load_config(path, environ={}).settings, path)
    try:
        assert rt.last_reload is None
        path.write_text(good + "bogus: 1\n")
        assert await rt.reload_if_changed() is False
        assert rt.last_reload is not None
        assert not rt.last_reload.accepted
        assert any("bogus" in p and "unknown key" in p for p in rt.last_reload.problems)
        path.write_text(good.replace("hold", "cost_plus, params: {margin_pct: 10}"))
        assert await rt.reload_if_changed() is True
        assert rt.last_reload.accepted
        assert rt.last_reload.problems == ()
    finally:
        await rt.close()


@pytest.mark.parametrize("password", [None, PASSWORD])
async def test_the_admin_listener_runs_only_with_a_console_password(
    db: Database, clock: ManualClock, password: str | None
) -> None:
    """Without ``server.console_password`` there is no admin listener; with it, the console
    answers there and not on the public listener (which keeps /healthz)."""
    server: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "admin_port": 0}
    if password is not None:
        server["console_password"] = SecretStr(password)
    config = settings(database=database_url(db), server=server)
    daemon = Daemon(loaded(config), SecretRedactor(), clock, scheduled=False)
    await daemon.start()
    try:
        public = f"http://127.0.0.1:{daemon.port}"
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{public}/healthz")).status_code == 200
            assert (await client.get(f"{public}/login")).status_code == 404
            assert (await client.get(f"{public}/console/")).status_code == 404
            if password is None:
                assert daemon.admin is None
                return
            assert daemon.admin is not None
            admin = f"http://127.0.0.1:{daemon.admin.port}"
            assert (await client.get(f"{admin}/login")).status_code == 200
            assert (await client.get(f"{admin}/healthz")).status_code == 404
    finally:
        await daemon.stop()
