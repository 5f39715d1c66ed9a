"""Writing provider pages into the mirror: idempotent, and never older over newer.

A page is compared with what the mirror holds first (one query for the page's ids), then only
the differences are written in one unordered bulk write: applying the same page twice writes
nothing the second time, and an event whose stored provider ``updated`` time is newer than the
page's is left alone (a stale page cannot win).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from chronapilot.common.models.event import capped_raw, mirror_fields
from chronapilot.common.providers.sync import EventPage
from chronapilot.common.store import Document, Session
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

    def add(self, other: Applied) -> None:
        self.upserted += other.upserted
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.seen |= other.seen


async def known_events(events: Events, calendar: CalendarRef) -> dict[str, Document]:
    """Every mirrored event of ``calendar`` (a summary of each), read once for a full sync."""
    return await events.summaries(calendar)


async def apply_page(
    events: Events,
    calendar: CalendarRef,
    page: EventPage,
    now: datetime,
    *,
    raw_max_bytes: int,
    known: dict[str, Document] | None = None,
    session: Session | None = None,
) -> Applied:
    """Apply one page. ``known`` (a full sync's summary of the calendar) saves the lookup."""
    result = Applied()
    ids = [event.provider_event_id for event in page.upserts]
    existing: dict[str, Document] = {}
    if known is not None:
        existing = {i: known[i] for i in ids if i in known}
    elif ids:
        existing = await events.summaries(calendar, ids, session=session)
    upserts: dict[str, Document] = {}
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
        upserts[event.provider_event_id] = {**fields, "raw": capped_raw(dict(event.raw), raw_max_bytes)}
    result.deleted = await events.write_page(
        calendar,
        upserts=upserts,
        replaced_series=set(page.series_replaced),
        keep=result.seen,
        deletions=page.deletions,
        now=now,
        session=session,
    )
    return result


async def delete_unseen(
    events: Events,
    calendar: CalendarRef,
    known: dict[str, Document],
    seen: set[str],
    now: datetime,
    session: Session | None = None,
) -> int:
    """After a full sync: what the provider no longer has is marked deleted (each by its key,
    which the unique index serves, rather than one ``$nin`` over the calendar)."""
    gone = [i for i, doc in known.items() if i not in seen and not doc.get("deleted")]
    return await events.mark_deleted(calendar, gone, now=now, session=session)
