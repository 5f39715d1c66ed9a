"""Every generator of test data that depends on "now", wall times or random dates, driven over 366
consecutive start days and through every DST transition of every zone it uses: each event ends
after it starts, lasts what it was meant to last, and its wall times name exactly one instant.

The generators: the big calendars' random events and the benches' hourly events
(:mod:`contract.random_events`), the provider-neutral dataset (:mod:`contract.sync_dataset`),
and the sandbox's demo data for iCloud and Microsoft (built around today's week).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from contract.random_events import (
    DAYS_AHEAD,
    DAYS_BACK,
    DURATIONS,
    ZONES,
    Slot,
    hourly_slots,
    random_slot,
    slot,
    unambiguous,
)
from contract.sync_dataset import (
    BERLIN,
    CANCELLED_WEEK,
    MOVED_WEEK,
    NEW_YORK,
    NY_MINUTES,
    SERIES_COUNT,
    SERIES_MINUTES,
    UTC_MINUTES,
    Dataset,
    expected_occurrences,
    local,
)

from chronapilot.sandbox.icloud.demo_data import build_demo_dataset, week_anchor
from chronapilot.sandbox.microsoft import times as graph_times
from chronapilot.sandbox.microsoft.seed import seed_demo
from chronapilot.sandbox.microsoft.store import Store as GraphStore

TODAY = datetime.now(UTC).date()
DAYS = [TODAY + timedelta(days=n) for n in range(366)]


def absolute(value: datetime) -> datetime:
    return value.astimezone(UTC)


def lasts(start: datetime, end: datetime) -> timedelta:
    """Real elapsed time (subtracting two datetimes of one tzinfo would subtract wall times)."""
    return absolute(end) - absolute(start)


def assert_exact(item: Slot) -> None:
    assert absolute(item.end) > absolute(item.start), item
    assert lasts(item.start, item.end) == timedelta(minutes=item.minutes), item
    assert unambiguous(item.start) and unambiguous(item.end), item


def transitions(zone: ZoneInfo, first: date, last: date) -> list[datetime]:
    """Every instant in [first, last] at which ``zone``'s UTC offset changes, to the minute."""
    found = []
    instant = datetime.combine(first, datetime.min.time(), UTC)
    end = datetime.combine(last, datetime.min.time(), UTC)
    offset = instant.astimezone(zone).utcoffset()
    while instant < end:
        later = instant + timedelta(hours=1)
        if later.astimezone(zone).utcoffset() != offset:
            low, high = instant, later  # the change lies in (low, high]
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(high.replace(second=0, microsecond=0))
            offset = later.astimezone(zone).utcoffset()
        instant = later
    return found


# -- the big calendars' random events ------------------------------------------------------------


@pytest.mark.parametrize("seed", ["mirror-google", "mirror-microsoft", "mirror-icloud"])
def test_random_events_are_exact_on_each_of_366_start_days(seed: str) -> None:
    for day in DAYS:
        rng = random.Random(seed)  # the mirror test's own stream, as if it ran on `day`
        now = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=rng.randrange(24))
        for _ in range(250):  # the first draws of each day; the next test covers every change
            item = random_slot(rng, now)
            assert_exact(item)
            assert item.minutes in DURATIONS
            assert item.start.tzinfo is not None and str(item.start.tzinfo) in ZONES
            assert abs(absolute(item.start) - now) <= timedelta(days=max(DAYS_BACK, DAYS_AHEAD) + 2)


def test_random_events_are_exact_through_every_dst_transition_of_every_zone() -> None:
    """Every start from two hours before to two hours after each change, every duration."""
    first = TODAY - timedelta(days=DAYS_BACK + 1)
    last = TODAY + timedelta(days=366 + DAYS_AHEAD + 1)
    checked: dict[str, int] = {}
    for name in ZONES:
        zone = ZoneInfo(name)
        changes = transitions(zone, first, last)
        checked[name] = len(changes)
        for change in changes:
            for step in range(-8, 9):
                instant = change + timedelta(minutes=15 * step)
                for minutes in DURATIONS:
                    item = slot(instant, zone, minutes)
                    assert_exact(item)
                    assert absolute(item.start) >= instant  # moved forward only, never back
                    assert absolute(item.start) - instant <= timedelta(hours=3)
    # not vacuous: the zones with DST changed at least twice a year over the range
    for name in ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Chatham"):
        assert checked[name] >= 4, checked
    assert checked["UTC"] == checked["Asia/Kolkata"] == 0


def test_the_chatham_night_that_broke_the_suite_gives_a_quarter_hour_that_ends_after_it_starts() -> None:
    zone = ZoneInfo("Pacific/Chatham")
    item = slot(datetime(2027, 4, 3, 13, 45, tzinfo=UTC), zone, 15)  # 03:00 +13:45 on 2027-04-04
    assert_exact(item)
    assert item.end.utcoffset() == timedelta(hours=12, minutes=45)  # after the change


def test_the_benches_hourly_events_are_exact_on_each_of_366_start_days() -> None:
    for day in DAYS:
        now = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=13, minutes=37)
        items = hourly_slots(now, 200)
        for item in items:
            assert_exact(item)
        starts = [absolute(item.start) for item in items]
        assert all(later - earlier == timedelta(hours=1) for earlier, later in itertools.pairwise(starts))


# -- the provider-neutral dataset ----------------------------------------------------------------


def _dataset_events(dataset: Dataset) -> Iterator[tuple[str, datetime, datetime, int]]:
    for wall in dataset.series_walls():
        start = dataset.moved_to if wall == dataset.moved_original else wall
        yield BERLIN, start, start + timedelta(minutes=SERIES_MINUTES), SERIES_MINUTES
    yield NEW_YORK, dataset.ny_start, dataset.ny_start + timedelta(minutes=NY_MINUTES), NY_MINUTES


