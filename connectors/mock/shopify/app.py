"""The mock Shopify Admin GraphQL server (aiohttp) and its ``/_mock/`` control routes.

Only API version 2026-04 is served (its inventory semantics are what the mock implements):
``/admin/api/<other version>/graphql.json`` answers 404, as Shopify does for a version it does not
know. Control routes are unauthenticated: the mock only ever listens on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable
from typing import Any

from aiohttp import web
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values
from graphql.language import FragmentDefinitionNode

from connectors.mock.faults import Fault
from connectors.mock.kit.control import add_control_routes
from connectors.mock.kit.serving import Starter
from connectors.mock.shopify.cost import QueryCost
from connectors.mock.shopify.graphql_ruby import RULES, variable_errors
from connectors.mock.shopify.mutations import MutationRoot
from connectors.mock.shopify.oauth import authorized, grant
from connectors.mock.shopify.resolvers import QueryRoot, RequestContext
from connectors.mock.shopify.schema import shopify_schema
from connectors.mock.shopify.shopper import (
    Events,
    OrderRefused,
    cancel_order,
    place_order,
    run_shopper,
)
from connectors.mock.shopify.state import ShopifyMockState
from connectors.mock.shopify.webhooks import WebhookSender

STATE: web.AppKey[ShopifyMockState] = web.AppKey("state", ShopifyMockState)
SENDER: web.AppKey[WebhookSender] = web.AppKey("sender", WebhookSender)
SHOPPER: web.AppKey[asyncio.Task[None]] = web.AppKey("shopper", asyncio.Task)

UNAUTHORIZED = "[API] Invalid API key or access token (unrecognized login or wrong password)"
RATE_LIMIT_DOC = "https://shopify.dev/api/usage/rate-limits"
MAX_COST_TEXT = (
    "Query cost is {cost}, which exceeds the single query max cost limit ({max}).\n\n"
    "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
    "cost of a query is calculated.\n\n"
    "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
    "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
)


def make_app(state: ShopifyMockState) -> web.Application:
    """The aiohttp application serving one mock store."""
    app = web.Application()
    app[STATE] = state
    app[SENDER] = WebhookSender(state)
    app.router.add_post("/admin/api/{version}/graphql.json", graphql_endpoint)
    app.router.add_post("/admin/oauth/access_token", access_token)
    add_control_routes(
        app,
        STATE,
        get_state,
        {
            "orders": post_order,
            "orders/{order_id}/cancel": post_cancel,
            "redeliver": post_redeliver,
        },
    )
    app.on_startup.append(_start_shopper)
    app.on_cleanup.append(_cleanup)
    return app


start = Starter(make_app, "shopify")


async def _start_shopper(app: web.Application) -> None:
    state, sender = app[STATE], app[SENDER]
    if state.shopper_orders_per_min > 0:
        app[SHOPPER] = asyncio.get_running_loop().create_task(
            run_shopper(state, lambda events: _dispatch_quietly(sender, events))
        )


async def _cleanup(app: web.Application) -> None:
    task = app.get(SHOPPER)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app[SENDER].close()


def dispatch(sender: WebhookSender, events: Events) -> list[str]:
    """Send the webhooks of one action (they share an ``X-Shopify-Event-Id``)."""
    event_id = str(uuid.uuid4())
    return [sender.emit(topic, payload, event_id).webhook_id for topic, payload in events]


def _dispatch_quietly(sender: WebhookSender, events: Events) -> None:
    dispatch(sender, events)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


# -- GraphQL endpoint -------------------------------------------------------------------------


async def graphql_endpoint(request: web.Request) -> web.Response:
    """``POST /admin/api/2026-04/graphql.json``."""
    state, sender = request.app[STATE], request.app[SENDER]
    if request.match_info["version"] != state.api_version:
        return _json({"errors": "Not Found"}, status=404)
    if not authorized(state, request.headers.get("X-Shopify-Access-Token", "")):
        state.counters.unauthorized += 1
        return _json({"errors": UNAUTHORIZED}, status=401)
    try:
        body = json.loads(await request.read())
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return _json({"errors": {"query": "Required parameter missing or invalid"}}, status=400)
    state.counters.calls += 1
    headers = {"X-Shopify-API-Version": state.api_version, "X-Request-Id": str(uuid.uuid4())}
    fault = state.faults.draw()
    if fault is Fault.ERROR:
        return _server_error(state, headers)
    if fault is Fault.TIMEOUT:
        state.counters.timeouts_injected += 1
        await state.sleep(state.faults.hang_s)
    answer = await _run(state, body, fault is Fault.THROTTLE, headers)
    if answer.events:
        dispatch(sender, answer.events)
    return answer.response


async def access_token(request: web.Request) -> web.Response:
    """``POST /admin/oauth/access_token``: the client-credentials grant (see ``oauth``)."""
    status, body = grant(request.app[STATE], request.content_type, await request.read())
    return _json(body, status=status)


class _Answer:
    def __init__(self, response: web.Response, events: Events | None = None) -> None:
        self.response, self.events = response, events or []


def _server_error(state: ShopifyMockState, headers: dict[str, str]) -> web.Response:
    state.counters.errors_injected += 1
    request_id = headers["X-Request-Id"]
    # Alternate 500 and 503, both with the body Shopify's GraphQL gateway sends.
    status = 500 if state.counters.errors_injected % 2 else 503
    message = (
        "Internal error. Looks like something went wrong on our end.\n"
        f"Request ID: {request_id} (include this in support requests)."
    )
    body = {
        "errors": [
            {
                "message": message,
                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
            }
        ]
    }
    return _json(body, status=status, headers=headers)


def _cost(state: ShopifyMockState, requested: int | None, actual: int | None) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": state.bucket.status(),
        }
    }


def _errors(
    state: ShopifyMockState,
    errors: list[GraphQLError],
    headers: dict[str, str],
    requested: int | None = 0,
) -> _Answer:
    body = {"errors": [e.formatted for e in errors], "extensions": _cost(state, requested, None)}
    return _Answer(_json(body, headers=headers))


def _throttled(state: ShopifyMockState, requested: int | None, headers: dict[str, str]) -> _Answer:
    state.counters.throttled += 1
    every = state.throttle_429_every
    if every and state.counters.throttled % every == 0:
        state.counters.http_429 += 1
        refusal = {
            "errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
            "resume uninterrupted service."
        }
        return _Answer(_json(refusal, status=429, headers={**headers, "Retry-After": "2.0"}))
    error = {
        "message": "Throttled",
        "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOC},
    }
    body = {"errors": [error], "extensions": _cost(state, requested, None)}
    return _Answer(_json(body, headers=headers))


async def _run(
    state: ShopifyMockState, body: dict[str, Any], inject_throttle: bool, headers: dict[str, str]
) -> _Answer:
    schema = shopify_schema()
    try:
        document = parse(body["query"])
    except GraphQLError as err:
        return _errors(state, [err], headers, None)
    problems = validate(schema, document, RULES)
    if problems:
        return _errors(state, list(problems), headers, None)
    operation_name = body.get("operationName")
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        message = (
            f'Unknown operation named "{operation_name}".'
            if operation_name
            else "Must provide operation name if query contains multiple operations."
        )
        return _errors(state, [GraphQLError(message)], headers, None)
    operation = operations[0]
    raw_variables = body.get("variables") or {}
    if not isinstance(raw_variables, dict):
        return _errors(state, [GraphQLError("Variables must be an object")], headers, None)
    definitions = operation.variable_definitions or ()
    refused = variable_errors(schema, definitions, raw_variables)
    if refused:
        return _errors(state, refused, headers, None)
    coerced = get_variable_values(schema, definitions, raw_variables)
    if isinstance(coerced, list):  # what graphql-ruby's checks above let through (none known)
        return _errors(state, coerced, headers, None)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    costs = QueryCost(schema, fragments, coerced.coerced)
    requested = costs.requested(operation)
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
        return _errors(state, [error], headers, requested)
    if not state.bucket.try_take(requested):
        return _throttled(state, requested, headers)
    fields = [s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)]
    state.counters.operations.update(fields)
    if state.keep_requests:
        state.requests.append({"fields": fields, "variables": raw_variables})
    context = RequestContext(state)
    is_mutation = operation.operation == OperationType.MUTATION
    root: QueryRoot | MutationRoot = MutationRoot() if is_mutation else QueryRoot()
    outcome = execute_operation(schema, document, root, context, raw_variables, operation_name)
    result = await outcome if isinstance(outcome, Awaitable) else outcome
    actual = costs.actual(operation, result.data)
    state.bucket.refund(requested - actual)
    state.counters.points_requested += requested
    state.counters.points_actual += actual
    answer: dict[str, Any] = {}
    if result.errors:
        answer["errors"] = [e.formatted for e in result.errors]
    answer["data"] = result.data
    answer["extensions"] = _cost(state, requested, actual)
    return _Answer(_json(answer, headers=headers), context.events)


def execute_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    root: QueryRoot | MutationRoot,
    context: RequestContext,
    variables: dict[str, Any],
    operation_name: str | None,
) -> ExecutionResult | Awaitable[ExecutionResult]:
    """Run the validated operation with graphql-core's executor."""
    return execute(
        schema,
        document,
        root_value=root,
        context_value=context,
        variable_values=variables,
        operation_name=operation_name,
    )


