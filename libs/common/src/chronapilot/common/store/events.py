"""The ``events`` collection: its only reader and writer."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pymongo import UpdateMany, UpdateOne

from chronapilot.common.ids import new_id
from chronapilot.common.store.client import Document, Session, translate_errors
from chronapilot.common.store.repository import Repository


class MirrorCalendar(Protocol):
    """The mirror calendar events belong to (the sync worker's ``CalendarRef``)."""

    @property
    def id(self) -> str: ...

    @property
    def connection_id(self) -> str: ...

    @property
    def application_id(self) -> str: ...

    @property
    def provider_calendar_id(self) -> str: ...


#: What a sync compares a provider's event with: enough to tell unchanged and stale apart.
_SUMMARY = {"provider_event_id": 1, "content_hash": 1, "provider_updated_at": 1, "deleted": 1}


def _key(calendar: MirrorCalendar) -> dict[str, Any]:
    """An event's calendar, as the unique index (and every query here) names it."""
    return {"connection_id": calendar.connection_id, "provider_calendar_id": calendar.provider_calendar_id}


def _mark_deleted(selector: dict[str, Any], now: datetime) -> UpdateMany:
    return UpdateMany(
        {**selector, "deleted": False}, {"$set": {"deleted": True, "deleted_at": now, "updated_at": now}}
    )


class Events(Repository):
    COLLECTION = "events"

    async def summaries(
        self,
        calendar: MirrorCalendar,
        provider_event_ids: Collection[str] | None = None,
        *,
        session: Session | None = None,
    ) -> dict[str, Document]:
        """A summary (``content_hash``, ``provider_updated_at``, ``deleted``) of each mirrored
        event of ``calendar`` by provider id: every one, or those of ``provider_event_ids``."""
        query = _key(calendar)
        if provider_event_ids is not None:
            query["provider_event_id"] = {"$in": list(provider_event_ids)}
        with translate_errors(session):
            return {
                doc["provider_event_id"]: doc
                async for doc in self._collection.find(query, _SUMMARY, session=session)
            }

    async def write_page(
        self,
        calendar: MirrorCalendar,
        *,
        upserts: Mapping[str, Document],
        replaced_series: Iterable[str] = (),
        keep: Collection[str] = (),
        deletions: Iterable[str] = (),
        now: datetime,
        session: Session | None = None,
    ) -> int:
        """Write one page's changes in one unordered bulk write; return how many events it newly
        marked deleted.

        ``upserts``: the mirror fields to store, by provider event id (created if new, and no
        longer deleted). ``replaced_series``: recurring masters whose instances not in ``keep``
        are marked deleted. ``deletions``: provider ids marked deleted, with their instances.
        """
        ops: list[UpdateOne | UpdateMany] = [
            UpdateOne(
                {**_key(calendar), "provider_event_id": provider_event_id},
                {
                    "$set": {
                        **fields,
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
            for provider_event_id, fields in upserts.items()
        ]
        for master in replaced_series:
            ops.append(
                _mark_deleted(
                    {
                        **_key(calendar),
                        "recurring_event_id": master,
                        "provider_event_id": {"$nin": sorted(keep)},
                    },
                    now,
                )
            )
        for gone in deletions:
            ops.append(_mark_deleted({**_key(calendar), "provider_event_id": gone}, now))
            ops.append(_mark_deleted({**_key(calendar), "recurring_event_id": gone}, now))
        if not ops:
            return 0
        with translate_errors(session):
            written = await self._collection.bulk_write(ops, ordered=False, session=session)
        # every write that was not one of the upserts marked events deleted
        return max(0, written.modified_count + written.upserted_count - len(upserts))

    async def mark_deleted(
        self,
        calendar: MirrorCalendar,
        provider_event_ids: Sequence[str],
        *,
        now: datetime,
        session: Session | None = None,
    ) -> int:
        """Mark these events of ``calendar`` deleted (each by its key, which the unique index
        serves); return how many were not deleted already."""
        if not provider_event_ids:
            return 0
        with translate_errors(session):
            written = await self._collection.bulk_write(
                [
                    UpdateOne(
                        {**_key(calendar), "provider_event_id": i, "deleted": False},
                        {"$set": {"deleted": True, "deleted_at": now, "updated_at": now}},
                    )
                    for i in provider_event_ids
                ],
                ordered=False,
                session=session,
            )
        return written.modified_count
