"""The occurrences of stored events in a window (chronapilot.common.occurrences.expand): series
recur in their own zone across DST, odd offsets and floating times are exact, exceptions take
the place (and the id) of the instance they replace, cancelled instances and EXDATEs are left
out, RDATEs added, COUNT and UNTIL end a series, the window's bounds are half-open.

Documents are built as the mirror stores them (``models/event.py``): times as
``{date_time (UTC), date, timezone}`` with ``start_at``/``end_at``; dates are fixed (2026's DST
changes: EU 29 March and 25 October, US 8 March and 1 November)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chronapilot.common.errors import InvalidRequest
from chronapilot.common.occurrences import MAX_OCCURRENCES, TooManyOccurrences, expand, occurrence_slot

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def at(wall: datetime, zone: str) -> datetime:
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def timed(instant: datetime, zone: str | None) -> dict[str, Any]:
    return {"date_time": instant, "date": None, "timezone": zone}


def day(value: date) -> dict[str, Any]:
    return {"date_time": None, "date": value.isoformat(), "timezone": None}


def instant_of(value: dict[str, Any]) -> datetime:
    if value["date_time"] is not None:
        return value["date_time"]
    return datetime.combine(date.fromisoformat(value["date"]), time(0), tzinfo=UTC)


def stored(
    event_id: str,
    start: dict[str, Any],
    end: dict[str, Any],
    *,
    recurrence: tuple[str, ...] = (),
    master: str | None = None,
    original: dict[str, Any] | None = None,
    status: str = "confirmed",
    raw: Any = None,
) -> dict[str, Any]:
    """A mirrored event; ``event_id`` is its provider id, ``evt_<event_id>`` its evt_ id."""
    return {
        "_id": f"evt_{event_id}",
        "connection_id": "con_1",
        "provider_calendar_id": "cal-1",
        "calendar_id": "cal_1",
        "provider_event_id": event_id,
        "start": start,
        "end": end,
        "start_at": instant_of(start),
        "end_at": instant_of(end),
        "all_day": start["date"] is not None,
        "status": status,
        "recurrence": list(recurrence),
        "recurring_event_id": master,
        "original_start": original,
        "deleted": False,
        "raw": raw,
    }


def weekly(event_id: str, first_wall: datetime, zone: str, minutes: int, *rules: str) -> dict[str, Any]:
    start = at(first_wall, zone)
    return stored(
        event_id,
        timed(start, zone),
        timed(start + timedelta(minutes=minutes), zone),
        recurrence=rules or ("RRULE:FREQ=WEEKLY",),
    )


def window(first: date, last: date) -> tuple[datetime, datetime]:
    return datetime.combine(first, time(0), tzinfo=UTC), datetime.combine(last, time(0), tzinfo=UTC)


def walls(occurrences, zone: str) -> list[datetime]:
    return [o.start_at.astimezone(ZoneInfo(zone)).replace(tzinfo=None) for o in occurrences]


# -- time zones ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "first", "changes"),
    [
        (BERLIN, date(2026, 3, 16), (date(2026, 3, 29), date(2026, 10, 25))),
        (NEW_YORK, date(2026, 2, 23), (date(2026, 3, 8), date(2026, 11, 1))),
    ],
)
def test_a_weekly_series_keeps_its_local_hour_across_both_dst_changes(zone, first, changes):
    series = weekly("s", datetime.combine(first, time(9, 0)), zone, 45)
    found = expand([series], *window(first, date(2026, 12, 1)))
    weeks = (date(2026, 12, 1) - first).days // 7 + 1
    assert len(found) == weeks
    assert all(wall.time() == time(9, 0) for wall in walls(found, zone))
    assert all(o.end_at - o.start_at == timedelta(minutes=45) for o in found)
    offsets = {o.start_at.astimezone(ZoneInfo(zone)).utcoffset() for o in found}
    assert len(offsets) == 2  # standard and summer time: the UTC hour moved, the local one did not
    spring, autumn = changes
    before = next(
        o for o in found if o.start_at.date() < spring and o.start_at.date() > spring - timedelta(7)
    )
    after = next(o for o in found if o.start_at.date() > spring and o.start_at.date() < spring + timedelta(7))
    assert after.start_at - before.start_at == timedelta(days=7) - timedelta(hours=1)
    before = next(o for o in found if autumn - timedelta(7) < o.start_at.date() < autumn)
    after = next(o for o in found if autumn < o.start_at.date() < autumn + timedelta(7))
    assert after.start_at - before.start_at == timedelta(days=7) + timedelta(hours=1)
    assert found[0].start == timed(at(datetime.combine(first, time(9)), zone), zone)


def test_an_instance_in_the_spring_gap_starts_after_it_and_keeps_its_exact_duration():
    """02:30 does not exist in Berlin on 29 March 2026: the instance starts at 03:30 CEST
    (01:30Z, as Google shows it) and, as RFC 5545 3.8.5.3 wants of a DTEND, lasts the
    master's exact hour: to 04:30 CEST, not a zero-length 03:30-03:30."""
    first = at(datetime(2026, 3, 27, 2, 30), BERLIN)
    series = stored(
        "g",
        timed(first, BERLIN),
        timed(first + timedelta(hours=1), BERLIN),
        recurrence=("RRULE:FREQ=DAILY;COUNT=5",),
    )
    found = expand([series], *window(date(2026, 3, 20), date(2026, 4, 5)))
    assert len(found) == 5
    assert all(o.end_at - o.start_at == timedelta(hours=1) for o in found)
    gap = next(o for o in found if o.start_at.date() == date(2026, 3, 29))
    assert (gap.start_at, gap.end_at) == (
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 2, 30, tzinfo=UTC),
    )
    assert gap.end["date_time"] == gap.end_at


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK])
def test_a_series_across_a_dst_night_keeps_its_exact_duration(zone):
    """23:00 to 05:00: six hours every night, the nights of both changes included (so those
    instances end at 06:00 and 04:00 local)."""
    first = at(datetime(2026, 3, 1, 23), zone)
    series = stored(
        "n", timed(first, zone), timed(first + timedelta(hours=6), zone), recurrence=("RRULE:FREQ=DAILY",)
    )
    found = expand([series], *window(date(2026, 3, 1), date(2026, 12, 1)))
    assert all(o.end_at - o.start_at == timedelta(hours=6) for o in found)
    assert {o.start_at.astimezone(ZoneInfo(zone)).time() for o in found} == {time(23)}


