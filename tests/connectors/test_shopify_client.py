"""Shopify GraphQL client: exact requests, the cost bucket, throttling and error mapping."""

from __future__ import annotations

import graphql
import httpx
import pytest
import respx

from connectors.ratelimit import PACING
from connectors.shopify import queries
from connectors.shopify.channel import ShopifyChannel
from domain.clock import ManualClock
from domain.errors import (
    ChannelAuthError,
    ChannelError,
    RateLimitedError,
    RejectedUpdateError,
    TransientChannelError,
)
from tests.connectors.shopify_fixtures import (
    HEADERS,
    LOCATION,
    TOKEN,
    URL,
    FakeSleep,
    answer,
    gql,
    make_channel,
    sent,
)

# The slice of the Admin API 2026-04 schema our documents touch (names and types as published),
# so the tests check argument names, variable types and the @idempotent directive, not only
# the syntax.
ADMIN_SDL = """
directive @idempotent(key: String!) on FIELD
scalar Money
scalar URL
type Shop { name: String! currencyCode: String! }
type Location { id: ID! name: String! isActive: Boolean! }
type LocationConnection { nodes: [Location!]! }
type PageInfo { hasNextPage: Boolean! endCursor: String }
type InventoryQuantity { name: String! quantity: Int! }
type InventoryLevel { quantities(names: [String!]!): [InventoryQuantity!]! }
interface Node { id: ID! }
type InventoryItem implements Node {
  id: ID!
  inventoryLevel(locationId: ID!): InventoryLevel
}
type Product implements Node { id: ID! status: String! }
type ProductVariant implements Node {
  id: ID! sku: String price: Money! product: Product! inventoryItem: InventoryItem!
}
type ProductVariantConnection { nodes: [ProductVariant!]! pageInfo: PageInfo! }
scalar DateTime
scalar UnsignedInt64
enum OrderSortKeys { CREATED_AT ID PROCESSED_AT UPDATED_AT }
type LineItem implements Node { id: ID! sku: String quantity: Int! }
type LineItemConnection { nodes: [LineItem!]! pageInfo: PageInfo! }
type Order implements Node {
  id: ID! legacyResourceId: UnsignedInt64! createdAt: DateTime! updatedAt: DateTime!
  cancelledAt: DateTime lineItems(first: Int, after: String): LineItemConnection!
}
type OrderConnection { nodes: [Order!]! pageInfo: PageInfo! }
type QueryRoot {
  orders(
    first: Int, after: String, query: String, sortKey: OrderSortKeys, reverse: Boolean
  ): OrderConnection!
  node(id: ID!): Node
  shop: Shop!
  location(id: ID): Location
  locations(first: Int, after: String, includeInactive: Boolean): LocationConnection!
  productVariants(first: Int, after: String, query: String): ProductVariantConnection!
  nodes(ids: [ID!]!): [Node]!
}
input ProductVariantsBulkInput { id: ID price: Money compareAtPrice: Money }
type UserError { field: [String!] message: String! code: String }
type ProductVariantsBulkUpdatePayload {
  productVariants: [ProductVariant!] userErrors: [UserError!]!
}
input InventoryQuantityInput {
  inventoryItemId: ID! locationId: ID! quantity: Int! changeFromQuantity: Int
}
input InventorySetQuantitiesInput {
  name: String! reason: String! referenceDocumentUri: URL quantities: [InventoryQuantityInput!]!
}
type InventoryChange { name: String! delta: Int! quantityAfterChange: Int }
type InventoryAdjustmentGroup {
  reason: String! referenceDocumentUri: URL changes: [InventoryChange!]!
}
type InventorySetQuantitiesPayload {
  inventoryAdjustmentGroup: InventoryAdjustmentGroup userErrors: [UserError!]!
}
type Mutation {
  productVariantsBulkUpdate(
    productId: ID!, variants: [ProductVariantsBulkInput!]!, allowPartialUpdates: Boolean
  ): ProductVariantsBulkUpdatePayload
  inventorySetQuantities(input: InventorySetQuantitiesInput!): InventorySetQuantitiesPayload
}
schema { query: QueryRoot mutation: Mutation }
"""


@pytest.fixture
def channel(http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep) -> ShopifyChannel:
    return make_channel(http, clock, sleep)


OPEN_AT = gql(queries.OPEN_AT_LOCATION, {"id": LOCATION})
OPEN_OK = {
    "shop": {"name": "Example", "currencyCode": "USD"},
    "location": {"id": LOCATION, "name": "Warehouse", "isActive": True},
}


@pytest.mark.parametrize("document", queries.ALL_DOCUMENTS)
def test_every_document_parses_and_validates(document: str) -> None:
    tree = graphql.parse(document)
    assert graphql.validate(graphql.build_schema(ADMIN_SDL), tree) == []


