"""Writing provider pages into the mirror: idempotent, and never older over newer.

A page is compared with what the mirror holds first (one query for what the page touches), the
differences decided by :func:`~chronapilot.sync_worker.plan.plan_page`, then only those are
written in one bulk write (events the mirror lacks inserted, the others updated): applying the
same page twice writes nothing the second time, and an event whose stored provider ``updated``
time is newer than the page's is left alone (a stale page cannot win).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from chronapilot.common.models.event import capped_raw
from chronapilot.common.providers.sync import EventPage, SyncWindow
from chronapilot.common.store import Document, Session
from chronapilot.common.store.events import Events
from chronapilot.sync_worker.plan import StoredEvent, plan_page


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

    def add(self, other: Applied) -> None:
        self.upserted += other.upserted
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.seen |= other.seen


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
    known: dict[str, StoredEvent] | None = None,
    session: Session | None = None,
) -> Applied:
    """Apply one page: read what it touches, plan (:func:`plan_page`), write the plan.
    ``known`` (a full sync's summary of the calendar) saves reading the page's upserts."""
    stored = await _touched(events, calendar, page, known, session)
    plan = plan_page(page, stored)
    inserts: dict[str, Document] = {}
    upserts: dict[str, Document] = {}
    for write in plan.writes:
        fields = {**write.fields, "raw": capped_raw(dict(write.event.raw), raw_max_bytes)}
        (inserts if write.insert else upserts)[write.provider_event_id] = fields
    await events.write_plan(
        calendar, inserts=inserts, upserts=upserts, deletes=plan.deletes, now=now, session=session
    )
    return Applied(
        upserted=plan.upserted,
        deleted=plan.deleted,
        unchanged=plan.unchanged,
        stale=plan.stale,
        seen=set(plan.seen),
    )


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
    known: dict[str, StoredEvent],
    seen: set[str],
    now: datetime,
    session: Session | None = None,
    *,
    window: SyncWindow | None = None,
) -> int:
    """After a full sync: what the provider no longer has is marked deleted (each by its key,
    which the unique index serves, rather than one ``$nin`` over the calendar). A windowed
    full sync judges only the events its window holds: the others were not read."""
    gone = [
        i
        for i, held in known.items()
        if i not in seen and not held.deleted and (window is None or window.holds(held.start_at, held.end_at))
    ]
    return await events.mark_deleted(calendar, gone, now=now, session=session)
