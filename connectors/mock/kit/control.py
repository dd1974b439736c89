"""The ``/_mock/`` control routes every mock marketplace serves (unauthenticated: loopback only).

``GET /_mock/state``, ``POST /_mock/faults`` and ``POST /_mock/tokens/expire`` are written here
once; each mock adds its own state view and its marketplace's control actions (orders, pushes):
an ``Action`` takes the JSON body (path parameters merged in) and answers JSON or ``Refused``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from aiohttp import web

from connectors.mock.faults import Faults

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
Args = dict[str, Any]  # a control action's JSON body and path parameters
Action = Callable[[web.Request, Args], Awaitable[Any]]


class Refused(Exception):
    """A control action cannot be done: ``{"error": reason}`` with ``status``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


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


def positive(args: Args, name: str = "quantity") -> int:
    """``args[name]`` (1 when absent) as a positive integer, or the 400."""
    value = args.get(name, 1)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Refused(400, f"{name} must be a positive integer")
    return value


def found(value: T | None, what: str = "listing") -> T:
    """``value``, or the 404 ``no such <what>``."""
    if value is None:
        raise Refused(404, f"no such {what}")
    return value


def action(do: Action) -> Handler:
    """A ``POST /_mock/<path>`` route running ``do``: its JSON answer, or its refusal."""

    async def route(request: web.Request) -> web.Response:
        body = await json_object(request)
        if body is None:
            return bad("expected a JSON object")
        try:
            return web.json_response(await do(request, {**body, **request.match_info}))
        except Refused as exc:
            return bad(str(exc), exc.status)

    return route


def add_control_routes(
    app: web.Application,
    state_key: web.AppKey[Any],
    get_state: Handler,
    actions: Mapping[str, Action],
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
    for path, do in actions.items():
        app.router.add_post(f"/_mock/{path}", action(do))