def test_the_dataset_is_exact_and_inside_every_sync_window_on_each_of_366_days() -> None:
    for day in DAYS:
        dataset = Dataset.for_day(day)
        for zone, start_wall, end_wall, minutes in _dataset_events(dataset):
            tz = ZoneInfo(zone)
            start = start_wall.replace(tzinfo=tz)
            end = end_wall.replace(tzinfo=tz)
            assert unambiguous(start) and unambiguous(end), (day, zone, start_wall)
            assert lasts(start, end) == timedelta(minutes=minutes), (day, zone, start_wall)
        assert dataset.all_day_end > dataset.all_day_first
        view = expected_occurrences(dataset)
        assert len(view) == SERIES_COUNT - 1 + 3  # one cancelled; all-day, New York, UTC
        for occurrence in view.values():
            assert occurrence.start is not None and occurrence.end is not None
            if occurrence.all_day:
                assert occurrence.end.date and occurrence.start.date
                assert occurrence.end.date > occurrence.start.date
                continue
            assert occurrence.end.date_time and occurrence.start.date_time
            assert occurrence.end.date_time > occurrence.start.date_time
        assert dataset.utc_start + timedelta(minutes=UTC_MINUTES) > dataset.utc_start
        # inside Microsoft's calendar view (a year back, two ahead): the narrowest window
        instants = [local(w, BERLIN) for w in dataset.series_walls()] + [dataset.utc_start]
        now = datetime.combine(day, datetime.min.time(), UTC)
        assert all(now - timedelta(days=365) < i < now + timedelta(days=730) for i in instants), day


def test_the_dataset_crosses_the_eu_change_and_calls_new_york_the_day_after_the_us_change() -> None:
    for year in sorted({Dataset.for_day(day).year for day in DAYS}):
        dataset = Dataset.for_year(year)
        walls = dataset.series_walls()
        assert all(w.weekday() == 0 and w.hour == 9 for w in walls)
        utc_hours = [local(w, BERLIN).hour for w in walls]
        assert utc_hours[0] == 8 and utc_hours[-1] == 7  # winter then summer time
        assert local(dataset.cancelled_original, BERLIN).hour == 7  # cancelled after the change
        assert (
            dataset.moved_original == walls[MOVED_WEEK]
            and dataset.cancelled_original == walls[CANCELLED_WEEK]
        )
        new_york = ZoneInfo(NEW_YORK)
        day_before = (dataset.ny_start - timedelta(days=1)).replace(hour=0, tzinfo=new_york)
        assert day_before.utcoffset() == timedelta(hours=-5)  # still standard time at midnight
        assert dataset.ny_start.replace(tzinfo=new_york).utcoffset() == timedelta(hours=-4)


def test_the_recorded_year_matches_the_fixtures_dates() -> None:
    dataset = Dataset.for_year(2026)
    assert dataset.series_first == datetime(2026, 3, 2, 9, 0)
    assert dataset.moved_original == datetime(2026, 3, 16, 9, 0)
    assert dataset.moved_to == datetime(2026, 3, 16, 11, 0)
    assert dataset.cancelled_original == datetime(2026, 4, 6, 9, 0)
    assert dataset.ny_start == datetime(2026, 3, 9, 10, 0)
    assert (dataset.all_day_first, dataset.all_day_end) == (date(2026, 4, 9), date(2026, 4, 11))


# -- the sandbox's demo data ---------------------------------------------------------------------


def test_the_icloud_demo_data_is_exact_for_366_anchors() -> None:
    for anchor in sorted({week_anchor(day) for day in DAYS}):  # the data moves week by week
        dataset = build_demo_dataset(owner_email="demo@example.com", owner_name="Demo", seed=7, anchor=anchor)
        for resource in dataset.resources:
            for event in icalendar.Calendar.from_ical(resource.ical).walk("VEVENT"):
                start, end = event.decoded("dtstart"), event.decoded("dtend")
                if not isinstance(start, datetime):
                    assert end > start, (anchor, resource.summary)
                    continue
                assert absolute(end) > absolute(start), (anchor, resource.summary)
                # TZID wall times are what a CalDAV client reads: each must name one instant
                assert unambiguous(start) and unambiguous(end), (anchor, resource.summary, start)
                assert lasts(start, end) <= timedelta(hours=3), (anchor, resource.summary)


def _graph_instant(value: dict[str, Any]) -> datetime:
    wall = datetime.fromisoformat(value["dateTime"][:26])
    tz = graph_times.zone(value["timeZone"])
    aware = wall.replace(tzinfo=tz)
    assert unambiguous(aware), value
    assert aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall, f"no such wall time: {value}"
    return aware.astimezone(UTC)


def test_the_microsoft_demo_data_is_exact_for_366_days() -> None:
    for day in DAYS:
        state: Any = SimpleNamespace(store=GraphStore(seed=7))
        seed_demo(state, today=day)
        events = list(state.store.events.values())
        assert len(events) > 10
        for event in events:
            fields = event.fields
            start, end = _graph_instant(fields["start"]), _graph_instant(fields["end"])
            assert end > start, (day, fields.get("subject"))
            wall_length = datetime.fromisoformat(fields["end"]["dateTime"][:26]) - datetime.fromisoformat(
                fields["start"]["dateTime"][:26]
            )
            if not fields.get("isAllDay"):
                assert end - start == wall_length, (day, fields.get("subject"))  # no DST in the middle
