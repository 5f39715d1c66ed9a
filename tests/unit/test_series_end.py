"""When a recurring master's series ends, as the mirror stores it (``series_end_at``): the
end of its last occurrence, so that a window reads a series whose long last occurrence
reaches into it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from chronapilot.common.models.event import series_end
from chronapilot.common.providers.sync import EventData, EventTime

FIRST = datetime(2026, 2, 27, 8, tzinfo=UTC)


def master(start: EventTime, end: EventTime, *recurrence: str) -> EventData:
    return EventData(
        provider_event_id="m",
        ical_uid=None,
        title="m",
        description=None,
        location=None,
        start=start,
        end=end,
        all_day=start.date is not None,
        status="confirmed",
        recurrence=recurrence,
        recurring_event_id=None,
        original_start=None,
        organizer=None,
        attendees=(),
        etag=None,
        updated_at=None,
        raw={},
    )


def timed(value: datetime) -> EventTime:
    return EventTime(value, None, "UTC")


@pytest.mark.parametrize("length", [timedelta(minutes=30), timedelta(days=14)])
def test_a_bounded_series_ends_when_its_last_occurrence_ends(length):
    series = master(timed(FIRST), timed(FIRST + length), "RRULE:FREQ=WEEKLY;COUNT=3")
    assert series_end(series) == FIRST + timedelta(weeks=2) + length


def test_an_all_day_series_ends_at_midnight_after_its_last_dates():
    series = master(
        EventTime(None, date(2026, 3, 2), None),
        EventTime(None, date(2026, 3, 4), None),
        "RRULE:FREQ=DAILY;COUNT=2",
    )
    assert series_end(series) == datetime(2026, 3, 5, tzinfo=UTC)


def test_a_series_without_count_or_until_never_ends():
    assert series_end(master(timed(FIRST), timed(FIRST + timedelta(hours=1)), "RRULE:FREQ=WEEKLY")) is None
