"""The mock Walmart Marketplace (US) application: the gateway in front of every API route
(WM_* headers 400, ``WM_SEC.ACCESS_TOKEN`` 401, the API's token bucket 429, faults, rate-limit
headers on every answer), ``/v3/token``, the ``/_mock`` control routes and the ticker.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web

from connectors.mock.faults import Fault
from connectors.mock.kit.control import Action as ControlAction
from connectors.mock.kit.control import Refused, add_control_routes, found, positive
from connectors.mock.kit.serving import Runtime, Starter, running, ticker
from connectors.mock.kit.wire import basic_auth
from connectors.mock.market import MockListing
from connectors.mock.walmart import const, endpoints  # noqa: F401
from connectors.mock.walmart.events import Event, dispatch
from connectors.mock.walmart.feeds import advance_feeds
from connectors.mock.walmart.offers import (
    buy_box_changed,
    competitors_move,
    is_live,
    place_order,
    set_reference,
)
from connectors.mock.walmart.purchases import cancel_line
from connectors.mock.walmart.state import RUNTIME_KEY, STATE_KEY, WalmartMockState
from connectors.mock.walmart.wire import ROUTES, Route, WireError, api, epoch_ms, error_body

_GATEWAY_CONTENT = "INVALID_REQUEST_CONTENT.GMP_GATEWAY_API"


def rate_headers(state: WalmartMockState, bucket: str | None) -> dict[str, str]:
    """Tokens left in the API's bucket and the epoch ms at which the next one is added."""
    if bucket is None or bucket not in state.rate_limits:
        return {}
    tokens = state.bucket(bucket)
    available, limit = max(0.0, tokens.available), tokens.limit
    wait = 0.0 if available >= limit.burst else (math.floor(available) + 1 - available) / limit.rate
    next_at = epoch_ms(state.clock.now().timestamp() + wait)
    return {
        const.TOKEN_COUNT_HEADER: str(math.floor(available)),
        const.REPLENISH_HEADER: str(next_at),
    }


def fail(state: WalmartMockState, error: WireError, bucket: str | None) -> web.Response:
    """Walmart's error answer for ``error``, with the API's rate headers."""
    headers = rate_headers(state, bucket)
    if error.status == 429 and headers:
        headers[const.TOKEN_COUNT_HEADER] = "0"  # a throttled seller has no token left
    body = error_body(error, state.error_envelope)
    return web.json_response(body, status=error.status, headers=headers)


def unauthorized(info: str = "Unauthorized token or invalid client details") -> WireError:
    """The 401 Walmart's gateway gives for a missing, bad or expired token or client."""
    return WireError(401, const.UNAUTHORIZED_CODE, "Unauthorized", "UNAUTHORIZED", info)


def throttled() -> WireError:
    """Walmart's 429."""
    info = "You have exceeded the request threshold limit for this API."
    field = "REQUEST_THRESHOLD_VIOLATED"
    return WireError(429, const.THROTTLED_CODE, "Too Many Requests", field, info, "REQUEST")


def check_headers(request: web.Request) -> None:
    """Raise the 400 for a blank ``WM_SVC.NAME`` / ``WM_QOS.CORRELATION_ID``."""
    for name in const.REQUIRED_HEADERS:
        if not request.headers.get(name, "").strip():
            info = "One or more request headers are invalid."
            raise WireError(400, const.BAD_HEADER_CODE, f"{name} set blank or null", name, info)


def check_token(state: WalmartMockState, request: web.Request) -> None:
    """Raise the 401 for a missing, unknown or expired ``WM_SEC.ACCESS_TOKEN`` (Bearer ignored)."""
    presented = request.headers.get(const.ACCESS_TOKEN_HEADER, "")
    expiry = state.tokens.get(presented) if presented else None
    if expiry is None:
        raise unauthorized()
    if state.clock.monotonic() >= expiry:
        raise unauthorized("Access token is expired")


async def take(state: WalmartMockState, bucket: str | None) -> None:
    """Spend one token of ``bucket``, or raise the 429 when it is empty."""
    if not await state.take(bucket):
        state.throttled[str(bucket)] += 1
        raise throttled()


