"""The mock Shopify Admin GraphQL server (aiohttp), its client-credentials grant and its
``/_mock/`` control routes (unauthenticated: the mock only ever listens on loopback).

Only API version 2026-04 is served; another version's ``graphql.json`` answers 404, as Shopify
does. The grant exchanges an installed app's credentials (``state.client_id`` and
``client_secret``; a form or, as Shopify's app libraries post it, a JSON body) for a token living
``state.token_ttl_s`` on the state's clock. ``invalid_client`` and ``shop_not_permitted`` are
names Shopify uses; the 400 status and the other refusals' wording are **assumptions**.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import structlog
from aiohttp import web
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from connectors.mock.faults import Fault
from connectors.mock.kit.control import Args, Refused, add_control_routes, json_object
from connectors.mock.kit.serving import Starter, running
from connectors.mock.shopify.cost import QueryCost
from connectors.mock.shopify.mutations import MutationRoot
from connectors.mock.shopify.resolvers import RequestContext, resolve_field
from connectors.mock.shopify.schema import RULES, shopify_schema, variable_errors
from connectors.mock.shopify.state import MockOrder, OrderLine, ShopifyMockState
from connectors.mock.shopify.webhooks import WebhookSender, inventory_level_payload, order_payload

STATE: web.AppKey[ShopifyMockState] = web.AppKey("state", ShopifyMockState)
SENDER: web.AppKey[WebhookSender] = web.AppKey("sender", WebhookSender)
log = structlog.get_logger(__name__)
Events = list[tuple[str, dict[str, Any]]]
# Realistic-looking 64-bit REST ids for orders and line items.
ORDER_ID_BASE = 5_000_000_000_000
LINE_ID_BASE = 13_000_000_000_000

UNAUTHORIZED = "[API] Invalid API key or access token (unrecognized login or wrong password)"
RATE_LIMIT_DOC = "https://shopify.dev/api/usage/rate-limits"
RATE_LIMIT_429 = (
    "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted "
    "service."
)
SERVER_ERROR_TEXT = (
    "Internal error. Looks like something went wrong on our end.\n"
    "Request ID: {request_id} (include this in support requests)."
)
MAX_COST_TEXT = (
    "Query cost is {cost}, which exceeds the single query max cost limit ({max}).\n\n"
    "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
    "cost of a query is calculated.\n\n"
    "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
    "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
)
# OAuth refusals of the grant: code -> description
REFUSALS = {
    "shop_not_permitted": "Client credentials cannot be performed on this shop.",
    "invalid_client": "Client authentication failed: the client_id or client_secret is invalid.",
    "unsupported_grant_type": "The grant_type is missing or not supported.",
    "invalid_request": "The request is missing a required parameter or is malformed.",
}


def make_app(state: ShopifyMockState) -> web.Application:
    """The aiohttp application serving one mock store."""
    app = web.Application()
    app[STATE] = state
    app[SENDER] = WebhookSender(state)
    app.router.add_post("/admin/api/{version}/graphql.json", graphql_endpoint)
    app.router.add_post("/admin/oauth/access_token", access_token)
    posts = {"orders": post_order, "orders/{order_id}/cancel": post_cancel}
    add_control_routes(app, STATE, get_state, {**posts, "redeliver": post_redeliver})
    app.cleanup_ctx.append(_shopper)
    return app


start = Starter(make_app, "shopify")


async def _shopper(app: web.Application) -> AsyncIterator[None]:
    """The background shopper while the app runs; then pending webhooks are finished."""
    async with running(run_shopper(app[STATE], app[SENDER].send), "mock-shopify-shopper"):
        yield
    await app[SENDER].close()


async def graphql_endpoint(request: web.Request) -> web.Response:
    """``POST /admin/api/2026-04/graphql.json``."""
    state = request.app[STATE]
    if request.match_info["version"] != state.api_version:
        return web.json_response({"errors": "Not Found"}, status=404)
    if not state.authorized(request.headers.get("X-Shopify-Access-Token", "")):
        state.counters.unauthorized += 1
        return web.json_response({"errors": UNAUTHORIZED}, status=401)
    body = await json_object(request)  # an empty body is {}: no query either
    if body is None or not isinstance(body.get("query"), str):
        missing = {"errors": {"query": "Required parameter missing or invalid"}}
        return web.json_response(missing, status=400)
    state.counters.calls += 1
    headers = {"X-Shopify-API-Version": state.api_version, "X-Request-Id": str(uuid.uuid4())}
    fault = state.faults.draw()
    if fault is Fault.ERROR:
        state.counters.errors_injected += 1
        request_id = headers["X-Request-Id"]
        message = SERVER_ERROR_TEXT.format(request_id=request_id)
        extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
        body = {"errors": [{"message": message, "extensions": extensions}]}
        # Alternate 500 and 503, both with the body Shopify's GraphQL gateway sends.
        status = 500 if state.counters.errors_injected % 2 else 503
        return web.json_response(body, status=status, headers=headers)
    if fault is Fault.TIMEOUT:
        state.counters.timeouts_injected += 1
        await state.sleep(state.faults.hang_s)
    context = RequestContext(state)
    response = await _run(context, body, fault is Fault.THROTTLE, headers)
    if context.events:
        request.app[SENDER].send(context.events)
    return response


def _reply(
    state: ShopifyMockState,
    headers: dict[str, str],
    errors: list[GraphQLError],
    requested: int | None = None,
    actual: int | None = None,
    **data: Any,
) -> web.Response:
    """A 200 answer: its errors, its data and the cost extension with the bucket's status."""
    body: dict[str, Any] = {"errors": [e.formatted for e in errors]} if errors else {}
    cost = {"requestedQueryCost": requested, "actualQueryCost": actual}
    body.update(data, extensions={"cost": {**cost, "throttleStatus": state.bucket.status()}})
    return web.json_response(body, headers=headers)


