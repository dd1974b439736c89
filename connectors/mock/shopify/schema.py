"""The mock's GraphQL schema (the packaged SDL with Shopify's custom scalars), and its errors
worded and shaped as Shopify's server (graphql-ruby) answers them, so that a client reading
``extensions.code`` or messages meets what it will meet live: an undefined field
(``undefinedField``, with graphql-ruby's static ``path``) and an invalid variable
(``INVALID_VARIABLE``, with its ``problems``). Other errors keep graphql-core's wording."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from graphql import (
    FieldNode,
    FieldsOnCorrectTypeRule,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    StringValueNode,
    ValidationRule,
    ValueNode,
    VariableDefinitionNode,
    build_schema,
    print_ast,
    specified_rules,
)
from graphql.pyutils import Undefined
from graphql.utilities import type_from_ast

from connectors.mock.market import CENT

_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
Problem = dict[str, Any]


def _money(value: str) -> Decimal:
    # Shopify's Money is a decimal *string*; a JSON number is refused (guide §5.2).
    if not _DECIMAL.match(value.strip()):
        raise ValueError(value)
    return Decimal(value.strip()).quantize(CENT, rounding=ROUND_HALF_UP)


def _datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(value)
    return parsed


def _url(value: str) -> str:
    if not urlsplit(value).scheme or " " in value:
        raise ValueError(value)
    return value


def _uint64(value: str) -> int:
    if not value.isdigit() or int(value) >= 2**64:
        raise ValueError(value)
    return int(value)


# name -> (Python type served, how it is written, how a string input is parsed)
SCALARS: dict[str, tuple[type, Callable[[Any], str], Callable[[str], Any]]] = {
    "Money": (Decimal, lambda value: str(value.quantize(CENT, rounding=ROUND_HALF_UP)), _money),
    "DateTime": (
        datetime,
        lambda value: value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        _datetime,
    ),
    "URL": (str, str, _url),
    "UnsignedInt64": (int, lambda value: str(_uint64(str(value))), _uint64),
}


def _configure(scalar: GraphQLScalarType) -> None:
    kind, write, parse = SCALARS[scalar.name]

    def serialize(value: Any) -> str:
        try:
            if isinstance(value, kind):
                return write(value)
        except ValueError:
            pass
        raise GraphQLError(f"{scalar.name} cannot represent {value!r}")

    def coerce(value: Any) -> Any:
        try:
            if isinstance(value, str):
                return parse(value)
        except (ValueError, ArithmeticError):
            pass
        raise GraphQLError(f"Could not coerce value {value!r} to {scalar.name}")

    def literal(node: ValueNode) -> Any:
        if not isinstance(node, StringValueNode):
            raise GraphQLError("Expected a string literal")
        return coerce(node.value)

    scalar.coerce_output_value = serialize
    scalar.coerce_input_value = coerce
    scalar.coerce_input_literal = literal


@cache
def shopify_schema() -> GraphQLSchema:
    """Build the packaged SDL (``schema.graphql``) once per process."""
    sdl = resources.files(__package__).joinpath("schema.graphql").read_text(encoding="utf-8")
    schema = build_schema(sdl)
    for name in SCALARS:
        scalar = schema.get_type(name)
        assert isinstance(scalar, GraphQLScalarType)
        _configure(scalar)
    node = schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    node.resolve_type = lambda value, _info, _type: getattr(value, "typename", None)
    return schema


class UndefinedFieldRule(ValidationRule):
    """A selected field its parent type does not have, as graphql-ruby reports it."""

    def enter_field(
        self, node: FieldNode, _key: Any, _parent: Any, _path: Any, ancestors: list[Any]
    ) -> None:
        """Report ``node`` when its parent type has no field of that name."""
        parent = self.context.get_parent_type()
        if parent is None or self.context.get_field_def() is not None:
            return
        name = node.name.value
        self.report_error(
            GraphQLError(
                f"Field '{name}' doesn't exist on type '{parent.name}'",
                node,
                path=[*_document_path(ancestors), name],
                extensions={"code": "undefinedField", "typeName": parent.name, "fieldName": name},
            )
        )


# graphql-core's rules, with its wording of an undefined field replaced by graphql-ruby's.
RULES = tuple(
    UndefinedFieldRule if rule is FieldsOnCorrectTypeRule else rule for rule in specified_rules
)


def _document_path(ancestors: list[Any]) -> list[str]:
    """graphql-ruby's static path: ``"query Name"`` (or ``"query"``), then field names."""
    path: list[str] = []
    for node in ancestors:
        if isinstance(node, OperationDefinitionNode):
            kind = node.operation.value
            path.append(f"{kind} {node.name.value}" if node.name else kind)
        elif isinstance(node, FragmentDefinitionNode):
            path.append(f"fragment {node.name.value}")
        elif isinstance(node, InlineFragmentNode):
            on = node.type_condition.name.value if node.type_condition else ""
            path.append(f"... on {on}" if on else "...")
        elif isinstance(node, FieldNode):
            path.append(node.alias.value if node.alias else node.name.value)
    return path