def test_an_rdate_period_keeps_its_own_duration():
    first = at(datetime(2026, 3, 16, 9), BERLIN)
    series = stored(
        "p",
        timed(first, BERLIN),
        timed(first + timedelta(hours=1), BERLIN),
        recurrence=("RRULE:FREQ=DAILY;COUNT=1", "RDATE;VALUE=PERIOD:20260328T230000Z/20260329T030000Z"),
    )
    found = expand([series], *window(date(2026, 3, 1), date(2026, 4, 1)))
    assert [(o.start_at, o.end_at) for o in found] == [
        (first, first + timedelta(hours=1)),
        (datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 3, tzinfo=UTC)),
    ]


@pytest.mark.parametrize(
    ("zone", "local_time", "utc_time"),
    [
        ("Asia/Kolkata", time(9, 30), time(4, 0)),  # +05:30
        ("Asia/Kathmandu", time(9, 0), time(3, 15)),  # +05:45
        ("Australia/Eucla", time(9, 0), time(0, 15)),  # +08:45
    ],
)
def test_half_and_three_quarter_hour_offsets_are_exact(zone, local_time, utc_time):
    series = weekly("s", datetime.combine(date(2026, 3, 2), local_time), zone, 30)
    found = expand([series], *window(date(2026, 3, 1), date(2026, 5, 1)))
    assert len(found) == 9
    assert {o.start_at.time() for o in found} == {utc_time}
    assert {o.start["timezone"] for o in found} == {zone}


def test_a_floating_series_recurs_at_its_wall_time_read_as_utc():
    """CalDAV's DTSTART without TZID: the mirror keeps the wall time as if UTC, zone None."""
    start = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)
    series = stored(
        "f",
        timed(start, None),
        timed(start + timedelta(hours=1), None),
        recurrence=("RRULE:FREQ=DAILY;COUNT=10", "EXDATE:20260325T090000"),
    )
    found = expand([series], *window(date(2026, 3, 1), date(2026, 4, 30)))
    assert [o.start_at for o in found] == [start + timedelta(days=n) for n in range(10) if n != 2]
    assert {o.start["timezone"] for o in found} == {None}
    assert found[0].id == "evt_f_20260323T090000Z"


