"""Stock writes: ``inventorySetQuantities`` on the ``available`` quantity, compare-and-set.

Every row carries ``changeFromQuantity`` (the quantity we believe is live: the update's
``expected``, else the last one we read), so a sale that lands between our read and our write is
never overwritten: Shopify answers ``CHANGE_FROM_QUANTITY_STALE``, we re-read the live value and
return RETRY for that update (CONFIRMED if the live value already is the one we wanted: Shopify
decrements its own ``available`` on a sale, so the daemon's write for that sale finds it done).
The mutation is atomic (one bad row fails the call), so rows that were refused only because of a
sibling are sent once more on their own.

The ``@idempotent`` key is a UUIDv5 of the rows (idempotency key, item, quantity, prior): a retry
of the same request reuses it, so a write whose answer was lost is replayed, not applied twice;
a re-drive after a stale re-read changes the prior and so gets a new key (reusing the old one
would only replay the old failure).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog

from connectors.shopify import queries
from connectors.shopify.catalog import Catalog, chunks
from connectors.shopify.client import ShopifyClient, parse
from connectors.shopify.const import (
    CAS_STALE_CODES,
    MAX_INPUT_ITEMS,
    NOT_STOCKED,
    QUANTITY_NAME,
    REFERENCE_URI_PREFIX,
    RETRYABLE_STOCK_CODES,
    SET_REASON,
    UNKNOWN_SKU,
)
from connectors.shopify.models import LevelNode, SetQuantitiesPayload
from domain.errors import RejectedUpdateError, TransientChannelError
from domain.writes import PushResult, PushStatus, StockUpdate

log = structlog.get_logger(__name__)

_KEY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/repricerd/shopify/stock")


@dataclass(frozen=True, slots=True)
class StockRow:
    """One quantity to set: the update, its inventory item and the prior we compare against."""

    update: StockUpdate
    item_id: str
    change_from: int


def mutation_key(rows: Sequence[StockRow], location: str) -> str:
    """The ``@idempotent`` key of one call, derived from its rows (stable across retries)."""
    lines = [location] + [
        f"{r.update.idempotency_key}|{r.item_id}|{r.update.quantity}|{r.change_from}" for r in rows
    ]
    return str(uuid.uuid5(_KEY_NAMESPACE, "\n".join(lines)))


class StockWriter:
    """Sends stock updates for one shop location and keeps the catalog's quantities current."""

    def __init__(self, client: ShopifyClient, catalog: Catalog) -> None:
        self.client = client
        self.catalog = catalog

    async def push(self, updates: Sequence[StockUpdate], location: str) -> list[PushResult]:
        """Set each update's quantity; one result per update."""
        results: list[PushResult] = []
        known: list[tuple[StockUpdate, str]] = []
        for update in updates:
            ids = self.catalog.ids.get(update.sku)
            if ids is None or ids.inventory_item_id is None:
                results.append(
                    _result(
                        update,
                        PushStatus.REJECTED,
                        UNKNOWN_SKU,
                        f"no variant has SKU {update.sku!r}",
                    )
                )
            else:
                known.append((update, ids.inventory_item_id))
        # Never send a blind write: a prior we have not seen is read first.
        unread = {item: u.sku for u, item in known if u.expected is None}
        unread = {i: s for i, s in unread.items() if s not in self.catalog.quantities}
        read_error: RejectedUpdateError | TransientChannelError | None = None
        if unread:
            try:
                await self.read(unread, location)
            except (RejectedUpdateError, TransientChannelError) as err:
                read_error = err
        rows: list[StockRow] = []
        for update, item in known:
            if read_error is not None and update.expected is None and item in unread:
                transient = isinstance(read_error, TransientChannelError)
                status = PushStatus.RETRY if transient else PushStatus.REJECTED
                results.append(_result(update, status, read_error.code, str(read_error)))
                continue
            prior = update.expected
            if prior is None:
                prior = self.catalog.quantities.get(update.sku)
            if prior is None:
                results.append(
                    _result(update, PushStatus.REJECTED, NOT_STOCKED, "not stocked at location")
                )
                continue
            rows.append(StockRow(update, item, prior))
        for chunk in chunks(rows, lambda row: row.item_id, MAX_INPUT_ITEMS):
            results.extend(await self._set(chunk, location, resend=True))
        return results

    async def read(self, items: Mapping[str, str], location: str) -> dict[str, int | None]:
        """Live ``available`` of inventory items (item GID -> SKU) at ``location``; None if the
        item is not stocked there. The catalog's quantities follow."""
        live: dict[str, int | None] = {}
        ids = list(items)
        for start in range(0, len(ids), MAX_INPUT_ITEMS):
            data = await self.client.execute(
                "read_levels",
                queries.READ_LEVELS,
                {"ids": ids[start : start + MAX_INPUT_ITEMS], "locationId": location},
            )
            for raw in data.get("nodes") or []:
                if not isinstance(raw, dict) or not raw:
                    continue
                node = parse("read_levels", raw, LevelNode)
                level = node.inventory_level
                live[node.id] = level.named(QUANTITY_NAME) if level else None
        for item, sku in items.items():
            self.catalog.quantities[sku] = live.get(item)
        return live

    async def _set(
        self, rows: Sequence[StockRow], location: str, *, resend: bool
    ) -> list[PushResult]:
        key = mutation_key(rows, location)
        variables = {
            "input": {
                "name": QUANTITY_NAME,
                "reason": SET_REASON,
                "referenceDocumentUri": REFERENCE_URI_PREFIX + key,
                "quantities": [
                    {
                        "inventoryItemId": row.item_id,
                        "locationId": location,
                        "quantity": row.update.quantity,
                        "changeFromQuantity": row.change_from,
                    }
                    for row in rows
                ],
            },
            "idempotencyKey": key,
        }
        try:
            data = await self.client.execute("set_stock", queries.SET_STOCK, variables)
        except RejectedUpdateError as err:
            return [_result(r.update, PushStatus.REJECTED, err.code, str(err)) for r in rows]
        except TransientChannelError as err:
            code = err.code or "TRANSIENT"
            return [_result(r.update, PushStatus.RETRY, code, str(err)) for r in rows]
        try:
            answer = parse("set_stock", data.get("inventorySetQuantities"), SetQuantitiesPayload)
        except TransientChannelError as err:
            return [_result(r.update, PushStatus.RETRY, err.code, str(err)) for r in rows]
        applied = answer.inventory_adjustment_group is not None
        errors: dict[int | None, list[tuple[str | None, str]]] = defaultdict(list)
        for error in answer.user_errors:
            errors[error.index_after("quantities")].append((error.code, error.message))
        results: list[PushResult] = []
        stale: list[tuple[StockRow, str, str]] = []
        untouched: list[StockRow] = []
        for index, row in enumerate(rows):
            mine = errors.get(index, []) + errors.get(None, [])
            if not mine:
                if applied:
                    self.catalog.quantities[row.update.sku] = row.update.quantity
                    results.append(PushResult(row.update.idempotency_key, PushStatus.CONFIRMED))
                else:
                    untouched.append(row)
                continue
            code = next((c for c, _ in mine if c), "USER_ERROR")
            message = "; ".join(m for _, m in mine)
            if code in CAS_STALE_CODES:
                stale.append((row, code, message))
            elif code in RETRYABLE_STOCK_CODES:
                results.append(_result(row.update, PushStatus.RETRY, code, message))
            else:
                results.append(_result(row.update, PushStatus.REJECTED, code, message))
        if stale:
            results.extend(await self._stale(stale, location))
        if untouched and resend:
            results.extend(await self._set(untouched, location, resend=False))
        elif untouched:
            results.extend(
                _result(r.update, PushStatus.RETRY, "NOT_APPLIED", "batch refused for other items")
                for r in untouched
            )
        return results

    async def _stale(
        self, stale: Sequence[tuple[StockRow, str, str]], location: str
    ) -> list[PushResult]:
        """The live quantity moved: re-read it (the next attempt compares against it), RETRY."""
        items = {row.item_id: row.update.sku for row, _, _ in stale}
        try:
            live = await self.read(items, location)
        except (RejectedUpdateError, TransientChannelError) as err:
            log.warning("shopify_stale_reread_failed", error=str(err), items=len(items))
            for sku in items.values():
                self.catalog.quantities.pop(sku, None)  # read again before the next write
            live = {}
        results = []
        for row, code, message in stale:
            now = live.get(row.item_id)
            if now == row.update.quantity:
                # The shop moved to our number by itself (its own sale or cancel did what the
                # ledger asked for): the intent's effect is live, nothing is left to write.
                results.append(
                    PushResult(
                        row.update.idempotency_key,
                        PushStatus.CONFIRMED,
                        code=code,
                        message=f"already {now} live (expected {row.change_from})",
                    )
                )
                continue
            seen = f"live {QUANTITY_NAME} is {now}" if now is not None else "live value unknown"
            log.info(
                "shopify_stock_moved",
                sku=row.update.sku,
                expected=row.change_from,
                live=now,
            )
            results.append(
                _result(
                    row.update,
                    PushStatus.RETRY,
                    code,
                    f"{message} (expected {row.change_from}, {seen})",
                )
            )
        return results


def _result(update: StockUpdate, status: PushStatus, code: str | None, message: str) -> PushResult:
    return PushResult(update.idempotency_key, status, code=code, message=message)
