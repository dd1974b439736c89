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
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)

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


# Restore rates are documented; bucket size = 20 × restore rate is an inference (unconfirmed).
STANDARD_PLAN = Plan(restore_rate=100.0, maximum_available=2000.0)
ADVANCED_PLAN = Plan(restore_rate=200.0, maximum_available=4000.0)
PLUS_PLAN = Plan(restore_rate=1000.0, maximum_available=20000.0)
ENTERPRISE_PLAN = Plan(restore_rate=2000.0, maximum_available=40000.0)


class CostBucket:
    """Leaky bucket of query-cost points, refilled at ``restore_rate`` points/s on the clock."""

    def __init__(self, maximum_available: float, restore_rate: float, clock: Clock) -> None:
        if maximum_available <= 0 or restore_rate <= 0:
            raise ValueError("bucket size and restore rate must be positive")
        self.maximum_available = maximum_available
        self.restore_rate = restore_rate
        self._clock = clock
        self._available = maximum_available
        self._at = clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._at)
        self._available = min(self.maximum_available, self._available + elapsed * self.restore_rate)
        self._at = now

    def currently_available(self) -> float:
        """Points in the bucket now."""
        self._refill()
        return self._available

    def try_take(self, cost: int) -> bool:
        """Debit ``cost`` points if the bucket holds them; False (nothing taken) otherwise."""
        self._refill()
        if cost > self._available:
            return False
        self._available -= cost
        return True

    def refund(self, points: int) -> None:
        """Give back the difference between requested and actual cost."""
        self._refill()
        self._available = min(self.maximum_available, self._available + max(0, points))

    def status(self) -> dict[str, Any]:
        """``throttleStatus`` as Shopify reports it."""
        return {
            "maximumAvailable": float(self.maximum_available),
            "currentlyAvailable": int(self.currently_available()),
            "restoreRate": float(self.restore_rate),
        }


class QueryCost:
    """Walks one operation's selections (and, for the actual cost, the data it returned)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._variables = variables

    def requested(self, operation: OperationDefinitionNode) -> int:
        """Cost charged up front, with every connection at its ``first`` size."""
        return self._root(operation, None)

    def actual(self, operation: OperationDefinitionNode, data: Mapping[str, Any] | None) -> int:
        """Cost of what was returned (connections counted by nodes returned)."""
        return self._root(operation, data or {})

    def _root(self, operation: OperationDefinitionNode, data: Mapping[str, Any] | None) -> int:
        root = self._schema.get_root_type(operation.operation)
        if root is None:
            return 0
        if operation.operation == OperationType.MUTATION:
            return MUTATION_COST * sum(1 for _ in self._fields(operation.selection_set, root))
        return self._selection(operation.selection_set, root, data)

    def _fields(
        self, selection_set: SelectionSetNode, parent: Composite
    ) -> Iterator[tuple[FieldNode, GraphQLField]]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                field_def = parent.fields.get(selection.name.value)
                if field_def is not None:  # __typename and other introspection: free
                    yield selection, field_def
            elif isinstance(selection, InlineFragmentNode | FragmentSpreadNode):
                fragment: InlineFragmentNode | FragmentDefinitionNode | None = (
                    selection
                    if isinstance(selection, InlineFragmentNode)
                    else self._fragments.get(selection.name.value)
                )
                if fragment is None:
                    continue
                condition = fragment.type_condition
                narrowed = self._schema.get_type(condition.name.value) if condition else parent
                if isinstance(narrowed, GraphQLObjectType | GraphQLInterfaceType):
                    yield from self._fields(fragment.selection_set, narrowed)

    def _selection(
        self,
        selection_set: SelectionSetNode | None,
        parent: Composite,
        data: Mapping[str, Any] | None,
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for node, field_def in self._fields(selection_set, parent):
            named = get_named_type(field_def.type)
            if is_leaf_type(named) or not isinstance(
                named, GraphQLObjectType | GraphQLInterfaceType
            ):
                continue
            value = None if data is None else data.get(_key(node))
            if data is not None and value is None:
                continue  # null in the response: nothing was loaded
            ids = self._list_argument(node, "ids")
            if ids is not None:
                items = [None] * ids if value is None else [v for v in value if v is not None]
                total += sum(
                    OBJECT_COST + self._selection(node.selection_set, named, item) for item in items
                )
            elif isinstance(named, GraphQLObjectType) and named.name.endswith("Connection"):
                total += self._connection(node, named, value)
            elif isinstance(value, list):  # plain list of objects: counted once
                total += OBJECT_COST + self._selection(
                    node.selection_set, named, value[0] if value else {}
                )
            else:
                total += OBJECT_COST + self._selection(node.selection_set, named, value)
        return total

    def _connection(self, node: FieldNode, connection: GraphQLObjectType, value: Any) -> int:
        size = self._page_size(node)
        total = CONNECTION_COST
        if node.selection_set is None:
            return total
        for sub, sub_def in self._fields(node.selection_set, connection):
            name, sub_type = sub.name.value, get_named_type(sub_def.type)
            if name not in ("edges", "nodes") or not isinstance(sub_type, GraphQLObjectType):
                continue
            node_field: FieldNode | None = sub
            node_type = sub_type
            if name == "edges":  # the node object inside each edge
                node_field, node_type = self._edge_node(sub, sub_type)
            if node_field is None:
                continue
            if value is None:
                total += size * (
                    OBJECT_COST + self._selection(node_field.selection_set, node_type, None)
                )
                continue
            for item in value.get(_key(sub)) or []:
                item_data = item.get(_key(node_field)) if name == "edges" else item
                if item_data is not None:
                    total += OBJECT_COST + self._selection(
                        node_field.selection_set, node_type, item_data
                    )
        return total

    def _edge_node(
        self, edges: FieldNode, edge_type: GraphQLObjectType
    ) -> tuple[FieldNode | None, GraphQLObjectType]:
        if edges.selection_set is None:
            return None, edge_type
        for sub, sub_def in self._fields(edges.selection_set, edge_type):
            named = get_named_type(sub_def.type)
            if sub.name.value == "node" and isinstance(named, GraphQLObjectType):
                return sub, named
        return None, edge_type

    def _list_argument(self, node: FieldNode, name: str) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            if isinstance(argument.value, ListValueNode):
                return len(argument.value.values)
            if isinstance(argument.value, VariableNode):
                given = self._variables.get(argument.value.name.value)
                return len(given) if isinstance(given, list) else 0
        return None

    def _page_size(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                return max(0, int(argument.value.value))
            if isinstance(argument.value, VariableNode):
                given = self._variables.get(argument.value.name.value)
                return max(0, given) if isinstance(given, int) else 0
        return 0


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value
