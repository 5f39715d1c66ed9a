"""One event-sync contract for every provider, against the Google and Microsoft emulators and a
real Radicale (the iCloud stand-in).

:class:`SyncContract` says what ``sync_events`` must do: a full sync returns exactly the
calendar's events (compared field by field with the provider's own view of them), paging
changes nothing but the number of pages, an incremental sync returns exactly what changed, a
dead cursor raises ``CursorExpired`` before any page, a refused credential is refreshed once,
and the neutral dataset (:mod:`contract.sync_dataset`) normalises to the same occurrences for
every provider. Each ``Test*`` class only names its server and its driver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from contract.caldav_proxy import ProxyState, caldav_proxy
from contract.providers_fixtures import Connection, World, google_world, icloud_world, microsoft_world
from contract.random_events import end_after
from contract.sync_dataset import BERLIN, DATASET, expected_occurrences, local, occurrences
from contract.sync_drivers import (
    Driver,
    GoogleDriver,
    ICloudCtagDriver,
    ICloudDriver,
    MicrosoftDriver,
    Own,
    OwnView,
)

from chronapilot.common.providers import (
    CalendarProvider,
    CursorExpired,
    InvalidCredentials,
    Throttled,
    TokenSource,
)
from chronapilot.common.providers.sync import EventData, EventPage, EventTime

pytestmark = pytest.mark.timeout(120)

#: Inside every provider's sync window (Microsoft's calendar view: a year back, two ahead).
SOON = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=7)


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def collect(
    provider: CalendarProvider,
    connection: Connection,
    calendar_id: str,
    cursor: str | None,
    token: TokenSource | None = None,
) -> list[EventPage]:
    pages = provider.sync_events(token or connection.token, calendar_id, cursor)
    return [page async for page in pages]


def upserts(pages: list[EventPage]) -> dict[str, EventData]:
    return {event.provider_event_id: event for page in pages for event in page.upserts}


def deletions(pages: list[EventPage]) -> set[str]:
    return {event_id for page in pages for event_id in page.deletions}


def without_orphans(events: dict[str, EventData]) -> dict[str, EventData]:
    """``events`` less cancelled instances of a series that is gone (Google lists them with
    ``showDeleted``; a mirror that cascaded the master's deletion no longer has them)."""
    return {
        k: e
        for k, e in events.items()
        if not (e.status == "cancelled" and e.recurring_event_id and e.recurring_event_id not in events)
    }


class Mirror:
    """A calendar mirror applying pages by the rules of :mod:`chronapilot.common.providers.sync`."""

    def __init__(self) -> None:
        self.events: dict[str, EventData] = {}

    def apply(self, pages: list[EventPage]) -> str | None:
        for page in pages:
            for gone in page.deletions:
                self._drop(lambda e, gone=gone: e.provider_event_id == gone or e.recurring_event_id == gone)
            listed = frozenset(event.provider_event_id for event in page.upserts)
            for master in page.series_replaced:
                self._drop(
                    lambda e, m=master, listed=listed: (
                        e.recurring_event_id == m and e.provider_event_id not in listed
                    )
                )
            self.events.update((event.provider_event_id, event) for event in page.upserts)
        return pages[-1].next_cursor

    def _drop(self, doomed: Callable[[EventData], bool]) -> None:
        self.events = {k: e for k, e in self.events.items() if not doomed(e)}


class SyncContract:
    """What every provider's ``sync_events`` does. Subclasses provide ``world`` and ``driver_type``."""

    driver_type: type[Driver]

    @pytest.fixture
    async def driver(self, world: World) -> Driver:
        driver = self.driver_type(world, await world.connect())
        await driver.new_calendar()
        return driver

    async def sync(self, driver: Driver, cursor: str | None = None) -> list[EventPage]:
        return await collect(driver.connection.provider, driver.connection, driver.calendar_id, cursor)

    def assert_matches_provider(self, events: dict[str, EventData], own: OwnView) -> None:
        assert set(events) == set(own)
        for event_id, fields in own.items():
            assert Own.of(events[event_id]) == fields, event_id

    async def test_the_provider_implements_the_provider_protocol(self, driver: Driver) -> None:
        assert isinstance(driver.connection.provider, CalendarProvider)

    async def test_a_full_sync_returns_exactly_the_calendars_events(self, driver: Driver) -> None:
        await driver.write_dataset()
        for n in range(3):
            await driver.create(f"single {n}", SOON + timedelta(hours=n))

        pages = await self.sync(driver)

        self.assert_matches_provider(upserts(pages), await driver.own_fields())
        assert [page.next_cursor is not None for page in pages] == [False] * (len(pages) - 1) + [True]

    async def test_the_dataset_normalises_to_the_same_occurrences_for_every_provider(
        self, driver: Driver
    ) -> None:
        await driver.write_dataset()

        events = upserts(await self.sync(driver))

        assert occurrences(events.values()) == expected_occurrences()
        for event in events.values():
            assert event.all_day == (event.start is not None and event.start.date is not None)
            for moment in (event.start, event.end, event.original_start):
                if moment is not None and moment.date_time is not None:
                    assert moment.date_time.utcoffset() == timedelta(0)

    async def test_small_pages_return_the_same_events_and_the_cursor_on_the_last(
        self, driver: Driver
    ) -> None:
        ids = {await driver.create(f"paged {n}", SOON + timedelta(hours=n)) for n in range(7)}
        driver.set_page_size(3)

        pages = await self.sync(driver)

        assert len(pages) >= 3
        assert set(upserts(pages)) == ids
        assert sum(len(page.upserts) for page in pages) == len(ids)
        assert all(page.next_cursor is None for page in pages[:-1])
        assert pages[-1].next_cursor is not None

    async def test_an_incremental_sync_returns_exactly_the_changes(self, driver: Driver) -> None:
        kept = await driver.create("kept", SOON)
        changed = await driver.create("to change", SOON + timedelta(hours=1))
        gone = await driver.create("to delete", SOON + timedelta(hours=2))
        cursor = (await self.sync(driver))[-1].next_cursor

        created = await driver.create("created", SOON + timedelta(hours=3))
        await driver.retitle(changed, "changed")
        await driver.delete(gone)
        pages = await self.sync(driver, cursor)

        events = upserts(pages)
        assert set(events) == {created, changed}
        assert events[changed].title == "changed" and events[created].title == "created"
        assert deletions(pages) == {gone}
        assert kept not in events
        self.assert_matches_provider(
            events, {k: v for k, v in (await driver.own_fields()).items() if k in events}
        )
        assert pages[-1].next_cursor is not None

        nothing = await self.sync(driver, pages[-1].next_cursor)
        assert not upserts(nothing) and not deletions(nothing)

    async def test_an_event_keeps_the_zone_it_was_written_in(self, driver: Driver) -> None:
        zone = ZoneInfo("Australia/Lord_Howe")  # a half-hour DST shift
        october = date(DATASET.year, 10, 1)  # next year's: inside every provider's sync window
        first_sunday = october + timedelta(days=(6 - october.weekday()) % 7)
        start = datetime.combine(
            first_sunday + timedelta(days=1), time(9, 0), zone
        )  # the day after it begins
        event_id = await driver.create("Lord Howe", start, 45)

        event = upserts(await self.sync(driver))[event_id]

        assert event.start == EventTime(start.astimezone(UTC), None, "Australia/Lord_Howe")
        assert event.end == EventTime(end_after(start, 45).astimezone(UTC), None, "Australia/Lord_Howe")

    async def test_a_dead_cursor_raises_cursor_expired_before_any_page(self, driver: Driver) -> None:
        await driver.write_dataset()
        first = await self.sync(driver)
        cursor = await driver.dead(str(first[-1].next_cursor))

        pages: list[EventPage] = []

        async def consume() -> None:
            async for page in driver.connection.provider.sync_events(
                driver.connection.token, driver.calendar_id, cursor
            ):
                pages.append(page)

        with pytest.raises(CursorExpired):
            await consume()
        assert pages == []
        full = await self.sync(driver)
        assert set(upserts(full)) == set(upserts(first))  # the same events, under the same ids

    async def test_a_mirror_kept_by_incremental_syncs_equals_a_fresh_full_sync(self, driver: Driver) -> None:
        await driver.write_dataset()
        mirror = Mirror()
        cursor = mirror.apply(await self.sync(driver))

        await driver.change_series()
        await driver.retitle(driver.all_day_id, "Offsite (renamed)")
        await driver.delete(driver.ny_id)
        cursor = mirror.apply(await self.sync(driver, cursor))

        fresh = upserts(await self.sync(driver))
        assert mirror.events == fresh
        view = occurrences(mirror.events.values())
        assert len(view) == len(expected_occurrences()) - 2  # one more cancelled, New York deleted
        assert sorted(o.title or "" for o in view.values()).count("Weekly planning (later)") == 1

        await driver.delete(driver.series_id)
        mirror.apply(await self.sync(driver, cursor))

        fresh = upserts(await self.sync(driver))
        assert without_orphans(mirror.events) == without_orphans(fresh)
        assert not any(e.recurrence or e.recurring_event_id for e in without_orphans(fresh).values())

    async def test_throttling_raises_throttled_with_the_providers_retry_after(self, driver: Driver) -> None:
        await driver.create("one", SOON)
        for status in (429, 503):
            if not await driver.throttle(status, 7):
                pytest.skip("this server cannot be made to throttle")

            with pytest.raises(Throttled) as caught:
                await self.sync(driver)

            assert caught.value.retryable and caught.value.retry_after == 7
        assert len(upserts(await self.sync(driver))) == 1

    async def test_a_refused_credential_is_refreshed_once_during_a_sync(self, driver: Driver) -> None:
        await driver.create("one", SOON)
        driver.connection.serve_refused_first = True

        pages = await self.sync(driver)

        assert len(upserts(pages)) == 1
        assert driver.connection.forced_refreshes >= 1

    async def test_a_credential_refused_after_a_refresh_needs_reauthentication(self, driver: Driver) -> None:
        calls: list[bool] = []

        async def always_refused(force_refresh: bool) -> str:
            calls.append(force_refresh)
            return driver.connection.refused

        with pytest.raises(InvalidCredentials):
            await collect(
                driver.connection.provider, driver.connection, driver.calendar_id, None, always_refused
            )
        assert calls == [False, True]


class TestGoogleSync(SyncContract):
    driver_type = GoogleDriver

    @pytest.fixture(scope="class")
    @classmethod
    async def world(cls, http: aiohttp.ClientSession) -> AsyncIterator[World]:
        async with google_world(http) as world:
            yield world

    async def test_a_full_sync_keeps_recurring_masters_exceptions_and_cancelled_instances(
        self, driver: Driver
    ) -> None:
        await driver.write_dataset()

        events = upserts(await self.sync(driver))

        masters = [e for e in events.values() if e.recurrence]
        assert len(masters) == 1 and masters[0].recurrence[0].startswith("RRULE:FREQ=WEEKLY")
        exceptions = [e for e in events.values() if e.recurring_event_id == masters[0].provider_event_id]
        assert sorted(e.status for e in exceptions) == ["cancelled", "confirmed"]
        assert all(e.original_start is not None for e in exceptions)


class TestMicrosoftSync(SyncContract):
    driver_type = MicrosoftDriver

    @pytest.fixture(scope="class")
    @classmethod
    async def world(cls, http: aiohttp.ClientSession) -> AsyncIterator[World]:
        async with microsoft_world(http) as world:
            yield world

    async def test_occurrences_and_exceptions_name_their_series_master(self, driver: Driver) -> None:
        await driver.write_dataset()

        events = upserts(await self.sync(driver))

        series = [e for e in events.values() if e.recurring_event_id is not None]
        assert len(series) == 7
        assert len({e.recurring_event_id for e in series}) == 1
        assert all(e.original_start is not None and e.recurrence == () for e in series)
        assert {e.start.timezone for e in series if e.start} == {"Europe/Berlin"}

    async def test_a_cancelled_occurrence_comes_as_a_deletion(self, driver: Driver) -> None:
        await driver.write_dataset()
        cursor = (await self.sync(driver))[-1].next_cursor
        events = upserts(await self.sync(driver))
        victim = next(e for e in events.values() if e.recurring_event_id and e.title == "Weekly planning")

        await driver.delete(victim.provider_event_id)
        pages = await self.sync(driver, cursor)

        assert victim.provider_event_id in deletions(pages)


class TestICloudSync(SyncContract):
    driver_type: type[Driver] = ICloudDriver

    @pytest.fixture(scope="class")
    @classmethod
    async def world(cls, http: aiohttp.ClientSession) -> AsyncIterator[World]:
        async with icloud_world(http) as world:
            yield world

    async def test_a_series_resource_is_a_master_and_its_overrides(self, driver: Driver) -> None:
        await driver.write_dataset()

        pages = await self.sync(driver)

        events = upserts(pages)
        master = next(e for e in events.values() if e.recurrence)
        assert any(line.startswith("EXDATE") for line in master.recurrence)
        override = next(e for e in events.values() if e.recurring_event_id)
        moved = local(DATASET.moved_original, BERLIN).strftime("%Y%m%dT%H%M%SZ")
        assert override.provider_event_id == f"{master.provider_event_id}#{moved}"
        assert override.recurring_event_id == master.provider_event_id
        assert not any(page.series_replaced for page in pages)  # a full sync replaces everything

    async def test_an_incremental_sync_names_the_resources_it_rewrites_whole(self, driver: Driver) -> None:
        await driver.write_dataset()
        cursor = (await self.sync(driver))[-1].next_cursor

        await driver.change_series()
        pages = await self.sync(driver, cursor)

        assert {s for page in pages for s in page.series_replaced} == {driver.series_id}
        assert {e.recurring_event_id for e in upserts(pages).values()} == {None, driver.series_id}


class TestICloudCtagFallbackSync(TestICloudSync):
    driver_type = ICloudCtagDriver

    async def test_the_cursor_carries_the_ctag_and_nothing_changed_is_one_empty_page(
        self, driver: Driver
    ) -> None:
        await driver.create("one", SOON)
        cursor = (await self.sync(driver))[-1].next_cursor
        assert cursor is not None and cursor.startswith("ctag:")

        pages = await self.sync(driver, cursor)

        assert [(p.upserts, p.deletions, p.next_cursor) for p in pages] == [((), (), cursor)]


class TestCalDavServersUnlikeRadicale:
    """Radicale behind a proxy that truncates sync-collection answers (507), or hides
    sync-collection altogether: the provider follows the one and falls back to ctag/etags for
    the other, by itself."""

    @pytest.fixture(scope="class")
    @classmethod
    async def world(cls, http: aiohttp.ClientSession) -> AsyncIterator[World]:
        async with icloud_world(http) as world:
            yield world

    @pytest.fixture
    async def driver(self, world: World) -> Driver:
        driver = ICloudDriver(world, await world.connect())
        await driver.new_calendar()
        return driver

    @staticmethod
    async def sync_through(
        proxy: str, driver: Driver, cursor: str | None
    ) -> tuple[list[EventPage], dict[str, str]]:
        provider = driver.world.provider_at(proxy, timeout_s=5)
        target = urlsplit(driver.calendar_id)
        calendar_url = proxy + target.path
        pages = await collect(provider, driver.connection, calendar_url, cursor)
        return pages, {
            k: v for k, v in ((e.provider_event_id, e.title or "") for p in pages for e in p.upserts)
        }

    async def test_a_truncated_sync_collection_is_followed_to_the_end(
        self, driver: Driver, http: aiohttp.ClientSession
    ) -> None:
        ids = {await driver.create(f"event {n}", SOON + timedelta(hours=n)) for n in range(7)}
        state = ProxyState(target=driver.world.base_url, truncate=3)
        async with caldav_proxy(http, state) as proxy:
            pages, titles = await self.sync_through(proxy, driver, None)
            assert set(titles) == ids
            assert state.reports == 3
            cursor = pages[-1].next_cursor
            assert cursor is not None and cursor.startswith("dav:") and "trunc:" not in cursor

            gone = sorted(ids)[0]
            await driver.delete(gone)
            added = await driver.create("added", SOON)
            state.reports = 0
            pages, titles = await self.sync_through(proxy, driver, cursor)

        assert set(titles) == {added}
        assert deletions(pages) == {gone}
        assert state.reports == 1

    async def test_a_server_without_sync_collection_is_synced_by_ctag_and_etags(
        self, driver: Driver, http: aiohttp.ClientSession
    ) -> None:
        kept = await driver.create("kept", SOON)
        changed = await driver.create("to change", SOON + timedelta(hours=1))
        gone = await driver.create("to delete", SOON + timedelta(hours=2))
        state = ProxyState(target=driver.world.base_url, sync_collection=False)
        async with caldav_proxy(http, state) as proxy:
            pages, titles = await self.sync_through(proxy, driver, None)
            assert set(titles) == {kept, changed, gone}
            cursor = pages[-1].next_cursor
            assert cursor is not None and cursor.startswith("ctag:")

            await driver.retitle(changed, "changed")
            await driver.delete(gone)
            added = await driver.create("added", SOON)
            pages, titles = await self.sync_through(proxy, driver, cursor)

        assert titles == {changed: "changed", added: "added"}
        assert deletions(pages) == {gone}
        assert state.reports == 0

    async def test_a_server_that_drops_sync_collection_expires_the_cursor_and_falls_back(
        self, driver: Driver, http: aiohttp.ClientSession
    ) -> None:
        one = await driver.create("one", SOON)
        state = ProxyState(target=driver.world.base_url)
        async with caldav_proxy(http, state) as proxy:
            cursor = (await self.sync_through(proxy, driver, None))[0][-1].next_cursor
            assert cursor is not None and cursor.startswith("dav:")
            state.sync_collection = False

            with pytest.raises(CursorExpired):
                await self.sync_through(proxy, driver, cursor)
            pages, titles = await self.sync_through(proxy, driver, None)

        assert titles == {one: "one"}
        assert str(pages[-1].next_cursor).startswith("ctag:")

    async def test_a_resource_gone_before_the_multiget_is_a_deletion(
        self, driver: Driver, http: aiohttp.ClientSession
    ) -> None:
        kept = await driver.create("kept", SOON)
        vanished = await driver.create("vanished", SOON + timedelta(hours=1))
        state = ProxyState(target=driver.world.base_url, vanished=frozenset({vanished}))
        async with caldav_proxy(http, state) as proxy:
            pages, titles = await self.sync_through(proxy, driver, None)

        assert titles == {kept: "kept"}
        assert deletions(pages) == {vanished}
        assert pages[-1].next_cursor is not None

    async def test_hrefs_a_multiget_leaves_out_are_asked_for_again(
        self, driver: Driver, http: aiohttp.ClientSession
    ) -> None:
        ids = {await driver.create(f"event {n}", SOON + timedelta(hours=n)) for n in range(7)}
        state = ProxyState(target=driver.world.base_url, multiget_cap=3)
        async with caldav_proxy(http, state) as proxy:
            pages, titles = await self.sync_through(proxy, driver, None)

        assert set(titles) == ids
        assert pages[-1].next_cursor is not None