def _throttled(state: ShopifyMockState, requested: int, headers: dict[str, str]) -> web.Response:
    state.counters.throttled += 1
    every = state.throttle_429_every
    if every and state.counters.throttled % every == 0:
        state.counters.http_429 += 1
        retry = {**headers, "Retry-After": "2.0"}
        return web.json_response({"errors": RATE_LIMIT_429}, status=429, headers=retry)
    extensions = {"code": "THROTTLED", "documentation": RATE_LIMIT_DOC}
    return _reply(state, headers, [GraphQLError("Throttled", extensions=extensions)], requested)


async def _run(
    context: RequestContext, body: dict[str, Any], inject_throttle: bool, headers: dict[str, str]
) -> web.Response:
    """Parse, validate, cost, charge and execute one GraphQL request."""
    state, schema = context.state, shopify_schema()
    try:
        document = parse(body["query"])
    except GraphQLError as err:
        return _reply(state, headers, [err])
    problems = validate(schema, document, RULES)
    if problems:
        return _reply(state, headers, problems)
    name = body.get("operationName")
    operation = get_operation_ast(document, name)
    if operation is None:
        message = (
            f'Unknown operation named "{name}".'
            if name
            else "Must provide operation name if query contains multiple operations."
        )
        return _reply(state, headers, [GraphQLError(message)])
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        return _reply(state, headers, [GraphQLError("Variables must be an object")])
    definitions = operation.variable_definitions or ()
    refused = variable_errors(schema, definitions, variables)
    if refused:
        return _reply(state, headers, refused)
    coerced = get_variable_values(schema, definitions, variables)
    if isinstance(coerced, list):  # what graphql-ruby's checks above let through (none known)
        return _reply(state, headers, coerced)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    costs = QueryCost(schema, fragments, coerced.coerced)
    requested = costs.cost(operation, None)
    if inject_throttle:
        return _throttled(state, requested, headers)
    if requested > state.max_query_cost:
        state.counters.max_cost_exceeded += 1
        error = GraphQLError(
            MAX_COST_TEXT.format(cost=requested, max=state.max_query_cost),
            extensions={
                "code": "MAX_COST_EXCEEDED",
                "cost": requested,
                "maxCost": state.max_query_cost,
            },
        )
        return _reply(state, headers, [error], requested)
    if not state.bucket.try_take(requested):
        return _throttled(state, requested, headers)
    fields = [s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)]
    state.counters.operations.update(fields)
    if state.keep_requests:
        state.requests.append({"fields": fields, "variables": variables})
    is_mutation = operation.operation == OperationType.MUTATION
    root = MutationRoot() if is_mutation else None
    outcome = execute(schema, document, root, context, variables, name, resolve_field)
    result = await outcome if isinstance(outcome, Awaitable) else outcome
    actual = costs.cost(operation, result.data or {})
    state.bucket.refund(requested - actual)
    state.counters.points_requested += requested
    state.counters.points_actual += actual
    return _reply(state, headers, result.errors or [], requested, actual, data=result.data)


async def access_token(request: web.Request) -> web.Response:
    """``POST /admin/oauth/access_token``: the client-credentials grant."""
    state = request.app[STATE]
    fields = _grant_fields(request.content_type, await request.read())
    if state.client_id is None or state.client_secret is None:
        refusal = "shop_not_permitted"  # no Dev Dashboard app of this organization is installed
    elif fields is None:
        refusal = "invalid_request"
    elif fields.get("grant_type") != "client_credentials":
        refusal = "unsupported_grant_type"
    elif not (  # both compared, in constant time
        hmac.compare_digest(fields.get("client_id", "").encode(), state.client_id.encode())
        & hmac.compare_digest(
            fields.get("client_secret", "").encode(),
            state.client_secret.get_secret_value().encode(),
        )
    ):
        state.counters.token_refusals += 1
        refusal = "invalid_client"
    else:
        token = state.issue_token()
        return web.json_response(
            {"access_token": token, "scope": state.scopes, "expires_in": state.token_ttl_s}
        )
    body = {"error": refusal, "error_description": REFUSALS[refusal]}
    return web.json_response(body, status=400)


def _grant_fields(content_type: str, raw: bytes) -> dict[str, str] | None:
    """The grant's fields from a form or JSON body; None when neither parses."""
    try:
        if content_type == "application/x-www-form-urlencoded":
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        body = json.loads(raw) if content_type == "application/json" else None
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    return {str(k): str(v) for k, v in body.items() if v is not None}


