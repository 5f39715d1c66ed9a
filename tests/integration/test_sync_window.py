"""A windowed full sync deletes only inside the window it read (issue 16): Microsoft's full
sync reads a calendar view from a year back to two years ahead of now, so an event that has
grown older than a year is not listed by a later full sync, yet still exists at Microsoft and
must stay in the mirror. Google's and CalDAV's full syncs read the whole calendar (no window).

Against the Graph emulator and the MongoDB-protocol server; the sync's clock is moved forward
instead of waiting a hundred days.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import aiohttp
import pytest
from contract.providers_fixtures import microsoft_world
from contract.sync_drivers import MicrosoftDriver

from chronapilot.common.clock import FixedClock
from chronapilot.common.providers.microsoft.client import MicrosoftProvider
from chronapilot.common.providers.sync import SyncWindow
from chronapilot.common.store import Session, Store, ensure_indexes
from chronapilot.common.store.repositories import Repositories
from chronapilot.sync_worker.calendar_sync import sync_calendar
from chronapilot.sync_worker.mirror import CalendarRef

pytestmark = pytest.mark.integration
T = TypeVar("T")


class Transactional:
    """The sync's write guard without the connection fence (no connection document here)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def write(self, work: Callable[[Session], Awaitable[T]]) -> T:
        return await self._store.in_transaction(work)


async def test_a_later_full_sync_keeps_what_has_left_its_window(store: Store) -> None:
    await ensure_indexes(store.db)
    repos = Repositories.open(store)
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(now)
    async with aiohttp.ClientSession() as http, microsoft_world(http) as world:
        connection = await world.connect()
        driver = MicrosoftDriver(world, connection)
        calendar_id = await driver.new_calendar()
        old = await driver.create("ten months ago", (now - timedelta(days=300)).replace(minute=0, second=0))
        kept = await driver.create("next week", (now + timedelta(days=7)).replace(minute=0, second=0))
        doomed = await driver.create("next month", (now + timedelta(days=30)).replace(minute=0, second=0))
        provider = MicrosoftProvider(world.settings, http, clock=clock)
        ref = CalendarRef("cal_window", "con_window", "app_window", calendar_id)

        async def full_sync() -> dict[str, bool]:
            await sync_calendar(
                repos,
                provider,
                connection.token,
                ref,
                full=True,
                clock=clock,
                raw_max_bytes=32768,
                guard=Transactional(store),
            )
            return {
                doc["provider_event_id"]: doc["deleted"]
                async for doc in store.db.events.find({"calendar_id": ref.id})
            }

        assert await full_sync() == {old: False, kept: False, doomed: False}

        # A hundred days later the first event is 400 days old: outside the next full sync's
        # window (now - 365 d), still at Microsoft. One event inside the window is deleted.
        clock.advance(timedelta(days=100))
        await driver.delete(doomed)
        mirrored = await full_sync()
        assert mirrored == {old: False, kept: False, doomed: True}

        # ... and the provider indeed no longer lists the old one in that sync's window.
        listed: set[str] = set()
        windows: set[SyncWindow | None] = set()
        async for page in provider.sync_events(connection.token, calendar_id, None):
            listed |= {event.provider_event_id for event in page.upserts}
            windows.add(page.window)
        assert listed == {kept}
        assert windows == {SyncWindow(clock.now() - timedelta(days=365), clock.now() + timedelta(days=730))}


def test_the_window_judges_only_what_it_certainly_covers() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    window = SyncWindow(start, start + timedelta(days=1095))
    inside = start + timedelta(days=10)
    assert window.holds(inside, inside + timedelta(hours=1))
    assert not window.holds(start - timedelta(days=3), start - timedelta(days=2))  # before
    assert not window.holds(start + timedelta(days=1100), None)  # after
    # within a day of an edge (an all-day event is mirrored at midnight UTC): left alone
    assert not window.holds(start - timedelta(hours=2), start + timedelta(hours=22))
    assert not window.holds(window.end - timedelta(hours=12), window.end + timedelta(hours=1))
    # a long event reaching well into the window is judged
    assert window.holds(start - timedelta(days=30), start + timedelta(days=30))
    assert not window.holds(None, None)
