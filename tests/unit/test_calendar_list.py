"""When a sync lists the provider's calendars again (issue 16): full syncs, a stale list, a
calendar the mirror does not know; not every incremental sync of one calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chronapilot.common.bus.catalogue import SyncKind, SyncReason, SyncRequested
from chronapilot.sync_worker.calendar_list import listing_due

NOW = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
MIRRORED = ("primary@example.com", "/dav/user/work%40home/")


def due(mode: SyncKind, calendar_id: str | None, listed_ago: timedelta | None) -> bool:
    request = SyncRequested(mode=mode, reason=SyncReason.WEBHOOK, calendar_id=calendar_id)
    listed_at = None if listed_ago is None else NOW - listed_ago
    return listing_due(request, listed_at=listed_at, now=NOW, interval=HOUR, mirrored=MIRRORED)


def test_an_incremental_sync_of_a_known_calendar_uses_the_mirrored_list() -> None:
    assert not due(SyncKind.INCREMENTAL, "primary@example.com", timedelta(minutes=5))
    assert not due(SyncKind.INCREMENTAL, "/dav/user/work@home/", timedelta(minutes=59))  # escaping


def test_a_sync_of_every_calendar_lists_them() -> None:
    # the schedule's polls and safety-net syncs: how a polling connection learns of new calendars
    assert due(SyncKind.INCREMENTAL, None, timedelta(minutes=5))


def test_a_full_sync_always_lists() -> None:
    assert due(SyncKind.FULL, "primary@example.com", timedelta(seconds=1))
    assert due(SyncKind.FULL, None, timedelta(seconds=1))


def test_a_list_older_than_the_interval_or_never_read_is_listed_again() -> None:
    assert due(SyncKind.INCREMENTAL, "primary@example.com", HOUR)
    assert due(SyncKind.INCREMENTAL, "primary@example.com", None)


def test_a_calendar_the_mirror_does_not_hold_is_looked_for() -> None:
    assert due(SyncKind.INCREMENTAL, "new@group.calendar.google.com", timedelta(minutes=1))
