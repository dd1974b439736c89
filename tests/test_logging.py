"""Logging: JSON lines with per-task context, and no secret ever reaching the output (R18)."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import structlog

from daemon.logging import REDACTED, SecretRedactor, configure_logging

CANARY = "canary-secret-123456"


@dataclass
class Captured:
    """The configured redactor and the stream every log line goes to."""

    redactor: SecretRedactor
    stream: io.StringIO

    @property
    def text(self) -> str:
        """Everything logged so far."""
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every line, parsed as JSON."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def record(self, event: str) -> dict[str, Any]:
        """The single record whose event is ``event``."""
        found = [r for r in self.records() if r.get("event") == event]
        assert len(found) == 1, self.text
        return found[0]


@pytest.fixture
def captured(restore_logging: None) -> Captured:
    """JSON logging into a StringIO with the canary registered as a known secret."""
    stream = io.StringIO()
    redactor = configure_logging(stream=stream, json_output=True)
    redactor.set_known([CANARY])
    return Captured(redactor, stream)


def test_secret_keys_values_and_known_secrets_are_redacted(captured: Captured) -> None:
    """Secret-named keys, credential-shaped values and the canary are masked at any depth."""
    log = structlog.get_logger()
    with structlog.contextvars.bound_contextvars(pass_id="pass-42", channel="shop-demo"):
        log.info(
            "listing_pushed",
            sku="MUG-1",
            price="12.50",
            token="tok-plain-value",
            authorization="Basic dXNlcjpwYXNz",
            password="hunter2-password",
            nested={
                "api_key": "nested-api-key-value",
                "inner": {"refresh_token": "inner-refresh-value", "note": f"see {CANARY} here"},
                "items": [CANARY, "Bearer abc.def", "visible-item"],
            },
            message=f"pushed with {CANARY} attached",
            header="Bearer abc.def",
            lwa="Atzr|IwEBIabc-def_ghi",
            pair=(CANARY, 7),
        )
    text = captured.text
    for secret in [
        CANARY,
        "tok-plain-value",
        "dXNlcjpwYXNz",
        "hunter2-password",
        "nested-api-key-value",
        "inner-refresh-value",
        "abc.def",
        "Atzr|",
        "IwEBIabc",
    ]:
        assert secret not in text, secret
    record = captured.record("listing_pushed")
    assert record["sku"] == "MUG-1"
    assert record["price"] == "12.50"
    assert record["pass_id"] == "pass-42"
    assert record["channel"] == "shop-demo"
    assert record["level"] == "info"
    for key in ("token", "authorization", "password", "header", "lwa"):
        assert record[key] == REDACTED, key
    assert record["nested"]["api_key"] == REDACTED
    assert record["nested"]["inner"] == {"refresh_token": REDACTED, "note": f"see {REDACTED} here"}
    assert record["nested"]["items"] == [REDACTED, REDACTED, "visible-item"]
    assert record["message"] == f"pushed with {REDACTED} attached"
    assert record["pair"] == [REDACTED, 7]


def test_exception_text_is_redacted(captured: Captured) -> None:
    """An exception logged with log.exception keeps its type and traceback but not the canary."""
    log = structlog.get_logger()
    with structlog.contextvars.bound_contextvars(pass_id="pass-7", channel="amazon-demo"):
        try:
            raise RuntimeError("auth refused for " + CANARY)
        except RuntimeError:
            log.exception("push_failed", sku="MUG-2")
    assert CANARY not in captured.text
    record = captured.record("push_failed")
    assert record["level"] == "error"
    assert record["sku"] == "MUG-2"
    assert (record["pass_id"], record["channel"]) == ("pass-7", "amazon-demo")
    assert "Traceback" in record["exception"]
    assert f"RuntimeError: auth refused for {REDACTED}" in record["exception"]


def test_exception_values_in_fields_are_redacted(captured: Captured) -> None:
    """An exception object passed as a field is rendered as `Type: message` and scrubbed."""
    structlog.get_logger().warning("retrying", error=ValueError(f"bad {CANARY}"))
    assert CANARY not in captured.text
    assert captured.record("retrying")["error"] == f"ValueError: bad {REDACTED}"


def test_stdlib_logging_is_redacted_too(captured: Captured) -> None:
    """A stdlib logger's message and traceback go through the same redaction and context."""
    with structlog.contextvars.bound_contextvars(pass_id="pass-9", channel="shop-demo"):
        logging.getLogger("x").warning("library said %s loudly", CANARY)
        try:
            raise ConnectionError("dropped " + CANARY)
        except ConnectionError:
            logging.getLogger("x").exception("library failed")
    assert CANARY not in captured.text
    said = captured.record(f"library said {REDACTED} loudly")
    assert said["logger"] == "x"
    assert said["level"] == "warning"
    assert (said["pass_id"], said["channel"]) == ("pass-9", "shop-demo")
    failed = captured.record("library failed")
    assert f"ConnectionError: dropped {REDACTED}" in failed["exception"]


def test_context_is_unbound_after_the_block(captured: Captured) -> None:
    """bound_contextvars fields appear inside the block and are gone after it."""
    log = structlog.get_logger()
    with structlog.contextvars.bound_contextvars(pass_id="pass-1", channel="shop-demo"):
        log.info("inside")
    log.info("outside")
    assert captured.record("inside")["pass_id"] == "pass-1"
    outside = captured.record("outside")
    assert "pass_id" not in outside
    assert "channel" not in outside


def test_caller_data_is_not_mutated(captured: Captured) -> None:
    """Redaction works on copies: the dict the caller logged still holds its values."""
    payload = {"token": "keep-me-123456", "inner": {"password": "pw-123456"}}
    structlog.get_logger().info("payload", payload=payload)
    assert payload == {"token": "keep-me-123456", "inner": {"password": "pw-123456"}}
    assert "keep-me-123456" not in captured.text


def test_set_known_replaces_the_list_and_ignores_short_values(captured: Captured) -> None:
    """set_known replaces earlier secrets, and values under 6 characters are not masked."""
    captured.redactor.set_known(["other-secret-value", "abc"])
    structlog.get_logger().info("after", a=CANARY, b="other-secret-value", c="abc")
    record = captured.record("after")
    assert (record["a"], record["b"], record["c"]) == (CANARY, REDACTED, "abc")


def test_level_filtering(restore_logging: None) -> None:
    """Events below the configured level are dropped for structlog and stdlib alike."""
    stream = io.StringIO()
    configure_logging(level="warning", stream=stream, json_output=True)
    structlog.get_logger().info("quiet")
    logging.getLogger("x").info("quiet stdlib")
    structlog.get_logger().warning("loud")
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events == ["loud"]


def test_console_renderer_is_redacted_too(restore_logging: None) -> None:
    """The human console format (json_output=False) is redacted the same way."""
    stream = io.StringIO()
    configure_logging(stream=stream, json_output=False, redactor=SecretRedactor([CANARY]))
    structlog.get_logger().info("console", note=f"has {CANARY}", token="tok-123456", sku="MUG-3")
    text = stream.getvalue()
    assert CANARY not in text
    assert "tok-123456" not in text
    assert "MUG-3" in text


def test_known_secret_inside_an_object_is_redacted(captured: Captured) -> None:
    """A known secret inside a non-string value (e.g. a request URL) never reaches the log."""
    structlog.get_logger().warning(
        "request_failed", url=httpx.URL(f"https://api.example.test/v1/items?sig={CANARY}")
    )
    assert CANARY not in captured.text