def test_a_floating_series_from_the_caldav_resource_gives_the_same_occurrences():
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART:20260323T090000\r\nDTEND:20260323T100000\r\n"
        "RRULE:FREQ=DAILY;COUNT=10\r\nEXDATE:20260325T090000\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    start = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)
    from_fields = stored(
        "f",
        timed(start, None),
        timed(start + timedelta(hours=1), None),
        recurrence=("RRULE:FREQ=DAILY;COUNT=10", "EXDATE:20260325T090000"),
    )
    from_resource = {**from_fields, "ical_uid": "u1", "recurrence": ["RRULE:FREQ=DAILY"], "raw": {"ics": ics}}
    span = window(date(2026, 3, 1), date(2026, 4, 30))
    assert [(o.id, o.start_at, o.end_at) for o in expand([from_resource], *span)] == [
        (o.id, o.start_at, o.end_at) for o in expand([from_fields], *span)
    ]


def test_a_caldav_resource_with_its_own_vtimezone_recurs_in_that_zone():
    """A custom TZID (no IANA name to map) is resolved from the resource's VTIMEZONE."""
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VTIMEZONE\r\nTZID:Custom Berlin\r\n"
        "BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
        "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\n"
        "BEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
        "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
        "BEGIN:VEVENT\r\nUID:u2\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;TZID=Custom Berlin:20260323T090000\r\nDTEND;TZID=Custom Berlin:20260323T100000\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    start = at(datetime(2026, 3, 23, 9), BERLIN)
    master = stored(
        "/cal/u2.ics",
        timed(start, None),  # the parser found no IANA name for the custom zone
        timed(start + timedelta(hours=1), None),
        recurrence=("RRULE:FREQ=WEEKLY;COUNT=3",),
        raw={"href": "/cal/u2.ics", "etag": "e", "ics": ics},
    )
    master["ical_uid"] = "u2"
    found = expand([master], *window(date(2026, 3, 1), date(2026, 4, 30)))
    assert [o.start_at for o in found] == [
        at(datetime(2026, 3, 23, 9) + timedelta(weeks=n), BERLIN) for n in range(3)
    ]


def test_a_truncated_resource_falls_back_to_the_stored_fields():
    series = weekly("s", datetime(2026, 3, 16, 9), BERLIN, 30, "RRULE:FREQ=WEEKLY;COUNT=4")
    series["raw"] = {"_truncated": True, "_size": 40000, "head": "{...}"}
    found = expand([series], *window(date(2026, 3, 1), date(2026, 5, 1)))
    assert walls(found, BERLIN) == [datetime(2026, 3, 16 + 7 * n, 9) for n in range(3)] + [
        datetime(2026, 4, 6, 9)
    ]


# -- all-day ------------------------------------------------------------------------------------


def test_an_all_day_series_gives_dates_placed_at_midnight_utc():
    series = stored(
        "a",
        day(date(2026, 3, 27)),
        day(date(2026, 3, 29)),
        recurrence=("RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE;VALUE=DATE:20260403"),
    )
    found = expand([series], *window(date(2026, 3, 1), date(2026, 5, 1)))
    assert [(o.start, o.end) for o in found] == [
        (day(date(2026, 3, 27)), day(date(2026, 3, 29))),
        (day(date(2026, 4, 10)), day(date(2026, 4, 12))),
    ]
    assert [o.id for o in found] == ["evt_a_20260327", "evt_a_20260410"]
    assert found[0].start_at == datetime(2026, 3, 27, tzinfo=UTC)
    assert found[0].end_at == datetime(2026, 3, 29, tzinfo=UTC)


