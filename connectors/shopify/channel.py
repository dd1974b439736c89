"""The Shopify channel: listings from ``productVariants``, prices via
``productVariantsBulkUpdate``, quantities via ``inventorySetQuantities`` (compare-and-set)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

import structlog

from connectors.base import ChannelCapabilities, ChannelDeps
from connectors.refusals import CURRENCY_MISMATCH, split_refused
from connectors.retry import RetryPolicy
from connectors.shopify import orders, queries, webhooks
from connectors.shopify.catalog import Catalog, VariantIds, chunks, money_str
from connectors.shopify.client import ShopifyClient, parse
from connectors.shopify.const import (
    LISTING_PAGE_SIZE,
    MAX_INPUT_ITEMS,
    UNKNOWN_SKU,
    VARIANT_LOOKUP_IDS,
)
from connectors.shopify.inventory import StockWriter
from connectors.shopify.models import (
    Location,
    ShopifySettings,
    Variant,
    VariantPage,
    VariantsBulkUpdatePayload,
)
from domain.errors import ChannelError, RejectedUpdateError, TransientChannelError
from domain.events import ChannelEvent, OrderEvent, WebhookDelivery
from domain.listings import ChannelListing
from domain.offers import OfferObservation
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate

log = structlog.get_logger(__name__)

# Codes saying our cached ids are wrong (variant moved or deleted): re-resolve next time.
_STALE_ID_CODES = frozenset(
    {"PRODUCT_VARIANT_DOES_NOT_EXIST", "PRODUCT_DOES_NOT_EXIST", "MUST_BE_FOR_THIS_PRODUCT"}
)
# SKUs per search query, and how many variants such a query may return (cost ~5 points each).
_SKUS_PER_SEARCH = 50
_SEARCH_PAGE_SIZE = 100


class ShopifyChannel:
    """One Shopify shop, as the daemon sees it."""

    def __init__(
        self,
        name: str,
        settings: ShopifySettings,
        deps: ChannelDeps,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.deps = deps
        self.capabilities = ChannelCapabilities(
            max_price_batch=MAX_INPUT_ITEMS,
            max_stock_batch=MAX_INPUT_ITEMS,
            stock_is_marketplace_held=False,
            compare_and_set_stock=True,
            sends_floor_and_ceiling=False,  # Shopify has no min/max price on a variant
            own_seller_id=None,  # a storefront has no competing offers
        )
        self.client = ShopifyClient(settings, deps, policy)
        self.catalog = Catalog.empty()
        self.location_id: str | None = settings.location_id
        self.stock = StockWriter(self.client, self.catalog)

    async def open(self) -> None:
        """Check the token, the shop's currency and the managed location."""
        if self.settings.location_id:
            data = await self.client.execute(
                "open", queries.OPEN_AT_LOCATION, {"id": self.settings.location_id}
            )
            candidates = [data.get("location")]
        else:
            data = await self.client.execute("open", queries.OPEN_PRIMARY, {})
            others = (data.get("locations") or {}).get("nodes") or []
            candidates = [data.get("location"), *others]
        active = [
            loc
            for loc in (parse("open", c, Location) for c in candidates if isinstance(c, dict))
            if loc.is_active
        ]
        if not active:
            wanted = self.settings.location_id or "a primary or active location"
            raise ChannelError(f"shopify: no active location {wanted}", code="LOCATION_NOT_FOUND")
        self.location_id = active[0].id
        currency = (data.get("shop") or {}).get("currencyCode")
        if currency and currency != self.settings.currency:
            # Prices are written as bare decimals in the shop's currency: never guess.
            raise ChannelError(
                f"shopify: the shop sells in {currency}, the channel is configured for "
                f"{self.settings.currency}",
                code=CURRENCY_MISMATCH,
            )
        log.info("shopify_opened", channel=self.name, location=self.location_id)

    async def close(self) -> None:
        """Forget cached ids (the HTTP client belongs to the daemon)."""
        self.catalog.ids.clear()
        self.catalog.quantities.clear()

    async def fetch_listings(self) -> list[ChannelListing]:
        """Every variant with a SKU: price, ``available`` at our location, and its GIDs."""
        location = await self._location()
        fresh = Catalog.empty()
        listings: dict[str, ChannelListing] = {}
        after: str | None = None
        cursors: set[str] = set()
        while True:
            data = await self.client.execute(
                "listings_page",
                queries.LISTINGS_PAGE,
                {"first": LISTING_PAGE_SIZE, "after": after, "locationId": location},
            )
            page = parse("listings_page", data.get("productVariants"), VariantPage)
            for variant in page.nodes:
                if variant.sku and variant.sku.strip() in listings:
                    # Shopify does not enforce unique SKUs; the first variant keeps the SKU.
                    log.warning("shopify_duplicate_sku", channel=self.name, variant=variant.id)
                    continue
                listing = fresh.remember(variant, self.settings.currency)
                if listing is not None:
                    listings[listing.sku] = listing
            cursor = page.page_info.end_cursor
            if not page.page_info.has_next_page or not cursor:
                break
            if cursor in cursors:  # a cursor that comes back would loop for ever
                raise TransientChannelError(f"shopify listings: cursor {cursor!r} repeated")
            cursors.add(cursor)
            after = cursor
        self.catalog.ids = fresh.ids
        self.catalog.quantities = fresh.quantities
        return list(listings.values())

    async def fetch_competitor_offers(self, skus: Sequence[str]) -> list[OfferObservation]:
        """Shopify is the merchant's own storefront: there are no competing offers."""
        return []

    async def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """One ``productVariantsBulkUpdate`` per product (≤250 variants), partial updates on."""
        shop = self.settings.currency
        results, wanted = split_refused(
            updates,
            lambda u: (
                None
                if u.currency == shop
                else (CURRENCY_MISMATCH, f"price in {u.currency}, shop sells in {shop}")
            ),
        )
        await self.resolve([(u.sku, u.external_id) for u in wanted])
        by_product: dict[str, list[tuple[PriceUpdate, VariantIds]]] = defaultdict(list)
        for update in wanted:
            ids = self.catalog.ids.get(update.sku)
            if ids is None:
                results.append(_unknown(update.idempotency_key, update.sku))
            else:
                by_product[ids.product_id].append((update, ids))
        for product_id, items in by_product.items():
            for chunk in chunks(items, lambda item: item[1].variant_id, MAX_INPUT_ITEMS):
                results.extend(await self._set_prices(product_id, chunk))
        return results

    async def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        """Absolute ``available`` quantities with compare-and-set (see ``inventory``)."""
        location = await self._location()
        await self.resolve([(u.sku, u.external_id) for u in updates])
        return await self.stock.push(updates, location)

    async def fetch_orders(self, since: datetime) -> list[OrderEvent]:
        """Orders updated since ``since`` (the poll behind missed orders/create webhooks)."""
        return await orders.fetch_orders(self.client, since)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Check ``X-Shopify-Hmac-Sha256`` over the raw body; keep triggered-at for staleness."""
        return webhooks.verify(
            headers,
            body,
            secret=self.settings.webhook_key,
            clock=self.deps.clock,
            max_age_s=self.settings.webhook_max_age_s,
        )

    def parse_webhook(self, delivery: WebhookDelivery) -> list[ChannelEvent]:
        """Orders, cancels and our location's quantity reports as domain events."""
        return webhooks.parse(
            delivery,
            shop=self.settings.shop,
            location_id=self.location_id,
            sku_of_item=self.catalog.sku_of_item,
        )

    async def resolve(self, wanted: Sequence[tuple[str, str | None]]) -> None:
        """Look up the GIDs of SKUs we have not read yet: by variant GID, else by SKU search."""
        missing = {sku: ext for sku, ext in wanted if sku not in self.catalog.ids}
        if not missing:
            return
        location = await self._location()
        by_id = [ext for ext in missing.values() if ext and ext.startswith(_VARIANT_GID)]
        for start in range(0, len(by_id), VARIANT_LOOKUP_IDS):
            data = await self.client.execute(
                "variants_lookup",
                queries.VARIANTS_BY_ID,
                {"ids": by_id[start : start + VARIANT_LOOKUP_IDS], "locationId": location},
            )
            nodes = [n for n in data.get("nodes") or [] if isinstance(n, dict) and n]
            # A GID that is not a variant (or no longer exists) comes back null or empty.
            self._remember_found([parse("variants_lookup", n, Variant) for n in nodes], missing)
        searched = sorted(sku for sku in missing if sku not in self.catalog.ids)
        for start in range(0, len(searched), _SKUS_PER_SEARCH):
            batch = searched[start : start + _SKUS_PER_SEARCH]
            data = await self.client.execute(
                "variants_lookup",
                queries.VARIANTS_BY_SKU,
                {
                    "first": _SEARCH_PAGE_SIZE,
                    "query": queries.sku_search(batch),
                    "locationId": location,
                },
            )
            page = parse("variants_lookup", data.get("productVariants"), VariantPage)
            self._remember_found(page.nodes, missing)

    def _remember_found(
        self, variants: Sequence[Variant], missing: Mapping[str, str | None]
    ) -> None:
        for variant in variants:
            sku = (variant.sku or "").strip()
            # Search matches loosely and a stored GID may now carry another SKU: exact only.
            if sku in missing and sku not in self.catalog.ids:
                self.catalog.remember(variant, self.settings.currency)

    async def _location(self) -> str:
        if self.location_id is None:
            await self.open()
        assert self.location_id is not None
        return self.location_id

    async def _set_prices(
        self, product_id: str, items: Sequence[tuple[PriceUpdate, VariantIds]]
    ) -> list[PushResult]:
        keys = [update.idempotency_key for update, _ in items]
        variables = {
            "productId": product_id,
            "variants": [
                {"id": ids.variant_id, "price": money_str(update.price)} for update, ids in items
            ],
        }
        try:
            data = await self.client.execute("set_prices", queries.SET_PRICES, variables)
        except RejectedUpdateError as err:
            return [_result(k, PushStatus.REJECTED, err.code, str(err)) for k in keys]
        except TransientChannelError as err:
            # This product's call ran out of retries; the other products' results stand.
            return [_result(k, PushStatus.RETRY, err.code or "TRANSIENT", str(err)) for k in keys]
        try:
            answer = parse(
                "set_prices", data.get("productVariantsBulkUpdate"), VariantsBulkUpdatePayload
            )
        except TransientChannelError as err:
            return [_result(k, PushStatus.RETRY, err.code, str(err)) for k in keys]
        errors: dict[int | None, list[tuple[str | None, str]]] = defaultdict(list)
        for error in answer.user_errors:
            errors[error.index_after("variants")].append((error.code, error.message))
        results = []
        for index, (update, ids) in enumerate(items):
            mine = errors.get(index, []) + errors.get(None, [])
            if mine:
                code = next((c for c, _ in mine if c), "USER_ERROR")
                if code in _STALE_ID_CODES:
                    self.catalog.forget(update.sku)
                message = "; ".join(m for _, m in mine)
                results.append(_result(update.idempotency_key, PushStatus.REJECTED, code, message))
            else:
                results.append(
                    PushResult(
                        update.idempotency_key,
                        PushStatus.CONFIRMED,
                        marketplace_ref=ids.variant_id,
                    )
                )
        return results


_VARIANT_GID = "gid://shopify/ProductVariant/"


def _result(key: str, status: PushStatus, code: str | None, message: str) -> PushResult:
    return PushResult(key, status, code=code, message=message)


def _unknown(key: str, sku: str) -> PushResult:
    return _result(key, PushStatus.REJECTED, UNKNOWN_SKU, f"no Shopify variant has SKU {sku!r}")
