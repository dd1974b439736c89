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
from decimal import Decimal
from typing import Any

from graphql import GraphQLError
from graphql.execution.values import get_directive_values

from connectors.mock.shopify.resolvers import (
    Info,
    ItemView,
    LocationView,
    ProductView,
    RequestContext,
    VariantView,
)
from connectors.mock.shopify.schema import idempotent_directive
from connectors.mock.shopify.state import MockVariant, ShopifyMockState
from connectors.mock.shopify.webhooks import inventory_level_payload, product_payload

MAX_INPUT_SIZE = 250
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


def _context(info: Info) -> RequestContext:
    return info.context


def _user_error(field: list[str], message: str, code: str) -> dict[str, Any]:
    return {"field": field, "message": message, "code": code}


def _check_size(items: list[Any], argument: str) -> None:
    if len(items) > MAX_INPUT_SIZE:
        raise GraphQLError(
            f"The input array size of {len(items)} is greater than the maximum allowed of "
            f"{MAX_INPUT_SIZE}.",
            extensions={"code": "MAX_INPUT_SIZE_EXCEEDED", "argument": argument},
        )


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
        context = _context(info)
        state = context.state
        _check_size(variants, "variants")
        product = state.products.get(productId)
        if product is None:
            missing = _user_error(["productId"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")
            return {"product": None, "productVariants": None, "userErrors": [missing]}
        errors: list[dict[str, Any]] = []
        accepted: list[tuple[MockVariant, dict[str, Any]]] = []
        for index, row in enumerate(variants):
            error = _variant_error(state, productId, index, row)
            if error is None and state.faults.item_refused():
                error = _user_error(["variants", str(index)], "Input is invalid.", "INVALID_INPUT")
            if error is None:
                accepted.append((state.variants[row["id"]], row))
            else:
                errors.append(error)
        if errors and not allowPartialUpdates:
            return {"product": None, "productVariants": None, "userErrors": errors}
        now = state.clock.now()
        views, changed = [], False
        for variant, row in accepted:
            reported: dict[str, Any] = {k: row[k] for k in ("price", "compareAtPrice") if k in row}
            if state.faults.write_dropped():
                state.counters.dropped_writes += 1
                views.append(VariantView(state, variant, reported))
                continue
            if "price" in row:
                state.listing(variant).price = row["price"]
            if "compareAtPrice" in row:
                variant.compare_at_price = row["compareAtPrice"]
            variant.updated_at = now
            changed = True
            views.append(VariantView(state, variant))
        if changed:
            product.updated_at = now
            if state.webhooks_on_writes:
                context.events.append(("products/update", product_payload(state, product)))
        return {
            "product": ProductView(state, product),
            "productVariants": views,
            "userErrors": errors,
        }

    def inventorySetQuantities(
        self,
        info: Info,
        input: dict[str, Any],
    ) -> dict[str, Any]:
        """Set absolute quantities with compare-and-set per row, once per idempotency key."""
        context = _context(info)
        state = context.state
        key = _idempotency_key(info)
        rows: list[dict[str, Any]] = input["quantities"]
        _check_size(rows, "input.quantities")
        for row in rows:
            if "changeFromQuantity" not in row:
                raise GraphQLError(
                    "InventoryQuantityInput must include the following argument: "
                    "changeFromQuantity.",
                    extensions={"code": "INVALID_FIELD_ARGUMENTS"},
                )
        fingerprint = hashlib.sha256(
            json.dumps(input, sort_keys=True, default=str).encode()
        ).hexdigest()
        if key in state.idempotent:
            state.market.deliveries[key] += 1
            original_fingerprint, payload = state.idempotent[key]
            if original_fingerprint == fingerprint:
                return payload  # the original result; the effect is not applied again
            message = "The same idempotency key cannot be used with different operation parameters."
            error = _user_error(["input"], message, "IDEMPOTENCY_KEY_PARAMETER_MISMATCH")
            return {"inventoryAdjustmentGroup": None, "userErrors": [error]}
        errors = _inventory_errors(state, input)
        if errors:
            state.market.deliveries[key] += 1  # reached the shop, nothing applied
            payload = {"inventoryAdjustmentGroup": None, "userErrors": errors}
        else:
            group = _apply(context, input, first_time=state.market.apply_once(key))
            payload = {"inventoryAdjustmentGroup": group, "userErrors": []}
        state.idempotent[key] = (fingerprint, payload)
        return payload


def _variant_error(
    state: ShopifyMockState, product_id: str, index: int, row: dict[str, Any]
) -> dict[str, Any] | None:
    where = ["variants", str(index)]
    variant_id = row.get("id")
    if variant_id is None:
        return _user_error(
            [*where, "id"], "Product variant is missing ID attribute.", "PRODUCT_VARIANT_ID_MISSING"
        )
    variant = state.variants.get(variant_id)
    if variant is None or variant.product_gid != product_id:
        return _user_error(
            [*where, "id"], "Product variant does not exist", "PRODUCT_VARIANT_DOES_NOT_EXIST"
        )
    if "price" in row and row["price"] is None:
        return _user_error([*where, "price"], "Price can't be blank", "INVALID_INPUT")
    for name in ("price", "compareAtPrice"):
        value: Decimal | None = row.get(name)
        if value is not None and value < 0:
            return _user_error(
                [*where, name],
                "The price of the variant must be greater than or equal to zero.",
                "GREATER_THAN_OR_EQUAL_TO",
            )
    return None


def _idempotency_key(info: Info) -> str:
    values = None
    for node in info.field_nodes:
        values = (
            get_directive_values(idempotent_directive(info.schema), node, info.variable_values)
            or values
        )
    key = (values or {}).get("key")
    if not isinstance(key, str) or not key.strip():
        raise GraphQLError(
            "The @idempotent directive is required for this mutation but was not provided.",
            nodes=info.field_nodes,
            extensions={"code": "BAD_REQUEST"},
        )
    return key


def _inventory_errors(state: ShopifyMockState, data: dict[str, Any]) -> list[dict[str, Any]]:
    name: str = data["name"]
    errors = []
    if name not in QUANTITY_NAMES:
        message = "The quantity name must be either 'available' or 'on_hand'."
        errors.append(_user_error(["input", "name"], message, "INVALID_NAME"))
    if data["reason"] not in REASONS:
        errors.append(
            _user_error(["input", "reason"], "The specified reason is invalid.", "INVALID_REASON")
        )
    seen: set[tuple[str, str]] = set()
    for index, row in enumerate(data["quantities"]):
        error = _row_error(state, name, index, row, seen)
        if error is None and state.faults.item_refused():
            error = _user_error(
                ["input", "quantities", str(index), "inventoryItemId"],
                "The specified inventory item is not allowed to be adjusted via API.",
                "NON_MUTABLE_INVENTORY_ITEM",
            )
        if error is not None:
            errors.append(error)
    return errors


def _row_error(
    state: ShopifyMockState, name: str, index: int, row: dict[str, Any], seen: set[tuple[str, str]]
) -> dict[str, Any] | None:
    where = ["input", "quantities", str(index)]
    variant = state.variant_by_item(row["inventoryItemId"])
    if variant is None:
        message = "The specified inventory item could not be found."
        return _user_error([*where, "inventoryItemId"], message, "INVALID_INVENTORY_ITEM")
    location = state.location(row["locationId"])
    if location is None:
        message = "The specified location could not be found."
        return _user_error([*where, "locationId"], message, "INVALID_LOCATION")
    if not location.active:
        message = "The specified inventory item is not stocked at the location."
        return _user_error([*where, "locationId"], message, "ITEM_NOT_STOCKED_AT_LOCATION")
    pair = (variant.item_gid, location.gid)
    if pair in seen:
        message = "The combination of inventoryItemId and locationId must be unique."
        return _user_error(where, message, "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR")
    seen.add(pair)
    quantity: int = row["quantity"]
    if quantity < 0:
        message = "The quantity can't be negative."
        return _user_error([*where, "quantity"], message, "INVALID_QUANTITY_NEGATIVE")
    if quantity > MAX_QUANTITY:
        message = "The total quantity can't be higher than 1,000,000,000."
        return _user_error([*where, "quantity"], message, "INVALID_QUANTITY_TOO_HIGH")
    expected = row["changeFromQuantity"]
    current = _current(state, variant, location.gid, name)
    if expected is not None and name in QUANTITY_NAMES and expected != current:
        message = "The changeFromQuantity value does not match persisted value."
        return _user_error([*where, "changeFromQuantity"], message, "CHANGE_FROM_QUANTITY_STALE")
    return None


def _current(state: ShopifyMockState, variant: MockVariant, location_gid: str, name: str) -> int:
    if name == "on_hand":
        return state.on_hand(variant, location_gid)
    return state.available(variant, location_gid)


def _apply(context: RequestContext, data: dict[str, Any], *, first_time: bool) -> dict[str, Any]:
    state = context.state
    name: str = data["name"]
    other = "on_hand" if name == "available" else "available"
    now = state.clock.now()
    changes = []
    for row in data["quantities"]:
        variant = state.variant_by_item(row["inventoryItemId"])
        location = state.location(row["locationId"])
        assert variant is not None
        assert location is not None
        before = _current(state, variant, location.gid, name)
        delta = row["quantity"] - before
        other_after = _current(state, variant, location.gid, other) + delta
        if not first_time:
            pass  # the key's effect exists already (market effect log): never apply twice
        elif state.faults.write_dropped():
            state.counters.dropped_writes += 1
        else:
            available_after = before + delta if name == "available" else other_after
            state.set_available(variant, location.gid, available_after)
            variant.updated_at = now
            if delta and state.webhooks_on_writes:
                payload = inventory_level_payload(state, variant, location, now)
                context.events.append(("inventory_levels/update", payload))
        item, where = ItemView(state, variant), LocationView(state, location)
        changes.append(_change(name, delta, row["quantity"], item, where))
        changes.append(_change(other, delta, other_after, item, where))
    state.adjustment_groups += 1
    return {
        "id": f"gid://shopify/InventoryAdjustmentGroup/{state.adjustment_groups}",
        "createdAt": now,
        "reason": data["reason"],
        "referenceDocumentUri": data.get("referenceDocumentUri"),
        "changes": changes,
    }


def _change(name: str, delta: int, after: int, item: Any, location: Any) -> dict[str, Any]:
    return {
        "name": name,
        "delta": delta,
        "quantityAfterChange": after,
        "item": item,
        "location": location,
    }