def test_an_all_day_instance_moved_or_cancelled_is_matched_by_its_date():
    series = stored(
        "a", day(date(2026, 3, 2)), day(date(2026, 3, 3)), recurrence=("RRULE:FREQ=DAILY;COUNT=5",)
    )
    moved = stored(
        "a_20260303",
        day(date(2026, 3, 10)),
        day(date(2026, 3, 11)),
        master="a",
        original=day(date(2026, 3, 3)),
    )
    cancelled = stored(
        "a_20260305",
        day(date(2026, 3, 5)),
        day(date(2026, 3, 6)),
        master="a",
        original=day(date(2026, 3, 5)),
        status="cancelled",
    )
    found = expand([series, moved, cancelled], *window(date(2026, 3, 1), date(2026, 4, 1)))
    assert [(o.id, o.start["date"]) for o in found] == [
        ("evt_a_20260302", "2026-03-02"),
        ("evt_a_20260304", "2026-03-04"),
        ("evt_a_20260306", "2026-03-06"),
        ("evt_a_20260303", "2026-03-10"),
    ]


def test_an_all_day_instance_overridden_with_a_date_time_recurrence_id_is_matched_by_its_date():
    """RFC 5545 wants RECURRENCE-ID of DTSTART's type; some clients write a DATE-TIME for an
    all-day series (in a zone, floating or UTC): the date it names locally is the slot."""
    series = stored(
        "a", day(date(2026, 3, 2)), day(date(2026, 3, 3)), recurrence=("RRULE:FREQ=DAILY;COUNT=5",)
    )
    moved = stored(  # RECURRENCE-ID;TZID=Europe/Berlin:20260303T000000 (2 March 23:00Z)
        "a-0303",
        day(date(2026, 3, 10)),
        day(date(2026, 3, 11)),
        master="a",
        original=timed(at(datetime(2026, 3, 3), BERLIN), BERLIN),
    )
    cancelled = stored(  # RECURRENCE-ID:20260304T000000 (floating)
        "a-0304",
        day(date(2026, 3, 4)),
        day(date(2026, 3, 5)),
        master="a",
        original=timed(datetime(2026, 3, 4, tzinfo=UTC), None),
        status="cancelled",
    )
    utc = stored(  # RECURRENCE-ID:20260305T000000Z
        "a-0305",
        day(date(2026, 3, 5)),
        day(date(2026, 3, 6)),
        master="a",
        original=timed(datetime(2026, 3, 5, tzinfo=UTC), "UTC"),
    )
    found = expand([series, moved, cancelled, utc], *window(date(2026, 3, 1), date(2026, 4, 1)))
    assert [(o.id, o.start["date"], o.source["_id"]) for o in found] == [
        ("evt_a_20260302", "2026-03-02", "evt_a"),
        ("evt_a_20260305", "2026-03-05", "evt_a-0305"),
        ("evt_a_20260306", "2026-03-06", "evt_a"),
        ("evt_a_20260303", "2026-03-10", "evt_a-0303"),
    ]


def test_a_floating_instance_overridden_with_a_zoned_recurrence_id_is_matched_by_its_wall_time():
    """A floating series (09:00 wall time) whose override names its slot with a TZID
    (RECURRENCE-ID;TZID=Europe/Berlin:20260324T090000): the slot is 24 March 09:00."""
    first = datetime(2026, 3, 23, 9, tzinfo=UTC)  # the wall time, read as UTC
    series = stored(
        "f",
        timed(first, None),
        timed(first + timedelta(hours=1), None),
        recurrence=("RRULE:FREQ=DAILY;COUNT=3",),
    )
    noon = datetime(2026, 3, 24, 12, tzinfo=UTC)
    moved = stored(
        "f-0324",
        timed(noon, None),
        timed(noon + timedelta(hours=1), None),
        master="f",
        original=timed(at(datetime(2026, 3, 24, 9), BERLIN), BERLIN),
    )
    found = expand([series, moved], *window(date(2026, 3, 1), date(2026, 4, 1)))
    assert [(o.id, o.start_at, o.source["_id"]) for o in found] == [
        ("evt_f_20260323T090000Z", first, "evt_f"),
        ("evt_f_20260324T090000Z", noon, "evt_f-0324"),
        ("evt_f_20260325T090000Z", first + timedelta(days=2), "evt_f"),
    ]


