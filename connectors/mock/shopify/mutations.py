"""Mutation resolvers: ``productVariantsBulkUpdate`` and ``inventorySetQuantities`` (2026-04).

Top-level errors (no effect, payload null) follow what Shopify answers before running a mutation:
input arrays over 250 items (``MAX_INPUT_SIZE_EXCEEDED``), an ``InventoryQuantityInput`` without
``changeFromQuantity`` (``INVALID_FIELD_ARGUMENTS``), no ``@idempotent`` key (``BAD_REQUEST``);
the last two messages are as reported live by a third party (guide §4.3 says "error at runtime").
Everything else is a ``userErrors`` entry with Shopify's code, message and field path.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from graphql import GraphQLEnumType, GraphQLError
from graphql.execution.values import get_directive_values

from connectors.mock.shopify.resolvers import Info, Item, answered, at_most
from connectors.mock.shopify.schema import shopify_schema
from connectors.mock.shopify.state import MockVariant, ShopifyMockState
from connectors.mock.shopify.webhooks import inventory_level_payload, product_payload

MAX_QUANTITY = 1_000_000_000
QUANTITY_NAMES = ("available", "on_hand")
REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_canceled",
        "movement_created",
        "movement_received",
        "movement_updated",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
UserError = dict[str, Any]


# userErrors messages by code: the descriptions of the values of the SDL's ``*ErrorCode`` enums.
MESSAGES = {
    code: value.description or ""
    for enum in shopify_schema().type_map.values()
    if isinstance(enum, GraphQLEnumType) and enum.name.endswith("ErrorCode")
    for code, value in enum.values.items()
}


def _error(code: str, *field: str, message: str | None = None) -> UserError:
    return {"field": list(field), "message": message or MESSAGES[code], "code": code}


class MutationRoot:
    """Resolvers of ``Mutation`` (the root value of mutations)."""

    def productVariantsBulkUpdate(
        self,
        info: Info,
        productId: str,
        variants: list[dict[str, Any]],
        allowPartialUpdates: bool = False,
    ) -> dict[str, Any]:
        """Update variants of one product; all-or-nothing unless ``allowPartialUpdates``."""
        state = info.context.state
        at_most(variants, argument="variants")
        product = state.products.get(productId)
        refused: dict[str, Any] = {"product": None, "productVariants": None}
        if product is None:
            return {**refused, "userErrors": [_error("PRODUCT_DOES_NOT_EXIST", "productId")]}
        errors: list[UserError] = []
        accepted: list[tuple[MockVariant, dict[str, Any]]] = []
        for index, row in enumerate(variants):
            error = _variant_error(state, productId, str(index), row)
            if error is None and state.faults.item_refused():
                error = _error("INVALID_INPUT", "variants", str(index), message="Input is invalid.")
            if error is None:
                accepted.append((state.variants[row["id"]], row))
            else:
                errors.append(error)
        if errors and not allowPartialUpdates:
            return {**refused, "userErrors": errors}
        now = state.clock.now()
        answers, changed = [], False
        for variant, row in accepted:
            if state.faults.write_dropped():
                state.counters.dropped_writes += 1
                answers.append(answered(variant, row))
                continue
            if "price" in row:
                state.listing(variant).price = row["price"]
            if "compareAtPrice" in row:
                variant.compare_at_price = row["compareAtPrice"]
            variant.updated_at = product.updated_at = now
            changed = True
            answers.append(variant)
        if changed and state.webhooks_on_writes:
            info.context.events.append(("products/update", product_payload(state, product)))
        return {"product": product, "productVariants": answers, "userErrors": errors}

    def inventorySetQuantities(self, info: Info, input: dict[str, Any]) -> dict[str, Any]:
        """Set absolute quantities with compare-and-set per row, once per idempotency key."""
        state = info.context.state
        key = _idempotency_key(info)
        at_most(input["quantities"], argument="input.quantities")
        if any("changeFromQuantity" not in row for row in input["quantities"]):
            raise GraphQLError(
                "InventoryQuantityInput must include the following argument: changeFromQuantity.",
                extensions={"code": "INVALID_FIELD_ARGUMENTS"},
            )
        request = json.dumps(input, sort_keys=True, default=str).encode()
        fingerprint = hashlib.sha256(request).hexdigest()
        if key in state.idempotent:
            state.market.deliveries[key] += 1
            original_fingerprint, payload = state.idempotent[key]
            if original_fingerprint == fingerprint:
                return payload  # the original result; the effect is not applied again
            mismatch = _error("IDEMPOTENCY_KEY_PARAMETER_MISMATCH", "input")
            return {"inventoryAdjustmentGroup": None, "userErrors": [mismatch]}
        errors = _inventory_errors(state, input)
        if errors:
            state.market.deliveries[key] += 1  # reached the shop, nothing applied
            payload = {"inventoryAdjustmentGroup": None, "userErrors": errors}
        else:
            group = _apply(info, input, first_time=state.market.apply_once(key))
            payload = {"inventoryAdjustmentGroup": group, "userErrors": []}
        state.idempotent[key] = (fingerprint, payload)
        return payload


def _variant_error(
    state: ShopifyMockState, product_id: str, index: str, row: dict[str, Any]
) -> UserError | None:
    if row.get("id") is None:
        return _error("PRODUCT_VARIANT_ID_MISSING", "variants", index, "id")
    variant = state.variants.get(row["id"])
    if variant is None or variant.product_gid != product_id:
        return _error("PRODUCT_VARIANT_DOES_NOT_EXIST", "variants", index, "id")
    if "price" in row and row["price"] is None:
        return _error("INVALID_INPUT", "variants", index, "price", message="Price can't be blank")
    for name in ("price", "compareAtPrice"):
        if row.get(name) is not None and row[name] < 0:
            return _error("GREATER_THAN_OR_EQUAL_TO", "variants", index, name)
    return None


def _idempotency_key(info: Info) -> str:
    directive = info.schema.get_directive("idempotent")
    assert directive is not None  # declared in schema.graphql
    values: dict[str, Any] = {}
    for node in info.field_nodes:
        values = get_directive_values(directive, node, info.variable_values) or values
    key = values.get("key")
    if not isinstance(key, str) or not key.strip():
        raise GraphQLError(
            "The @idempotent directive is required for this mutation but was not provided.",
            nodes=info.field_nodes,
            extensions={"code": "BAD_REQUEST"},
        )
    return key


def _inventory_errors(state: ShopifyMockState, data: dict[str, Any]) -> list[UserError]:
    name, errors = data["name"], []
    if name not in QUANTITY_NAMES:
        errors.append(_error("INVALID_NAME", "input", "name"))
    if data["reason"] not in REASONS:
        errors.append(_error("INVALID_REASON", "input", "reason"))
    seen: set[tuple[str, str]] = set()

    def row_error(where: tuple[str, ...], row: dict[str, Any]) -> UserError | None:
        variant = state.variant_by_item(row["inventoryItemId"])
        if variant is None:
            return _error("INVALID_INVENTORY_ITEM", *where, "inventoryItemId")
        location = state.location(row["locationId"])
        if location is None:
            return _error("INVALID_LOCATION", *where, "locationId")
        if not location.active:
            return _error("ITEM_NOT_STOCKED_AT_LOCATION", *where, "locationId")
        if (variant.item_gid, location.gid) in seen:
            return _error("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", *where)
        seen.add((variant.item_gid, location.gid))
        if row["quantity"] < 0:
            return _error("INVALID_QUANTITY_NEGATIVE", *where, "quantity")
        if row["quantity"] > MAX_QUANTITY:
            return _error("INVALID_QUANTITY_TOO_HIGH", *where, "quantity")
        current = state.available(variant, location.gid, name)
        if name in QUANTITY_NAMES and row["changeFromQuantity"] not in (None, current):
            return _error("CHANGE_FROM_QUANTITY_STALE", *where, "changeFromQuantity")
        return None

    for index, row in enumerate(data["quantities"]):
        where = ("input", "quantities", str(index))
        error = row_error(where, row)
        if error is None and state.faults.item_refused():
            error = _error("NON_MUTABLE_INVENTORY_ITEM", *where, "inventoryItemId")
        if error is not None:
            errors.append(error)
    return errors


def _apply(info: Info, data: dict[str, Any], *, first_time: bool) -> dict[str, Any]:
    state, name = info.context.state, data["name"]
    other = "on_hand" if name == "available" else "available"
    now = state.clock.now()
    changes = []
    for row in data["quantities"]:
        variant = state.variant_by_item(row["inventoryItemId"])
        location = state.location(row["locationId"])
        assert variant is not None  # _row_error checked it
        assert location is not None
        delta = row["quantity"] - state.available(variant, location.gid, name)
        other_after = state.available(variant, location.gid, other) + delta
        if not first_time:
            pass  # the key's effect exists already (market effect log): never apply twice
        elif state.faults.write_dropped():
            state.counters.dropped_writes += 1
        else:
            available_after = row["quantity"] if name == "available" else other_after
            state.set_available(variant, location.gid, available_after)
            variant.updated_at = now
            if delta and state.webhooks_on_writes:
                payload = inventory_level_payload(state, variant, location, now)
                info.context.events.append(("inventory_levels/update", payload))
        changes += [
            {
                "name": n,
                "delta": delta,
                "quantityAfterChange": after,
                "item": Item(variant),
                "location": location,
            }
            for n, after in ((name, row["quantity"]), (other, other_after))
        ]
    state.adjustment_groups += 1
    return {
        "id": f"gid://shopify/InventoryAdjustmentGroup/{state.adjustment_groups}",
        "createdAt": now,
        "reason": data["reason"],
        "referenceDocumentUri": data.get("referenceDocumentUri"),
        "changes": changes,
    }
