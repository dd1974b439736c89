"""The operator console in headless Chromium, on the demo daemon: login, overview, actions,
pause/resume, breaker review and release, CSV export, CSRF, and the listener split."""

from __future__ import annotations

import csv
import io
import os
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from daemon import controls
from daemon.db.models import Action, ActionKind, ActionStatus
from daemon.history import fetch_history
from daemon.intents import PlannedWrite
from tests.browser.conftest import CHART_SKU, DEMO_CHANNELS, DemoDaemon

ACTIONS = Action.__table__  # type: ignore[attr-defined]
DOCS = Path(__file__).resolve().parents[2] / "docs"
SCREENSHOTS = os.environ.get("REPRICERD_SCREENSHOTS") == "1"


def card(page: Page, channel: str) -> object:
    """The overview card of one channel."""
    return page.locator(f"article.card[data-channel='{channel}']")


def test_no_session_is_sent_to_the_login_page(browser: Browser, demo: DemoDaemon) -> None:
    """Without a session every console page redirects (303) to /login, keeping the target."""
    context = browser.new_context()
    page = context.new_page()
    response = page.request.get(f"{demo.admin}/console/actions", max_redirects=0)
    assert response.status == 303
    assert response.headers["location"].startswith("/login?next=")
    page.goto(f"{demo.admin}/console/config")
    assert page.url.startswith(f"{demo.admin}/login")
    expect(page.locator("input[name=password]")).to_be_visible()
    context.close()


def test_a_wrong_password_is_refused_and_recorded(browser: Browser, demo: DemoDaemon) -> None:
    """A wrong password shows an error, opens no session, and is in the operator log."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{demo.admin}/login")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("wrong password")
    cookie = next(c for c in context.cookies() if c["name"] == "repricerd_console")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.request.get(f"{demo.admin}/console/", max_redirects=0).status == 303
    context.close()


def test_overview_lists_the_four_demo_channels_with_their_states(
    page: Page, demo: DemoDaemon
) -> None:
    """Every demo channel has a card with its state, its passes' last success and buttons."""
    for channel in DEMO_CHANNELS:
        c = page.locator(f"article.card[data-channel='{channel}']")
        expect(c).to_be_visible()
        expect(c.locator(".badge")).to_have_attribute("data-state", "ok")
        expect(c.locator("table.passes")).to_contain_text("reprice")
        expect(c.locator("button[name=pause]")).to_be_visible()


def _written_since(demo: DemoDaemon, channel: str, after_id: int) -> list[str]:
    async def go() -> list[str]:
        async with demo.daemon.rt.db.read() as conn:  # type: ignore[union-attr]
            rows = await conn.execute(
                sa.select(ACTIONS.c.status).where(
                    ACTIONS.c.channel == channel,
                    ACTIONS.c.id > after_id,
                    ACTIONS.c.status.in_([ActionStatus.SENT.value, ActionStatus.CONFIRMED.value]),
                )
            )
            return list(rows.scalars())

    return demo.call(go())


def _last_action_id(demo: DemoDaemon) -> int:
    async def go() -> int:
        async with demo.daemon.rt.db.read() as conn:  # type: ignore[union-attr]
            return int((await conn.execute(sa.select(sa.func.max(ACTIONS.c.id)))).scalar() or 0)

    return demo.call(go())


