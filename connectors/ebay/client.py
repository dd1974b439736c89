"""One eBay REST exchange: bearer token, marketplace headers, daily quota, error mapping, retries.

Every call goes through ``retrying``: 429 (errorId 2001) is a ``RateLimitedError`` (eBay sends
no dependable rate headers, so the wait is ``Retry-After`` if present, else the backoff); 5xx,
408 and timeouts back off; any other 4xx is a ``RejectedUpdateError`` carrying eBay's own
``errors[0].errorId`` and message. A 401 drops the token and re-sends once with a fresh one; a
second 401 (or a 403: missing scope) is a ``ChannelAuthError``. Each attempt is counted against
its API family's daily quota first; a call over the quota is not made (``QuotaExhaustedError``).
eBay publishes daily quotas rather than per-second rates and sends no dependable rate headers,
so each API family is paced by a client-side ``TokenBucket`` (``settings.rate_limits``, an
assumption the operator tunes); a 429 drains that family's bucket and the retry waits for it.
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
from connectors.ratelimit import TokenBucket
from connectors.retry import RetryPolicy, retrying, transport_errors
from domain.errors import (
    ChannelAuthError,
    RateLimitedError,
    RejectedUpdateError,
    TransientChannelError,
)

log = structlog.get_logger(__name__)

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
        # One bucket per API family of this account (the families share eBay's counters).
        self.buckets = {
            family: TokenBucket(limit, deps.clock, deps.sleep)
            for family, limit in settings.rate_limits.items()
        }
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
        refreshed = False

        async def attempt() -> Answer:
            nonlocal refreshed
            while True:
                value = await auth.token()
                try:
                    response = await self._send(op, family, method, path, value, params, body)
                except TransientChannelError as err:
                    if on_unanswered is not None and isinstance(err.__cause__, _UNANSWERED):
                        await on_unanswered()
                    raise
                if response.status_code == 401 and not refreshed:
                    # An expired or revoked token: one fresh token and one re-send per call.
                    refreshed = True
                    auth.invalidate(value)
                    log.info("ebay.token.refused", operation=op, kind=auth.kind)
                    continue
                return _result(op, response, auth)

        return await retrying(
            attempt,
            clock=self.deps.clock,
            bucket=self.buckets.get(family),
            policy=self.policy,
            sleep=self.deps.sleep,
        )

    async def _send(
        self,
        op: str,
        family: str,
        method: str,
        path: str,
        token: str,
        params: Mapping[str, str] | None,
        body: Any,
    ) -> httpx.Response:
        if not await self.quotas.take(family):
            raise QuotaExhaustedError(
                f"{op}: daily {family} quota of {self.quotas.quotas.get(family)} calls used",
                code=QUOTA_EXHAUSTED,
            )
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": JSON_CONTENT_TYPE,
            "Accept-Language": LANGUAGE,
            MARKETPLACE_HEADER: self.settings.marketplace_id,
        }
        content = None
        if body is not None:
            headers["Content-Type"] = JSON_CONTENT_TYPE
            headers["Content-Language"] = LANGUAGE
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        with transport_errors(op):
            self.calls += 1
            return await self.deps.http.request(
                method,
                self.settings.api_base + path,
                params=params,
                content=content,
                headers=headers,
                timeout=self.settings.request_timeout_s,
            )


# Failures after the request went out: the server may have acted on it (a connect or pool
# timeout means it never left).
_UNANSWERED = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError)


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
    text = f"{op}: HTTP {status} {code}: {message}"
    if status == 429 or code == str(THROTTLED_ERROR_ID):
        raise RateLimitedError(text, retry_after_s=_retry_after(response), code=code, status=status)
    if status >= 500 or status == 408:
        raise TransientChannelError(text, code=code, status=status)
    if status in (401, 403):
        raise ChannelAuthError(f"{op}: eBay refused the {auth.kind} token ({code})", status=status)
    raise RejectedUpdateError(text, code=code, status=status)


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


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
