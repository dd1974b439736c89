"""The ``/_mock/`` control routes every mock marketplace serves (unauthenticated: loopback only).

``GET /_mock/state``, ``POST /_mock/faults`` and ``POST /_mock/tokens/expire`` are written here
once; each mock adds its own state view and its marketplace's control actions (orders, pushes).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from connectors.mock.faults import Faults

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Controlled(Protocol):
    """The state of a mock, as the shared control routes use it."""

    faults: Faults

    def expire_tokens(self) -> int:
        """Make every issued token expired; return how many."""
        ...


def bad(message: str, status: int = 400) -> web.Response:
    """A control route's refusal: ``{"error": message}``."""
    return web.json_response({"error": message}, status=status)


async def json_object(request: web.Request) -> dict[str, Any] | None:
    """The request's JSON object (an empty body is ``{}``); ``None`` when it is not one."""
    # read() returns the cached body when a middleware has already read it (can_read_body is
    # False by then, though the body was there).
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def add_control_routes(
    app: web.Application,
    state_key: web.AppKey[Any],
    get_state: Handler,
    posts: Mapping[str, Handler],
) -> None:
    """Register ``/_mock/state``, the shared routes and the mock's own ``POST /_mock/<path>``."""

    async def set_faults(request: web.Request) -> web.Response:
        faults = request.app[state_key].faults
        body = await json_object(request)
        if body is None:
            return bad("expected a JSON object")
        try:
            faults.update(body)
        except KeyError as exc:
            return bad(f"unknown fault setting {exc}")
        except (TypeError, ValueError) as exc:
            return bad(f"bad fault setting: {exc}")
        return web.json_response({k: v for k, v in vars(faults).items() if k != "rng"})

    async def expire_tokens(request: web.Request) -> web.Response:
        return web.json_response({"expired": request.app[state_key].expire_tokens()})

    app.router.add_get("/_mock/state", get_state)
    app.router.add_post("/_mock/faults", set_faults)
    app.router.add_post("/_mock/tokens/expire", expire_tokens)
    for path, handler in posts.items():
        app.router.add_post(f"/_mock/{path}", handler)
