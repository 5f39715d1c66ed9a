"""The ``events`` collection: its only reader and writer."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from pymongo import InsertOne, UpdateOne

from chronapilot.common.ids import new_id
from chronapilot.common.store.client import Document, Session, translate_errors
from chronapilot.common.store.repository import Page, Repository


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


#: What a sync compares a provider's event with: enough to tell unchanged and stale apart
#: (and, with the ``_id`` every read returns, which ``evt_`` id a change is about).
_SUMMARY = {
    "provider_event_id": 1,
    "content_hash": 1,
    "provider_updated_at": 1,
    "deleted": 1,
    "recurring_event_id": 1,
    "start_at": 1,
    "end_at": 1,
}


#: Events read without their provider payload (up to 32 KB each).
_NO_RAW = {"raw": 0}
#: How far before a window what reaches into it may lie: a series' end (``series_end_at``, as
#: the mirror computes it: its last start from the RRULE alone, walked in UTC, so a DST hour
#: off, plus the master's duration) and the original slot of an exception whose generated
#: occurrence overlaps the window (that slot lies at most the master's duration before the
#: window, plus this). A series with RDATEs is read whatever its ``series_end_at`` says.
_SERIES_SLACK = timedelta(days=7)


def _key(calendar: MirrorCalendar) -> dict[str, Any]:
    """An event's calendar, as the unique index (and every query here) names it."""
    return {"connection_id": calendar.connection_id, "provider_calendar_id": calendar.provider_calendar_id}


def _live(calendar: MirrorCalendar, now: datetime) -> dict[str, Any]:
    """The bookkeeping fields of an event the provider has, as a sync writes it."""
    return {"calendar_id": calendar.id, "deleted": False, "deleted_at": None, "updated_at": now}


def _created(calendar: MirrorCalendar, now: datetime) -> dict[str, Any]:
    """The fields a mirrored event gets once, when it is first written."""
    return {"_id": new_id("evt"), "application_id": calendar.application_id, "created_at": now}


def _delete(calendar: MirrorCalendar, provider_event_id: str, now: datetime) -> UpdateOne:
    """Mark the event deleted, stamping ``deleted_at`` and ``updated_at`` only if it was live (one
    already deleted is left as it is, and not counted as modified).

    The filter is the unique key alone and the condition on ``deleted`` lives in the update (a
    pipeline): with ``deleted`` in the filter, the embedded server no longer finds the key's
    index and reads every event of the connection per deletion (~160 ms at 10,000 events)."""
    stamps = {name: {"$cond": ["$deleted", f"${name}", now]} for name in ("deleted_at", "updated_at")}
    return UpdateOne(
        {**_key(calendar), "provider_event_id": provider_event_id},
        [{"$set": stamps}, {"$set": {"deleted": True}}],
    )


