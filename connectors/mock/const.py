"""Wire constants of the in-memory mock channel."""

from typing import Final

# Webhooks: hex HMAC-SHA256 of the raw body with the channel's webhook_secret.
SIGNATURE_HEADER: Final = "X-Mock-Signature"
EVENT_ID_HEADER: Final = "X-Mock-Event-Id"
TOPIC_HEADER: Final = "X-Mock-Topic"
# Our own seller id on the simulated market: offers with it are ours, never competitors.
OWN_SELLER_ID: Final = "SELF"
# Topic of a competition change (the mock's ANY_OFFER_CHANGED): {"sku": ...} or {"skus": [...]}.
OFFER_CHANGED_TOPIC: Final = "offer_changed"
# An order: {"order_id", "status": "placed"|"cancelled", "lines": [{"sku", "quantity"}],
# "updated_at": ISO-8601 with offset}.
ORDER_TOPIC: Final = "order"
# A live quantity report (the mock's inventory_levels/update): {"sku", "quantity", "updated_at"}.
QUANTITY_TOPIC: Final = "quantity"
