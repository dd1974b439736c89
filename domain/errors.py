"""The one error hierarchy of repricerd; each docstring says what the daemon does about it.

* RepricerdError
  x ConfigError                 invalid config or input: report all problems, exit 1 or keep old
  x StrategyError               a strategy raised for one SKU: that SKU is held, the pass goes on
  x ChannelError                anything a marketplace connector raises
    + ChannelAuthError          credentials refused: channel stops, readiness fails, alert
    + RejectedUpdateError       the marketplace refused one item (4xx): recorded, never retried
    + TransientChannelError     5xx, timeout, connection reset: retried with backoff by the client
      - RateLimitedError        429 / throttled: wait ``retry_after_s`` (or the bucket refill)
  x WebhookError                a delivery we refuse
    + WebhookAuthError          bad or missing signature: 401, nothing stored
    + WebhookTooLargeError      body over the limit: 413, nothing read further
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ChannelAuthError",
    "ChannelError",
    "ConfigError",
    "ConfigProblem",
    "RateLimitedError",
    "RejectedUpdateError",
    "RepricerdError",
    "StrategyError",
    "TransientChannelError",
    "WebhookAuthError",
    "WebhookError",
    "WebhookTooLargeError",
]


class RepricerdError(Exception):
    """Base of every error repricerd raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config or input file, located by file, line and key."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(RepricerdError):
    """Invalid configuration or input. The CLI prints every problem and exits 1; a running
    daemon logs it and keeps the previous config."""

    def __init__(self, message: str, problems: list[ConfigProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        return "\n".join(str(p) for p in self.problems)


class StrategyError(RepricerdError):
    """A strategy failed on one SKU. The SKU is held with this reason; the pass continues."""


class ChannelError(RepricerdError):
    """A marketplace connector failed. Subclasses say whether to retry."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class ChannelAuthError(ChannelError):
    """Credentials were refused. The channel stops sending, readiness reports it, and the
    operator must fix the credentials; intents stay queued."""


class RejectedUpdateError(ChannelError):
    """The marketplace refused an item (a 4xx other than 408/409/429). Recorded on the action
    row with the marketplace's code and message; never retried."""


class TransientChannelError(ChannelError):
    """A 5xx, timeout or connection error. The client retries with jittered exponential backoff
    under an attempt cap and a deadline; if that runs out the intent stays open and is re-driven."""


class RateLimitedError(TransientChannelError):
    """Throttled (429 / THROTTLED). The client waits ``retry_after_s`` (or its bucket's refill)
    before the next call on that account and operation."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class WebhookError(RepricerdError):
    """A webhook delivery is refused; nothing is stored."""

    status = 400


class WebhookAuthError(WebhookError):
    """Missing or wrong signature: answered 401, nothing stored, logged without the body."""

    status = 401


class WebhookTooLargeError(WebhookError):
    """Body over ``server.webhook_max_bytes``: answered 413 before the signature is computed."""

    status = 413