class Events(Repository):
    COLLECTION = "events"

    async def of_application(self, application_id: str, event_id: str) -> Document | None:
        """The event, if it belongs to ``application_id`` (another application's is not found)."""
        with translate_errors():
            return await self._collection.find_one({"_id": event_id, "application_id": application_id})

    async def page_in_calendar(
        self,
        calendar_id: str,
        *,
        include_deleted: bool,
        updated_since: datetime | None,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> Page:
        """A page (:meth:`page`) of a calendar's events: deleted ones only if asked, changed
        since ``updated_since``, and those overlapping [``start``, ``end``) (a series whose
        recurrence may reach into the window counts)."""
        flt: dict[str, Any] = {"calendar_id": calendar_id}
        if not include_deleted:
            flt["deleted"] = False
        if updated_since is not None:
            flt["updated_at"] = {"$gte": updated_since}
        if start is not None or end is not None:
            flt.update(_overlapping(start, end))
        return await self.page(flt, limit=limit, starting_after=starting_after, ending_before=ending_before)

    async def in_window(
        self, calendar_ids: Collection[str], start: datetime, end: datetime
    ) -> list[Document]:
        """What :func:`chronapilot.common.occurrences.expand` needs for [``start``, ``end``) in
        these calendars: the live events overlapping it (singles, exceptions moved into it,
        stored occurrences), the series that may recur into it with the masters of those
        exceptions, and the exceptions and cancelled instances whose original slot is near it.

        Four reads, each served by an index (``by_calendar_start``, ``by_provider_id``,
        ``by_series``); ``raw`` is read for masters only (a CalDAV master's resource)."""
        if not calendar_ids:
            return []
        calendars = {"calendar_id": {"$in": list(calendar_ids)}, "deleted": False}
        found: dict[str, Document] = {}
        with translate_errors():
            async for doc in self._collection.find(
                {**calendars, "start_at": {"$lt": end}, "end_at": {"$gte": start}, "recurrence": []},
                _NO_RAW,
            ):
                found[doc["_id"]] = doc
            async for doc in self._collection.find(
                {
                    **calendars,
                    "start_at": {"$lt": end},
                    "recurrence.0": {"$exists": True},
                    "$or": [
                        {"series_end_at": None},
                        {"series_end_at": {"$gte": start - _SERIES_SLACK}},
                        {"recurrence": {"$regex": "^RDATE"}},
                    ],
                }
            ):
                found[doc["_id"]] = doc
            for doc in await self._series_around(list(found.values()), start, end):
                found.setdefault(doc["_id"], doc)
        return list(found.values())

    async def _series_around(self, docs: list[Document], start: datetime, end: datetime) -> list[Document]:
        """The masters of ``docs``' exceptions not among ``docs``, and the exceptions of every
        master whose original slot lies within a week of [``start``, ``end``), or before it
        by as long as the calendar's longest master lasts."""
        masters: dict[tuple[str, str], set[str]] = {}
        longest: dict[tuple[str, str], timedelta] = {}
        wanted: dict[tuple[str, str], set[str]] = {}
        for doc in docs:
            calendar = (doc["connection_id"], doc["provider_calendar_id"])
            if doc.get("recurrence"):
                masters.setdefault(calendar, set()).add(doc["provider_event_id"])
                longest[calendar] = max(longest.get(calendar, timedelta(0)), _duration(doc))
            elif doc.get("recurring_event_id"):
                wanted.setdefault(calendar, set()).add(doc["recurring_event_id"])
        more: list[Document] = []
        for (connection_id, provider_calendar_id), ids in wanted.items():
            missing = ids - masters.get((connection_id, provider_calendar_id), set())
            if missing:
                more += await self._collection.find(
                    {
                        "connection_id": connection_id,
                        "provider_calendar_id": provider_calendar_id,
                        "provider_event_id": {"$in": sorted(missing)},
                        "deleted": False,
                        "recurrence.0": {"$exists": True},
                    }
                ).to_list()
        for doc in more:
            calendar = (doc["connection_id"], doc["provider_calendar_id"])
            masters.setdefault(calendar, set()).add(doc["provider_event_id"])
            longest[calendar] = max(longest.get(calendar, timedelta(0)), _duration(doc))
        high = end + _SERIES_SLACK
        for (connection_id, provider_calendar_id), ids in masters.items():
            low = start - _SERIES_SLACK - longest.get((connection_id, provider_calendar_id), timedelta(0))
            more += await self._collection.find(
                {
                    "connection_id": connection_id,
                    "provider_calendar_id": provider_calendar_id,
                    "recurring_event_id": {"$in": sorted(ids)},
                    "deleted": False,
                    "$or": [
                        {"original_start.date_time": {"$gte": low, "$lt": high}},
                        {
                            "original_start.date": {
                                "$gte": low.date().isoformat(),
                                "$lt": high.date().isoformat(),
                            }
                        },
                    ],
                },
                _NO_RAW,
            ).to_list()
        return more

    async def with_ids(self, event_ids: Collection[str]) -> dict[str, Document]:
        """The events with these ``evt_`` ids that exist (any application's: the caller checks
        whose they are), by id, without their provider payload; one query."""
        if not event_ids:
            return {}
        with translate_errors():
            found = self._collection.find({"_id": {"$in": list(event_ids)}}, _NO_RAW)
            return {doc["_id"]: doc async for doc in found}

    async def ids_by_provider_id(self, keys: Iterable[tuple[str, str, str]]) -> dict[str, str]:
        """``provider_event_id`` → ``evt_`` id of the events with these (connection id,
        provider calendar id, provider event id) keys."""
        wanted = set(keys)
        if not wanted:
            return {}
        with translate_errors():
            found = self._collection.find(
                {
                    "$or": [
                        {"connection_id": c, "provider_calendar_id": p, "provider_event_id": e}
                        for c, p, e in wanted
                    ]
                },
                {"provider_event_id": 1},
            )
            return {doc["provider_event_id"]: doc["_id"] async for doc in found}

    async def summaries(
        self,
        calendar: MirrorCalendar,
        provider_event_ids: Collection[str] | None = None,
        *,
        session: Session | None = None,
    ) -> dict[str, Document]:
        """A summary (``content_hash``, ``provider_updated_at``, ``deleted``, times) of each mirrored
        event of ``calendar`` by provider id: every one, or those of ``provider_event_ids``."""
        query = _key(calendar)
        if provider_event_ids is not None:
            query["provider_event_id"] = {"$in": list(provider_event_ids)}
        with translate_errors(session):
            return {
                doc["provider_event_id"]: doc
                async for doc in self._collection.find(query, _SUMMARY, session=session)
            }

    async def touched(
        self,
        calendar: MirrorCalendar,
        *,
        provider_event_ids: Collection[str],
        series: Collection[str],
        session: Session | None = None,
    ) -> dict[str, Document]:
        """A summary of each mirrored event of ``calendar`` with one of ``provider_event_ids``
        or in one of the recurring ``series``, by provider id.

        One query per condition, each served by its index (``by_provider_id``, ``by_series``):
        the embedded server plans a ``$or`` as a scan of the whole collection (about 40 ms per
        1,000 events held, every calendar's)."""
        wanted: list[dict[str, Any]] = []
        if provider_event_ids:
            wanted.append({"provider_event_id": {"$in": list(provider_event_ids)}})
        if series:
            wanted.append({"recurring_event_id": {"$in": list(series)}})
        found: dict[str, Document] = {}
        with translate_errors(session):
            for condition in wanted:
                async for doc in self._collection.find(
                    {**_key(calendar), **condition}, _SUMMARY, session=session
                ):
                    found[doc["provider_event_id"]] = doc
        return found

    async def write_plan(
        self,
        calendar: MirrorCalendar,
        *,
        inserts: Mapping[str, Document],
        upserts: Mapping[str, Document],
        deletes: Sequence[str],
        now: datetime,
        session: Session | None = None,
    ) -> dict[str, str]:
        """Write a page's plan in one ordered bulk write: ``inserts`` (mirror fields by provider
        event id of events the mirror does not hold: created), ``upserts`` (of events it holds:
        updated, created if gone, and no longer deleted), then ``deletes`` (provider event ids
        marked deleted, each by its key). Return the ``evt_`` id of each event the write created,
        by provider event id (the ids are chosen here, so no read is needed to learn them).

        An insert costs the embedded server a third of an upsert (no lookup of the key first);
        one the mirror held after all fails on the unique key, so only a plan read in the same
        transaction names inserts."""
        created: dict[str, str] = {}
        ops: list[InsertOne[Document] | UpdateOne] = []
        for provider_event_id, fields in inserts.items():
            once = _created(calendar, now)
            created[provider_event_id] = once["_id"]
            ops.append(
                InsertOne(
                    {
                        **fields,
                        **_key(calendar),
                        "provider_event_id": provider_event_id,
                        **_live(calendar, now),
                        **once,
                    }
                )
            )
        upserted = list(upserts)
        ops += [
            UpdateOne(
                {**_key(calendar), "provider_event_id": provider_event_id},
                {"$set": {**fields, **_live(calendar, now)}, "$setOnInsert": _created(calendar, now)},
                upsert=True,
            )
            for provider_event_id, fields in upserts.items()
        ]
        ops += [_delete(calendar, i, now) for i in deletes]
        if ops:
            with translate_errors(session):
                written = await self._collection.bulk_write(ops, ordered=True, session=session)
            for index, event_id in (written.upserted_ids or {}).items():  # an update that found none
                created[upserted[index - len(inserts)]] = event_id
        return created

    async def mark_instances_mirrored(
        self, calendar: MirrorCalendar, provider_event_ids: Sequence[str], *, session: Session | None = None
    ) -> None:
        """These series masters' occurrences are mirrored one by one (the provider's sync reads
        occurrences, never masters): the masters are kept, not expanded
        (:func:`~chronapilot.common.occurrences.expand`)."""
        if not provider_event_ids:
            return
        with translate_errors(session):
            await self._collection.update_many(
                {
                    "connection_id": calendar.connection_id,
                    "provider_calendar_id": calendar.provider_calendar_id,
                    "provider_event_id": {"$in": list(provider_event_ids)},
                },
                {"$set": {"instances_mirrored": True}},
                session=session,
            )

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
                [_delete(calendar, i, now) for i in provider_event_ids],
                ordered=False,
                session=session,
            )
        return written.modified_count


def _duration(doc: Document) -> timedelta:
    """How long a stored event lasts (none when its times are missing or reversed)."""
    start, end = doc.get("start_at"), doc.get("end_at")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return timedelta(0)
    return max(end - start, timedelta(0))


def _overlapping(start: datetime | None, end: datetime | None) -> dict[str, Any]:
    single: dict[str, Any] = {"recurrence": []}
    series: dict[str, Any] = {"recurrence.0": {"$exists": True}}
    if end is not None:
        single["start_at"] = {"$lt": end}
        series["start_at"] = {"$lt": end}
    if start is not None:
        single["end_at"] = {"$gt": start}
        series["$or"] = [{"series_end_at": None}, {"series_end_at": {"$gte": start}}]
    return {"$or": [single, series]}
