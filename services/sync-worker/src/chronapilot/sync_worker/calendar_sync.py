"""Syncing one calendar: full (everything, then what was not seen is deleted — within the
window the sync read, when the provider's full sync is windowed) or incremental (from the stored
cursor; a cursor the provider rejects falls back to a full sync).

Each write of the mirror tells what it changed (``mirror.events_changed``) through ``outbox``
in its own transaction (:mod:`~chronapilot.common.mirror.writes`).

The cursor is stored only once the last page is applied, so a sync interrupted anywhere
(a crash, ``kill -9``) starts again from the previous cursor and converges: pages are
idempotent and a full sync's deletions are computed from what it saw.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from chronapilot.common.bus.outbox import EventSink
from chronapilot.common.clock import Clock
from chronapilot.common.logging import get_logger
from chronapilot.common.mirror.writes import (
    Applied,
    CalendarRef,
    apply_page,
    delete_unseen,
    known_events,
)
from chronapilot.common.providers.base import CalendarProvider, TokenSource
from chronapilot.common.providers.errors import CursorExpired
from chronapilot.common.providers.sync import EventPage, SyncWindow
from chronapilot.common.store import Session
from chronapilot.common.store.repositories import Repositories
from chronapilot.common.store.sync_state import SyncStates

log = get_logger(__name__)
T = TypeVar("T")


class MirrorGuard(Protocol):
    """Runs one write of the mirror (a page, the deletions, the cursor) in a transaction that
    first checks the connection may still be synced, and raises instead of writing when not
    (disconnected, or this worker lost its lease)."""

    async def write(self, work: Callable[[Session], Awaitable[T]]) -> T: ...


@dataclass(frozen=True)
class CalendarResult:
    calendar_id: str
    mode: str  # "full" or "incremental"
    applied: Applied


async def _resume(
    sync_state: SyncStates, provider: CalendarProvider, calendar: CalendarRef, clock: Clock
) -> str | None:
    """The cursor an incremental sync resumes from; None (a full sync) when there is none or the
    provider's window is due to roll forward (``capabilities.window_roll``)."""
    cursor, last_full = await sync_state.resume_point(calendar.id)
    roll = provider.capabilities.window_roll
    if cursor is not None and roll is not None and (last_full is None or clock.now() - last_full >= roll):
        log.info("sync.window_rolled", calendar_id=calendar.id, last_full_sync_at=last_full)
        return None
    return cursor


async def sync_calendar(
    repos: Repositories,
    provider: CalendarProvider,
    token: TokenSource,
    calendar: CalendarRef,
    *,
    full: bool,
    clock: Clock,
    raw_max_bytes: int,
    guard: MirrorGuard,
    outbox: EventSink,
) -> CalendarResult:
    cursor = None if full else await _resume(repos.sync_state, provider, calendar, clock)
    if cursor is not None:
        try:
            applied = await _run(
                repos, provider, token, calendar, cursor, clock, raw_max_bytes, guard, outbox
            )
            return CalendarResult(calendar.id, "incremental", applied)
        except CursorExpired:
            log.info("sync.cursor_expired", calendar_id=calendar.id)
    applied = await _run(repos, provider, token, calendar, None, clock, raw_max_bytes, guard, outbox)
    return CalendarResult(calendar.id, "full", applied)


async def _run(
    repos: Repositories,
    provider: CalendarProvider,
    token: TokenSource,
    calendar: CalendarRef,
    cursor: str | None,
    clock: Clock,
    raw_max_bytes: int,
    guard: MirrorGuard,
    outbox: EventSink,
) -> Applied:
    total = Applied()
    next_cursor: str | None = None
    window: SyncWindow | None = None
    known = await known_events(repos.events, calendar) if cursor is None else None
    page: EventPage
    async for page in provider.sync_events(token, calendar.provider_calendar_id, cursor):

        async def write_page(session: Session, page: EventPage = page) -> Applied:
            return await apply_page(
                repos.events,
                calendar,
                page,
                clock.now(),
                raw_max_bytes=raw_max_bytes,
                outbox=outbox,
                known=known,
                session=session,
            )

        total.add(await guard.write(write_page))
        window = page.window or window
        if page.next_cursor is not None:
            next_cursor = page.next_cursor
    now = clock.now()
    if known is not None:
        total.deleted += await guard.write(
            lambda session: delete_unseen(
                repos.events, calendar, known, total, now, outbox=outbox, session=session, window=window
            )
        )

    async def save_cursor(session: Session) -> None:
        await repos.sync_state.save_cursor(
            calendar.id,
            connection_id=calendar.connection_id,
            cursor=next_cursor,
            synced_at=now,
            full=cursor is None,
            session=session,
        )

    await guard.write(save_cursor)
    log.info(
        "sync.calendar_done",
        calendar_id=calendar.id,
        full=cursor is None,
        upserted=total.upserted,
        deleted=total.deleted,
        unchanged=total.unchanged,
        stale=total.stale,
    )
    return total
