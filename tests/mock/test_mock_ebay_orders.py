"""The mock's Fulfillment getOrders: the buyers' orders, eBay's filter syntax and errorIds,
limit/offset paging with next/prev, the fulfillment scope, and completed cancels."""

from __future__ import annotations

from datetime import timedelta

from jsonschema import Draft4Validator

from connectors.mock.ebay.const import (
    FULFILLMENT_READONLY_SCOPE,
    FULFILLMENT_SCOPE,
    INVENTORY_SCOPE,
)
from connectors.specs import load_spec
from domain.clock import ManualClock
from tests.mock.test_mock_ebay import Mock, clock, mock

__all__ = ["clock", "mock"]
ORDERS = "/sell/fulfillment/v1/order"


def _iso(mock: Mock, delta: timedelta = timedelta(0)) -> str:
    moment = mock.clock.now() + delta
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def _buy(mock: Mock, sku: str, quantity: int = 1) -> str:
    sold = await mock.http.post("/_mock/orders", json={"sku": sku, "quantity": quantity})
    assert sold.status_code == 200, sold.text
    return str(sold.json()["orderId"])


async def test_orders_page_by_offset_with_next_and_prev(mock: Mock) -> None:
    ids = [await _buy(mock, f"MUG-00{n}") for n in range(3)]
    since = f"lastmodifieddate:[{_iso(mock, timedelta(minutes=-5))}..]"
    first = await mock.http.get(
        ORDERS, params={"filter": since, "limit": "2"}, headers=mock.bearer()
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["total"], body["limit"], body["offset"]) == (3, 2, 0)
    assert "offset=2" in body["next"]
    assert "prev" not in body
    second = await mock.http.get(
        ORDERS, params={"filter": since, "limit": "2", "offset": "2"}, headers=mock.bearer()
    )
    assert "next" not in second.json()
    assert "offset=0" in second.json()["prev"]
    listed = [o["orderId"] for page in (body, second.json()) for o in page["orders"]]
    assert sorted(listed) == sorted(ids)
    order = body["orders"][0]
    assert order["cancelStatus"]["cancelState"] == "NONE_REQUESTED"
    assert {"lineItemId", "sku", "quantity"} <= set(order["lineItems"][0])


async def test_a_cancel_modifies_the_order_and_gives_the_units_back(
    mock: Mock, clock: ManualClock
) -> None:
    order_id = await _buy(mock, "MUG-004", 3)
    assert mock.state.listing("MUG-004").quantity == 7  # type: ignore[union-attr]
    clock.advance(3600)
    since = {"filter": f"lastmodifieddate:[{_iso(mock, timedelta(minutes=-1))}..]"}
    quiet = await mock.http.get(ORDERS, params=since, headers=mock.bearer())
    assert quiet.json()["orders"] == []
    cancelled = await mock.http.post(f"/_mock/orders/{order_id}/cancel")
    assert cancelled.status_code == 200
    assert mock.state.listing("MUG-004").quantity == 10  # type: ignore[union-attr]
    [order] = (await mock.http.get(ORDERS, params=since, headers=mock.bearer())).json()["orders"]
    assert order["cancelStatus"]["cancelState"] == "CANCELED"


async def test_what_ebay_refuses_is_refused_with_its_error_ids(mock: Mock) -> None:
    future = _iso(mock, timedelta(days=1))
    old = _iso(mock, timedelta(days=-91))
    cases = {
        "shippeddate:[2026-03-01T00:00:00.000Z..]": 30700,
        "lastmodifieddate:2026-03-01T00:00:00.000Z": 30800,
        "lastmodifieddate:[2026-03-01..]": 30810,
        "lastmodifieddate:[..2026-03-01T00:00:00.000Z]": 30820,
        f"lastmodifieddate:[{old}..]": 30830,
        f"creationdate:[{_iso(mock)}..{_iso(mock, timedelta(days=-1))}]": 30840,
        f"lastmodifieddate:[{future}..]": 30850,
        "orderfulfillmentstatus:{NOT_STARTED|FULFILLED}": 30800,
    }
    for search, error_id in cases.items():
        answer = await mock.http.get(ORDERS, params={"filter": search}, headers=mock.bearer())
        assert answer.status_code == 400, search
        [error] = answer.json()["errors"]
        assert (error["errorId"], error["domain"]) == (error_id, "API_FULFILLMENT"), search
    for params, error_id in (({"limit": "201"}, 31100), ({"offset": "-1"}, 31000)):
        answer = await mock.http.get(ORDERS, params=params, headers=mock.bearer())
        assert answer.json()["errors"][0]["errorId"] == error_id


async def test_only_a_user_token_with_a_fulfillment_scope_reads_orders(mock: Mock) -> None:
    inventory_only = await mock.user_token(INVENTORY_SCOPE)
    denied = await mock.http.get(ORDERS, headers=mock.bearer(inventory_only))
    assert denied.status_code == 403
    app = await mock.http.get(ORDERS, headers=mock.bearer(mock.app))
    assert app.status_code == 403
    readonly = await mock.user_token(FULFILLMENT_READONLY_SCOPE)
    assert (await mock.http.get(ORDERS, headers=mock.bearer(readonly))).status_code == 200


async def test_get_order_answers_the_order_a_notification_names(mock: Mock) -> None:
    """getOrder by the id ORDER_CONFIRMATION carries: the order getOrders lists, with its SKU
    and units; an unknown id → 404 errorId 32100; the fulfillment scope is needed."""
    order_id = await _buy(mock, "MUG-002", 2)
    one = await mock.http.get(f"{ORDERS}/{order_id}", headers=mock.bearer())
    assert one.status_code == 200, one.text
    listed = (await mock.http.get(ORDERS, headers=mock.bearer())).json()["orders"]
    assert [one.json()] == listed
    [item] = one.json()["lineItems"]
    assert (item["sku"], item["quantity"]) == ("MUG-002", 2)
    unknown = await mock.http.get(f"{ORDERS}/99-00000-00000", headers=mock.bearer())
    assert unknown.status_code == 404
    [error] = unknown.json()["errors"]
    assert (error["errorId"], error["domain"]) == (32100, "API_FULFILLMENT")
    inventory_only = await mock.user_token(INVENTORY_SCOPE)
    denied = await mock.http.get(f"{ORDERS}/{order_id}", headers=mock.bearer(inventory_only))
    assert denied.status_code == 403


async def test_get_order_answers_match_the_fulfillment_oas(mock: Mock) -> None:
    """The mock's getOrder answer is an OAS ``Order`` (Draft 4 types; eBay may add fields)."""
    document = load_spec("ebay", "sell_fulfillment_v1_oas3.json")
    operation = document["paths"]["/order/{orderId}"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Order"
    }
    validator = Draft4Validator(
        {
            "$ref": "#/components/schemas/Order",
            "components": {"schemas": document["components"]["schemas"]},
        }
    )
    order_id = await _buy(mock, "MUG-005", 1)
    answer = await mock.http.get(f"{ORDERS}/{order_id}", headers=mock.bearer())
    errors = [e.message for e in validator.iter_errors(answer.json())]
    assert not errors
    # The OAS's security: the two scopes the connector checks before calling.
    [security] = operation["security"]
    assert set(security["api_auth"]) == {FULFILLMENT_SCOPE, FULFILLMENT_READONLY_SCOPE}
