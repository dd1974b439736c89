"""The Walmart request function: WM_ headers, error classification, pacing by Walmart's windows.

Every call goes through ``connectors.http.send`` under its operation's ``TokenBucket``. Each
response's ``X-Current-Token-Count`` is adopted into that bucket; when it reads 0, the bucket is set
to refill exactly at ``X-Next-Replenishment-Time`` (epoch ms), so the next call waits for Walmart's
window instead of drawing a 429. A 429 drains the bucket the same way and is retried; 5xx, 408 and
timeouts back off; a 401 (expired token, ``UNAUTHORIZED.GMP_GATEWAY_API``) refreshes the token and
re-sends once; any other 4xx is a ``RejectedUpdateError`` with Walmart's code and text.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from connectors.base import ChannelDeps
from connectors.http import AccountClient, MarketplaceProfile, error, json_body, json_request
from connectors.retry import RetryPolicy
from connectors.walmart.auth import WalmartAuth
from connectors.walmart.const import (
    ACCESS_TOKEN_HEADER,
    CORRELATION_HEADER,
    JSON,
    RATE_LIMITS,
    REPLENISH_HEADER,
    SERVICE_NAME_HEADER,
    TOKEN_COUNT_HEADER,
)
from connectors.walmart.models import WalmartSettings, error_details
from domain.errors import RateLimitedError

log = structlog.get_logger(__name__)

# An expired or revoked token is answered 401 (UNAUTHORIZED.GMP_GATEWAY_API): one re-send with a
# new one. 409 stays a rejection (the shared default).
PROFILE = MarketplaceProfile("walmart", refused=frozenset({401}))

# A feed file part: (filename, bytes, content type).
FilePart = tuple[str, bytes, str]


class WalmartClient(AccountClient[WalmartSettings, WalmartAuth]):
    """One seller account's Walmart API client (owns its buckets and its access token)."""

    profile = PROFILE
    rate_limits = RATE_LIMITS

    def make_auth(
        self, settings: WalmartSettings, deps: ChannelDeps, policy: RetryPolicy | None
    ) -> WalmartAuth:
        """The seller's client-credentials token."""
        return WalmartAuth(settings, deps, policy)

    async def call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        file: FilePart | None = None,
    ) -> Any:
        """Send one operation (paced, retried) and return its parsed JSON body."""
        url = self.settings.api_base + path
        if params:
            # Walmart wants every special character of a SKU escaped and a space as %20, never
            # '+' (inventory.json ``sku``): encode the query ourselves.
            url += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
        request = json_request(
            self.deps,
            method,
            url,
            headers={SERVICE_NAME_HEADER: self.settings.service_name, "Accept": JSON},
            body=body,
            # httpx writes multipart/form-data with its boundary
            files=None if file is None else {"file": file},
            timeout_s=self.settings.request_timeout_s,
        )
        # The re-send after a refused token is a call Walmart counts too.
        return await self.core.send(
            op,
            request,
            lambda r: self._result(op, r),
            _stamp,
            bucket=self.buckets[op],
            pace_resend=True,
        )

    def _result(self, op: str, response: httpx.Response) -> Any:
        status = response.status_code
        wait = self._pace(op, response)
        if 200 <= status < 300:
            return json_body(op, response)
        code, message = error_details(response.content, status)
        kind = PROFILE.errors.classify(status)
        after = None
        if kind is RateLimitedError and wait is not None:
            # ``retrying`` drains the bucket by ``retry_after_s``: from 0 tokens, one token then
            # comes back after 1/rate + retry_after_s, so this puts it exactly at Walmart's
            # X-Next-Replenishment-Time (a negative value when that is sooner than 1/rate).
            after = wait - 1.0 / self.buckets[op].rate
        text = f"{op}: HTTP {status} {code}: {message}"
        raise error(kind, text, code=code, status=status, retry_after_s=after)

    def _pace(self, op: str, response: httpx.Response) -> float | None:
        """Adopt Walmart's reading of this operation's window into its bucket.

        Returns the seconds until Walmart adds the next token when the window is empty.
        """
        bucket = self.buckets[op]
        count = _int(response.headers.get(TOKEN_COUNT_HEADER))
        if count is None:
            if response.status_code == 429:
                bucket.drain()
            return None
        bucket.observe(max(count, 0))
        if count > 0:
            return None
        wait = self._until_replenished(response)
        if wait is None:
            bucket.drain()
            return None
        if response.status_code == 429:
            return wait  # the 0 observed stays; retrying's drain adds the wait (see _result)
        # Tokens such that the next acquire waits ``wait`` seconds (plus the jitter guard) at the
        # bucket's pacing rate:
        # (1 - tokens) / rate = wait. (Draining by ``wait - 1/rate`` clamped at 0 made a window
        # that reopens in milliseconds cost a whole 1/rate: six minutes for a 10/h feed type.)
        bucket.observe(1.0 - wait * bucket.rate)
        log.info("walmart.window.empty", operation=op, wait_s=round(wait, 3))
        return wait

    def _until_replenished(self, response: httpx.Response) -> float | None:
        at_ms = _int(response.headers.get(REPLENISH_HEADER))
        if at_ms is None:
            return None
        return max(0.0, at_ms / 1000 - self.deps.clock.now().timestamp())


async def _stamp(request: httpx.Request, token: str) -> None:
    request.headers[ACCESS_TOKEN_HEADER] = token
    # A fresh id per request (retries and the re-send included): Walmart traces each one.
    request.headers[CORRELATION_HEADER] = str(uuid.uuid4())


def _int(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None