def test_stock_mutation_carries_the_idempotent_directive() -> None:
    tree = graphql.parse(queries.SET_STOCK)
    operation = tree.definitions[0]
    assert isinstance(operation, graphql.OperationDefinitionNode)
    field = operation.selection_set.selections[0]
    assert isinstance(field, graphql.FieldNode)
    assert [d.name.value for d in field.directives] == ["idempotent"]


async def test_open_sends_the_token_and_discovers_the_primary_location(
    http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep
) -> None:
    channel = make_channel(http, clock, sleep, location_id=None)
    data = {
        "shop": {"name": "Example", "currencyCode": "USD"},
        "location": {"id": LOCATION, "name": "Main", "isActive": True},
        "locations": {"nodes": [{"id": "gid://shopify/Location/2", "isActive": True}]},
    }
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(URL, headers=HEADERS, json=gql(queries.OPEN_PRIMARY, {})).mock(
            return_value=answer(data, requested=4)
        )
        await channel.open()
    assert channel.location_id == LOCATION
    assert route.call_count == 1
    assert route.calls[0].request.headers["X-Shopify-Access-Token"] == TOKEN


async def test_open_falls_back_to_the_first_active_location(
    http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep
) -> None:
    channel = make_channel(http, clock, sleep, location_id=None)
    data = {
        "shop": {"name": "Example", "currencyCode": "USD"},
        "location": None,
        "locations": {"nodes": [{"id": "gid://shopify/Location/2", "isActive": True}]},
    }
    with respx.mock() as mock:
        mock.post(URL, json=gql(queries.OPEN_PRIMARY, {})).mock(return_value=answer(data))
        await channel.open()
    assert channel.location_id == "gid://shopify/Location/2"


async def test_open_refuses_an_inactive_location_and_another_currency(
    channel: ShopifyChannel,
) -> None:
    inactive = {**OPEN_OK, "location": {"id": LOCATION, "name": "Old", "isActive": False}}
    with respx.mock() as mock:
        mock.post(URL, json=OPEN_AT).mock(return_value=answer(inactive))
        with pytest.raises(ChannelError) as err:
            await channel.open()
    assert err.value.code == "LOCATION_NOT_FOUND"
    euro = {**OPEN_OK, "shop": {"name": "Example", "currencyCode": "EUR"}}
    with respx.mock() as mock:
        mock.post(URL, json=OPEN_AT).mock(return_value=answer(euro))
        with pytest.raises(ChannelError) as err:
            await channel.open()
    assert err.value.code == "CURRENCY_MISMATCH"


async def test_a_refused_token_is_an_auth_error_without_retry_or_secret(
    channel: ShopifyChannel,
) -> None:
    with respx.mock() as mock:
        route = mock.post(URL).mock(
            return_value=httpx.Response(
                401, json={"errors": "[API] Invalid API key or access token"}
            )
        )
        with pytest.raises(ChannelAuthError) as err:
            await channel.open()
    assert route.call_count == 1
    assert err.value.status == 401
    assert TOKEN not in str(err.value)
    assert TOKEN not in repr(channel.client.auth)


async def test_access_denied_is_an_auth_error(channel: ShopifyChannel) -> None:
    errors = [
        {"message": "Access denied for location field.", "extensions": {"code": "ACCESS_DENIED"}}
    ]
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=answer(None, errors=errors))
        with pytest.raises(ChannelAuthError, match="Access denied"):
            await channel.open()


async def test_other_graphql_errors_are_rejections_with_the_message(
    channel: ShopifyChannel,
) -> None:
    errors = [
        {
            "message": "Field 'bogus' doesn't exist on type 'Shop'",
            "locations": [{"line": 2, "column": 3}],
            "extensions": {"code": "undefinedField"},
        }
    ]
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=answer(None, errors=errors))
        with pytest.raises(RejectedUpdateError, match="bogus") as err:
            await channel.open()
    assert err.value.code == "undefinedField"
    assert route.call_count == 1


async def test_server_errors_are_retried_with_backoff(
    channel: ShopifyChannel, sleep: FakeSleep
) -> None:
    with respx.mock() as mock:
        route = mock.post(URL, json=OPEN_AT).mock(
            side_effect=[httpx.Response(502), httpx.Response(503), answer(OPEN_OK)]
        )
        await channel.open()
    assert route.call_count == 3
    assert len(sleep.waits) == 2


async def test_server_errors_give_up_as_transient(channel: ShopifyChannel) -> None:
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(500))
        with pytest.raises(TransientChannelError) as err:
            await channel.open()
    assert route.call_count == 4  # the policy's attempt cap
    assert err.value.status == 500