# -- control routes ---------------------------------------------------------------------------


async def get_state(request: web.Request) -> web.Response:
    """``GET /_mock/state``."""
    state, sender = request.app[STATE], request.app[SENDER]
    snapshot = state.snapshot()
    snapshot["webhooks"] = [
        {
            "webhook_id": d.webhook_id,
            "topic": d.topic,
            "attempts": d.attempts,
            "status": d.status,
            "error": d.error,
        }
        for d in sender.deliveries.values()
    ]
    return _json(snapshot)


async def post_order(request: web.Request) -> web.Response:
    """``POST /_mock/orders {sku, quantity}``: a shopper buys; orders/create fires."""
    state, sender = request.app[STATE], request.app[SENDER]
    try:
        body = await request.json()
        sku, quantity = body["sku"], int(body.get("quantity", 1))
        order, events = place_order(state, str(sku), quantity)
    except OrderRefused as err:
        return _json({"error": str(err)}, status=409)
    except (ValueError, KeyError, TypeError) as err:
        return _json({"error": f"bad order: {err}"}, status=400)
    webhook_ids = dispatch(sender, events)
    return _json({"order_id": order.order_id, "name": f"#{order.number}", "webhooks": webhook_ids})


async def post_cancel(request: web.Request) -> web.Response:
    """``POST /_mock/orders/{order_id}/cancel``: units return; orders/cancelled fires."""
    state, sender = request.app[STATE], request.app[SENDER]
    try:
        order, events = cancel_order(state, int(request.match_info["order_id"]))
    except OrderRefused as err:
        return _json({"error": str(err)}, status=409)
    except ValueError:
        return _json({"error": "bad order id"}, status=400)
    return _json({"order_id": order.order_id, "webhooks": dispatch(sender, events)})


async def post_redeliver(request: web.Request) -> web.Response:
    """``POST /_mock/redeliver {webhook_id}``: send a recorded webhook again, unchanged."""
    sender = request.app[SENDER]
    try:
        webhook_id = str((await request.json())["webhook_id"])
    except (ValueError, KeyError, TypeError):
        return _json({"error": 'body must be {"webhook_id": ...}'}, status=400)
    delivery = await sender.redeliver(webhook_id)
    if delivery is None:
        return _json({"error": "unknown webhook_id"}, status=404)
    return _json(
        {
            "webhook_id": delivery.webhook_id,
            "attempts": delivery.attempts,
            "status": delivery.status,
            "error": delivery.error,
        }
    )
