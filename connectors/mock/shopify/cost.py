"""Calculated query cost and the leaky cost bucket of the Shopify Admin GraphQL API.

Cost rules (guide §4.5, Shopify's published rules simplified; monotone in every selection):
scalar, enum and ``__typename`` fields 0; an object field (or a plain list of objects, counted
once) 1 + its selection; ``nodes(ids:)`` n × (1 + selection); a ``*Connection`` 2 + n × (1 +
the node's selection) for ``edges { node }`` and again for ``nodes``, ``pageInfo`` and ``cursor``
free; a mutation root field 10. n is what was asked (``first``, ids) for the requested cost,
what was returned for the actual cost; the difference is refunded after execution.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    value_from_ast_untyped,
)

from connectors.ratelimit import EXACT, RateLimit, TokenBucket
from domain.clock import Clock

Composite = GraphQLObjectType | GraphQLInterfaceType
MUTATION_COST = 10
CONNECTION_COST = 2
OBJECT_COST = 1


@dataclass(frozen=True)
class Plan:
    """Cost-bucket parameters of a Shopify plan."""

    restore_rate: float
    maximum_available: float


# The restore rate is documented; bucket size = 20 × restore rate is an inference (unconfirmed).
STANDARD_PLAN = Plan(restore_rate=100.0, maximum_available=2000.0)


class CostBucket(TokenBucket):
    """The shop's bucket of query-cost points, refilled at ``restore_rate`` points/s."""

    def __init__(self, maximum_available: float, restore_rate: float, clock: Clock) -> None:
        super().__init__(RateLimit(restore_rate, maximum_available), clock, margin=EXACT)

    def try_take(self, cost: int) -> bool:
        """Debit ``cost`` points if the bucket holds them; False (nothing taken) otherwise."""
        if cost > self.available:
            return False
        self.observe(self.available - cost)
        return True

    def refund(self, points: int) -> None:
        """Give back the difference between requested and actual cost."""
        self.observe(self.available + max(0, points))

    def status(self) -> dict[str, Any]:
        """``throttleStatus`` as Shopify reports it."""
        return {
            "maximumAvailable": float(self.limit.burst),
            "currentlyAvailable": int(self.available),
            "restoreRate": float(self.limit.rate),
        }


@dataclass(frozen=True)
class QueryCost:
    """Walks one operation's selections (and, for the actual cost, the data it returned)."""

    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]

    def cost(self, operation: OperationDefinitionNode, data: Mapping[str, Any] | None) -> int:
        """The requested cost (``data`` None: connections at their ``first`` size) or the actual
        cost of ``data`` (connections counted by nodes returned)."""
        root = self.schema.get_root_type(operation.operation)
        assert root is not None  # validation refuses an operation the schema has no root for
        if operation.operation == OperationType.MUTATION:
            return MUTATION_COST * sum(1 for _ in self._fields(operation.selection_set, root))
        return self._selection(operation.selection_set, root, data)

    def _fields(
        self, selection_set: SelectionSetNode | None, parent: Composite
    ) -> Iterator[tuple[FieldNode, Composite]]:
        """The selected fields of object type, fragments flattened (leaf fields cost nothing)."""
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                field_def = parent.fields.get(selection.name.value)  # None: __typename
                named = get_named_type(field_def.type) if field_def else None
                if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
                    yield selection, named
                continue
            fragment = (
                self.fragments.get(selection.name.value)
                if isinstance(selection, FragmentSpreadNode)
                else selection
            )
            if not isinstance(fragment, InlineFragmentNode | FragmentDefinitionNode):
                continue
            condition = fragment.type_condition
            narrowed = self.schema.get_type(condition.name.value) if condition else parent
            if isinstance(narrowed, GraphQLObjectType | GraphQLInterfaceType):
                yield from self._fields(fragment.selection_set, narrowed)

    def _selection(
        self, selection_set: SelectionSetNode | None, parent: Composite, data: Any
    ) -> int:
        total = 0
        for node, named in self._fields(selection_set, parent):
            value = None if data is None else data.get(_key(node))
            if data is not None and value is None:
                continue  # null in the response: nothing was loaded
            ids = self._argument(node, "ids")
            if named.name.endswith("Connection"):
                total += self._connection(node, named, value)
                continue
            if ids is not None:  # n = ids asked, or objects returned
                asked = [None] * (len(ids) if isinstance(ids, list) else 1)
                items = asked if value is None else [item for item in value if item is not None]
            elif isinstance(value, list):  # a plain list of objects: counted once
                items = value[:1] or [{}]
            else:
                items = [value]
            total += sum(OBJECT_COST + self._selection(node.selection_set, named, i) for i in items)
        return total

    def _connection(self, node: FieldNode, connection: Composite, value: Any) -> int:
        size = self._argument(node, "first")
        total = CONNECTION_COST
        for sub, sub_type in self._fields(node.selection_set, connection):
            name = sub.name.value
            if name not in ("edges", "nodes"):
                continue
            if value is None:
                items = [None] * (max(0, size) if isinstance(size, int) else 0)
            else:
                items = [item for item in value.get(_key(sub)) or [] if item is not None]
            per_item = OBJECT_COST if name == "nodes" else 0  # an edge costs what its node does
            total += sum(per_item + self._selection(sub.selection_set, sub_type, i) for i in items)
        return total

    def _argument(self, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, dict(self.variables))
        return None


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value
