"""One eBay REST exchange: bearer token, marketplace headers, daily quota, error mapping, retries.

Every call goes through ``connectors.http.send``: 429 (errorId 2001) is a ``RateLimitedError`` (eBay
sends no dependable rate headers, so the wait is ``Retry-After`` if present, else the backoff); 5xx,
408 and timeouts back off; any other 4xx is a ``RejectedUpdateError`` carrying eBay's own
``errors[0].errorId`` and message. A 401 drops the token and re-sends once with a fresh one; a
second 401 (or a 403: missing scope) is a ``ChannelAuthError``. Each attempt is counted against its
API family's daily quota first; a call over the quota is not made (``QuotaExhaustedError``). eBay
publishes daily quotas rather than per-second rates and sends no dependable rate headers, so each
API family is paced by a client-side ``TokenBucket`` (``settings.rate_limits``, an assumption the
operator tunes); a 429 drains that family's bucket and the retry waits for it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import structlog

from connectors.base import ChannelDeps
from connectors.ebay.auth import EbayAuth, OAuthToken
from connectors.ebay.budget import DailyQuotas, QuotaExhaustedError
from connectors.ebay.const import (
    JSON_CONTENT_TYPE,
    LANGUAGE,
    MARKETPLACE_HEADER,
    QUOTA_EXHAUSTED,
    THROTTLED_ERROR_ID,
)
from connectors.ebay.models import EbaySettings
from connectors.http import (
    ErrorTable,
    MarketplaceClient,
    MarketplaceProfile,
    buckets,
    error,
    json_request,
    retry_after,
)
from connectors.retry import RetryPolicy
from domain.errors import ChannelAuthError, RateLimitedError, TransientChannelError

log = structlog.get_logger(__name__)

# A refused user or application token is answered 401: one re-send with a new one; a second 401
# (or a 403: a missing scope) is a ChannelAuthError. Throttling is errorId 2001 whatever the
# status. 409 stays a rejection (the shared default).
PROFILE = MarketplaceProfile(
    "ebay",
    refused=frozenset({401}),
    errors=ErrorTable(codes={str(THROTTLED_ERROR_ID): RateLimitedError}),
)

Principal = Literal["user", "application"]


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful exchange: HTTP status (200, 207...) and the parsed JSON body."""

    status: int
    body: dict[str, Any]


class EbayClient:
    """One seller account's eBay REST client (owns its tokens and its daily call counters)."""

    def __init__(
        self,
        settings: EbaySettings,
        deps: ChannelDeps,
        policy: RetryPolicy | None = None,
        *,
        name: str = "ebay",
    ) -> None:
        self.settings = settings
        self.deps = deps
        self.policy = policy or RetryPolicy()
        # Counted per channel (a channel is one application's keys: eBay counts per application).
        self.quotas = DailyQuotas(deps.ledger, name, deps.clock, settings.daily_call_quotas)
        self.auth = EbayAuth(settings, deps, self.quotas, self.policy)
        self.cores: dict[Principal, MarketplaceClient] = {
            "user": MarketplaceClient(PROFILE, self.auth.user, deps, self.policy),
            "application": MarketplaceClient(PROFILE, self.auth.application, deps, self.policy),
        }
        # One bucket per API family of this account (the families share eBay's counters).
        self.buckets = buckets(settings.rate_limits, deps)
        self.calls = 0  # HTTP requests sent to the REST APIs (tests, metrics)

    async def call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        family: str,
        principal: Principal = "user",
        params: Mapping[str, str] | None = None,
        body: Any = None,
        on_unanswered: Callable[[], Awaitable[None]] | None = None,
    ) -> Answer:
        """Send one operation (retried, counted) and return its status and JSON body.

        ``on_unanswered`` is called for each attempt that was sent but never answered (a read
        timeout, a dropped connection): eBay may have applied it, and a retry applies it again.
        """
        auth = self.auth.user if principal == "user" else self.auth.application

        async def prepare(request: httpx.Request, token: str) -> None:
            # Every send (the re-send included) is counted against the family's daily quota.
            if not await self.quotas.take(family):
                raise QuotaExhaustedError(
                    f"{op}: daily {family} quota of {self.quotas.quotas.get(family)} calls used",
                    code=QUOTA_EXHAUSTED,
                )
            request.headers["Authorization"] = f"Bearer {token}"
            self.calls += 1

        request = json_request(
            self.deps,
            method,
            self.settings.api_base + path,
            headers={
                "Accept": JSON_CONTENT_TYPE,
                "Accept-Language": LANGUAGE,
                MARKETPLACE_HEADER: self.settings.marketplace_id,
            },
            body=body,
            body_headers={"Content-Type": JSON_CONTENT_TYPE, "Content-Language": LANGUAGE},
            encode=_encode,
            params=params,
            timeout_s=self.settings.request_timeout_s,
        )
        return await self.cores[principal].send(
            op,
            request,
            lambda response: _result(op, response, auth),
            prepare,
            bucket=self.buckets.get(family),
            on_unanswered=on_unanswered,
            kind=auth.kind,
        )


def _encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _result(op: str, response: httpx.Response, auth: OAuthToken) -> Answer:
    status = response.status_code
    if 200 <= status < 300:
        if not response.content:
            return Answer(status, {})
        try:
            body = response.json()
        except ValueError as err:
            raise TransientChannelError(f"{op}: HTTP {status} with a non-JSON body") from err
        if not isinstance(body, dict):
            raise TransientChannelError(f"{op}: HTTP {status} body is not a JSON object")
        return Answer(status, body)
    code, message = ebay_error(response)
    kind = PROFILE.errors.classify(status, code)
    if kind is ChannelAuthError:
        raise ChannelAuthError(f"{op}: eBay refused the {auth.kind} token ({code})", status=status)
    text = f"{op}: HTTP {status} {code}: {message}"
    raise error(kind, text, code=code, status=status, retry_after_s=retry_after(response))


def ebay_error(response: httpx.Response) -> tuple[str, str]:
    """eBay's ``errors[0]`` errorId (as text) and message, or the HTTP status when absent."""
    fallback = f"HTTP_{response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return fallback, response.reason_phrase or "no body"
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        error_id = first.get("errorId")
        code = (
            str(error_id)
            if isinstance(error_id, int) and not isinstance(error_id, bool)
            else fallback
        )
        return code, str(first.get("message") or first.get("longMessage") or "")
    return fallback, response.reason_phrase or ""
