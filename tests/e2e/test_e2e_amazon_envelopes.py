"""Forwarded ORDER_CHANGE notifications in their AWS envelopes, through the daemon's webhook
route and inbox: the raw document, an SQS message, an SNS notification and an EventBridge event
each move the ledger once; a body in any other shape is stored ``invalid`` with a warning that
says what to forward."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from connectors.mock.amazon.notify import order_change
from daemon.inbox import InboxWorker
from daemon.ledger import on_hand
from daemon.passes import run_named_pass
from daemon.server import start_server
from tests.daemon_fixtures import server_context
from tests.e2e.amazon_fixtures import (
    CHANNEL,
    WEBHOOK_SECRET,
    AdvancingSleep,
    loaded,
    manual_runtime,
    mock_state,
    served,
    write_config,
)
from tests.e2e.test_e2e_amazon import INBOX, _clock

pytestmark = pytest.mark.usefixtures("credentials")
ACCOUNT = "123456789012"


def sqs(document: dict[str, Any]) -> dict[str, Any]:
    """An SQS message as ReceiveMessage returns it: the notification JSON in ``Body``."""
    body = json.dumps(document)
    return {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 (SQS's checksum)
        "Body": body,
    }


def sns(document: dict[str, Any]) -> dict[str, Any]:
    """An SNS notification: the notification JSON in ``Message``."""
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:sp-api-notifications",
        "Message": json.dumps(document),
        "Timestamp": "2026-11-02T09:00:01.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def event_bridge(document: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge event from the SP-API partner source: the notification in ``detail``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": document["NotificationType"],
        "source": f"aws.partner/sellingpartnerapi.amazon.com/{ACCOUNT}/amzn1.sellerapps.app.x",
        "account": ACCOUNT,
        "time": "2026-11-02T09:00:01Z",
        "region": "us-east-1",
        "resources": [],
        "detail": document,
    }


async def test_wrapped_order_changes_are_applied_and_an_unknown_envelope_is_invalid(
    tmp_path: Path,
) -> None:
    clock = _clock()
    state = mock_state(tmp_path, clock=clock, sleep=AdvancingSleep(clock))
    async with served(state) as mock:
        rt = await manual_runtime(loaded(write_config(tmp_path, mock.base_url)), clock)
        moved: list[set[str]] = []
        # The route stores, the inbox applies (no debounced passes left running at the end).
        inbox = InboxWorker(rt, on_offer_change=lambda *_: None, on_stock_change=moved.append)
        server = await start_server(server_context(rt, inbox.wake), "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.port}/webhooks/{CHANNEL}"
        try:
            await run_named_pass(rt, "reconcile", "p0")
            listing = state.listing("MUG-1")
            orders = [order_change(state, listing, 1, f"113-0000000-000000{n}") for n in range(4)]
            bodies = [
                orders[0],
                sqs(orders[1]),
                sns(orders[2]),
                event_bridge(orders[3]),
                sqs(sns(orders[0])),  # SNS → SQS without raw delivery: the same notification
                {"Records": [{"eventSource": "aws:s3", "body": json.dumps(orders[1])}]},
            ]
            with capture_logs() as logs:
                async with httpx.AsyncClient() as http:
                    for body in bodies:
                        raw = json.dumps(body).encode()
                        signature = hmac.new(
                            WEBHOOK_SECRET.encode(), raw, hashlib.sha256
                        ).hexdigest()
                        answer = await http.post(
                            url, content=raw, headers={"X-Repricerd-Signature": signature}
                        )
                        assert answer.status_code == 200, answer.text
                await inbox.drain()
            async with rt.db.read() as conn:
                rows = (await conn.execute(sa.select(INBOX).order_by(INBOX.c.id))).all()
                held = await on_hand(conn, ["MUG-1"])
            ids = [o["NotificationMetadata"]["NotificationId"] for o in orders]
            assert [(r.dedupe_key, r.topic, r.outcome) for r in rows[:4]] == [
                (nid, "ORDER_CHANGE", "applied") for nid in ids
            ]
            assert [json.loads(r.payload) for r in rows[:4]] == orders  # the notification kept
            assert set().union(*moved) == {"MUG-1"}
            assert held == {"MUG-1": 7 - 4}  # four orders of one unit; the re-wrapped one is a
            assert len(rows) == 5  # duplicate of the first at the route, never stored twice
            unknown = rows[4]
            assert (unknown.topic, unknown.outcome) == ("unknown", "invalid")
            assert "forward the SQS message body" in unknown.error
            [warning] = [e for e in logs if e["event"] == "amazon.notification.unrecognized"]
            assert warning["log_level"] == "warning"
            assert "SNS notification or EventBridge event" in warning["fix"]
        finally:
            await inbox.drain()
            await server.stop()
            await rt.close()