def test_a_two_day_all_day_event_overlaps_a_window_starting_on_its_second_day():
    single = stored("d", day(date(2026, 4, 9)), day(date(2026, 4, 11)))
    assert [o.id for o in expand([single], *window(date(2026, 4, 10), date(2026, 4, 12)))] == ["evt_d"]
    assert expand([single], *window(date(2026, 4, 11), date(2026, 4, 12))) == []


# -- RDATE, EXDATE, COUNT, UNTIL ----------------------------------------------------------------


def test_rdates_are_added_and_exdates_left_out_in_either_form():
    series = weekly(
        "s",
        datetime(2026, 3, 2, 9),
        BERLIN,
        30,
        "RRULE:FREQ=WEEKLY;COUNT=5",
        "EXDATE;TZID=Europe/Berlin:20260309T090000",
        f"EXDATE:{at(datetime(2026, 3, 23, 9), BERLIN):%Y%m%dT%H%M%SZ}",
        "RDATE;TZID=Europe/Berlin:20260311T140000,20260401T090000",
    )
    found = expand([series], *window(date(2026, 3, 1), date(2026, 5, 1)))
    assert walls(found, BERLIN) == [
        datetime(2026, 3, 2, 9),
        datetime(2026, 3, 11, 14),
        datetime(2026, 3, 16, 9),
        datetime(2026, 3, 30, 9),
        datetime(2026, 4, 1, 9),
    ]
    assert all(o.end_at - o.start_at == timedelta(minutes=30) for o in found)


def test_count_and_until_end_a_series():
    counted = weekly("c", datetime(2026, 3, 2, 9), BERLIN, 30, "RRULE:FREQ=WEEKLY;COUNT=3")
    until = at(datetime(2026, 3, 30, 9), BERLIN)  # inclusive: the 30 March occurrence is the last
    bounded = weekly(
        "u", datetime(2026, 3, 2, 10), BERLIN, 30, f"RRULE:FREQ=WEEKLY;UNTIL={until:%Y%m%dT%H%M%SZ}"
    )
    found = expand([counted, bounded], *window(date(2026, 1, 1), date(2026, 12, 31)))
    assert [o.id for o in found if o.source is counted] == [
        "evt_c_20260302T080000Z",
        "evt_c_20260309T080000Z",
        "evt_c_20260316T080000Z",
    ]
    assert walls([o for o in found if o.source is bounded], BERLIN) == [
        datetime(2026, 3, 2, 10),
        datetime(2026, 3, 9, 10),
        datetime(2026, 3, 16, 10),
        datetime(2026, 3, 23, 10),
    ]  # 30 March 10:00 is after UNTIL (09:00 local)


# -- exceptions ---------------------------------------------------------------------------------


def google_series() -> dict[str, Any]:
    """Mondays 09:00 Berlin from 2 March 2026, eight of them (across 29 March)."""
    return weekly("g1", datetime(2026, 3, 2, 9), BERLIN, 30, "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=8")


def exception(
    original_wall: datetime, new_wall: datetime | None, *, status: str = "confirmed"
) -> dict[str, Any]:
    original = at(original_wall, BERLIN)
    new = at(new_wall or original_wall, BERLIN)
    return stored(
        f"g1_{original:%Y%m%dT%H%M%SZ}",
        timed(new, BERLIN),
        timed(new + timedelta(minutes=30), BERLIN),
        master="g1",
        original=timed(original, BERLIN),
        status=status,
    )


def test_a_moved_instance_appears_at_its_new_time_with_the_id_of_the_slot_it_replaces():
    master = google_series()
    moved = exception(datetime(2026, 3, 16, 9), datetime(2026, 3, 17, 11))
    found = expand([master, moved], *window(date(2026, 3, 1), date(2026, 5, 1)))
    assert len(found) == 8
    replaced = next(o for o in found if o.source is moved)
    assert replaced.id == "evt_g1_20260316T080000Z"
    assert replaced.start_at == at(datetime(2026, 3, 17, 11), BERLIN)
    assert replaced.original_start == timed(at(datetime(2026, 3, 16, 9), BERLIN), BERLIN)
    assert replaced.recurring_event_id == "g1"
    assert at(datetime(2026, 3, 16, 9), BERLIN) not in [o.start_at for o in found]
    assert [o.start_at for o in found] == sorted(o.start_at for o in found)