async def get_state(request: web.Request) -> web.Response:
    """``GET /_mock/state``."""
    snapshot = request.app[STATE].snapshot()
    deliveries = request.app[SENDER].deliveries.values()
    snapshot["webhooks"] = [{"topic": d.topic, **d.outcome()} for d in deliveries]
    return web.json_response(snapshot)


async def post_order(request: web.Request, args: Args) -> Args:
    """``POST /_mock/orders {sku, quantity}``: a shopper buys; orders/create fires."""
    try:
        quantity = int(args.get("quantity", 1))
        order, events = place_order(request.app[STATE], str(args["sku"]), quantity)
    except OrderRefused as err:
        raise Refused(409, str(err)) from err
    except (ValueError, KeyError, TypeError) as err:
        raise Refused(400, f"bad order: {err}") from err
    webhooks = request.app[SENDER].send(events)
    return {"order_id": order.order_id, "name": f"#{order.number}", "webhooks": webhooks}


async def post_cancel(request: web.Request, args: Args) -> Args:
    """``POST /_mock/orders/{order_id}/cancel``: units return; orders/cancelled fires."""
    try:
        order, events = cancel_order(request.app[STATE], int(args["order_id"]))
    except OrderRefused as err:
        raise Refused(409, str(err)) from err
    except ValueError as err:
        raise Refused(400, "bad order id") from err
    return {"order_id": order.order_id, "webhooks": request.app[SENDER].send(events)}


async def post_redeliver(request: web.Request, args: Args) -> Any:
    """``POST /_mock/redeliver {webhook_id}``: send a recorded webhook again, unchanged."""
    if "webhook_id" not in args:
        raise Refused(400, 'body must be {"webhook_id": ...}')
    delivery = await request.app[SENDER].redeliver(str(args["webhook_id"]))
    if delivery is None:
        raise Refused(404, "unknown webhook_id")
    return delivery.outcome()


class OrderRefused(ValueError):
    """The order cannot be placed (unknown SKU, bad quantity, not enough stock)."""


def place_order(state: ShopifyMockState, sku: str, quantity: int) -> tuple[MockOrder, Events]:
    """Place an order at the primary location (refused beyond what is available: inventory
    policy ``deny``); return it and the webhooks it triggers."""
    variant = state.variant_by_sku(sku)
    if variant is None:
        raise OrderRefused(f"unknown sku {sku!r}")
    if quantity < 1:
        raise OrderRefused("quantity must be at least 1")
    location, now = state.primary_location, state.clock.now()
    available = state.available(variant, location.gid)
    if available < quantity:
        raise OrderRefused(f"only {available} available")
    number = 1001 + len(state.orders)
    price = state.listing(variant).price
    line = OrderLine(LINE_ID_BASE + number, variant.gid, sku, quantity, price)
    order = MockOrder(ORDER_ID_BASE + number, number, [line], location.gid, now, now)
    state.orders[order.order_id] = order
    return order, [("orders/create", order_payload(state, order)), *_commit(state, order, 1)]


def cancel_order(state: ShopifyMockState, order_id: int) -> tuple[MockOrder, Events]:
    """Cancel an open order: its units return to available."""
    order = state.orders.get(order_id)
    if order is None:
        raise OrderRefused(f"unknown order {order_id}")
    if order.cancelled_at is not None:
        raise OrderRefused("order already cancelled")
    order.cancelled_at = order.updated_at = state.clock.now()
    for line in order.lines:
        line.current_quantity = 0
    return order, [("orders/cancelled", order_payload(state, order)), *_commit(state, order, -1)]


def _commit(state: ShopifyMockState, order: MockOrder, sign: int) -> Events:
    """Move an order's units from available to committed (``sign`` 1) or back (-1)."""
    location = state.location(order.location_gid) or state.primary_location
    events: Events = []
    for line in order.lines:
        variant = state.variants[line.variant_gid]
        state.committed[variant.item_gid] += sign * line.quantity
        available = state.available(variant, location.gid) - sign * line.quantity
        state.set_available(variant, location.gid, available)
        payload = inventory_level_payload(state, variant, location, order.updated_at)
        events.append(("inventory_levels/update", payload))
    return events


async def run_shopper(state: ShopifyMockState, dispatch: Callable[[Events], object]) -> None:
    """Buy 1–2 units of a random in-stock variant at ``shopper_orders_per_min`` (exponential
    gaps) until cancelled."""
    rate, primary = state.shopper_orders_per_min, state.primary_location.gid
    while rate > 0:
        await state.sleep(state.rng.expovariate(rate / 60.0))
        in_stock = sorted(
            (v for v in state.variants.values() if state.available(v, primary)),
            key=lambda v: v.sku,
        )
        if not in_stock:
            continue
        variant = state.rng.choice(in_stock)
        quantity = min(state.available(variant, primary), state.rng.choice((1, 1, 1, 2)))
        order, events = place_order(state, variant.sku, quantity)
        log.info("mock_shopify.order", order=order.number, sku=variant.sku)
        dispatch(events)
