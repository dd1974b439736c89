"""The console's Inventory page and the SKU page's inventory charts in headless Chromium, on
the demo daemon with a seeded sales history and a stored FBA ledger report."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from playwright.sync_api import Page, expect

from daemon.console import audit
from daemon.inventory_report import RESTOCK_FIELDS
from tests.browser.conftest import CHART_SKU, FBA_FNSKU, INVENTORY_SKU, DemoDaemon
from tests.browser.test_console import DOCS, SCREENSHOTS


def test_inventory_page_lists_restock_rows_health_and_audit_cases(
    page: Page, demo: DemoDaemon
) -> None:
    """The nav opens the page: the SKU to reorder with its supplier and date, the health table,
    and the FBA cases of the stored report with units, value, deadline, evidence and text."""
    page.locator("nav a", has_text="Inventory").click()
    page.wait_for_url("**/console/inventory")
    expect(page.locator(".last-run")).not_to_have_text("never")
    row = page.locator(f"table.restock tr[data-sku='{INVENTORY_SKU}']")
    expect(row).to_contain_text("Stoneware Co.")
    assert int(row.locator("td b").inner_text()) > 0  # the order quantity
    page.locator("select[name=supplier]").select_option("Stoneware Co.")
    page.locator("form.filters button").click()
    page.wait_for_url("**/console/inventory?supplier=Stoneware*")
    suppliers = page.locator("table.restock tbody tr td:nth-child(2)").all_inner_texts()
    assert suppliers
    assert set(suppliers) == {"Stoneware Co."}
    assert page.locator("table.health tr.health-row").count() > 0
    cases = page.locator(f"article.case[data-fnsku='{FBA_FNSKU}']")
    expect(cases).to_have_count(2)  # lost (misplaced) and damaged
    lost = page.locator(f"article.case[data-fnsku='{FBA_FNSKU}'][data-kind='lost']")
    expect(lost.locator(".units")).to_contain_text("2")
    expect(lost.locator("table.evidence")).to_contain_text("9001")
    expect(lost.locator(".deadline")).not_to_be_empty()
    expect(lost.locator("textarea")).to_contain_text(FBA_FNSKU)
    if SCREENSHOTS:
        page.goto(page.url.split("?")[0])
        page.screenshot(path=str(DOCS / "console-inventory.png"), full_page=True)


def test_restock_csv_export_downloads(page: Page, demo: DemoDaemon, tmp_path: Path) -> None:
    """The CSV export has the CLI's columns and the rows to order."""
    page.goto(f"{demo.admin}/console/inventory")
    with page.expect_download() as info:
        page.locator("a.csv").click()
    download = info.value
    assert download.suggested_filename.startswith("repricerd-restock-")
    target = tmp_path / "restock.csv"
    download.save_as(target)
    rows = list(csv.reader(io.StringIO(target.read_text())))
    assert tuple(rows[0]) == RESTOCK_FIELDS
    assert INVENTORY_SKU in [r[0] for r in rows[1:]]


def test_run_the_inventory_pass_now(page: Page, demo: DemoDaemon) -> None:
    """The button runs the pass through the same path as the overview's, and is recorded."""
    page.goto(f"{demo.admin}/console/inventory")
    page.locator("button[name=run]").click()
    page.wait_for_url("**/console/inventory?done=run*")
    expect(page.locator(".notice")).to_contain_text("pass=inventory")
    recent = demo.call(audit.recent(demo.daemon.rt.db, limit=5))  # type: ignore[union-attr]
    assert any(r.action == "run" and "pass=inventory" in r.detail for r in recent)


def test_the_sku_page_draws_cover_and_forecast_charts(page: Page, demo: DemoDaemon) -> None:
    """Days of cover with both thresholds; units sold against the forecasts, the stock-out
    days shaded as censored."""
    page.goto(f"{demo.admin}/console/sku/{INVENTORY_SKU}")
    cover = page.locator("svg.cover-chart")
    expect(cover).to_have_count(1)
    assert cover.locator("circle.point[data-series='cover']").count() > 0
    assert cover.locator("circle.point[data-series='projected']").count() > 0
    assert cover.locator("line.threshold").count() == 2
    demand = page.locator("svg.demand-chart")
    assert demand.locator("rect.point[data-series='actual']").count() > 0
    assert demand.locator("circle.point[data-series='forecast']").count() > 0
    assert demand.locator("circle.point[data-series='forecast-past']").count() > 0
    assert demand.locator("rect.censored").count() >= 5
    page.goto(f"{demo.admin}/console/sku/{CHART_SKU}")
    expect(page.locator("svg.cover-chart")).to_have_count(1)