def test_pause_stops_writes_and_resume_lets_them_go(page: Page, demo: DemoDaemon) -> None:
    """Pause from the overview: the card shows paused, and after an order the stock sync sends
    nothing to the channel (its write stays queued); resume: the card is ok again and the
    queued write goes out. Both are in the operator log with who and when."""
    channel = "shop-demo"
    card(page, channel).locator("button[name=pause]").click()  # type: ignore[attr-defined]
    page.wait_for_url("**/console/?done=*")
    badge = page.locator(f"article.card[data-channel='{channel}'] .badge")
    expect(badge).to_have_attribute("data-state", "paused")
    before = _last_action_id(demo)
    # An order changes what every channel should show: the paused one must not be written.
    demo.call(demo.order("while-paused", "placed", 1))
    demo.call(demo.run_pass("reprice", (channel,)))
    result = demo.call(demo.run_pass("stock_sync", (channel,)))
    assert result[channel]["dispatch"]["blocked_reason"].startswith("paused")
    assert _written_since(demo, channel, before) == []
    log = page.locator("table.operator-log")
    expect(log).to_contain_text("pause")
    expect(log).to_contain_text("console@127.0.0.1")

    page.locator(f"article.card[data-channel='{channel}'] button[name=resume]").click()
    page.wait_for_url("**/console/?done=resume*")
    expect(badge).to_have_attribute("data-state", "ok")
    demo.call(demo.run_pass("stock_sync", (channel,)))
    assert _written_since(demo, channel, before) != []  # the queued write goes out now
    expect(page.locator("table.operator-log tbody tr").first).to_contain_text("resume")


def test_run_a_pass_now(page: Page, demo: DemoDaemon) -> None:
    """ "Run now" starts the chosen pass on the channel through the /sync code path."""
    c = page.locator("article.card[data-channel='amazon-demo']")
    c.locator("select[name=pass]").select_option("stock_sync")
    c.locator("button[name=run]").click()
    page.wait_for_url("**/console/?done=run*")
    expect(page.locator(".notice")).to_contain_text("pass=stock_sync")
    expect(page.locator("table.operator-log tbody tr").first).to_contain_text("run")


def _trip(demo: DemoDaemon, channel: str) -> None:
    """Trip the channel's breaker as a reprice pass would: its price moves blocked."""

    async def go() -> None:
        rt = demo.daemon.rt
        assert rt is not None
        now = rt.clock.now()
        rows = [
            PlannedWrite(
                pass_id="tripping-pass",
                kind=ActionKind.PRICE,
                channel=channel,
                sku=f"TRIP-{i}",
                status=ActionStatus.BLOCKED,
                old_price=Decimal("20.00"),
                new_price=Decimal("9.99"),
                currency="USD",
                strategy="buy_box",
                rule="win-the-buy-box",
                reason="circuit breaker: 3 of 4 listings would move by more than 20%",
                idempotency_key=f"trip-{channel}-{i}",
                created_at=now,
            )
            for i in range(3)
        ]
        await rt.outbox.record(rows)
        await controls.trip_breaker(
            rt.db, rt.clock, channel=channel, reason="3 of 4 listings would move by more than 20%"
        )

    demo.call(go())


