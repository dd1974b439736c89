"""Calculated query cost and the leaky cost bucket of the Shopify Admin GraphQL API.

Cost rules (guide §4.5, Shopify's published rules simplified; monotone in every selection):

* scalar, enum and ``__typename`` fields: 0;
* an object field (or a plain list of objects, counted once): 1 + the cost of its selection;
* a list fetched by ``ids`` (``nodes(ids:)``): n × (1 + selection), n = ids asked / returned;
* a connection (a type named ``*Connection``): 2 + n × (cost of one node), where one node is
  1 + its selection, once for ``edges { node }`` and once more for ``nodes``; ``pageInfo`` and
  ``cursor`` are free. n is ``first`` for the requested cost and the number of nodes actually
  returned for the actual cost;
* a mutation root field: 10, whatever it selects.

The bucket must hold the requested cost before execution; requested − actual is refunded after.
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
            if ids is not None:
                asked = len(ids) if isinstance(ids, list) else 1
                items = [None] * asked if value is None else [v for v in value if v is not None]
                total += sum(self._object(node, named, item) for item in items)
            elif named.name.endswith("Connection"):
                total += self._connection(node, named, value)
            elif isinstance(value, list):  # plain list of objects: counted once
                total += self._object(node, named, value[0] if value else {})
            else:
                total += self._object(node, named, value)
        return total

    def _object(self, node: FieldNode, named: Composite, data: Any) -> int:
        return OBJECT_COST + self._selection(node.selection_set, named, data)

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
