"""Webhook sending every mock shares: the HMAC of a body and one POST whose outcome is kept.

Each mock keeps its marketplace's envelope, signature header and retry rules.
"""

from __future__ import annotations

import hashlib
import hmac

import aiohttp


def hmac_sha256(secret: str, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` keyed with ``secret`` (hex or base64 it as the header wants)."""
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    client_timeout: aiohttp.ClientTimeout | None = None,
) -> tuple[int | None, str | None]:
    """POST ``body`` to ``url``: the answer's status, or ``None`` and the error's name."""
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=client_timeout
        ) as response:
            return response.status, None
    except (aiohttp.ClientError, TimeoutError) as exc:
        return None, type(exc).__name__
