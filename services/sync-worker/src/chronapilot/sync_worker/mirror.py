"""Writing provider pages into the mirror: idempotent, and never older over newer.

A page is compared with what the mirror holds first (one query for the page's ids), then only
the differences are written in one unordered bulk write: applying the same page twice writes
nothing the second time, and an event whose stored provider ``updated`` time is newer than the
page's is left alone (a stale page cannot win).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import UpdateMany, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from chronapilot.common.ids import new_id
from chronapilot.common.models.event import COLLECTION, capped_raw, mirror_fields
from chronapilot.common.providers.sync import EventPage
from chronapilot.common.store import Document, translate_errors


@dataclass(frozen=True)
class CalendarRef:
    """The mirror calendar a page belongs to."""

    id: str
    connection_id: str
    application_id: str
    provider_calendar_id: str

    @property
    def key(self) -> dict[str, str]:
        return {"connection_id": self.connection_id, "provider_calendar_id": self.provider_calendar_id}


@dataclass
class Applied:
    upserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    stale: int = 0
    seen: set[str] = field(default_factory=set)

    def add(self, other: Applied) -> None:
        self.upserted += other.upserted
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.seen |= other.seen


_SUMMARY = {"provider_event_id": 1, "content_hash": 1, "provider_updated_at": 1, "deleted": 1}


async def known_events(db: AsyncDatabase[Document], calendar: CalendarRef) -> dict[str, Document]:
    """Every mirrored event of ``calendar`` (a summary of each), read once for a full sync."""
    with translate_errors():
        return {doc["provider_event_id"]: doc async for doc in db[COLLECTION].find(calendar.key, _SUMMARY)}


async def apply_page(
    db: AsyncDatabase[Document],
    calendar: CalendarRef,
    page: EventPage,
    now: datetime,
    *,
    raw_max_bytes: int,
    known: dict[str, Document] | None = None,
    session: AsyncClientSession | None = None,
) -> Applied:
    """Apply one page. ``known`` (a full sync's summary of the calendar) saves the lookup."""
    result = Applied()
    events = db[COLLECTION]
    ids = [event.provider_event_id for event in page.upserts]
    existing: dict[str, Document] = {}
    if known is not None:
        existing = {i: known[i] for i in ids if i in known}
    elif ids:
        with translate_errors():
            existing = {
                doc["provider_event_id"]: doc
                async for doc in events.find(
                    {**calendar.key, "provider_event_id": {"$in": ids}}, _SUMMARY, session=session
                )
            }
    ops: list[UpdateOne | UpdateMany] = []
    for event in page.upserts:
        result.seen.add(event.provider_event_id)
        fields = mirror_fields(event)
        old = existing.get(event.provider_event_id)
        if old is not None and old.get("content_hash") == fields["content_hash"] and not old.get("deleted"):
            result.unchanged += 1
            continue
        stored_at = old.get("provider_updated_at") if old else None
        if stored_at is not None and event.updated_at is not None and stored_at > event.updated_at:
            result.stale += 1
            continue
        result.upserted += 1
        ops.append(
            UpdateOne(
                {**calendar.key, "provider_event_id": event.provider_event_id},
                {
                    "$set": {
                        **fields,
                        "raw": capped_raw(dict(event.raw), raw_max_bytes),
                        "calendar_id": calendar.id,
                        "deleted": False,
                        "deleted_at": None,
                        "updated_at": now,
                    },
                    "$setOnInsert": {
                        "_id": new_id("evt"),
                        "application_id": calendar.application_id,
                        "created_at": now,
                    },
                },
                upsert=True,
            )
        )
    replaced = set(page.series_replaced)
    for master in replaced:
        ops.append(
            _delete(
                {
                    **calendar.key,
                    "recurring_event_id": master,
                    "provider_event_id": {"$nin": sorted(result.seen)},
                },
                now,
            )
        )
    for gone in page.deletions:
        ops.append(_delete({**calendar.key, "provider_event_id": gone}, now))
        ops.append(_delete({**calendar.key, "recurring_event_id": gone}, now))
    if ops:
        with translate_errors():
            written = await events.bulk_write(ops, ordered=False, session=session)
        result.deleted = _deleted_count(written, ops)
    return result


def _delete(selector: dict[str, Any], now: datetime) -> UpdateMany:
    return UpdateMany(
        {**selector, "deleted": False}, {"$set": {"deleted": True, "deleted_at": now, "updated_at": now}}
    )


def _deleted_count(written: Any, ops: list[UpdateOne | UpdateMany]) -> int:
    """Events newly marked deleted: every write that was not one of the page's upserts."""
    upserts = sum(1 for op in ops if isinstance(op, UpdateOne))
    return max(0, int(written.modified_count) + int(written.upserted_count) - upserts)


async def delete_unseen(
    db: AsyncDatabase[Document],
    calendar: CalendarRef,
    known: dict[str, Document],
    seen: set[str],
    now: datetime,
    session: AsyncClientSession | None = None,
) -> int:
    """After a full sync: what the provider no longer has is marked deleted (each by its key,
    which the unique index serves, rather than one ``$nin`` over the calendar)."""
    gone = [i for i, doc in known.items() if i not in seen and not doc.get("deleted")]
    if not gone:
        return 0
    with translate_errors():
        written = await db[COLLECTION].bulk_write(
            [
                UpdateOne(
                    {**calendar.key, "provider_event_id": i, "deleted": False},
                    {"$set": {"deleted": True, "deleted_at": now, "updated_at": now}},
                )
                for i in gone
            ],
            ordered=False,
            session=session,
        )
    return int(written.modified_count)
