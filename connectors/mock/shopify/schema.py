"""The mock's GraphQL schema: the packaged SDL, Shopify's custom scalars, the resolvers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from graphql import (
    GraphQLDirective,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLScalarType,
    GraphQLSchema,
    StringValueNode,
    ValueNode,
    build_schema,
)

from connectors.mock.market import CENT

_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def _money_out(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value.quantize(CENT, rounding=ROUND_HALF_UP))
    raise GraphQLError(f"Money cannot represent {value!r}")


def _money_in(value: Any) -> Decimal:
    # Shopify's Money is a decimal *string*; a JSON number is refused (guide §5.2).
    if not isinstance(value, str) or not _DECIMAL.match(value.strip()):
        raise GraphQLError(f"Could not coerce value {value!r} to Money")
    try:
        return Decimal(value.strip()).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as err:  # pragma: no cover - the pattern admits only decimals
        raise GraphQLError(f"Could not coerce value {value!r} to Money") from err


def _string_literal(parse: Any) -> Any:
    def coerce(node: ValueNode) -> Any:
        if not isinstance(node, StringValueNode):
            raise GraphQLError("Expected a string literal")
        return parse(node.value)

    return coerce


def _datetime_out(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise GraphQLError(f"DateTime cannot represent {value!r}")


def _datetime_in(value: Any) -> datetime:
    if not isinstance(value, str):
        raise GraphQLError(f"Could not coerce value {value!r} to DateTime")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise GraphQLError(f"Could not coerce value {value!r} to DateTime") from err
    if parsed.tzinfo is None:
        raise GraphQLError(f"Could not coerce value {value!r} to DateTime")
    return parsed


def _url_in(value: Any) -> str:
    if not isinstance(value, str) or not urlsplit(value).scheme or " " in value:
        raise GraphQLError(f"Could not coerce value {value!r} to URL")
    return value


def _url_out(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise GraphQLError(f"URL cannot represent {value!r}")


def _uint64_out(value: Any) -> str:
    if isinstance(value, int) and 0 <= value < 2**64:
        return str(value)
    raise GraphQLError(f"UnsignedInt64 cannot represent {value!r}")


def _uint64_in(value: Any) -> int:
    if isinstance(value, str) and value.isdigit() and int(value) < 2**64:
        return int(value)
    raise GraphQLError(f"Could not coerce value {value!r} to UnsignedInt64")


def _configure(scalar: GraphQLScalarType, out: Any, parse: Any) -> None:
    scalar.coerce_output_value = out
    scalar.coerce_input_value = parse
    scalar.coerce_input_literal = _string_literal(parse)


def sdl() -> str:
    """The packaged SDL (``schema.graphql``)."""
    return resources.files(__package__).joinpath("schema.graphql").read_text(encoding="utf-8")


@cache
def shopify_schema() -> GraphQLSchema:
    """Build the schema once per process; resolvers live on the root value and the views."""
    schema = build_schema(sdl())
    scalars = {
        "Money": (_money_out, _money_in),
        "DateTime": (_datetime_out, _datetime_in),
        "URL": (_url_out, _url_in),
        "UnsignedInt64": (_uint64_out, _uint64_in),
    }
    for name, (out, parse) in scalars.items():
        scalar = schema.get_type(name)
        assert isinstance(scalar, GraphQLScalarType)
        _configure(scalar, out, parse)
    node = schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    node.resolve_type = _node_type  # every view names its GraphQL type in ``typename``
    return schema


def _node_type(value: Any, _info: Any, _abstract: Any) -> str | None:
    typename = getattr(value, "typename", None)
    return typename if isinstance(typename, str) else None


def idempotent_directive(schema: GraphQLSchema) -> GraphQLDirective:
    """The ``@idempotent(key:)`` directive declared in the SDL."""
    directive = schema.get_directive("idempotent")
    assert directive is not None
    return directive
