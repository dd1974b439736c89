"""The SP-API request function: auth headers, error classification, one bucket per operation.

Every call goes through ``connectors.http.send`` under its operation's ``TokenBucket`` (paced
inside the published limit by the shared margin; ``x-amzn-RateLimit-Limit``, when Amazon sends
it, replaces the table's rate): a 429 (``QuotaExceeded``, never a Retry-After) drains the bucket
and waits for its refill; 5xx and timeouts back off; any other 4xx is a ``RejectedUpdateError``
carrying Amazon's own code and message. A 403 is what an expired or revoked LWA token gets: the
token is dropped, refreshed and the call re-sent once; a second 403 means the app lacks the role
(``ChannelAuthError``).
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Mapping
from typing import Any

import httpx
import structlog

from connectors.amazon.auth import LwaAuth
from connectors.amazon.const import RATE_LIMIT_HEADER, RATE_LIMITS, USER_AGENT
from connectors.amazon.models import AmazonSettings
from connectors.base import ChannelDeps
from connectors.http import (
    AccountClient,
    ErrorTable,
    MarketplaceProfile,
    error,
    json_body,
    json_request,
    send,
)
from connectors.ratelimit import RateLimit
from connectors.retry import RetryPolicy
from connectors.wire import loads_exact
from domain.errors import ChannelError, RateLimitedError, RejectedUpdateError, TransientChannelError

log = structlog.get_logger(__name__)

_JSON = "application/json"

# An expired or revoked LWA token is answered 403 ("Unauthorized"); the shared table makes a
# second 403 (the app lacks the role) a ChannelAuthError. 409 stays a rejection (the shared
# default): a conflict (e.g. a subscription that exists) is not fixed by re-sending.
PROFILE = MarketplaceProfile("amazon", refused=frozenset({403}))

# Presigned S3 URLs: 503 is S3's SlowDown (a throttle). An expired (5 min) or refused URL
# (401/403/any 4xx) is not the updates' fault and not fixed by re-sending to the same URL: a plain
# ChannelError keeps the intents open and a later push gets a fresh URL.
S3_ERRORS = ErrorTable(
    overrides={401: ChannelError, 403: ChannelError, 503: RateLimitedError},
    client_error=ChannelError,
)


class SpApiClient(AccountClient[AmazonSettings, LwaAuth]):
    """One seller account's SP-API client (owns its token buckets and its LWA token)."""

    profile = PROFILE
    rate_limits = RATE_LIMITS

    def make_auth(
        self, settings: AmazonSettings, deps: ChannelDeps, policy: RetryPolicy | None
    ) -> LwaAuth:
        """The seller's LWA token."""
        return LwaAuth(settings, deps, policy)

    async def call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        """Send one SP-API operation (retried, paced) and return its parsed JSON body."""
        request = json_request(
            self.deps,
            method,
            self.settings.api_base + path,
            headers={"user-agent": USER_AGENT, "accept": _JSON},
            body=body,
            body_headers={"content-type": _JSON},
            params=params,
            timeout_s=self.settings.request_timeout_s,
        )

        async def prepare(request: httpx.Request, token: str) -> None:
            request.headers["x-amz-access-token"] = token
            request.headers["x-amz-date"] = self.deps.clock.now().strftime("%Y%m%dT%H%M%SZ")

        # The re-send after a refused token is a call Amazon counts too.
        return await self.core.send(
            op,
            request,
            lambda r: self._result(op, r),
            prepare,
            bucket=self.buckets[op],
            pace_resend=True,
        )

    async def upload(self, op: str, url: str, content: bytes, content_type: str) -> None:
        """PUT a feed document to its presigned URL (S3 authenticates by URL: no SP-API headers)."""
        request = self.deps.http.build_request(
            "PUT",
            url,
            content=content,
            headers={"content-type": content_type},
            timeout=self.settings.request_timeout_s,
        )
        await send(
            self.deps, self.policy, op, request, lambda response: _raise_for_plain(op, response)
        )

    async def download(self, op: str, url: str, compression: str | None) -> bytes:
        """GET a presigned document, gunzipping it when Amazon says it is GZIP-compressed."""

        def read(response: httpx.Response) -> bytes:
            _raise_for_plain(op, response)
            return response.content

        request = self.deps.http.build_request("GET", url, timeout=self.settings.request_timeout_s)
        raw = await send(self.deps, self.policy, op, request, read)
        if compression == "GZIP":
            try:
                return gzip.decompress(raw)
            except (OSError, EOFError) as err:
                raise TransientChannelError(f"{op}: document is not valid gzip") from err
        return raw

    def _result(self, op: str, response: httpx.Response) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            self._adopt_rate_header(op, response)
            return json_body(op, response)
        code, message = _amazon_error(response)
        kind = PROFILE.errors.classify(status)
        if kind is RejectedUpdateError:
            self._adopt_rate_header(op, response)
        raise error(kind, f"{op}: HTTP {status} {code}: {message}", code=code, status=status)

    def _adopt_rate_header(self, op: str, response: httpx.Response) -> None:
        # The usage plan actually applied (overrides raise it; a lower plan must slow us down
        # before the first 429). Burst is not reported: the table's stays.
        raw = response.headers.get(RATE_LIMIT_HEADER)
        if raw is None:
            return
        try:
            rate = float(raw)
        except ValueError:
            return
        bucket = self.buckets[op]
        if not math.isfinite(rate) or rate <= 0 or rate == bucket.limit.rate:
            return
        log.info("amazon.rate_limit.adopted", operation=op, rate=rate, was=bucket.limit.rate)
        bucket.limit = RateLimit(rate, bucket.limit.burst)


def _amazon_error(response: httpx.Response) -> tuple[str, str]:
    """Amazon's ``errors[0]`` code and message (``{"errors": [...]}`` or a bare list)."""
    try:
        body = loads_exact(response.content)
    except ValueError:
        return f"HTTP{response.status_code}", response.reason_phrase or "no body"
    errors = body.get("errors") if isinstance(body, dict) else body
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return str(first.get("code") or f"HTTP{response.status_code}"), str(
            first.get("message") or ""
        )
    return f"HTTP{response.status_code}", response.reason_phrase or ""


def _raise_for_plain(op: str, response: httpx.Response) -> None:
    """Classify an S3 presigned-URL response (XML errors; any 4xx there is not retryable)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    kind = S3_ERRORS.classify(status)
    code = f"HTTP{status}" if kind is ChannelError else None
    raise error(kind, f"{op}: HTTP {status}", code=code, status=status)
