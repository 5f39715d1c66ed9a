"""Windows near the ends of the calendar: the API's query models refuse instants outside the
supported years (after conversion to UTC) with a 400 naming the parameter, and the pure
functions behind them refuse such windows instead of overflowing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from chronapilot.api.errors import from_validation
from chronapilot.api.schemas import FreeBusyQuery, ListEventsQuery
from chronapilot.common.errors import InvalidRequest
from chronapilot.common.free_busy import Interval, occurrences_around
from chronapilot.common.occurrences import EARLIEST, LATEST, expand

CALENDAR = "cal_" + "0" * 26
FAR = [
    ("0001-01-01T00:00:00Z", "0001-06-01T00:00:00Z"),
    ("0001-01-01T00:00:00+01:00", "0001-06-01T00:00:00Z"),  # before year 1 once in UTC
    ("9999-06-01T00:00:00Z", "9999-12-31T23:59:59-01:00"),  # after 9999 once in UTC
    ("1899-12-31T23:00:00Z", "1900-01-02T00:00:00Z"),
    ("2199-12-31T00:00:00Z", "2200-01-01T00:00:01Z"),
]


def refused(model, query: dict[str, str]) -> tuple[str, str | None]:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(query)
    error = from_validation(raised.value, location="query")
    return error.code, error.param


@pytest.mark.parametrize(("start", "end"), FAR)
@pytest.mark.parametrize("expand_recurring", ["true", "false"])
def test_event_windows_outside_the_supported_years_are_refused(start, end, expand_recurring):
    query = {"calendar_id": CALENDAR, "start": start, "end": end, "expand_recurring": expand_recurring}
    code, param = refused(ListEventsQuery, query)
    assert code == "parameter_invalid"
    assert param in ("start", "end")


@pytest.mark.parametrize(("start", "end"), FAR)
def test_free_busy_windows_outside_the_supported_years_are_refused(start, end):
    code, param = refused(FreeBusyQuery, {"start": start, "end": end})
    assert code == "parameter_invalid"
    assert param in ("start", "end")


def test_updated_since_outside_the_supported_years_is_refused():
    query = {"calendar_id": CALENDAR, "updated_since": "0001-01-01T00:00:00+01:00"}
    assert refused(ListEventsQuery, query) == ("parameter_invalid", "updated_since")


def test_instants_at_the_bounds_are_accepted_and_read_in_utc():
    query = ListEventsQuery.model_validate(
        {"calendar_id": CALENDAR, "start": "1900-01-01T01:00:00+01:00", "end": "2200-01-01T00:00:00"}
    )
    assert (query.start, query.end) == (EARLIEST, LATEST)
    free_busy = FreeBusyQuery.model_validate(
        {"start": "2026-03-01T09:00:00+01:00", "end": "2200-01-01T00:00:00Z"}
    )
    assert free_busy.start == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert free_busy.start.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), datetime(1, 6, 1, tzinfo=UTC)),
        (datetime(9999, 6, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)),
        (datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), datetime(1, 6, 1, tzinfo=UTC)),
    ],
)
def test_expanding_a_window_near_the_ends_of_the_calendar_is_refused_not_overflowed(start, end):
    first = datetime(2026, 3, 2, 9, tzinfo=UTC)
    yearly = {
        "_id": "evt_y",
        "connection_id": "con_1",
        "provider_calendar_id": "cal-1",
        "provider_event_id": "y",
        "start": {"date_time": first, "date": None, "timezone": "Europe/Berlin"},
        "end": {"date_time": first + timedelta(hours=1), "date": None, "timezone": "Europe/Berlin"},
        "start_at": first,
        "end_at": first + timedelta(hours=1),
        "recurrence": ["RRULE:FREQ=YEARLY"],
    }
    with pytest.raises(InvalidRequest):
        expand([yearly], start, end)


def test_free_busy_at_the_supported_bounds_reads_nothing_beyond_them():
    assert occurrences_around([], Interval(EARLIEST, EARLIEST + timedelta(days=1))) == []
    assert occurrences_around([], Interval(LATEST - timedelta(days=1), LATEST)) == []