def test_an_instance_moved_into_the_window_appears_and_one_moved_out_does_not():
    master = google_series()
    into = exception(datetime(2026, 4, 13, 9), datetime(2026, 3, 18, 9))  # from after the window
    out = exception(datetime(2026, 3, 16, 9), datetime(2026, 5, 20, 9))  # to after the window
    found = expand([master, into, out], *window(date(2026, 3, 15), date(2026, 3, 22)))
    assert [(o.id, o.start_at) for o in found] == [
        ("evt_g1_20260413T070000Z", at(datetime(2026, 3, 18, 9), BERLIN)),
    ]


def test_a_cancelled_instance_is_left_out():
    master = google_series()
    cancelled = exception(datetime(2026, 4, 6, 9), None, status="cancelled")
    found = expand([master, cancelled], *window(date(2026, 3, 1), date(2026, 5, 1)))
    assert len(found) == 7
    assert "evt_g1_20260406T070000Z" not in [o.id for o in found]


def test_ids_are_the_same_whatever_the_window():
    docs = [google_series(), exception(datetime(2026, 3, 16, 9), datetime(2026, 3, 17, 11))]
    whole = {o.start_at: o.id for o in expand(docs, *window(date(2026, 3, 1), date(2026, 5, 1)))}
    for first in (date(2026, 3, 10), date(2026, 3, 17), date(2026, 4, 1)):
        part = expand(docs, *window(first, first + timedelta(days=12)))
        assert part and all(whole[o.start_at] == o.id for o in part)


def test_instances_of_a_series_whose_master_is_not_mirrored_are_listed_as_stored():
    """Microsoft: occurrences and exceptions already expanded, each its own stored event."""
    first = at(datetime(2026, 3, 23, 9), BERLIN)
    occurrences = [
        stored(
            f"AAMk{n}",
            timed(first + timedelta(days=7 * n), BERLIN),
            timed(first + timedelta(days=7 * n, minutes=30), BERLIN),
            master="AAMkMaster",
            original=timed(first + timedelta(days=7 * n), BERLIN),
            status="cancelled" if n == 2 else "confirmed",
        )
        for n in range(4)
    ]
    found = expand(occurrences, *window(date(2026, 3, 1), date(2026, 5, 1)))
    assert [o.id for o in found] == ["evt_AAMk0", "evt_AAMk1", "evt_AAMk3"]
    assert {o.recurring_event_id for o in found} == {"AAMkMaster"}


def test_single_events_keep_their_evt_id_and_deleted_ones_are_ignored():
    start = datetime(2026, 3, 10, 12, tzinfo=UTC)
    single = stored("x", timed(start, "UTC"), timed(start + timedelta(hours=1), "UTC"))
    gone = {**stored("y", timed(start, "UTC"), timed(start + timedelta(hours=1), "UTC")), "deleted": True}
    found = expand([single, gone], *window(date(2026, 3, 1), date(2026, 4, 1)))
    assert [(o.id, o.original_start, o.recurring_event_id) for o in found] == [("evt_x", None, None)]


# -- the window ---------------------------------------------------------------------------------


def test_the_window_is_half_open():
    """Ending at the window's start: out; starting at its start: in; starting at its end: out;
    started before and still running at its start: in."""
    series = stored(
        "h",
        timed(datetime(2026, 3, 2, 8, tzinfo=UTC), "UTC"),
        timed(datetime(2026, 3, 2, 9, tzinfo=UTC), "UTC"),
        recurrence=("RRULE:FREQ=HOURLY;COUNT=6",),
    )
    start, end = datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)
    found = expand([series], start, end)
    assert [o.start_at.hour for o in found] == [10, 11]
    long = stored(
        "l",
        timed(datetime(2026, 3, 2, 9, 30, tzinfo=UTC), "UTC"),
        timed(datetime(2026, 3, 2, 10, 30, tzinfo=UTC), "UTC"),
    )
    instant = stored("i", timed(start, "UTC"), timed(start, "UTC"))
    assert [o.id for o in expand([long, instant], start, end)] == ["evt_l", "evt_i"]
    assert [o.id for o in expand([instant], start - timedelta(hours=1), start)] == []


