"""Free/busy's rules (chronapilot.common.free_busy): what blocks time, how all-day events
count, and how intervals merge with their provenance. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
)

ME = "ada@example.com"
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
WINDOW = Interval(T0 - timedelta(days=30), T0 + timedelta(days=30))


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def iv(start: float, end: float) -> Interval:
    return Interval(at(start), at(end))


@dataclass(frozen=True)
class Occ:
    """An occurrence as chronapilot.common.occurrences yields it, as far as free/busy reads it."""

    start_at: datetime
    end_at: datetime
    status: str = "confirmed"
    source: Mapping[str, Any] = field(default_factory=dict)


def timed(start: float, end: float, **doc: Any) -> Occ:
    return Occ(at(start), at(end), doc.get("status", "confirmed"), {"all_day": False, **doc})


def all_day(first: str, end: str, **doc: Any) -> Occ:
    """An all-day occurrence as the mirror stores it: its dates at midnight UTC."""
    return Occ(
        datetime.fromisoformat(first).replace(tzinfo=UTC),
        datetime.fromisoformat(end).replace(tzinfo=UTC),
        "confirmed",
        {"all_day": True, **doc},
    )


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
    "occurrence",
    [
        timed(0, 1, status="cancelled"),
        Occ(at(0), at(1), "cancelled", {"status": "confirmed"}),  # a cancelled instance of a series
        timed(0, 1, deleted=True),
        timed(0, 1, transparency="transparent"),
        timed(0, 1, own_response="declined"),
        timed(0, 1, attendees=[attendee("ADA@Example.com", "declined")]),
    ],
    ids=["cancelled", "cancelled-instance", "deleted", "transparent", "declined-self", "declined-by-email"],
)
def test_what_does_not_block_time(occurrence: Occ) -> None:
    assert not blocks_time(occurrence, ME)


def test_the_owners_answer_is_the_providers_word_first_then_the_account_email() -> None:
    declined_by_email = [attendee(ME, "declined")]
    # the provider flagged the owner (Google self, Graph responseStatus): its answer stands
    assert not declined_by_owner({"own_response": "accepted", "attendees": declined_by_email}, ME)
    assert declined_by_owner({"own_response": "declined", "attendees": []}, ME)
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
