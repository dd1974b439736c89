"""JSON_LISTINGS_FEED (Feeds API 2021-06-30): bulk PATCH messages when single calls are too slow.

createFeedDocument → PUT the document to the presigned URL → createFeed → poll getFeed until a
terminal status → getFeedDocument of the result → download (gunzip) the processing report →
issues keyed by ``messageId`` (1..n, the order of the updates).

The feed id is written to the channel's ``FeedJournal`` with the updates it carries as soon as
createFeed returns; a later push of those updates (the start-up re-drive after a crash) resumes
that feed (getFeed, then its report) instead of creating it again. Only a feed that ended FATAL
or CANCELLED, or was never created, is sent again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

from connectors.amazon.client import SpApiClient
from connectors.amazon.const import (
    CREATE_FEED,
    CREATE_FEED_DOCUMENT,
    FEED_CONTENT_TYPE,
    FEED_DOCUMENT_PATH,
    FEED_DOCUMENTS_PATH,
    FEED_DOWNLOAD,
    FEED_PATH,
    FEED_TERMINAL,
    FEED_TYPE,
    FEED_UPLOAD,
    FEED_VERSION,
    FEEDS_PATH,
    GET_FEED,
    GET_FEED_DOCUMENT,
    ISSUE_LOCALE,
)
from connectors.journal import FeedEntry, JournaledFeed, record_feed
from connectors.wire import dumps_exact, loads_exact
from domain.errors import ChannelAuthError, ChannelError, RejectedUpdateError
from domain.writes import PushResult, PushStatus

log = structlog.get_logger(__name__)

# A journaled feed in one of these states applied nothing: its updates are sent again.
RESEND: Final = frozenset({"FATAL", "CANCELLED"})


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """One PATCH message: the SKU, its productType and its patches."""

    sku: str
    product_type: str
    patches: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ReportIssue:
    """One issue of the processing report."""

    code: str
    message: str
    severity: str


@dataclass(slots=True)
class FeedOutcome:
    """What became of a feed: its final status and the report's issues per message."""

    status: str  # DONE | FATAL | CANCELLED | TIMEOUT | NOT_SUBMITTED
    feed_id: str | None = None
    issues: dict[int, list[ReportIssue]] = field(default_factory=dict)
    feed_issues: list[ReportIssue] = field(default_factory=list)  # not tied to a message
    accepted: int | None = None  # summary.messagesAccepted
    report: bool = False  # the report was read
    error: ChannelError | None = None  # why the feed was not submitted / not fully read


def feed_document(seller_id: str, messages: Sequence[FeedMessage]) -> dict[str, Any]:
    """The v2 listings feed document (messageIds 1..n in order)."""
    return {
        "header": {"sellerId": seller_id, "version": FEED_VERSION, "issueLocale": ISSUE_LOCALE},
        "messages": [
            {
                "messageId": number,
                "sku": message.sku,
                "operationType": "PATCH",
                "productType": message.product_type,
                "patches": message.patches,
            }
            for number, message in enumerate(messages, start=1)
        ],
    }