def test_occurrences_are_sorted_by_start_then_id():
    start = datetime(2026, 3, 10, 12, tzinfo=UTC)
    docs = [stored(n, timed(start, "UTC"), timed(start + timedelta(hours=1), "UTC")) for n in ("b", "a")]
    docs.append(stored("c", timed(start - timedelta(hours=1), "UTC"), timed(start, "UTC")))
    assert [o.id for o in expand(docs, *window(date(2026, 3, 1), date(2026, 4, 1)))] == [
        "evt_c",
        "evt_a",
        "evt_b",
    ]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)),
        (datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 3, tzinfo=UTC)),
        (datetime(2026, 1, 1), datetime(2026, 2, 1)),
    ],
)
def test_an_empty_reversed_too_long_or_naive_window_is_refused(start, end):
    with pytest.raises(InvalidRequest):
        expand([], start, end)


def test_a_window_with_too_many_occurrences_is_refused():
    start = datetime(2026, 3, 2, tzinfo=UTC)
    series = stored(
        "m",
        timed(start, "UTC"),
        timed(start + timedelta(minutes=1), "UTC"),
        recurrence=("RRULE:FREQ=MINUTELY;INTERVAL=5",),
    )
    with pytest.raises(TooManyOccurrences):
        expand([series], start, start + timedelta(days=5 * MAX_OCCURRENCES // (24 * 60) + 2))
    assert len(expand([series], start, start + timedelta(days=1))) == 24 * 12


def test_a_rule_too_dense_to_walk_is_refused_before_walking_it():
    start = datetime(2020, 1, 1, tzinfo=UTC)
    series = stored(
        "s", timed(start, "UTC"), timed(start, "UTC"), recurrence=("RRULE:FREQ=SECONDLY;BYSECOND=0",)
    )
    with pytest.raises(TooManyOccurrences):
        expand([series], datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))


FIVE_MINUTES = (datetime(2026, 3, 16, tzinfo=UTC), datetime(2026, 3, 16, 0, 5, tzinfo=UTC))


@pytest.mark.timeout(10)  # walked, each of these would take seconds to minutes
@pytest.mark.parametrize(
    "rule",
    [
        "RRULE:FREQ=MINUTELY;COUNT=100000000",
        "RRULE:FREQ=SECONDLY;COUNT=100000000;BYSECOND=0",
        "RRULE:FREQ=DAILY;BYHOUR="
        + ",".join(map(str, range(24)))
        + ";BYMINUTE="
        + ",".join(map(str, range(60))),
        "RRULE:FREQ=HOURLY;INTERVAL=1;UNTIL=20260401T000000Z",
    ],
)
def test_a_dense_rule_is_refused_before_walking_it_whatever_its_count_or_until(rule):
    start = datetime(2025, 3, 16, 8, tzinfo=UTC)  # a year before the window
    series = stored(
        "d", timed(start, BERLIN), timed(start + timedelta(minutes=1), BERLIN), recurrence=(rule,)
    )
    if "HOURLY" in rule:  # hourly: a year is 8,760 steps; from 1990, more than the bound
        series = {**series, "start": timed(datetime(1990, 1, 1, tzinfo=UTC), BERLIN)}
    with pytest.raises(TooManyOccurrences):
        expand([series], *FIVE_MINUTES)


def test_a_dense_rule_whose_count_ends_it_early_or_that_starts_near_the_window_is_expanded():
    near = FIVE_MINUTES[0] - timedelta(hours=1)
    long_ago = datetime(2025, 3, 16, 8, tzinfo=UTC)
    ended = stored(
        "e", timed(long_ago, "UTC"), timed(long_ago, "UTC"), recurrence=("RRULE:FREQ=MINUTELY;COUNT=10",)
    )
    recent = stored(
        "r", timed(near, "UTC"), timed(near, "UTC"), recurrence=("RRULE:FREQ=MINUTELY;COUNT=100000000",)
    )
    assert [o.start_at for o in expand([ended, recent], *FIVE_MINUTES)] == [
        FIVE_MINUTES[0] + timedelta(minutes=n) for n in range(5)
    ]


def test_the_steps_of_every_series_count_towards_one_bound():
    """Each series alone is fine (a minute-by-minute series over 80 days: 115,200 steps);
    two of them are more than one expansion may walk."""
    first = FIVE_MINUTES[0] - timedelta(days=80)
    series = [
        stored(name, timed(first, "UTC"), timed(first, "UTC"), recurrence=("RRULE:FREQ=MINUTELY",))
        for name in ("a", "b")
    ]
    assert len(expand(series[:1], *FIVE_MINUTES)) == 5
    with pytest.raises(TooManyOccurrences):
        expand(series, *FIVE_MINUTES)


@pytest.mark.parametrize(
    "rule", ["RRULE:FREQ=MINUTELY", "RRULE:FREQ=HOURLY;COUNT=48", "RRULE:FREQ=DAILY;BYHOUR=9,17"]
)
def test_an_all_day_series_recurring_more_than_once_a_day_is_one_occurrence_as_stored(rule):
    series = stored("a", day(date(2026, 3, 16)), day(date(2026, 3, 17)), recurrence=(rule,))
    found = expand([series], *window(date(2026, 3, 1), date(2026, 4, 1)))
    assert [(o.id, o.start) for o in found] == [("evt_a", day(date(2026, 3, 16)))]


def test_a_master_whose_rule_does_not_parse_is_one_occurrence_as_stored():
    series = weekly("b", datetime(2026, 3, 2, 9), BERLIN, 30, "RRULE:FREQ=FORTNIGHTLY")
    found = expand([series], *window(date(2026, 3, 1), date(2026, 4, 1)))
    assert [o.id for o in found] == ["evt_b"]


# -- where an occurrence id sorts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("occurrence_id", "slot"),
    [
        (
            "evt_01jd7x0000000000000000000a_20260316T080000Z",
            ("evt_01jd7x0000000000000000000a", datetime(2026, 3, 16, 8, tzinfo=UTC)),
        ),
        (
            "evt_01jd7x0000000000000000000a_20260316",
            ("evt_01jd7x0000000000000000000a", datetime(2026, 3, 16, tzinfo=UTC)),
        ),
        ("evt_01jd7x0000000000000000000a", None),
        ("evt_01jd7x0000000000000000000a_20261316", None),
        ("evt_01jd7x0000000000000000000a_20260316T250000Z", None),
        ("garbage_20260316", None),
        ("evt_short_20260316", None),
    ],
)
def test_a_generated_occurrence_id_names_its_master_and_its_slot(occurrence_id, slot):
    assert occurrence_slot(occurrence_id) == slot


