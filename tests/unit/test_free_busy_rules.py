"""Free/busy's rules (chronapilot.common.free_busy): what blocks time, how all-day events
count, and how intervals merge with their provenance. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chronapilot.common.free_busy import (
    Busy,
    Interval,
    blocks_time,
    busy_intervals,
    declined_by_owner,
    merge,
    merge_calendars,
    occurrences_around,
)
from chronapilot.common.ids import new_id
from chronapilot.common.occurrences import Occurrence

ME = "ada@example.com"
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
WINDOW = Interval(T0 - timedelta(days=30), T0 + timedelta(days=30))


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def iv(start: float, end: float) -> Interval:
    return Interval(at(start), at(end))


def occurrence(start: dict[str, Any], end: dict[str, Any], status: str, doc: dict[str, Any]) -> Occurrence:
    def instant(value: dict[str, Any]) -> datetime:
        if value["date"]:
            return datetime.fromisoformat(value["date"]).replace(tzinfo=UTC)  # as the mirror keeps dates
        return value["date_time"]

    return Occurrence(
        id=new_id("evt"),
        source=doc,
        start=start,
        end=end,
        start_at=instant(start),
        end_at=instant(end),
        original_start=None,
        recurring_event_id=None,
        status=status,
    )


def timed(start: float, end: float, **doc: Any) -> Occurrence:
    def time(hours: float) -> dict[str, Any]:
        return {"date_time": at(hours), "date": None, "timezone": "UTC"}

    status = doc.get("status", "confirmed")
    return occurrence(time(start), time(end), status, {"all_day": False, **doc})


def all_day(first: str, end: str, **doc: Any) -> Occurrence:
    def day(value: str) -> dict[str, Any]:
        return {"date_time": None, "date": value, "timezone": None}

    return occurrence(day(first), day(end), "confirmed", {"all_day": True, **doc})


def attendee(email: str, response: str) -> dict[str, Any]:
    return {"email": email, "name": None, "response_status": response, "optional": False, "organizer": False}


# what blocks time --------------------------------------------------------------------------------


def test_a_confirmed_opaque_event_blocks_time_and_so_do_tentative_and_unanswered_ones() -> None:
    assert blocks_time(timed(0, 1), ME)
    assert blocks_time(timed(0, 1, transparency="opaque"), ME)
    assert blocks_time(timed(0, 1, status="tentative"), ME)
    assert blocks_time(timed(0, 1, attendees=[attendee(ME, "needsAction")]), ME)
    assert blocks_time(timed(0, 1, attendees=[attendee(ME, "tentative")]), ME)


@pytest.mark.parametrize(
    "case",
    [
        timed(0, 1, status="cancelled"),
        timed(0, 1, transparency="transparent"),
        timed(0, 1, own_response="declined"),
        timed(0, 1, attendees=[attendee("ADA@Example.com", "declined")]),
    ],
    ids=["cancelled", "transparent", "declined-self", "declined-by-email"],
)
def test_what_does_not_block_time(case: Occurrence) -> None:
    assert not blocks_time(case, ME)


def test_the_owners_answer_is_the_providers_word_first_then_the_account_email() -> None:
    declined_by_email = [attendee(ME, "declined")]
    # the provider flagged the owner (Google self, Graph responseStatus): its answer stands
    assert not declined_by_owner({"own_response": "accepted", "attendees": declined_by_email}, ME)
    assert declined_by_owner({"own_response": "declined", "attendees": []}, ME)
    # Google listing attendees without flagging the calendar's own: not the account's answer
    assert not declined_by_owner({"own_response": "needsAction", "attendees": declined_by_email}, ME)
    # CalDAV, or a document mirrored before own_response: the account's e-mail among attendees
    assert declined_by_owner({"attendees": declined_by_email}, ME)
    assert declined_by_owner({"own_response": None, "attendees": declined_by_email}, ME)
    # someone else declining changes nothing
    assert not declined_by_owner({"attendees": [attendee("bob@example.com", "declined")]}, ME)


# all-day events -----------------------------------------------------------------------------------


def test_an_all_day_event_blocks_its_days_from_midnight_to_midnight_in_the_zone_given() -> None:
    holiday = all_day("2026-03-10", "2026-03-12")

    assert busy_intervals([holiday], WINDOW, account_email=ME, all_day_zone=UTC) == [
        Interval(datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 12, tzinfo=UTC))
    ]
    assert busy_intervals(
        [holiday], WINDOW, account_email=ME, all_day_zone=ZoneInfo("Pacific/Kiritimati")
    ) == [Interval(datetime(2026, 3, 9, 10, tzinfo=UTC), datetime(2026, 3, 11, 10, tzinfo=UTC))]
    assert busy_intervals(
        [holiday], WINDOW, account_email=ME, all_day_zone=ZoneInfo("America/Los_Angeles")
    ) == [Interval(datetime(2026, 3, 10, 7, tzinfo=UTC), datetime(2026, 3, 12, 7, tzinfo=UTC))]


def test_an_all_day_event_on_a_dst_change_day_lasts_that_days_length() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    spring = all_day("2026-03-29", "2026-03-30")  # Berlin: 23 hours

    (interval,) = busy_intervals([spring], WINDOW, account_email=ME, all_day_zone=berlin)

    assert interval == Interval(datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC))
    assert interval.end - interval.start == timedelta(hours=23)


def test_a_transparent_all_day_event_blocks_nothing() -> None:
    assert (
        busy_intervals(
            [all_day("2026-03-10", "2026-03-11", transparency="transparent")],
            WINDOW,
            account_email=ME,
            all_day_zone=UTC,
        )
        == []
    )


# merging ------------------------------------------------------------------------------------------


def test_intervals_are_sorted_and_overlapping_touching_and_contained_ones_merge() -> None:
    assert merge([iv(5, 6), iv(0, 1), iv(0.5, 2), iv(2, 3), iv(2.5, 2.75), iv(4, 4)]) == [
        iv(0, 3),
        iv(5, 6),
    ]


def test_one_calendars_busy_time_is_clipped_to_the_window_and_skips_what_does_not_count() -> None:
    window = iv(0, 10)
    occurrences = [
        timed(-2, 1),  # starts before the window
        timed(1, 2),  # touches the first
        timed(3, 4, transparency="transparent"),
        timed(5, 5),  # no duration
        timed(9, 12),  # ends after the window
        timed(20, 21),  # outside
    ]

    assert busy_intervals(occurrences, window, account_email=ME, all_day_zone=UTC) == [iv(0, 2), iv(9, 10)]


def test_calendars_merge_with_the_calendars_behind_each_interval() -> None:
    merged = merge_calendars(
        {
            "cal_work": [iv(0, 1), iv(4, 5)],
            "cal_home": [iv(0.5, 2), iv(7, 8)],
            "cal_team": [iv(2, 3), iv(4.5, 4.75)],
        }
    )

    assert merged == [
        Busy(at(0), at(3), ("cal_work", "cal_home", "cal_team")),  # overlap, then touch
        Busy(at(4), at(5), ("cal_work", "cal_team")),
        Busy(at(7), at(8), ("cal_home",)),
    ]


def test_no_calendars_or_no_events_is_no_busy_time() -> None:
    assert merge_calendars({}) == []
    assert merge_calendars({"cal_a": [], "cal_b": []}) == []


# stored documents, expanded ------------------------------------------------------------------------


def stored(
    provider_event_id: str, start: datetime | str, end: datetime | str, **fields: Any
) -> dict[str, Any]:
    """An event document as the mirror stores it (mirror_fields' shape)."""

    def time(value: datetime | str) -> dict[str, Any]:
        if isinstance(value, str):
            return {"date_time": None, "date": value, "timezone": None}
        return {"date_time": value, "date": None, "timezone": "UTC"}

    def instant(value: datetime | str) -> datetime:
        return datetime.fromisoformat(value).replace(tzinfo=UTC) if isinstance(value, str) else value

    return {
        "_id": new_id("evt"),
        "calendar_id": "cal_1",
        "connection_id": "con_1",
        "provider_calendar_id": "primary",
        "provider_event_id": provider_event_id,
        "start": time(start),
        "end": time(end),
        "start_at": instant(start),
        "end_at": instant(end),
        "all_day": isinstance(start, str),
        "status": "confirmed",
        "recurrence": [],
        "recurring_event_id": None,
        "original_start": None,
        "attendees": [],
        "deleted": False,
        **fields,
    }


def exception_of(
    master: dict[str, Any], slot: datetime, start: datetime, end: datetime, **fields: Any
) -> dict[str, Any]:
    return stored(
        f"{master['provider_event_id']}_{slot:%Y%m%dT%H%M%SZ}",
        start,
        end,
        recurring_event_id=master["provider_event_id"],
        original_start={"date_time": slot, "date": None, "timezone": "UTC"},
        **fields,
    )


def test_a_series_counts_by_its_occurrences_and_cancelled_declined_transparent_deleted_ones_do_not() -> None:
    master = stored("daily", at(2), at(2.5), recurrence=["RRULE:FREQ=DAILY;COUNT=5"])
    docs = [
        master,
        exception_of(master, at(24 + 2), at(24 + 2), at(24 + 2.5), status="cancelled"),
        exception_of(master, at(48 + 2), at(48 + 2), at(48 + 2.5), own_response="declined"),
        exception_of(master, at(72 + 2), at(72 + 6), at(72 + 7)),  # moved to the afternoon
        exception_of(master, at(96 + 2), at(96 + 2), at(96 + 2.5), transparency="transparent"),
        stored("called-off", at(5), at(6), status="cancelled"),  # CalDAV STATUS:CANCELLED
        stored("gone", at(7), at(8), deleted=True),
    ]
    window = iv(0, 24 * 7)

    busy = busy_intervals(occurrences_around(docs, window), window, account_email=ME, all_day_zone=UTC)

    assert busy == [iv(2, 2.5), iv(72 + 6, 72 + 7)]


def test_a_declined_series_declines_every_occurrence_but_an_exception_answered_otherwise() -> None:
    master = stored(
        "weekly", at(2), at(3), recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"], attendees=[attendee(ME, "declined")]
    )
    accepted = exception_of(master, at(24 * 7 + 2), at(24 * 7 + 2), at(24 * 7 + 3), own_response="accepted")
    window = iv(0, 24 * 21)

    busy = busy_intervals(
        occurrences_around([master, accepted], window), window, account_email=ME, all_day_zone=UTC
    )

    assert busy == [iv(24 * 7 + 2, 24 * 7 + 3)]


def test_an_all_day_event_just_outside_the_window_in_utc_reaches_into_it_in_a_zone_west() -> None:
    window = Interval(datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC))
    eve = stored("eve", "2026-03-09", "2026-03-10")
    next_day = stored("next", "2026-03-11", "2026-03-12")
    found = occurrences_around([eve, next_day], window)

    in_los_angeles = busy_intervals(
        found, window, account_email=ME, all_day_zone=ZoneInfo("America/Los_Angeles")
    )
    in_tokyo = busy_intervals(found, window, account_email=ME, all_day_zone=ZoneInfo("Asia/Tokyo"))

    assert in_los_angeles == [Interval(window.start, datetime(2026, 3, 10, 7, tzinfo=UTC))]
    assert in_tokyo == [Interval(datetime(2026, 3, 10, 15, tzinfo=UTC), window.end)]