async def test_throttled_waits_for_the_requested_cost_then_succeeds(
    channel: ShopifyChannel, sleep: FakeSleep
) -> None:
    throttled = answer(
        None,
        requested=752,
        actual=None,
        available=252,
        restore=100,
        errors=[{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
    )
    with respx.mock() as mock:
        route = mock.post(URL, json=OPEN_AT).mock(side_effect=[throttled, answer(OPEN_OK)])
        await channel.open()
    assert route.call_count == 2
    # (requested - available) / restoreRate, then only what the pacing margin adds: not a
    # second wait for the whole cost on top of it.
    assert sleep.waits[0] == pytest.approx(5.0)
    assert sum(sleep.waits) == pytest.approx(500 / (100 * (1 - PACING.fraction)) + PACING.jitter_s)
    assert channel.client.estimates["open"] == 10  # learnt from the successful answer


async def test_throttled_error_carries_the_retry_after(
    channel: ShopifyChannel,
) -> None:
    throttled = answer(
        None,
        requested=300,
        available=100,
        restore=50,
        errors=[{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
    )
    channel.client.policy = type(channel.client.policy)(attempts=1)
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=throttled)
        with pytest.raises(RateLimitedError) as err:
            await channel.open()
    assert err.value.retry_after_s == pytest.approx(4.0)


async def test_http_429_honours_retry_after(channel: ShopifyChannel, sleep: FakeSleep) -> None:
    with respx.mock() as mock:
        route = mock.post(URL, json=OPEN_AT).mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "2.0"}, json={"errors": "Throttled"}),
                answer(OPEN_OK),
            ]
        )
        await channel.open()
    assert route.call_count == 2
    assert sleep.waits == [pytest.approx(2.0)]


async def test_the_bucket_paces_a_call_whose_cost_exceeds_what_is_available(
    channel: ShopifyChannel, sleep: FakeSleep
) -> None:
    client = channel.client
    with respx.mock() as mock:
        route = mock.post(URL, json=OPEN_AT).mock(
            side_effect=[
                answer(OPEN_OK, requested=502, available=100, maximum=1000, restore=50),
                answer(OPEN_OK, requested=502, available=0, maximum=1000, restore=50),
            ]
        )
        await channel.open()
        assert sleep.waits == []  # the bucket started full
        # Shopify's reading replaced ours: 1000-point bucket, 50/s, 100 left.
        assert client.bucket.limit.burst == 1000
        assert client.bucket.limit.rate == 50
        await channel.open()
    assert route.call_count == 2
    # The next call of this operation needs 502 points, 100 are there: (502 - 100) / 50 s, at
    # the pacing margin (5 % under the rate, plus the jitter guard).
    assert sleep.waits == [pytest.approx(402 / (50 * (1 - PACING.fraction)) + PACING.jitter_s)]


async def test_a_timeout_is_transient_and_retried(
    channel: ShopifyChannel, sleep: FakeSleep
) -> None:
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=[httpx.ReadTimeout("slow"), answer(OPEN_OK)])
        await channel.open()
    assert route.call_count == 2
    assert len(sleep.waits) == 1


async def test_client_errors_are_rejections_not_retried(channel: ShopifyChannel) -> None:
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(404, json={"errors": "Not Found"}))
        with pytest.raises(RejectedUpdateError) as err:
            await channel.open()
    assert route.call_count == 1
    assert err.value.code == "HTTP_404"
    assert "Not Found" in str(err.value)


async def test_a_body_that_is_not_json_is_transient(channel: ShopifyChannel) -> None:
    with respx.mock() as mock:
        route = mock.post(URL).mock(
            side_effect=[httpx.Response(200, text="<html>maintenance</html>"), answer(OPEN_OK)]
        )
        await channel.open()
    assert route.call_count == 2
    assert sent(route.calls[1].request) == OPEN_AT


async def test_an_internal_error_in_a_200_answer_is_retried(
    channel: ShopifyChannel, sleep: FakeSleep
) -> None:
    internal = [
        {
            "message": "Internal error. Looks like something went wrong on our end.",
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "abc"},
        }
    ]
    with respx.mock() as mock:
        route = mock.post(URL, json=OPEN_AT).mock(
            side_effect=[answer(None, errors=internal), answer(OPEN_OK)]
        )
        await channel.open()
    assert route.call_count == 2
    assert len(sleep.waits) == 1


async def test_each_operation_keeps_its_own_cost_estimate(channel: ShopifyChannel) -> None:
    with respx.mock() as mock:
        mock.post(URL, json=OPEN_AT).mock(return_value=answer(OPEN_OK, requested=3))
        await channel.open()
    assert channel.client.estimate("open") == 3
    assert channel.client.estimate("listings_page") == 502  # untouched default
    assert channel.client.estimate("never_seen") == 50
