"""The marketplace HTTP core: the shared error table, the refreshing auth, and ``send``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import httpx
import orjson
import pytest

from connectors.base import ChannelDeps
from connectors.http import (
    GRANT_ERRORS,
    ErrorTable,
    MarketplaceProfile,
    RefreshingAuth,
    classify,
    error,
    json_request,
    send,
)
from connectors.retry import RetryPolicy
from connectors.tokens import (
    GrantAnswer,
    GrantedToken,
    Token,
    grant_body,
    grant_refused,
    issued_token,
)
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


def answer(status: int, body: object = None, *, started: float = 100.0) -> GrantAnswer:
    """A token endpoint's answer (``body`` as JSON, or raw bytes)."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = httpx.Response(status, content=content)
    return GrantAnswer(response, started, grant_body(response))


def test_a_granted_token_is_refreshed_at_its_share_of_life_from_the_request() -> None:
    token, life = issued_token(answer(200, {"access_token": "t1", "expires_in": 3600}), "x", 0.8)
    assert (token.value, token.refresh_at, life) == ("t1", 100.0 + 2880.0, 3600)
    assert "t1" not in repr(answer(200, {"access_token": "t1", "expires_in": 1}))


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in": 3600},
        {"access_token": "", "expires_in": 3600},
        {"access_token": "t1"},
        {"access_token": "t1", "expires_in": "3600"},
        {"access_token": "t1", "expires_in": True},
        {"access_token": "t1", "expires_in": 0},
        ["t1"],
        b"<html>busy</html>",
    ],
)
def test_a_grant_answer_without_a_token_or_its_life_is_transient(body: object) -> None:
    with pytest.raises(TransientChannelError, match="grant: answer without"):
        issued_token(answer(200, body), "grant", 0.8)


def test_a_grant_without_expiry_may_assume_a_default_life() -> None:
    token, life = issued_token(answer(200, {"access_token": "t1"}), "grant", 0.5, default_ttl_s=60)
    assert (token.refresh_at, life) == (130.0, 60)


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (429, RateLimitedError, "grant: throttled (E)"),
        (503, TransientChannelError, "grant: HTTP 503 (E)"),
        (400, ChannelAuthError, "refused: E"),
        (401, ChannelAuthError, "refused: E"),
    ],
)
def test_a_refused_grant_is_retried_only_for_throttles_and_server_errors(
    status: int, kind: type[ChannelError], message: str
) -> None:
    err = grant_refused("grant", status, "E", "refused: E")
    assert type(err) is kind
    assert (str(err), err.code, err.status) == (message, "E", status)


def test_a_json_request_encodes_its_body_exactly_and_only_then_says_so() -> None:
    deps = deps_over(lambda request: httpx.Response(200))
    get = json_request(deps, "GET", URL, headers={"Accept": "application/json"}, timeout_s=5)
    assert "content-type" not in get.headers
    assert get.content == b""
    post = json_request(
        deps,
        "POST",
        URL,
        headers={"Accept": "application/json"},
        body={"price": Decimal("19.90")},
        params={"sku": "A B"},
        timeout_s=5,
    )
    assert post.content == b'{"price":19.90}'
    assert post.headers["content-type"] == "application/json"
    assert post.url.params["sku"] == "A B"
    assert post.extensions["timeout"]["read"] == 5
    upload = json_request(
        deps,
        "POST",
        URL,
        headers={},
        body={"ignored": True},
        files={"file": ("feed.json", b"{}", "application/json")},
        timeout_s=5,
    )
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
