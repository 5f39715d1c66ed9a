"""The ``webhook_deliveries`` and ``webhook_sequences`` collections: their only reader and
writer (document shapes: :mod:`chronapilot.common.webhooks`).

``next_attempt_at`` is both the schedule and the lease. A pending delivery is due once it has
passed; whoever sends it first moves it ``lease`` ahead (:meth:`WebhookDeliveries.claim_due`, or
at creation for the process that creates and sends at once), so a dispatcher killed mid-delivery
leaves a delivery that falls due again when the lease runs out: at least once, nothing lost, and
no separate lock field for the due query to test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from chronapilot.common.errors import StoreError
from chronapilot.common.ids import new_id
from chronapilot.common.store.client import Document, Session, translate_errors
from chronapilot.common.store.repository import Repository

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"  # the schedule ran out, or the endpoint is disabled
CANCELLED = "cancelled"  # the endpoint was deleted
STATUSES = (PENDING, SUCCEEDED, FAILED, CANCELLED)

_DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class Outcome:
    """What one attempt of a delivery came to."""

    delivery_id: str
    attempted_at: datetime
    #: the HTTP status, None when no answer came (timeout, refused, blocked address)
    response_status: int | None
    error: str | None
    #: ``succeeded``, ``failed`` or ``pending`` (with ``next_attempt_at``)
    status: str
    next_attempt_at: datetime | None


class WebhookDeliveries(Repository):
    COLLECTION = "webhook_deliveries"

    async def create_many(self, deliveries: Sequence[Document]) -> list[Document]:
        """Insert ``deliveries``; one whose ``(endpoint_id, source_id)`` exists already (a
        message consumed again) is skipped. Returns those inserted."""
        if not deliveries:
            return []
        skipped: set[int] = set()
        with translate_errors():
            try:
                await self._collection.insert_many(list(deliveries), ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                    raise
                skipped = {e["index"] for e in errors}
        return [d for i, d in enumerate(deliveries) if i not in skipped]

    async def of_application(self, application_id: str, delivery_id: str) -> Document | None:
        with translate_errors():
            return await self._collection.find_one({"_id": delivery_id, "application_id": application_id})

    async def claim_due(self, *, now: datetime, lease_until: datetime, limit: int) -> list[Document]:
        """Take up to ``limit`` due pending deliveries (oldest due first) for this process
        until ``lease_until``: one conditional update of them all, tagged with this call's
        claim, then one read of those it took. Of several dispatchers only one takes each."""
        claim = new_id("claim")
        with translate_errors():
            due = (
                await self._collection.find({"status": PENDING, "next_attempt_at": {"$lte": now}}, {"_id": 1})
                .sort("next_attempt_at", 1)
                .limit(limit)
                .to_list()
            )
            if not due:
                return []
            ids = [doc["_id"] for doc in due]
            await self._collection.update_many(
                {"_id": {"$in": ids}, "status": PENDING, "next_attempt_at": {"$lte": now}},
                {"$set": {"next_attempt_at": lease_until, "claim": claim}},
            )
            return await self._collection.find({"_id": {"$in": ids}, "claim": claim}).to_list()

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Write attempts' outcomes in one bulk write. An outcome applies only to a delivery
        still pending (a customer's retry or a cancel in between is not overwritten).

        Successes, nearly all of them, are written as one update per response status (their
        ``last_attempt_at`` the latest of the group: the batch spans milliseconds); a failure,
        with its own error and schedule, as one update of its own."""
        if not outcomes:
            return
        successes: dict[int | None, list[Outcome]] = {}
        ops: list[UpdateOne | UpdateMany] = []
        for o in outcomes:
            if o.status == SUCCEEDED:
                successes.setdefault(o.response_status, []).append(o)
            else:
                ops.append(UpdateOne({"_id": o.delivery_id, "status": PENDING}, _outcome_update(o)))
        for group in successes.values():
            latest = max(group, key=lambda o: o.attempted_at)
            ids = [o.delivery_id for o in group]
            ops.append(UpdateMany({"_id": {"$in": ids}, "status": PENDING}, _outcome_update(latest)))
        with translate_errors():
            await self._collection.bulk_write(ops, ordered=False)

    async def retry(self, application_id: str, delivery_id: str, *, now: datetime) -> Document | None:
        """Send again now (a customer's retry): pending, due now, whatever it came to before."""
        with translate_errors():
            return await self._collection.find_one_and_update(
                {"_id": delivery_id, "application_id": application_id, "status": {"$ne": CANCELLED}},
                {"$set": {"status": PENDING, "next_attempt_at": now, "updated_at": now}},
                return_document=ReturnDocument.AFTER,
            )

    async def end_pending(self, endpoint_id: str, status: str, *, now: datetime, error: str) -> int:
        """End the endpoint's pending deliveries (``cancelled``: deleted; ``failed``: disabled)."""
        with translate_errors():
            result = await self._collection.update_many(
                {"endpoint_id": endpoint_id, "status": PENDING},
                {"$set": {"status": status, "next_attempt_at": None, "last_error": error, "updated_at": now}},
            )
        return result.modified_count


def _outcome_update(o: Outcome) -> dict[str, Any]:
    return {
        "$set": {
            "status": o.status,
            "next_attempt_at": o.next_attempt_at,
            "last_attempt_at": o.attempted_at,
            "last_response_status": o.response_status,
            "last_error": o.error,
            "updated_at": o.attempted_at,
        },
        "$inc": {"attempts": 1},
    }


class WebhookSequences(Repository):
    """Per connection, the last sequence number given to a webhook payload."""

    COLLECTION = "webhook_sequences"

    async def take(self, connection_id: str, count: int, *, session: Session | None = None) -> int:
        """Reserve ``count`` numbers for ``connection_id``; returns the first (they increase
        by one from there, and never repeat)."""
        doc: Document | None = None
        for _ in range(3):  # two first takes race to insert the counter: the loser takes again
            with translate_errors(session):
                try:
                    doc = await self._collection.find_one_and_update(
                        {"_id": connection_id},
                        {"$inc": {"last": count}},
                        upsert=True,
                        return_document=ReturnDocument.AFTER,
                        session=session,
                    )
                except DuplicateKeyError:
                    doc = None
            if doc is not None:
                return int(doc["last"]) - count + 1
        raise StoreError(f"no sequence number for {connection_id} after three attempts")


def new_delivery(
    *,
    application_id: str,
    endpoint_id: str,
    event_type: str,
    connection_id: str | None,
    payload: dict[str, Any],
    source_id: str,
    now: datetime,
    next_attempt_at: datetime,
) -> Document:
    """A pending delivery document (``next_attempt_at``: now to send it at once, or a lease
    when the caller sends it itself right away)."""
    return {
        "_id": new_id("wd"),
        "application_id": application_id,
        "endpoint_id": endpoint_id,
        "event_type": event_type,
        "connection_id": connection_id,
        "payload": payload,
        "source_id": source_id,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": next_attempt_at,
        "last_attempt_at": None,
        "last_response_status": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }


def message_id(delivery_id: str) -> str:
    """The ``webhook-id`` of a delivery: the same on every attempt."""
    return "msg_" + delivery_id.removeprefix("wd_")