def test_a_tripped_breaker_is_reviewed_and_released(page: Page, demo: DemoDaemon) -> None:
    """The card shows the tripped breaker; the review lists the moves it held back; release
    clears it (and is recorded)."""
    channel = "walmart-demo"
    _trip(demo, channel)
    page.reload()
    c = page.locator(f"article.card[data-channel='{channel}']")
    expect(c.locator(".badge")).to_have_attribute("data-state", "breaker_tripped")
    if SCREENSHOTS:  # the overview with a tripped breaker and the operator actions so far
        page.screenshot(path=str(DOCS / "console-overview.png"), full_page=True)
    c.locator("a", has_text="Review breaker").click()
    page.wait_for_url(f"**/console/channel/{channel}/breaker")
    rows = page.locator("table.actions tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("20.00 → 9.99")
    page.locator("button[name=release]").click()
    page.wait_for_url("**/console/?done=release*")
    expect(c.locator(".badge")).to_have_attribute("data-state", "ok")
    expect(page.locator("table.operator-log tbody tr").first).to_contain_text("release")


def test_actions_log_filters_and_csv_export(page: Page, demo: DemoDaemon) -> None:
    """The actions log filters by channel and kind; the CSV link downloads the same rows."""
    page.goto(f"{demo.admin}/console/actions?channel=shop-demo&kind=price&range=all")
    rows = page.locator("table.actions tbody tr")
    expect(rows.first).to_contain_text("shop-demo")
    shown = rows.count()
    assert shown > 0
    with page.expect_download() as info:
        page.click("a#csv")
    text = Path(info.value.path()).read_text()
    records = list(csv.DictReader(io.StringIO(text)))
    assert len(records) >= shown
    assert {r["channel"] for r in records} == {"shop-demo"}
    assert {r["kind"] for r in records} == {"price"}
    expected = demo.call(
        fetch_history(
            demo.daemon.rt.db,  # type: ignore[union-attr]
            now=demo.clock.now(),
            channel="shop-demo",
            kind="price",
            limit=100_000,
        )
    )
    assert len(records) == len(expected)


def test_a_post_without_the_csrf_token_is_refused(page: Page, demo: DemoDaemon) -> None:
    """A logged-in session's POST without (or with a wrong) CSRF token gets 403 and does
    nothing."""
    for form in ({}, {"csrf": "forged"}):
        response = page.request.post(
            f"{demo.admin}/console/channel/ebay-demo/pause", form=form, max_redirects=0
        )
        assert response.status == 403
    page.reload()
    expect(page.locator("article.card[data-channel='ebay-demo'] .badge")).to_have_attribute(
        "data-state", "ok"
    )


def test_the_console_is_not_on_the_webhook_listener(page: Page, demo: DemoDaemon) -> None:
    """The public listener serves webhooks and health, never the console or its login."""
    for path in ("/console/", "/login", "/console/actions.csv", "/console/static/console.css"):
        assert page.request.get(f"{demo.public}{path}", max_redirects=0).status == 404
    assert page.request.post(f"{demo.public}/login", form={"password": "x"}).status == 404
    assert page.request.get(f"{demo.public}/healthz").status == 200


def test_config_view_shows_each_rule_with_its_source_line(page: Page, demo: DemoDaemon) -> None:
    """Each pricing rule is listed with the file:line it came from."""
    page.goto(f"{demo.admin}/console/config")
    rules = page.locator("table.rules tbody tr")
    expect(rules).to_have_count(len(demo.config.settings.pricing.rules))
    lines = demo.config.rule_lines
    expect(rules.first.locator(".source")).to_have_text(f"{demo.config.path}:{lines[0]}")
    expect(page.locator("body")).to_contain_text("No change to the file since start-up")


def test_a_sku_page_renders_both_charts_with_data_points(page: Page, demo: DemoDaemon) -> None:
    """The SKU page draws a price chart per channel (our price, Buy Box, band) and the stock
    chart, each with data points carrying tooltips; the explain trace and the ledger follow."""
    page.goto(f"{demo.admin}/console/sku/{CHART_SKU}")
    charts = page.locator("svg.price-chart")
    expect(charts).to_have_count(len(DEMO_CHANNELS))
    for channel in DEMO_CHANNELS:
        chart = page.locator(f"svg.price-chart[data-channel='{channel}']")
        assert chart.locator("circle.point[data-series='our-price']").count() > 0
        assert chart.locator("[data-series='band']").count() > 0
        expect(chart.locator("circle.point title").first).to_contain_text("our price")
    stock = page.locator("svg.stock-chart")
    expect(stock).to_have_count(1)
    assert stock.locator("circle.point").count() > 0
    assert stock.locator("path.event-order").count() > 0
    assert stock.locator("path.event-cancel").count() > 0
    assert page.locator("table.explain tbody tr").count() > 0
    assert page.locator("table.ledger tbody tr").count() > 0
    if SCREENSHOTS:
        page.screenshot(path=str(DOCS / "console-sku.png"), full_page=True)


def test_problems_link_to_their_sku_pages(page: Page, demo: DemoDaemon) -> None:
    """The demo has SKUs blocked for a missing floor: listed, each linking to its SKU page."""
    page.goto(f"{demo.admin}/console/problems")
    link = page.locator("table.problems tbody tr a[href^='/console/sku/']").first
    expect(link).to_be_visible()
    sku = link.inner_text()
    link.click()
    page.wait_for_url(f"**/console/sku/{sku}")
    expect(page.locator("h1")).to_contain_text(sku)
