"""The Graph JSON Microsoft write-back sends: RRULEs as ``patternedRecurrence``, times in their zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from chronapilot.common.providers.microsoft.writes import event_body, graph_recurrence, rrule_of
from chronapilot.common.providers.sync import EventTime
from chronapilot.common.providers.writes import EventDraft, WriteRefused

# Monday 2026-03-02 09:30 in Kolkata
START = EventTime(datetime(2026, 3, 2, 4, 0, tzinfo=UTC), None, "Asia/Kolkata")


@pytest.mark.parametrize(
    ("rule", "pattern", "span"),
    [
        (
            "RRULE:FREQ=DAILY;INTERVAL=2;COUNT=5",
            {"type": "daily", "interval": 2},
            {"type": "numbered", "numberOfOccurrences": 5},
        ),
        (
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260331T183000Z",
            {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
            {"type": "endDate", "endDate": "2026-03-31"},
        ),
        ("RRULE:FREQ=WEEKLY", {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]}, {"type": "noEnd"}),
        (
            "RRULE:FREQ=MONTHLY;BYMONTHDAY=15",
            {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
            {"type": "noEnd"},
        ),
        (
            "RRULE:FREQ=MONTHLY;BYDAY=2TU",
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"},
            {"type": "noEnd"},
        ),
        (
            "RRULE:FREQ=MONTHLY;BYDAY=FR;BYSETPOS=-1;COUNT=3",
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
            {"type": "numbered", "numberOfOccurrences": 3},
        ),
        (
            "RRULE:FREQ=YEARLY",
            {"type": "absoluteYearly", "interval": 1, "month": 3, "dayOfMonth": 2},
            {"type": "noEnd"},
        ),
    ],
)
def test_rules_graph_can_store(rule: str, pattern: dict[str, Any], span: dict[str, Any]) -> None:
    written = graph_recurrence((rule,), START)

    assert written["pattern"] == {"firstDayOfWeek": "monday", **pattern}
    assert written["range"] == {"startDate": "2026-03-02", "recurrenceTimeZone": "Asia/Kolkata", **span}


@pytest.mark.parametrize(
    "lines",
    [
        ("RRULE:FREQ=MINUTELY",),
        ("RRULE:FREQ=DAILY;COUNT=2;UNTIL=20260401",),
        ("RRULE:FREQ=DAILY", "RRULE:FREQ=WEEKLY"),
        ("RRULE:FREQ=DAILY", "RDATE:20260310T040000Z"),
        ("RRULE:FREQ=MONTHLY;BYDAY=1MO,3WE",),
        ("RRULE:FREQ=WEEKLY;BYDAY=1MO",),
        ("RRULE:FREQ=DAILY;BYWEEKNO=3",),
        ("RRULE:FREQ=DAILY;INTERVAL=0",),
    ],
)
def test_rules_graph_cannot_store_are_refused_as_invalid(lines: tuple[str, ...]) -> None:
    with pytest.raises(WriteRefused) as refused:
        graph_recurrence(lines, START)

    assert refused.value.reason == "invalid"


@pytest.mark.parametrize(
    "rule",
    [
        "RRULE:FREQ=DAILY;INTERVAL=2;COUNT=5",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260401",
        "RRULE:FREQ=MONTHLY;BYDAY=-1FR",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=2",
    ],
)
def test_graphs_pattern_reads_back_as_the_rule(rule: str) -> None:
    assert rrule_of(graph_recurrence((rule,), START)) == (rule,)


def test_a_timed_event_is_its_wall_time_in_its_zone_and_an_all_day_one_is_midnight() -> None:
    timed = event_body(EventDraft(start=START, end=START))
    all_day = event_body(
        EventDraft(start=EventTime(None, date(2026, 3, 5), None), end=EventTime(None, date(2026, 3, 6), None))
    )

    assert timed["start"] == {"dateTime": "2026-03-02T09:30:00", "timeZone": "Asia/Kolkata"}
    assert timed["isAllDay"] is False and timed["recurrence"] is None
    assert all_day["start"] == {"dateTime": "2026-03-05T00:00:00", "timeZone": "UTC"}
    assert all_day["end"] == {"dateTime": "2026-03-06T00:00:00", "timeZone": "UTC"}
    assert all_day["isAllDay"] is True


def test_a_patch_names_only_its_fields() -> None:
    assert event_body(EventDraft(title="New", fields=frozenset({"title"}))) == {"subject": "New"}
