"""One Shopify Admin GraphQL exchange: auth header, cost bucket, error mapping, the retry loop.

Shopify rate-limits by *calculated query cost* in one leaky bucket per app and shop: a query runs
only if the bucket holds its requested cost, and every answer reports the bucket
(``extensions.cost.throttleStatus``). The client keeps one ``TokenBucket`` mirroring it, adopts
every reading, and learns each operation's requested cost so the next call of that operation
waits client-side instead of being throttled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import BaseModel, ValidationError

from connectors.base import ChannelDeps
from connectors.http import ErrorTable, MarketplaceClient, MarketplaceProfile, error, retry_after
from connectors.ratelimit import RateLimit, TokenBucket
from connectors.retry import RetryPolicy
from connectors.shopify.auth import make_auth
from connectors.shopify.const import (
    ACCESS_DENIED,
    ACCESS_TOKEN_HEADER,
    COST_LIMIT,
    DEFAULT_COSTS,
    FALLBACK_COST,
    INTERNAL_SERVER_ERROR,
    MAX_QUERY_COST,
    THROTTLED,
)
from connectors.shopify.models import QueryCost, ShopifySettings
from domain.errors import (
    ChannelAuthError,
    RateLimitedError,
    RejectedUpdateError,
    TransientChannelError,
)

log = structlog.get_logger(__name__)

JSON = dict[str, Any]
M = TypeVar("M", bound=BaseModel)

# A refused grant token is answered 401: one re-send with a new one (a static token is not
# refreshable, so its 401 is final). 409 is retried, unlike the shared default, as this client
# always did: the GraphQL endpoint reports a request's own faults in ``errors`` with a 200, so an
# HTTP 409 is taken for a conflict in front of it that a later attempt clears (the guide lists
# no Shopify 409).
PROFILE = MarketplaceProfile(
    "shopify",
    refused=frozenset({401}),
    errors=ErrorTable(overrides={409: TransientChannelError}),
)


class ShopifyClient:
    """Posts GraphQL documents to one shop and returns their ``data``, or raises domain errors."""

    def __init__(
        self, settings: ShopifySettings, deps: ChannelDeps, policy: RetryPolicy | None = None
    ) -> None:
        self.settings = settings
        self.deps = deps
        self.policy = policy or RetryPolicy()
        self.auth = make_auth(settings, deps, self.policy)
        self.core = MarketplaceClient(PROFILE, self.auth, deps, self.policy)
        self.bucket = TokenBucket(COST_LIMIT, deps.clock, deps.sleep)
        # operation -> requested cost Shopify last charged it (what the bucket must hold).
        self.estimates: dict[str, float] = dict(DEFAULT_COSTS)
        self.calls = 0  # HTTP exchanges sent, for tests and metrics

    async def execute(self, operation: str, query: str, variables: Mapping[str, Any]) -> JSON:
        """Run one document under the cost bucket and the shared retry loop; return ``data``."""

        async def prepare(request: httpx.Request, token: str) -> None:
            # The bucket is acquired per send rather than by ``retrying``: the estimate may change
            # between attempts (a THROTTLED answer reports the real requested cost) and the
            # THROTTLED wait is already computed from Shopify's own bucket reading, so draining
            # the bucket on top of it would wait twice.
            await self.bucket.acquire(self.estimate(operation))
            request.headers[ACCESS_TOKEN_HEADER] = token
            self.calls += 1

        request = self.deps.http.build_request(
            "POST",
            self.settings.graphql_url,
            json={"query": query, "variables": dict(variables)},
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            timeout=self.settings.request_timeout_s,
        )
        return await self.core.send(
            f"shopify {operation}",
            request,
            lambda r: self._read(operation, r),
            prepare,
            operation=operation,  # logged as Shopify names it
        )

    def estimate(self, operation: str) -> float:
        """Requested cost we expect ``operation`` to need (learned from Shopify's answers)."""
        return min(self.estimates.get(operation, FALLBACK_COST), float(MAX_QUERY_COST))

    def _read(self, operation: str, response: httpx.Response) -> JSON:
        _raise_for_status(operation, response)
        body = _json_body(operation, response)
        cost = self._observe(operation, body)
        _raise_for_errors(operation, body, cost)
        data = body.get("data")
        if not isinstance(data, dict):
            raise RejectedUpdateError(f"shopify {operation}: answer has no data", code="NO_DATA")
        return data

    def _observe(self, operation: str, body: JSON) -> QueryCost | None:
        """Adopt the bucket reading and the requested cost of one answer."""
        extensions = body.get("extensions")
        raw = extensions.get("cost") if isinstance(extensions, dict) else None
        if not isinstance(raw, dict):
            return None
        try:
            cost = QueryCost.model_validate(raw)
        except ValidationError:
            log.warning("shopify_cost_unreadable", operation=operation)
            return None
        if cost.requested_query_cost is not None and cost.requested_query_cost >= 0:
            self.estimates[operation] = cost.requested_query_cost
        status = cost.throttle_status
        if status is not None and status.maximum_available >= 1 and status.restore_rate > 0:
            if status.maximum_available != self.bucket.limit.burst:
                # The shop's plan decides the bucket size; adopt it before the level.
                self.bucket.limit = RateLimit(status.restore_rate, status.maximum_available)
            self.bucket.observe(status.currently_available, status.restore_rate)
        return cost


def parse(operation: str, value: object, model: type[M]) -> M:
    """``value`` (part of an answer's data) as ``model``; another shape raises a
    ``TransientChannelError`` coded BAD_RESPONSE (the intent stays open: a write may have been
    applied, and reconcile or the next attempt finds out)."""
    try:
        return model.model_validate(value)
    except ValidationError as err:
        raise TransientChannelError(
            f"shopify {operation}: unexpected {model.__name__} shape "
            f"({err.error_count()} problems)",
            code="BAD_RESPONSE",
        ) from err


def _raise_for_status(operation: str, response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    what = f"shopify {operation}: HTTP {status}"
    kind = PROFILE.errors.classify(status)
    if kind is ChannelAuthError:
        # 401: token unknown, revoked or expired; 403: the app lacks a scope or the shop closed.
        raise ChannelAuthError(f"{what} (access token refused)", status=status)
    if kind is RejectedUpdateError:
        # 400 malformed, 402 frozen shop, 404 unknown API version, 423 locked shop.
        raise RejectedUpdateError(
            f"{what}: {_first_message(response)}", code=f"HTTP_{status}", status=status
        )
    raise error(kind, what, status=status, retry_after_s=retry_after(response))


def _json_body(operation: str, response: httpx.Response) -> JSON:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        # A 200 that is not JSON comes from something in front of Shopify (proxy, maintenance).
        raise TransientChannelError(
            f"shopify {operation}: answer is not JSON", status=response.status_code
        ) from err
    if not isinstance(body, dict):
        raise TransientChannelError(f"shopify {operation}: answer is not a JSON object")
    return body


def _raise_for_errors(operation: str, body: JSON, cost: QueryCost | None) -> None:
    errors = body.get("errors")
    if not errors:
        return
    if not isinstance(errors, list):
        # Some auth failures answer {"errors": "[API] Invalid API key or access token ..."}.
        raise RejectedUpdateError(f"shopify {operation}: {errors}", code="GRAPHQL_ERROR")
    codes = [_code(error) for error in errors]
    message = "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))
    what = f"shopify {operation}: {message}"
    if THROTTLED in codes:
        raise RateLimitedError(what, retry_after_s=_throttle_wait(cost), code=THROTTLED)
    if ACCESS_DENIED in codes:
        raise ChannelAuthError(what, code=ACCESS_DENIED)
    if INTERNAL_SERVER_ERROR in codes:
        raise TransientChannelError(what, code=INTERNAL_SERVER_ERROR)
    raise RejectedUpdateError(what, code=next((c for c in codes if c), "GRAPHQL_ERROR"))


def _throttle_wait(cost: QueryCost | None) -> float | None:
    """Seconds until the bucket holds the requested cost: (requested - available) / restore."""
    if cost is None or cost.throttle_status is None or cost.requested_query_cost is None:
        return None
    status = cost.throttle_status
    if status.restore_rate <= 0:
        return None
    return max(0.0, (cost.requested_query_cost - status.currently_available) / status.restore_rate)


def _code(error: object) -> str | None:
    if not isinstance(error, dict):
        return None
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return code if isinstance(code, str) else None


def _first_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("message", response.reason_phrase))
    if isinstance(errors, str):
        return errors
    return response.reason_phrase
