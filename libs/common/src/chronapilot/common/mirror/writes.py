"""Writing provider pages into the mirror: idempotent, and never older over newer.

A page is compared with what the mirror holds first (one query for what the page touches), the
differences decided by :func:`~chronapilot.common.mirror.plan.plan_page`, then only those are
written in one bulk write (events the mirror lacks inserted, the others updated): applying the
same page twice writes nothing the second time, and an event whose stored provider ``updated``
time is newer than the page's is left alone (a stale page cannot win).

Every write that changes events says which (``mirror.events_changed``, by ``evt_`` id) in the
outbox, in the write's own transaction, and so does a read of the provider's calendar list
(``mirror.calendars_changed``): what customers are told about events and calendars comes from
here, and a write that changed nothing (a full resync of an unchanged calendar) tells nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from chronapilot.common.bus.catalogue import (
    MIRROR_IDS_PER_MESSAGE,
    MirrorCalendarsChanged,
    MirrorEventsChanged,
)
from chronapilot.common.bus.outbox import EventSink
from chronapilot.common.mirror.plan import StoredEvent, plan_page
from chronapilot.common.models.event import capped_raw
from chronapilot.common.providers.base import CalendarInfo
from chronapilot.common.providers.sync import EventPage, SyncWindow
from chronapilot.common.store import Document, Session
from chronapilot.common.store.calendars import Calendars, Listing
from chronapilot.common.store.events import Events


@dataclass(frozen=True)
class CalendarRef:
    """The mirror calendar a page belongs to."""

    id: str
    connection_id: str
    application_id: str
    provider_calendar_id: str


@dataclass
class Applied:
    upserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    stale: int = 0
    seen: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)  # provider event ids the writes marked deleted

    def add(self, other: Applied) -> None:
        self.upserted += other.upserted
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.seen |= other.seen
        self.gone |= other.gone


async def known_events(events: Events, calendar: CalendarRef) -> dict[str, StoredEvent]:
    """Every mirrored event of ``calendar`` (a summary of each), read once for a full sync."""
    return {i: StoredEvent.of(doc) for i, doc in (await events.summaries(calendar)).items()}


async def apply_page(
    events: Events,
    calendar: CalendarRef,
    page: EventPage,
    now: datetime,
    *,
    raw_max_bytes: int,
    outbox: EventSink,
    known: dict[str, StoredEvent] | None = None,
    session: Session | None = None,
) -> Applied:
    """Apply one page: read what it touches, plan (:func:`plan_page`), write the plan and tell
    what it changed (``outbox``, in ``session``'s transaction). ``known`` (a full sync's
    summary of the calendar) saves reading the page's upserts."""
    stored = await _touched(events, calendar, page, known, session)
    plan = plan_page(page, stored)
    inserts: dict[str, Document] = {}
    upserts: dict[str, Document] = {}
    for write in plan.writes:
        fields = {**write.fields, "raw": capped_raw(dict(write.event.raw), raw_max_bytes)}
        (inserts if write.insert else upserts)[write.provider_event_id] = fields
    created = await events.write_plan(
        calendar, inserts=inserts, upserts=upserts, deletes=plan.deletes, now=now, session=session
    )
    ids = {i: held.id for i, held in stored.items() if held.id is not None} | created
    changes = plan.changes
    await _tell_changes(
        outbox,
        session,
        calendar,
        created=[ids[i] for i in changes.created],
        updated=[ids[i] for i in changes.updated],
        deleted=[ids[i] for i in changes.deleted],
    )
    return Applied(
        upserted=plan.upserted,
        deleted=plan.deleted,
        unchanged=plan.unchanged,
        stale=plan.stale,
        seen=set(plan.seen),
        gone=set(plan.deletes),
    )


async def _tell_changes(
    outbox: EventSink, session: Session | None, calendar: CalendarRef, **changes: Sequence[str]
) -> None:
    """Queue ``mirror.events_changed`` for ``changes`` (``created``, ``updated``, ``deleted``:
    ``evt_`` ids) in ``session``'s transaction: nothing when there are none, several messages
    when there are more than :data:`MIRROR_IDS_PER_MESSAGE`."""
    tagged = [(kind, event_id) for kind, ids in changes.items() for event_id in ids]
    for start in range(0, len(tagged), MIRROR_IDS_PER_MESSAGE):
        chunk = tagged[start : start + MIRROR_IDS_PER_MESSAGE]
        lists = {kind: [event_id for each, event_id in chunk if each == kind] for kind in changes}
        event = MirrorEventsChanged(application_id=calendar.application_id, calendar_id=calendar.id, **lists)
        await outbox.emit(session, event, connection_id=calendar.connection_id)


async def _touched(
    events: Events,
    calendar: CalendarRef,
    page: EventPage,
    known: dict[str, StoredEvent] | None,
    session: Session | None,
) -> dict[str, StoredEvent]:
    """The mirrored events ``page`` can touch: its upserts (from ``known`` when given; those
    ``known`` lacks are read, as the plan writes them as inserts), its deletions and the events
    of the series it deletes or replaces (always read: a full sync's earlier pages may have
    written them)."""
    ids = [event.provider_event_id for event in page.upserts]
    stored: dict[str, StoredEvent] = {}
    if known is not None:
        stored = {i: known[i] for i in ids if i in known}
        ids = [i for i in ids if i not in stored]
    ids += page.deletions
    series = [*page.deletions, *page.series_replaced]
    found = await events.touched(calendar, provider_event_ids=ids, series=series, session=session)
    stored.update({i: StoredEvent.of(doc) for i, doc in found.items()})
    return stored


async def delete_unseen(
    events: Events,
    calendar: CalendarRef,
    known: Mapping[str, StoredEvent],
    applied: Applied,
    now: datetime,
    *,
    outbox: EventSink,
    session: Session | None = None,
    window: SyncWindow | None = None,
) -> int:
    """After a full sync (``applied``: what its pages did): what the provider no longer has is
    marked deleted (each by its key, which the unique index serves, rather than one ``$nin``
    over the calendar) and told (``outbox``). A windowed full sync judges only the events its
    window holds: the others were not read. What the pages deleted already is left out (it was
    told with its page)."""
    gone = [
        i
        for i, held in known.items()
        if i not in applied.seen
        and i not in applied.gone
        and not held.deleted
        and (window is None or window.holds(held.start_at, held.end_at))
    ]
    deleted = await events.mark_deleted(calendar, gone, now=now, session=session)
    await _tell_changes(outbox, session, calendar, deleted=[held for i in gone if (held := known[i].id)])
    return deleted


async def apply_listing(
    calendars: Calendars,
    connection: Document,
    listed: Sequence[CalendarInfo],
    now: datetime,
    *,
    outbox: EventSink,
    session: Session,
) -> Listing:
    """Write the provider's calendar list of ``connection`` into the mirror and tell what it
    changed (``outbox``, in ``session``'s transaction; nothing when nothing changed)."""
    connection_id, application_id = connection["_id"], connection["application_id"]
    listing = await calendars.upsert_listed(
        connection_id=connection_id,
        application_id=application_id,
        calendars=listed,
        now=now,
        session=session,
    )
    if listing.changed:
        changed = MirrorCalendarsChanged(application_id=application_id, **listing.changes)
        await outbox.emit(session, changed, connection_id=connection_id)
    return listing
