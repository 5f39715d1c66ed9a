"""The ``calendars`` collection: its only reader and writer.

The mirror's calendars follow what the provider lists (added ones appear, vanished ones are
flagged ``removed`` with their events kept), at consent and on every sync. A listing writes
only the calendars it changes, and says which (:class:`Listing`), so that what customers are
told about calendars is what really changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from chronapilot.common.ids import new_id
from chronapilot.common.providers.base import CalendarInfo
from chronapilot.common.store.client import Document, Session, translate_errors
from chronapilot.common.store.repository import Repository


@dataclass
class Listing:
    """What reading the provider's calendar list did to the mirror: the calendars listed (primary
    first, then by name) and, by ``cal_`` id, those it created (or listed again after they were
    removed), updated (name, colour, time zone, ``read_only`` or ``primary``) and removed."""

    ids: list[str]
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changes(self) -> dict[str, list[str]]:
        """The changed ids by kind (``created``, ``updated``, ``removed``); empty lists included."""
        return {"created": self.created, "updated": self.updated, "removed": self.removed}

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)


def _listed_fields(calendar: CalendarInfo) -> dict[str, Any]:
    """What the provider's list says of a calendar, as the mirror stores it."""
    return {
        "name": calendar.name,
        "primary": calendar.primary,
        "read_only": calendar.read_only,
        "timezone": calendar.timezone,
        "color": calendar.color,
    }


def _same(held: Mapping[str, Any], listed: Mapping[str, Any]) -> bool:
    """The mirror holds the calendar, not removed, as the provider lists it."""
    return not held.get("removed") and all(held.get(name) == value for name, value in listed.items())


class Calendars(Repository):
    COLLECTION = "calendars"

    async def of_application(self, application_id: str, calendar_id: str) -> Document | None:
        """The calendar, if it belongs to ``application_id`` (another application's is not found)."""
        with translate_errors():
            return await self._collection.find_one({"_id": calendar_id, "application_id": application_id})

    async def in_order(self, calendar_ids: list[str]) -> list[Document]:
        """The calendars with these ids, in the order given (ids not found are left out)."""
        with translate_errors():
            found = {c["_id"]: c async for c in self._collection.find({"_id": {"$in": calendar_ids}})}
        return [found[i] for i in calendar_ids if i in found]

    async def of_connections(self, connection_ids: Sequence[str]) -> list[Document]:
        """Every calendar of these connections, removed ones too."""
        with translate_errors():
            return await self._collection.find({"connection_id": {"$in": list(connection_ids)}}).to_list()

    async def upsert_listed(
        self,
        *,
        connection_id: str,
        application_id: str,
        calendars: Sequence[CalendarInfo],
        now: datetime,
        session: Session | None = None,
    ) -> Listing:
        """Upsert the provider's calendars, flag the ones it no longer lists; only what changed
        is written (an unchanged calendar keeps its ``updated_at``). Call it in a transaction
        (``session``) so that what it says changed is what it wrote."""
        ordered = sorted(calendars, key=lambda c: (not c.primary, c.name.lower(), c.provider_calendar_id))
        listing = Listing(ids=[])
        with translate_errors(session):
            held = {
                doc["provider_calendar_id"]: doc
                async for doc in self._collection.find({"connection_id": connection_id}, session=session)
            }
            for calendar in ordered:
                fields = _listed_fields(calendar)
                before = held.get(calendar.provider_calendar_id)
                if before is not None and _same(before, fields):
                    listing.ids.append(str(before["_id"]))
                    continue
                doc = await self._collection.find_one_and_update(
                    {"connection_id": connection_id, "provider_calendar_id": calendar.provider_calendar_id},
                    {
                        "$set": {**fields, "removed": False, "updated_at": now},
                        "$setOnInsert": {
                            "_id": new_id("cal"),
                            "application_id": application_id,
                            "created_at": now,
                        },
                    },
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                    session=session,
                )
                assert doc is not None
                listing.ids.append(str(doc["_id"]))
                was_live = before is not None and not before.get("removed")
                (listing.updated if was_live else listing.created).append(str(doc["_id"]))
            listing.removed.extend(
                str(doc["_id"])
                for doc in held.values()
                if not doc.get("removed") and doc["_id"] not in listing.ids
            )
            if listing.removed:
                await self._collection.update_many(
                    {"_id": {"$in": listing.removed}},
                    {"$set": {"removed": True, "updated_at": now}},
                    session=session,
                )
        return listing

    async def record_outcome(self, calendar_id: str, *, now: datetime, error: dict[str, str] | None) -> None:
        """The calendar's own health: ``sync_status`` ``ok`` with ``last_synced_at``, or ``error``
        with ``error {code, message, at}`` (the provider refused this calendar; the others sync)."""
        changes: dict[str, object] = (
            {"sync_status": "ok", "last_synced_at": now, "error": None}
            if error is None
            else {"sync_status": "error", "error": {**error, "at": now}}
        )
        with translate_errors():
            await self._collection.update_one({"_id": calendar_id}, {"$set": changes})

    async def provider_calendar_ids(self, calendar_ids: Sequence[str]) -> dict[str, str]:
        """The provider's id of each of ``calendar_ids`` that exists, by calendar id."""
        with translate_errors():
            return {
                doc["_id"]: doc["provider_calendar_id"]
                async for doc in self._collection.find(
                    {"_id": {"$in": list(calendar_ids)}}, {"provider_calendar_id": 1}
                )
            }

    async def synced_provider_ids(self, connection_id: str, *, session: Session | None = None) -> list[str]:
        """The provider ids of the connection's calendars that are synced (not ``removed``)."""
        with translate_errors(session):
            docs = await self._collection.find(
                {"connection_id": connection_id, "removed": {"$ne": True}},
                {"provider_calendar_id": 1},
                session=session,
            ).to_list()
        return [str(doc["provider_calendar_id"]) for doc in docs]