def test_every_generated_id_decodes_to_its_master_and_original_start():
    master = google_series()
    master["_id"] = "evt_01jd7x0000000000000000000a"
    for found in expand([master], *window(date(2026, 3, 1), date(2026, 5, 1))):
        assert occurrence_slot(found.id) == (master["_id"], found.start_at)


def test_a_master_whose_occurrences_are_mirrored_one_by_one_is_not_expanded():
    """Microsoft's sync mirrors a series' occurrences, never its master: a master written back
    (``instances_mirrored``) shows nothing of its own, so an occurrence the provider cancelled
    (no longer mirrored) stays gone, and each mirrored one shows once."""
    zone = "Europe/Berlin"
    first = at(datetime(2027, 1, 4, 9), zone)
    master = {**weekly("series", datetime(2027, 1, 4, 9), zone, 30, "RRULE:FREQ=WEEKLY;COUNT=4")}
    master["instances_mirrored"] = True
    kept = [
        stored(
            f"series_{n}",
            timed(first + timedelta(weeks=n), zone),
            timed(first + timedelta(weeks=n, minutes=30), zone),
            master="series",
            original=timed(first + timedelta(weeks=n), zone),
        )
        for n in (0, 1, 3)  # week 2 cancelled at the provider
    ]
    start, end = window(date(2027, 1, 1), date(2027, 2, 1))
    found = expand([master, *kept], start, end)
    assert [o.start_at for o in found] == [first + timedelta(weeks=n) for n in (0, 1, 3)]
    assert expand([{**master, "instances_mirrored": False}, *kept], start, end)[
        2
    ].start_at == first + timedelta(weeks=2)
