"""A windowed full sync deletes only inside the window it read (issue 16): Microsoft's full
sync reads a calendar view from a year back to two years ahead of now, so an event that has
grown older than a year is not listed by a later full sync, yet still exists at Microsoft and
must stay in the mirror. Google's and CalDAV's full syncs read the whole calendar (no window).

Against the Graph emulator and the MongoDB-protocol server; the sync's clock is moved forward
instead of waiting a hundred days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypeVar

import aiohttp
import pytest
from contract.providers_fixtures import microsoft_world
from contract.sync_drivers import MicrosoftDriver

from chronapilot.common.clock import FixedClock
from chronapilot.common.mirror.writes import CalendarRef
from chronapilot.common.providers.microsoft.client import MicrosoftProvider
from chronapilot.common.providers.sync import SyncWindow
from chronapilot.common.store import Store, ensure_indexes
from chronapilot.common.store.repositories import Repositories
from chronapilot.sync_worker.calendar_sync import sync_calendar

from helpers import InTransaction, QueuedOutbox

pytestmark = pytest.mark.integration
T = TypeVar("T")


async def test_a_later_full_sync_keeps_what_has_left_its_window(store: Store) -> None:
    await ensure_indexes(store.db)
    repos = Repositories.open(store)
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(now)

    def hour(offset: timedelta) -> datetime:
        return (now + offset).replace(minute=0, second=0)

    async with aiohttp.ClientSession() as http, microsoft_world(http) as world:
        connection = await world.connect()
        driver = MicrosoftDriver(world, connection)
        calendar_id = await driver.new_calendar()
        old = await driver.create("ten months ago", hour(-timedelta(days=300)))
        kept = await driver.create("next week", hour(timedelta(days=7)))
        doomed = await driver.create("next month", hour(timedelta(days=30)))
        far = await driver.create("in two years and a month", hour(timedelta(days=760)))
        provider = MicrosoftProvider(world.settings, http, clock=clock)
        ref = CalendarRef("cal_window", "con_window", "app_window", calendar_id)

        async def sync(*, full: bool) -> tuple[str, dict[str, bool]]:
            result = await sync_calendar(
                repos,
                provider,
                connection.token,
                ref,
                full=full,
                clock=clock,
                raw_max_bytes=32768,
                guard=InTransaction(store),
                outbox=QueuedOutbox(store),
            )
            mirrored = {
                doc["provider_event_id"]: doc["deleted"]
                async for doc in store.db.events.find({"calendar_id": ref.id})
            }
            return result.mode, mirrored

        assert await sync(full=True) == ("full", {old: False, kept: False, doomed: False})
        clock.advance(timedelta(days=10))  # within the window's roll: the delta link serves
        assert await sync(full=False) == ("incremental", {old: False, kept: False, doomed: False})

        # A hundred days after the first sync the first event is 400 days old: outside the
        # window of a new full sync (now - 365 d), yet still at Microsoft. The window is due to
        # roll (30 days), so the next sync is a full one: it reaches the far event, deletes the
        # one deleted inside its window and keeps the one it no longer reads.
        clock.advance(timedelta(days=90))
        await driver.delete(doomed)
        assert await sync(full=False) == ("full", {old: False, kept: False, doomed: True, far: False})
        assert await sync(full=True) == ("full", {old: False, kept: False, doomed: True, far: False})

        # ... and the provider indeed no longer lists the old one in that sync's window.
        listed: set[str] = set()
        windows: set[SyncWindow | None] = set()
        async for page in provider.sync_events(connection.token, calendar_id, None):
            listed |= {event.provider_event_id for event in page.upserts}
            windows.add(page.window)
        assert listed == {kept, far}
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