class FeedSubmitter:
    """Runs one listings feed end to end for one seller account."""

    def __init__(self, client: SpApiClient) -> None:
        self.client = client
        self.settings = client.settings

    async def submit(
        self, messages: Sequence[FeedMessage], keys: Sequence[str], kind: str
    ) -> FeedOutcome:
        """Send ``messages`` (the updates ``keys``, in order) as one feed, journal it, and wait
        (up to feed_timeout_s) for its report."""
        try:
            document_id, feed_id = await self._create(messages)
        except ChannelAuthError:
            raise
        except ChannelError as err:
            log.warning("amazon.feed.not_submitted", error=str(err), messages=len(messages))
            return FeedOutcome("NOT_SUBMITTED", error=err)
        entries = [FeedEntry(key, m.sku) for key, m in zip(keys, messages, strict=True)]
        await record_feed(self.client.deps.feed_journal, feed_id, document_id, kind, entries)
        return await self._follow(feed_id, look_first=False)

    async def resume(self, feed: JournaledFeed) -> FeedOutcome:
        """Follow a feed created before (by an earlier process): look at it now, then poll it
        until it ends or feed_timeout_s passes, and read its report."""
        log.info("amazon.feed.resumed", feed_id=feed.feed_id, status=feed.status)
        return await self._follow(feed.feed_id, look_first=True)

    async def _follow(self, feed_id: str, *, look_first: bool) -> FeedOutcome:
        outcome = FeedOutcome("TIMEOUT", feed_id=feed_id)
        try:
            feed = await self._wait(feed_id, look_first=look_first)
            if feed is None:
                log.warning("amazon.feed.timeout", feed_id=feed_id)
                return outcome
            outcome.status = str(feed["processingStatus"])
            result_id = feed.get("resultFeedDocumentId")
            if outcome.status == "DONE" and isinstance(result_id, str):
                self._read_report(await self._report(result_id), outcome)
        except ChannelAuthError:
            raise
        except ChannelError as err:
            # The feed exists and Amazon will apply it; only our view of the result is missing.
            log.warning("amazon.feed.unread", feed_id=feed_id, error=str(err))
            outcome.error = err
        log.info("amazon.feed.done", feed_id=feed_id, status=outcome.status)
        return outcome

    async def settle(self, outcome: FeedOutcome, keys: Sequence[str]) -> list[PushResult]:
        """Map the outcome to a result per key (in feed order); once the feed has ended, mark
        it final in the journal without the keys that were not applied."""
        results = feed_results(keys, outcome)
        if outcome.feed_id is not None and outcome.status in FEED_TERMINAL:
            unapplied = [r.idempotency_key for r in results if r.status is PushStatus.RETRY]
            await self.client.deps.feed_journal.finish(outcome.feed_id, outcome.status, unapplied)
        return results

    async def _create(self, messages: Sequence[FeedMessage]) -> tuple[str, str]:
        document = await self.client.call(
            CREATE_FEED_DOCUMENT,
            "POST",
            FEED_DOCUMENTS_PATH,
            body={"contentType": FEED_CONTENT_TYPE},
        )
        body = dumps_exact(feed_document(self.settings.seller_id, messages))
        await self.client.upload(FEED_UPLOAD, _str(document, "url"), body, FEED_CONTENT_TYPE)
        document_id = _str(document, "feedDocumentId")
        created = await self.client.call(
            CREATE_FEED,
            "POST",
            FEEDS_PATH,
            body={
                "feedType": FEED_TYPE,
                "marketplaceIds": [self.settings.marketplace_id],
                "inputFeedDocumentId": document_id,
            },
        )
        return document_id, _str(created, "feedId")

    async def _wait(self, feed_id: str, *, look_first: bool) -> Mapping[str, Any] | None:
        clock, sleep = self.client.deps.clock, self.client.deps.sleep
        interval = self.settings.feed_poll_interval_s
        started = clock.monotonic()
        deadline = started + self.settings.feed_timeout_s
        # A feed is never done the moment it is created: wait first, then look. A resumed feed
        # may have ended long ago: look at once. Polls keep to a grid from the start, so a slow
        # getFeed answer does not push every later poll back (the last one lands at most one
        # interval after the feed is done).
        polls = -1 if look_first else 0
        while True:
            polls += 1
            await sleep(max(0.0, started + polls * interval - clock.monotonic()))
            feed = await self.client.call(GET_FEED, "GET", FEED_PATH.format(feed_id=feed_id))
            if isinstance(feed, Mapping) and feed.get("processingStatus") in FEED_TERMINAL:
                return feed
            if started + (polls + 1) * interval > deadline:
                return None

    async def _report(self, document_id: str) -> Any:
        meta = await self.client.call(
            GET_FEED_DOCUMENT, "GET", FEED_DOCUMENT_PATH.format(document_id=document_id)
        )
        compression = meta.get("compressionAlgorithm") if isinstance(meta, Mapping) else None
        raw = await self.client.download(
            FEED_DOWNLOAD, _str(meta, "url"), compression if isinstance(compression, str) else None
        )
        try:
            return loads_exact(raw)
        except ValueError as err:
            raise ChannelError(f"feed report {document_id} is not JSON") from err

    @staticmethod
    def _read_report(report: Any, outcome: FeedOutcome) -> None:
        if not isinstance(report, Mapping):
            raise ChannelError("feed report is not a JSON object")
        for raw in report.get("issues") or []:
            if not isinstance(raw, Mapping):
                continue
            issue = ReportIssue(
                code=str(raw.get("code") or "UNKNOWN"),
                message=str(raw.get("message") or ""),
                severity=str(raw.get("severity") or "ERROR"),
            )
            number = raw.get("messageId")
            if isinstance(number, int) and not isinstance(number, bool):
                outcome.issues.setdefault(number, []).append(issue)
            else:
                outcome.feed_issues.append(issue)
        summary = report.get("summary")
        if isinstance(summary, Mapping) and isinstance(summary.get("messagesAccepted"), int):
            outcome.accepted = summary["messagesAccepted"]
        outcome.report = True


def feed_results(keys: Sequence[str], outcome: FeedOutcome) -> list[PushResult]:
    """Map the processing report back to the updates' keys (messageId n = the n-th key)."""
    ref = f"feed:{outcome.feed_id}" if outcome.feed_id else None
    results = []
    if outcome.status == "NOT_SUBMITTED":
        err = outcome.error
        status = PushStatus.REJECTED if isinstance(err, RejectedUpdateError) else PushStatus.RETRY
        code = (err.code if err else None) or "FEED_NOT_SUBMITTED"
        return [PushResult(key, status, code, str(err)) for key in keys]
    if outcome.status in RESEND:
        message = f"feed {outcome.feed_id} ended {outcome.status}; nothing applied"
        return [PushResult(key, PushStatus.RETRY, outcome.status, message, ref) for key in keys]
    if outcome.status != "DONE" or not outcome.report:
        # Still processing, or the report could not be read: Amazon applies what it accepted,
        # and reconcile compares the live listing with what we sent.
        message = f"feed {outcome.feed_id} {outcome.status.lower()}: result not read"
        return [PushResult(key, PushStatus.ACCEPTED, None, message, ref) for key in keys]
    feed_error = next((i for i in outcome.feed_issues if i.severity == "ERROR"), None)
    nothing_accepted = outcome.accepted == 0
    for number, key in enumerate(keys, start=1):
        errors = [i for i in outcome.issues.get(number, []) if i.severity == "ERROR"]
        if errors:
            message = "; ".join(i.message for i in errors)
            results.append(PushResult(key, PushStatus.REJECTED, errors[0].code, message, ref))
        elif feed_error is not None and nothing_accepted:
            # A feed-level error (the document itself) refused every message.
            results.append(
                PushResult(
                    key,
                    PushStatus.REJECTED,
                    feed_error.code,
                    feed_error.message,
                    ref,
                )
            )
        else:
            # "Accepted: the associated updates are being applied" (report schema): queued,
            # exactly like a PATCH's ACCEPTED; reconcile verifies.
            results.append(PushResult(key, PushStatus.ACCEPTED, None, None, ref))
    return results


def _str(body: Any, key: str) -> str:
    value = body.get(key) if isinstance(body, Mapping) else None
    if not isinstance(value, str) or not value:
        raise ChannelError(f"SP-API response without {key!r}")
    return value
