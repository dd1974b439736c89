"""structlog setup: JSON lines (console on a TTY), per-task context, and secret redaction."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "**********"
# Keys whose values are never logged, whatever they hold.
_SECRET_KEY = re.compile(
    r"(authorization|token|secret|password|passwd|signature|hmac|api[_-]?key|credential|cookie)",
    re.IGNORECASE,
)
# Values that look like credentials wherever they appear.
_SECRET_VALUE = re.compile(
    r"(Bearer\s+[A-Za-z0-9._~+/=-]+|Atz[ar]\|[A-Za-z0-9._~+/=|-]+|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"
)


class SecretRedactor:
    """structlog processor that masks secret keys, credential-shaped values and known secrets."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        self._known: tuple[str, ...] = ()
        self.set_known(known_secrets)

    def set_known(self, secrets: Iterable[str]) -> None:
        """Replace the list of exact secret values (from the config's ${ENV} references)."""
        # Short values would mask ordinary words; real credentials are longer than 5 chars.
        self._known = tuple(sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True))

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        """Redact in place and return the event."""
        return self._clean_mapping(event_dict)

    def scrub(self, text: str) -> str:
        """Mask credential patterns and known secrets in a string."""
        text = _SECRET_VALUE.sub(REDACTED, text)
        for secret in self._known:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def redact(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``data`` with secrets masked as in log lines (for payloads sent out)."""
        return dict(self._clean_mapping(dict(data)))

    def _clean_mapping(self, data: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in list(data.items()):
            if isinstance(key, str) and _SECRET_KEY.search(key) and value is not None:
                data[key] = REDACTED
            else:
                data[key] = self._clean(value)
        return data

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return self._clean_mapping(dict(value))
        if isinstance(value, list | tuple):
            return type(value)(self._clean(v) for v in value)
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        if value is None or isinstance(value, bool | int | float | Decimal | datetime):
            return value
        if isinstance(value, bytes | bytearray):
            return self.scrub(bytes(value).decode("utf-8", "replace"))
        # Anything else (URLs, paths, sets, objects) is rendered with repr() by the renderer:
        # render it here first, so a secret inside cannot slip past.
        text = repr(value)
        cleaned = self.scrub(text)
        return value if cleaned == text else cleaned


def configure_logging(
    *,
    level: str = "info",
    redactor: SecretRedactor | None = None,
    stream: TextIO | None = None,
    json_output: bool | None = None,
) -> SecretRedactor:
    """Configure structlog and stdlib logging; return the redactor so secrets can be added."""
    stream = stream or sys.stderr
    redactor = redactor or SecretRedactor()
    if json_output is None:
        json_output = not stream.isatty()
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json_output
        # Plain tracebacks: rich's default shows local variables, and a local can hold a secret.
        else structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        # Redaction runs after exceptions are rendered to text, so tracebacks are scrubbed too.
        redactor,
    ]
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Library logs (aiohttp access log, apscheduler, alembic) go through the same pipeline.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO) if numeric < logging.INFO else numeric)
    for noisy in ("apscheduler", "aiohttp.access", "alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    return redactor


def get_logger(**initial: Any) -> structlog.typing.FilteringBoundLogger:
    """Return a bound structlog logger."""
    return structlog.get_logger(**initial)  # type: ignore[no-any-return]
