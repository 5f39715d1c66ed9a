"""Writing provider pages into the mirror: idempotent, and never older over newer.

A page is compared with what the mirror holds first (one query for what the page touches), the
differences decided by :func:`~chronapilot.sync_worker.plan.plan_page`, then only those are
written in one unordered bulk write: applying the same page twice writes nothing the second
time, and an event whose stored provider ``updated`` time is newer than the page's is left
alone (a stale page cannot win).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from chronapilot.common.ids import new_id
from chronapilot.common.models.event import COLLECTION, capped_raw
from chronapilot.common.providers.sync import EventPage
from chronapilot.common.store import Document, translate_errors
from chronapilot.sync_worker.plan import StoredEvent, Write, plan_page


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


_SUMMARY = {
    "provider_event_id": 1,
    "content_hash": 1,
    "provider_updated_at": 1,
    "deleted": 1,
    "recurring_event_id": 1,
}


async def known_events(db: AsyncDatabase[Document], calendar: CalendarRef) -> dict[str, StoredEvent]:
    """Every mirrored event of ``calendar`` (a summary of each), read once for a full sync."""
    with translate_errors():
        return {
            doc["provider_event_id"]: StoredEvent.of(doc)
            async for doc in db[COLLECTION].find(calendar.key, _SUMMARY)
        }


async def apply_page(
    db: AsyncDatabase[Document],
    calendar: CalendarRef,
    page: EventPage,
    now: datetime,
    *,
    raw_max_bytes: int,
    known: dict[str, StoredEvent] | None = None,
    session: AsyncClientSession | None = None,
) -> Applied:
    """Apply one page: read what it touches, plan (:func:`plan_page`), write the plan.
    ``known`` (a full sync's summary of the calendar) saves reading the page's upserts."""
    stored = await _touched(db, calendar, page, known, session)
    plan = plan_page(page, stored)
    ops = [_upsert(calendar, write, now, raw_max_bytes) for write in plan.writes]
    ops += [_delete(calendar, event_id, now) for event_id in plan.deletes]
    if ops:
        with translate_errors():
            await db[COLLECTION].bulk_write(ops, ordered=False, session=session)
    return Applied(
        upserted=plan.upserted,
        deleted=plan.deleted,
        unchanged=plan.unchanged,
        stale=plan.stale,
        seen=set(plan.seen),
    )


async def _touched(
    db: AsyncDatabase[Document],
    calendar: CalendarRef,
    page: EventPage,
    known: dict[str, StoredEvent] | None,
    session: AsyncClientSession | None,
) -> dict[str, StoredEvent]:
    """The mirrored events ``page`` can touch: its upserts (from ``known`` when given), its
    deletions and the events of the series it deletes or replaces (always read: a full sync's
    earlier pages may have written them)."""
    ids = [event.provider_event_id for event in page.upserts]
    stored: dict[str, StoredEvent] = {}
    if known is not None:
        stored, ids = {i: known[i] for i in ids if i in known}, []
    ids += page.deletions
    series = [*page.deletions, *page.series_replaced]
    wanted: list[dict[str, Any]] = []
    if ids:
        wanted.append({"provider_event_id": {"$in": ids}})
    if series:
        wanted.append({"recurring_event_id": {"$in": series}})
    if wanted:
        with translate_errors():
            async for doc in db[COLLECTION].find({**calendar.key, "$or": wanted}, _SUMMARY, session=session):
                stored[doc["provider_event_id"]] = StoredEvent.of(doc)
    return stored


def _upsert(calendar: CalendarRef, write: Write, now: datetime, raw_max_bytes: int) -> UpdateOne:
    return UpdateOne(
        {**calendar.key, "provider_event_id": write.provider_event_id},
        {
            "$set": {
                **write.fields,
                "raw": capped_raw(dict(write.event.raw), raw_max_bytes),
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


def _delete(calendar: CalendarRef, event_id: str, now: datetime) -> UpdateOne:
    return UpdateOne(
        {**calendar.key, "provider_event_id": event_id, "deleted": False},
        {"$set": {"deleted": True, "deleted_at": now, "updated_at": now}},
    )


async def delete_unseen(
    db: AsyncDatabase[Document],
    calendar: CalendarRef,
    known: dict[str, StoredEvent],
    seen: set[str],
    now: datetime,
    session: AsyncClientSession | None = None,
) -> int:
    """After a full sync: what the provider no longer has is marked deleted (each by its key,
    which the unique index serves, rather than one ``$nin`` over the calendar)."""
    gone = [i for i, held in known.items() if i not in seen and not held.deleted]
    if not gone:
        return 0
    with translate_errors():
        written = await db[COLLECTION].bulk_write(
            [_delete(calendar, i, now) for i in gone],
            ordered=False,
            session=session,
        )
    return int(written.modified_count)
