"""When a sync lists the provider's calendars again (:func:`listing_due`), without I/O.

Listing re-reads every calendar of the account and re-writes each mirrored calendar, so it is
not repeated for every notification about one calendar. A sync lists the calendars when

- it is a full sync (first link, a manual resync);
- it syncs every calendar of the connection: the schedule's polls (polling connections) and
  safety-net syncs (realtime ones), so the schedule keeps every list fresh;
- the list is older than ``CHRONAPILOT_SYNC_CALENDAR_LIST_INTERVAL_S`` (or was never read by a
  sync): a realtime connection that only hears about single calendars between safety nets;
- the request names a calendar the mirror does not hold (a notification about a new calendar);

and, after the fact, when a calendar it synced turned out to be gone at the provider (404/410,
Google's ``not_exists``): the provider's signal that the list changed
(:func:`~chronapilot.sync_worker.connection_sync.ConnectionSyncer`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from urllib.parse import unquote

from chronapilot.common.bus.catalogue import SyncKind, SyncRequested


def same_calendar(requested: str | None, provider_calendar_id: str) -> bool:
    """A request names its calendar (or none: all); CalDAV servers differ in escaping URLs."""
    return requested is None or unquote(requested) == unquote(provider_calendar_id)


def listing_due(
    request: SyncRequested,
    *,
    listed_at: datetime | None,
    now: datetime,
    interval: timedelta,
    mirrored: Collection[str],
) -> bool:
    """Whether this sync lists the provider's calendars first; ``mirrored``: the provider ids of
    the calendars the mirror holds for the connection."""
    if request.mode is SyncKind.FULL or request.calendar_id is None:
        return True
    if listed_at is None or now - listed_at >= interval:
        return True
    return not any(same_calendar(request.calendar_id, held) for held in mirrored)
