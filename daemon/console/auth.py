"""Console login: constant-time password check, server-side sessions, CSRF tokens and a
per-address backoff against password guessing.

Sessions are random 256-bit ids kept in memory (no signing key to manage, and logout or a
restart really revokes them): the cookie carries nothing but the id. Each session has its own
CSRF token, required in every POST form. A browser gets an anonymous session when it opens
the login page (so the login form has a token too); logging in replaces it with a new id.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from domain.clock import Clock

COOKIE: Final = "repricerd_console"
# An idle session ends after this long; a live one is refreshed at each request.
IDLE_TIMEOUT_S: Final = 12 * 3600.0
# Bounds memory against a client that opens the login page in a loop.
MAX_SESSIONS: Final = 2000
# Failures an address may make before it has to wait; the wait doubles with each further one.
FREE_FAILURES: Final = 5
MAX_LOCKOUT_S: Final = 300.0


@dataclass
class Session:
    """One browser's session: its CSRF token, and whether it logged in."""

    id: str
    csrf: str
    authenticated: bool
    last_seen: float


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


def password_matches(given: str, expected: str) -> bool:
    """Compare a password in constant time (bytes: ``compare_digest`` refuses non-ASCII str)."""
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class Sessions:
    """The console's sessions and login failures, in memory."""

    clock: Clock
    _by_id: OrderedDict[str, Session] = field(default_factory=OrderedDict)
    _failures: dict[str, _Failures] = field(default_factory=dict)

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (refreshed), or None."""
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        now = self.clock.monotonic()
        if session is None or now - session.last_seen > IDLE_TIMEOUT_S:
            self._by_id.pop(session_id, None)
            return None
        session.last_seen = now
        self._by_id.move_to_end(session_id)
        return session

    def new(self, *, authenticated: bool) -> Session:
        """Open a session with a fresh id and CSRF token."""
        while len(self._by_id) >= MAX_SESSIONS:
            self._by_id.popitem(last=False)  # the least recently seen
        session = Session(
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            authenticated,
            self.clock.monotonic(),
        )
        self._by_id[session.id] = session
        return session

    def end(self, session_id: str | None) -> None:
        """Forget a session (logout)."""
        if session_id:
            self._by_id.pop(session_id, None)

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        """Whether a form carried the session's CSRF token."""
        return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())

    def wait_s(self, address: str) -> float:
        """How long ``address`` must wait before its next login attempt is even checked."""
        entry = self._failures.get(address)
        if entry is None:
            return 0.0
        return max(0.0, entry.locked_until - self.clock.monotonic())

    def failed(self, address: str) -> None:
        """Count a wrong password; past ``FREE_FAILURES`` the address waits 1, 2, 4 ... s."""
        entry = self._failures.setdefault(address, _Failures())
        entry.count += 1
        if entry.count >= FREE_FAILURES:
            wait = min(MAX_LOCKOUT_S, 2.0 ** (entry.count - FREE_FAILURES))
            entry.locked_until = self.clock.monotonic() + wait
        if len(self._failures) > MAX_SESSIONS:
            # Forget the oldest entries first (dicts keep insertion order).
            for stale in list(self._failures)[: len(self._failures) - MAX_SESSIONS]:
                del self._failures[stale]

    def succeeded(self, address: str) -> None:
        """A right password clears the address's failures."""
        self._failures.pop(address, None)