def walmart(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a route's handler with the gateway: headers, token, rate limit, faults, errors."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        state.calls[route.operation] += 1
        bucket = (
            route.bucket(request) if callable(route.bucket) else route.bucket or route.operation
        )
        try:
            check_headers(request)
            check_token(state, request)
            await take(state, bucket)
            fault = await state.fault()
            if fault is Fault.THROTTLE:
                state.throttled[bucket or route.operation] += 1
                raise throttled()
            if fault is Fault.ERROR:
                error = "Internal Server Error"
                raise WireError(500, const.SYSTEM_ERROR_CODE, error, category="SYSTEM")
            advance_feeds(request.app)  # feeds move on lazily with every call
            response = await route.handler(request, state)
        except WireError as exc:
            return fail(state, exc, bucket)
        response.headers.update(rate_headers(state, bucket))
        return response

    return handle


async def token(request: web.Request) -> web.Response:
    """``POST /v3/token``: Basic client id/secret, form ``grant_type=client_credentials``."""
    state = request.app[STATE_KEY]
    state.calls["getToken"] += 1
    try:
        check_headers(request)
        await take(state, "getToken")
        client = basic_auth(request.headers.get("Authorization", ""))
        if client is None or not (
            hmac.compare_digest(client[0], state.client_id)
            and hmac.compare_digest(client[1], state.client_secret)
        ):
            raise unauthorized()
        if request.content_type != "application/x-www-form-urlencoded":
            form = "Content-Type must be application/x-www-form-urlencoded"
            raise WireError(400, _GATEWAY_CONTENT, form, "Content-Type")
        grant = str((await request.post()).get("grant_type", ""))
        if grant != "client_credentials":
            # Sellers' own keys only know client_credentials; the other grants are for Solution
            # Providers with an authorization code (not modelled).
            refused = f"grant_type {grant or '(missing)'} is not supported for this client"
            raise WireError(400, _GATEWAY_CONTENT, refused, "grant_type")
    except WireError as exc:
        return fail(state, exc, "getToken")
    body = {
        "access_token": state.issue_token(),
        "token_type": "Bearer",
        "expires_in": state.token_ttl_s,
    }
    return web.json_response(body, headers=rate_headers(state, "getToken"))


@api("GET", "/v3/token/detail", "getTokenDetail")
async def token_detail(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/token/detail``: the presented token's validity and scopes."""
    expiry = state.tokens[request.headers[const.ACCESS_TOKEN_HEADER]]
    expires = state.clock.now().timestamp() + (expiry - state.clock.monotonic())
    scopes = dict.fromkeys(("item", "price", "inventory", "feeds", "orders"), "full_access")
    body = {
        "scopes": {**scopes, "reports": "view_only"},
        "expire_at": str(epoch_ms(expires)),
        "issued_at": str(epoch_ms(expires - state.token_ttl_s)),
        "is_valid": True,
        "is_channel_match": True,
    }
    return web.json_response(body)


# --- the /_mock control routes (tests and the demo; no Walmart auth, never on Walmart) ------


Body = dict[str, Any]
Answer = tuple[list[Event], Any]  # the events to push, the JSON answer
Action = Callable[[web.Request, WalmartMockState, Body], Answer]


def _listing(state: WalmartMockState, body: Body) -> MockListing:
    return found(state.listing(str(body.get("sku", ""))))


def _control(act: Action) -> ControlAction:
    """A control action whose events are pushed, and settled, before it answers."""

    async def do(request: web.Request, body: Body) -> Any:
        try:
            events, answer = act(request, request.app[STATE_KEY], body)
        except WireError as exc:  # Walmart's own refusal (of a cancellation, say)
            raise Refused(exc.status, exc.description) from exc
        dispatch(request.app, events)
        await request.app[RUNTIME_KEY].settle()
        return answer

    return do


def _notify(_: web.Request, state: WalmartMockState, body: Body) -> Answer:
    """``POST /_mock/notify {sku, type?}``: competitors move; BUY_BOX_CHANGED is pushed."""
    if body.get("type", "BUY_BOX_CHANGED") != "BUY_BOX_CHANGED":
        raise Refused(400, "type must be BUY_BOX_CHANGED (status events follow price writes)")
    listing = _listing(state, body)
    competitors_move(state, listing)
    event = buy_box_changed(state, listing)
    return ([event] if event else []), {"sent": event is not None}


def _reference(_: web.Request, state: WalmartMockState, body: Body) -> Answer:
    """``POST /_mock/reference {sku, referencePrice}``: Walmart revises the reasonable price
    (the offer is unpublished or republished as the new band says)."""
    listing = _listing(state, body)
    raw = body.get("referencePrice")
    try:
        value = Decimal(str(raw)) if isinstance(raw, int | float | str) else None
    except InvalidOperation:
        value = None
    if value is None or isinstance(raw, bool) or not value.is_finite() or value <= 0:
        raise Refused(400, "referencePrice must be a positive number")
    events = set_reference(state, listing, value)
    return events, {"sent": [e.event_type for e in events]}


def _order(_: web.Request, state: WalmartMockState, body: Body) -> Answer:
    """``POST /_mock/orders {sku, quantity}``: a shopper buys; stock drops; PO_CREATED."""
    listing = _listing(state, body)
    quantity = positive(body)
    if not is_live(state, listing) or listing.quantity < quantity:
        raise Refused(409, "not enough buyable stock")
    event = place_order(state, listing, quantity)
    po = event.payload["purchaseOrderId"]
    return [event], {"sku": listing.sku, "quantity": listing.quantity, "purchaseOrderId": po}


def _cancel(request: web.Request, state: WalmartMockState, body: Body) -> Answer:
    """``POST /_mock/orders/{po}/cancel {lineNumber?}``: Walmart auto-cancels the line (default
    "1"): Cancelled, the units come back, PO_LINE_AUTOCANCELLED is pushed."""
    po = request.match_info["po"]
    event = cancel_line(state, po, str(body.get("lineNumber", "1")))
    listing = state.listing(event.sku)
    quantity = listing.quantity if listing else 0
    return [event], {"purchaseOrderId": po, "sku": event.sku, "quantity": quantity}


def _view(state: WalmartMockState, listing: MockListing) -> dict[str, Any]:
    meta = state.meta_of(listing)
    rivals = state.market.competitors.get(listing.sku, [])
    return {
        "sku": listing.sku,
        "itemId": meta.item_id,
        "price": f"{listing.price:.2f}",
        "currency": listing.currency,
        "quantity": listing.quantity,
        "fulfillment": listing.fulfillment.value,
        "publishedStatus": meta.published_status,
        "unpublishedReasons": list(meta.reasons),
        "referencePrice": f"{meta.reference_price:.2f}",
        "competitors": [
            {"seller_id": c.seller_id, "price": f"{c.price:.2f}", "shipping": f"{c.shipping:.2f}"}
            for c in rivals
        ],
    }


async def get_state(request: web.Request) -> web.Response:
    """``GET /_mock/state``: offers, counters, 429s, applied writes, feeds, pushed events."""
    state = request.app[STATE_KEY]
    body = {
        "partnerId": state.partner_id,
        "listings": [_view(state, listing) for listing in state.market.listings.values()],
        **state.counted(),
        "feeds": {fid: feed.status for fid, feed in state.feeds.items()},
        "subscriptions": len(state.subscriptions),
        "events": [
            {"type": e.event_type, "id": e.event_id, "sku": e.sku, "status": e.status}
            for e in state.events
        ],
    }
    return web.json_response(body)


CONTROL_ACTIONS: dict[str, Action] = {
    "notify": _notify,
    "reference": _reference,
    "orders": _order,
    "orders/{po}/cancel": _cancel,
    "settle": lambda *_: ([], {"ok": True}),  # wait until every pending delivery is done
}


async def tick(app: web.Application, last_push: float) -> float:
    """One ticker step: advance feeds; move competitors + BUY_BOX_CHANGED when due; return the
    monotonic time of the last periodic push."""
    state = app[STATE_KEY]
    advance_feeds(app)
    interval = state.notify_interval_s
    now = state.clock.monotonic()
    if interval is None or now - last_push < interval or not state.market.listings:
        return last_push
    listing = state.rng.choice(list(state.market.listings.values()))
    events = competitors_move(state, listing)
    if not events:
        event = buy_box_changed(state, listing)
        events = [event] if event is not None else []
    dispatch(app, events)
    return now


async def _background(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME_KEY]
    async with aiohttp.ClientSession() as session:
        runtime.session = session
        state = app[STATE_KEY]
        work = ticker(state.ticker_s, partial(tick, app), state.clock.monotonic())
        async with running(work, "walmart-mock-ticker"):
            yield
        await runtime.settle()
        runtime.session = None


def make_app(state: WalmartMockState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # feed files can be large
    app[STATE_KEY] = state
    app[RUNTIME_KEY] = Runtime()
    app.router.add_post("/v3/token", token)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, walmart(route))
    actions = {path: _control(action) for path, action in CONTROL_ACTIONS.items()}
    add_control_routes(app, STATE_KEY, get_state, actions)
    app.cleanup_ctx.append(_background)
    return app


start = Starter(make_app, "walmart")