def test_a_window_of_the_longest_length_expands_in_pieces_each_occurrence_once() -> None:
    master = stored("daily", at(2), at(2.5), recurrence=["RRULE:FREQ=DAILY"])
    window = Interval(T0, T0 + timedelta(days=366))

    found = occurrences_around([master], window)

    assert len(found) == len({o.id for o in found}) == 366 + 1  # and the one a day past the end
    assert len(busy_intervals(found, window, account_email=ME, all_day_zone=UTC)) == 366


def floating(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as the mirror keeps a CalDAV time without TZID: its wall time read as UTC, no zone."""
    for name in ("start", "end"):
        doc[name] = {**doc[name], "timezone": None}
    return doc


def test_a_floating_event_blocks_its_wall_time_in_the_zone_all_day_events_are_read_in() -> None:
    """09:00-10:00 floating, in a Berlin calendar: 08:00Z-09:00Z in winter, 07:00Z-08:00Z in
    summer; a single event and a series alike."""
    winter = datetime(2026, 3, 2, 9, tzinfo=UTC)  # the wall time, read as UTC
    single = floating(stored("single", winter, winter + timedelta(hours=1)))
    series = floating(
        stored(
            "series",
            winter + timedelta(days=1),
            winter + timedelta(days=1, hours=1),
            recurrence=["RRULE:FREQ=WEEKLY;COUNT=5"],
        )
    )
    window = Interval(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 5, tzinfo=UTC))
    berlin = ZoneInfo("Europe/Berlin")

    busy = busy_intervals(
        occurrences_around([single, series], window), window, account_email=ME, all_day_zone=berlin
    )

    hour = timedelta(hours=1)
    walls = [datetime(2026, 3, 2, 9), *(datetime(2026, 3, 3, 9) + timedelta(weeks=n) for n in range(5))]
    assert busy == [
        Interval(w.replace(tzinfo=berlin).astimezone(UTC), w.replace(tzinfo=berlin).astimezone(UTC) + hour)
        for w in walls
    ]
    assert busy[-1].start == datetime(2026, 3, 31, 7, tzinfo=UTC)  # summer time


def test_an_event_in_a_zone_is_not_moved_by_the_all_day_zone() -> None:
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    doc = stored("zoned", start, start + timedelta(hours=1))
    window = Interval(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))
    busy = busy_intervals(
        occurrences_around([doc], window), window, account_email=ME, all_day_zone=ZoneInfo("Asia/Tokyo")
    )
    assert busy == [Interval(start, start + timedelta(hours=1))]
