"""The Google emulator's expansion of a series across DST nights, as Google shows it: an
instance lasts the master's exact duration (a 02:30-03:30 Berlin instance on the spring night
runs 03:30-04:30 CEST; a 23:00-05:00 one is six hours long whichever night it is)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chronapilot.sandbox.google.recurrence import occurrences

BERLIN = "Europe/Berlin"


def master(first: str, last: str, rule: str) -> dict:
    return {
        "id": "m1",
        "start": {"dateTime": first, "timeZone": BERLIN},
        "end": {"dateTime": last, "timeZone": BERLIN},
        "recurrence": [rule],
    }


def spans(series: dict) -> list[tuple[datetime, datetime]]:
    found = occurrences(
        series,
        BERLIN,
        window_start=datetime(2026, 3, 20, tzinfo=UTC),
        window_end=datetime(2026, 4, 5, tzinfo=UTC),
        horizon_end=datetime(2027, 1, 1, tzinfo=UTC),
    )
    return [(o.start.instant(BERLIN), o.end.instant(BERLIN)) for o in found]


def test_an_instance_in_the_spring_gap_runs_from_0330_to_0430_cest():
    found = spans(
        master("2026-03-27T02:30:00+01:00", "2026-03-27T03:30:00+01:00", "RRULE:FREQ=DAILY;COUNT=5")
    )
    assert len(found) == 5
    assert datetime(2026, 3, 29, 1, 30, tzinfo=UTC) in [start for start, _ in found]
    assert all(end - start == timedelta(hours=1) for start, end in found)


def test_an_overnight_instance_keeps_its_exact_duration_on_the_dst_night():
    found = spans(
        master("2026-03-27T23:00:00+01:00", "2026-03-28T05:00:00+01:00", "RRULE:FREQ=DAILY;COUNT=5")
    )
    assert all(end - start == timedelta(hours=6) for start, end in found)