def variable_errors(
    schema: GraphQLSchema,
    definitions: Collection[VariableDefinitionNode],
    inputs: Mapping[str, Any],
) -> list[GraphQLError]:
    """One ``INVALID_VARIABLE`` error per variable whose value (or absence) is refused."""
    errors = []
    for definition in definitions:
        name = definition.variable.name.value
        var_type = type_from_ast(schema, definition.type)
        if var_type is None or (name not in inputs and definition.default_value is not None):
            continue  # an unknown type: the validation rules have said so already
        value = inputs.get(name)
        problems = _problems(value, var_type, [])  # type: ignore[arg-type]
        if not problems:
            continue
        message = (
            f"Variable ${name} of type {print_ast(definition.type)} was provided invalid value"
        )
        located = [p for p in problems if p["path"]]
        if located:
            message += " for " + ", ".join(
                f"{'.'.join(str(part) for part in p['path'])} ({p['explanation']})" for p in located
            )
        extensions = {"code": "INVALID_VARIABLE", "value": value, "problems": problems}
        errors.append(GraphQLError(message, definition, extensions=extensions))
    return errors


def _problems(value: Any, type_: GraphQLInputType, path: list[str | int]) -> list[Problem]:
    """What graphql-ruby finds wrong with ``value`` as ``type_``: ``{path, explanation}``s."""
    if isinstance(type_, GraphQLNonNull):
        if value is None:
            return [_problem(path, "Expected value to not be null")]
        return _problems(value, type_.of_type, path)
    if value is None:
        return []
    if isinstance(type_, GraphQLList):
        if not isinstance(value, list):  # a single value stands for a list of one
            return _problems(value, type_.of_type, path)
        return [
            problem
            for index, item in enumerate(value)
            for problem in _problems(item, type_.of_type, [*path, index])
        ]
    if isinstance(type_, GraphQLInputObjectType):
        if not isinstance(value, Mapping):
            return [_problem(path, f"Expected {_literal(value)} to be a key-value object.")]
        problems = [
            _problem([*path, key], f"Field is not defined on {type_.name}")
            for key in value
            if key not in type_.fields
        ]
        for key, field in type_.fields.items():
            if key in value:
                problems.extend(_problems(value[key], field.type, [*path, key]))
            elif isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined:
                problems.append(_problem([*path, key], "Expected value to not be null"))
        return problems
    if isinstance(type_, GraphQLEnumType):
        if isinstance(value, str) and value in type_.values:
            return []
        names = ", ".join(type_.values)
        return [_problem(path, f"Expected {_literal(value)} to be one of: {names}")]
    try:
        parsed = type_.coerce_input_value(value)
    except (GraphQLError, TypeError, ValueError, ArithmeticError):
        parsed = Undefined
    if parsed is Undefined or parsed is None:
        return [_problem(path, f"Could not coerce value {_literal(value)} to {type_.name}")]
    return []


def _problem(path: list[str | int], explanation: str) -> Problem:
    return {"path": path, "explanation": explanation}


def _literal(value: Any) -> str:
    """A value as graphql-ruby prints it in an explanation (strings quoted, as GraphQL does)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {_literal(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    return json.dumps(value)
