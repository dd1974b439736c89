"""The mock's GET /v3/orders: the shoppers' orders in the spec's shape, filters, nextCursor
paging, what Walmart refuses, and the line cancel with its PO_LINE_AUTOCANCELLED."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl

from domain.clock import ManualClock
from tests.connectors.test_walmart_orders import validator
from tests.mock.test_mock_walmart import Mock, _error, _events, hook, mock

__all__ = ["hook", "mock"]


async def _buy(mock: Mock, sku: str, quantity: int = 1) -> str:
    placed = await mock.http.post("/_mock/orders", json={"sku": sku, "quantity": quantity})
    assert placed.status_code == 200, placed.text
    return str(placed.json()["purchaseOrderId"])


async def test_orders_are_listed_in_the_specs_shape_and_paged_by_cursor(mock: Mock) -> None:
    pos = [await _buy(mock, "MUG-000") for _ in range(3)]
    await _buy(mock, "WFS-001")  # Walmart ships it: not a SellerFulfilled order
    first = await mock.http.get("/v3/orders", params={"limit": "2"}, headers=mock.headers())
    assert first.status_code == 200, first.text
    body = first.json()
    assert [e.message for e in validator().iter_errors(body)] == []
    meta = body["list"]["meta"]
    assert (meta["totalCount"], meta["limit"]) == (3, 2)
    cursor = dict(parse_qsl(meta["nextCursor"].lstrip("?")))
    assert cursor["hasMoreElements"] == "true"
    assert cursor["poIndex"] == "2"
    assert "X-Current-Token-Count" in first.headers
    second = await mock.http.get("/v3/orders", params=cursor, headers=mock.headers())
    assert "nextCursor" not in second.json()["list"]["meta"]
    seen = [
        order["purchaseOrderId"]
        for page in (body, second.json())
        for order in page["list"]["elements"]["order"]
    ]
    assert sorted(seen) == sorted(pos)
    wfs = await mock.http.get(
        "/v3/orders", params={"shipNodeType": "WFSFulfilled"}, headers=mock.headers()
    )
    assert len(wfs.json()["list"]["elements"]["order"]) == 1


async def test_last_modified_filters_and_the_cancel_modifies_the_order(
    mock: Mock, clock: ManualClock
) -> None:
    po = await _buy(mock, "MUG-001", 2)
    assert mock.state.market.listings["MUG-001"].quantity == 3
    clock.advance(3600)
    assert (await mock.grant()).status_code == 200  # the hour outlived the 15-minute token
    since = (clock.now() - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"lastModifiedStartDate": since}
    quiet = await mock.http.get("/v3/orders", params=params, headers=mock.headers())
    assert quiet.json()["list"]["elements"]["order"] == []
    cancelled = await mock.http.post(f"/_mock/orders/{po}/cancel", json={"lineNumber": "1"})
    assert cancelled.status_code == 200, cancelled.text
    assert mock.state.market.listings["MUG-001"].quantity == 5
    [(_, _, event)] = _events(mock, "PO_LINE_AUTOCANCELLED")
    assert event["payload"]["purchaseOrderId"] == po
    modified = await mock.http.get("/v3/orders", params=params, headers=mock.headers())
    [order] = modified.json()["list"]["elements"]["order"]
    [line] = order["orderLines"]["orderLine"]
    assert [s["status"] for s in line["orderLineStatuses"]["orderLineStatus"]] == ["Cancelled"]
    again = await mock.http.post(f"/_mock/orders/{po}/cancel", json={})
    assert again.status_code == 400


async def test_parameters_walmart_refuses_are_a_400_with_its_error_body(mock: Mock) -> None:
    for params in (
        {"limit": "201"},
        {"limit": "0"},
        {"lastModifiedStartDate": "yesterday"},
        {"createdStartDate": "2026-03-02", "createdEndDate": "2026-03-01"},
        {"status": "Lost"},
        {"shipNodeType": "Store"},
        {"productInfo": "yes"},
    ):
        answer = await mock.http.get("/v3/orders", params=params, headers=mock.headers())
        assert answer.status_code == 400, params
        assert _error(answer)["code"] == "INVALID_REQUEST_CONTENT.GMP_ORDER_API"
    unauthorised = await mock.http.get(
        "/v3/orders", headers=mock.headers(**{"WM_SEC.ACCESS_TOKEN": "x"})
    )
    assert unauthorised.status_code == 401
