"""The mirror's calendars: what the provider lists, kept in step (added ones appear, vanished
ones are flagged ``removed`` with their events kept). Used at consent and on every sync."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from chronapilot.common.ids import new_id
from chronapilot.common.providers.base import CalendarInfo
from chronapilot.common.store.client import Document

COLLECTION = "calendars"


async def upsert_calendars(
    db: AsyncDatabase[Document],
    session: AsyncClientSession | None,
    *,
    connection_id: str,
    application_id: str,
    calendars: list[CalendarInfo],
    now: datetime,
) -> list[str]:
    """Upsert the provider's calendars, flag the ones it no longer lists; return the ids listed
    (primary first, then by name)."""
    ordered = sorted(calendars, key=lambda c: (not c.primary, c.name.lower(), c.provider_calendar_id))
    ids: list[str] = []
    for calendar in ordered:
        doc = await db[COLLECTION].find_one_and_update(
            {"connection_id": connection_id, "provider_calendar_id": calendar.provider_calendar_id},
            {
                "$set": {
                    "name": calendar.name,
                    "primary": calendar.primary,
                    "read_only": calendar.read_only,
                    "timezone": calendar.timezone,
                    "color": calendar.color,
                    "removed": False,
                    "updated_at": now,
                },
                "$setOnInsert": {"_id": new_id("cal"), "application_id": application_id, "created_at": now},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert doc is not None
        ids.append(str(doc["_id"]))
    await db[COLLECTION].update_many(
        {"connection_id": connection_id, "_id": {"$nin": ids}, "removed": False},
        {"$set": {"removed": True, "updated_at": now}},
        session=session,
    )
    return ids


async def record_calendar_outcome(
    db: AsyncDatabase[Document], calendar_id: str, *, now: datetime, error: dict[str, str] | None
) -> None:
    """The calendar's own health: ``sync_status`` ``ok`` with ``last_synced_at``, or ``error``
    with ``error {code, message, at}`` (the provider refused this calendar; the others sync)."""
    changes: dict[str, object] = (
        {"sync_status": "ok", "last_synced_at": now, "error": None}
        if error is None
        else {"sync_status": "error", "error": {**error, "at": now}}
    )
    await db[COLLECTION].update_one({"_id": calendar_id}, {"$set": changes})
