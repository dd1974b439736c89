"""Wire helpers the mocks share: millisecond timestamps, schema violations, Basic client
credentials and opaque page tokens."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from functools import cache
from typing import Any

from jsonschema import Draft4Validator
from jsonschema.protocols import Validator

from connectors.specs import load_spec


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and ``Z`` (Amazon, eBay and Walmart all write this)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@cache
def spec_validator(kind: str, spec: str, ref: str) -> Draft4Validator:
    """A Draft 4 validator of ``#/<ref>`` in the vendored ``<kind>/<spec>`` (its $refs resolve)."""
    return Draft4Validator({"$ref": f"#/{ref}", **load_spec(kind, spec)})


def first_error(validator: Validator, instance: Any, separator: str = "/") -> str | None:
    """A readable description of the first schema violation, or None if ``instance`` is valid."""
    error = next(iter(validator.iter_errors(instance)), None)
    if error is None:
        return None
    where = separator.join(str(part) for part in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


def basic_auth(header: str) -> tuple[str, str] | None:
    """The ``(client id, secret)`` of an ``Authorization: Basic`` header; None if it is not one."""
    scheme, _, encoded = header.partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if scheme.lower() == "basic" and sep else None


def b64_json(value: Any, *, urlsafe: bool = False) -> str:
    """An opaque token: the base64 of ``value``'s compact JSON."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()


def from_b64_json(token: str, *, urlsafe: bool = False) -> Any:
    """What a ``b64_json`` token holds; ``ValueError`` for one the mock did not issue."""
    raw = token.encode()
    return json.loads(
        base64.urlsafe_b64decode(raw) if urlsafe else base64.b64decode(raw, validate=True)
    )
