"""The marketplace HTTP core: the shared error table, the refreshing auth, and ``send``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from connectors.base import ChannelDeps
from connectors.http import (
    GRANT_ERRORS,
    ErrorTable,
    MarketplaceProfile,
    RefreshingAuth,
    classify,
    error,
    send,
)
from connectors.retry import RetryPolicy
from connectors.tokens import GrantedToken, Token
from domain.clock import ManualClock
from domain.errors import (
    ChannelAuthError,
    ChannelError,
    RateLimitedError,
    RejectedUpdateError,
    TransientChannelError,
)

URL = "https://api.example.test/items"
PROFILE = MarketplaceProfile("test", refused=frozenset({401}))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, RejectedUpdateError),
        (401, ChannelAuthError),
        (403, ChannelAuthError),
        (404, RejectedUpdateError),
        (408, TransientChannelError),
        (409, RejectedUpdateError),
        (429, RateLimitedError),
        (500, TransientChannelError),
        (503, TransientChannelError),
    ],
)
def test_the_shared_table(status: int, kind: type[ChannelError]) -> None:
    assert ErrorTable().classify(status) is kind


def test_overrides_and_codes_come_first() -> None:
    table = ErrorTable(overrides={409: TransientChannelError}, codes={"2001": RateLimitedError})
    assert table.classify(409) is TransientChannelError
    assert table.classify(400, "2001") is RateLimitedError
    assert table.classify(400, "25002") is RejectedUpdateError


def test_a_grant_refused_for_any_client_error_is_about_credentials() -> None:
    assert GRANT_ERRORS.classify(400) is ChannelAuthError
    assert GRANT_ERRORS.classify(408) is TransientChannelError
    assert GRANT_ERRORS.classify(429) is RateLimitedError


def test_classify_a_transport_failure_as_transient() -> None:
    assert classify(httpx.ReadTimeout("slow"), ErrorTable()) is TransientChannelError
    assert classify(httpx.Response(503), ErrorTable()) is TransientChannelError


def test_only_a_rate_limit_carries_its_wait() -> None:
    limited = error(RateLimitedError, "slow down", retry_after_s=2.0, status=429)
    assert isinstance(limited, RateLimitedError)
    assert limited.retry_after_s == 2.0
    rejected = error(RejectedUpdateError, "no", code="E1", status=400)
    assert type(rejected) is RejectedUpdateError
    assert rejected.code == "E1"


class CountingTokens(GrantedToken):
    """Grants ``tok-1``, ``tok-2``... (a slow grant, so concurrent callers share it)."""

    def __init__(self, deps: ChannelDeps) -> None:
        super().__init__(deps)
        self.grants = 0

    async def _grant(self) -> Token:
        await asyncio.sleep(0)
        self.grants += 1
        return Token(f"tok-{self.grants}", self._deps.clock.monotonic() + 3600)


async def stamp(request: httpx.Request, token: str) -> None:
    request.headers["Authorization"] = f"Bearer {token}"


def deps_over(handler: Callable[[httpx.Request], httpx.Response]) -> ChannelDeps:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    clock = ManualClock()

    async def no_sleep(seconds: float) -> None:
        clock.advance(seconds)

    return ChannelDeps(http=http, clock=clock, sleep=no_sleep)


def read(response: httpx.Response) -> int:
    if response.is_success:
        return response.status_code
    raise PROFILE.errors.classify(response.status_code)(f"HTTP {response.status_code}")


async def test_a_refused_token_is_replaced_and_the_call_resent_once() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401 if len(seen) == 1 else 200)

    deps = deps_over(handler)
    tokens = CountingTokens(deps)
    resends: list[str] = []

    async def before_resend() -> None:
        resends.append("paced")

    auth = RefreshingAuth(PROFILE, tokens, stamp, before_resend=before_resend)
    request = deps.http.build_request("GET", URL)
    assert await send(deps, RetryPolicy(), "get", request, read, auth=auth) == 200
    assert seen == ["Bearer tok-1", "Bearer tok-2"]
    assert resends == ["paced"]


async def test_a_second_refusal_is_final_even_across_retries() -> None:
    answers = iter([401, 503, 401])
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["Authorization"])
        return httpx.Response(next(answers))

    deps = deps_over(handler)
    tokens = CountingTokens(deps)
    auth = RefreshingAuth(PROFILE, tokens, stamp)
    request = deps.http.build_request("GET", URL)
    with pytest.raises(ChannelAuthError):
        await send(deps, RetryPolicy(attempts=4), "get", request, read, auth=auth)
    # One re-send per call: the 401 after the retried 503 is not refreshed again.
    assert sent == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-2"]
    assert tokens.grants == 2


async def test_concurrent_refusals_share_one_grant() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401 if request.headers["Authorization"] == "Bearer tok-1" else 200)

    deps = deps_over(handler)
    tokens = CountingTokens(deps)
    await tokens.token()

    async def one() -> int:
        auth = RefreshingAuth(PROFILE, tokens, stamp)
        request = deps.http.build_request("GET", URL)
        return await send(deps, RetryPolicy(), "get", request, read, auth=auth)

    assert await asyncio.gather(*(one() for _ in range(5))) == [200] * 5
    assert tokens.grants == 2


async def test_a_token_that_cannot_be_refreshed_is_not_resent() -> None:
    class Static:
        refreshable = False

        async def token(self) -> str:
            return "static"

        def invalidate(self, value: str) -> None:
            raise AssertionError("a static token is never dropped")

    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401)

    deps = deps_over(handler)
    request = deps.http.build_request("GET", URL)
    auth = RefreshingAuth(PROFILE, Static(), stamp)
    with pytest.raises(ChannelAuthError):
        await send(deps, RetryPolicy(), "get", request, read, auth=auth)
    assert len(calls) == 1


async def test_an_unanswered_attempt_is_reported_before_the_retry() -> None:
    answers: list[httpx.Response | Exception] = [httpx.ReadTimeout("lost"), httpx.Response(200)]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    deps = deps_over(handler)
    unanswered: list[int] = []

    async def on_unanswered() -> None:
        unanswered.append(1)

    request = deps.http.build_request("PUT", URL, content=b"{}")
    assert await send(deps, RetryPolicy(), "put", request, read, on_unanswered=on_unanswered) == 200
    assert unanswered == [1]
