"""Event sync: the value types every provider's ``sync_events`` returns.

Sync
----
``provider.sync_events(token, calendar_id, cursor)`` (a method of
:class:`~chronapilot.common.providers.base.CalendarProvider`, all three implement it) is an async
iterator of :class:`EventPage`.

- **Full sync** (``cursor=None``): every event of the calendar, page by page. Google: masters,
  single events, exceptions and cancelled instances (``singleEvents=false``,
  ``showDeleted=true``). Microsoft: the calendar-view delta over a window (by default one
  year back to two years ahead, fixed when the full sync starts): single events, and the
  occurrences and exceptions of series (``recurring_event_id`` = the series master's id), never
  the master itself; an occurrence cancelled from a series comes as a deletion. CalDAV: every
  resource, each VEVENT of it (master and ``RECURRENCE-ID`` overrides) as its own
  :class:`EventData`.
- **Incremental sync** (a cursor from a previous run): only what changed since; deleted events
  come as ``deletions`` (provider event ids). Applying a page twice is harmless.
- **Cursor**: opaque, stored per calendar, set on the *last* page only (``next_cursor`` is None
  on the others, so a sync interrupted midway restarts from the old cursor). Google: the
  ``nextSyncToken``; Microsoft: the whole ``@odata.deltaLink`` URL; CalDAV: ``"dav:"`` + the
  sync-token, or, for a server without sync-collection, ``"ctag:"`` + the ctag and every
  ``href → etag``, compressed (the fallback's state lives in the cursor: about 40 bytes per
  event).
- **Dead cursor**: :class:`~chronapilot.common.providers.errors.CursorExpired` is raised before
  anything is yielded (Google 410 ``fullSyncRequired``, Graph 410 ``syncStateNotFound``, DAV
  403/409 ``valid-sync-token``; a cursor this provider could not have issued). The caller
  drops the cursor and runs a full sync, then marks everything the full sync did not return
  as deleted — within the span it read: a windowed full sync (Microsoft) names its window on
  its pages (``EventPage.window``) and mirrored events outside it are kept.
- **Faults**: 429/503 raise ``Throttled`` (``retry_after`` when the provider gave one), other
  5xx and timeouts ``Unavailable``; each request asks the token source once more with
  ``force_refresh=True`` after a 401, and a second 401 raises ``InvalidCredentials``. One event
  the parser cannot read is logged (``sync.event_unreadable``) and left out, rather than stopping
  the calendar's sync.
- **Read-ahead**: the next page is requested while the caller handles the current one
  (:mod:`chronapilot.common.providers.paging`); stop iterating (or ``aclose``) to abandon a sync.

Ids
---
``provider_event_id`` is what the provider calls the event: Google's event id (instances:
``<master>_<start>``), Graph's item id (occurrences have their own), CalDAV's resource href
(the path, percent-decoded) for a master or a lone event, and ``href + "#" + RECURRENCE-ID``
for an override (the RECURRENCE-ID in UTC, ISO 8601 basic: ``20260316T080000Z``, or
``20260316`` when all-day). ``recurring_event_id`` is the master's ``provider_event_id`` on
exceptions, occurrences and cancelled instances (CalDAV: the href, even when the resource holds
no master). Two rules for applying a page, the same for every provider:

- deleting an id deletes the events whose ``recurring_event_id`` is that id too (a CalDAV
  deletion names only the resource);
- ``series_replaced`` lists masters whose every exception is in the page (CalDAV incremental
  syncs: a resource is rewritten whole); mirrored exceptions of theirs not in the page are gone.
  A full sync leaves it empty: the caller drops everything a full sync did not return.

Times are aware UTC instants (``EventTime.date_time``) or dates (all-day, end exclusive);
``EventTime.timezone`` is the IANA zone the event was written in (Windows zone names mapped),
when the provider names one.

Busy or not
-----------
``transparency`` says whether the event blocks the calendar owner's time (``opaque``) or not
(``transparent``): Google's ``transparency``, iCalendar's ``TRANSP`` (both default to opaque),
Graph's ``showAs`` (``free`` and ``workingElsewhere`` are transparent, as Exchange's own
iCalendar export maps them; ``tentative``, ``busy``, ``oof``, ``unknown`` and none are opaque).
``own_response`` is the calendar owner's answer to the invitation when the provider says which
attendee that is (Google: the attendee flagged ``self``, ``needsAction`` when attendees are
listed but none is flagged, ``accepted`` on the organizer's copy; Graph: the event's
``responseStatus``); None otherwise (no attendees at Google; CalDAV says nothing: a reader
matches the account's e-mail among ``attendees``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

__all__ = ["Attendee", "EventData", "EventPage", "EventTime", "SyncWindow"]

#: ``EventData.status`` values.
EVENT_STATUSES = ("confirmed", "tentative", "cancelled")
#: ``Attendee.response_status`` values.
RESPONSE_STATUSES = ("needsAction", "accepted", "declined", "tentative")
#: ``EventData.transparency`` values: the event blocks its owner's time, or it does not.
OPAQUE, TRANSPARENT = "opaque", "transparent"


@dataclass(frozen=True)
class EventTime:
    """A start or end: an aware UTC instant for timed events, a date for all-day ones."""

    date_time: datetime | None
    date: date | None
    timezone: str | None


@dataclass(frozen=True)
class Attendee:
    """An attendee or the organizer; ``response_status`` is one of :data:`RESPONSE_STATUSES`."""

    email: str
    name: str | None
    response_status: str
    optional: bool
    organizer: bool


@dataclass(frozen=True)
class EventData:
    """One event as a provider holds it, normalised. See the module docstring for ids."""

    provider_event_id: str
    ical_uid: str | None
    title: str | None
    description: str | None
    location: str | None
    start: EventTime | None
    end: EventTime | None
    all_day: bool
    status: str
    recurrence: tuple[str, ...]
    recurring_event_id: str | None
    original_start: EventTime | None
    organizer: Attendee | None
    attendees: tuple[Attendee, ...]
    etag: str | None
    updated_at: datetime | None
    raw: Mapping[str, Any] = field(compare=False, repr=False)
    #: :data:`OPAQUE` or :data:`TRANSPARENT` (see "Busy or not" in the module docstring).
    transparency: str = OPAQUE
    #: The calendar owner's ``response_status``, when the provider says it; else None.
    own_response: str | None = None


@dataclass(frozen=True)
class SyncWindow:
    """The span of time a windowed full sync read (Microsoft's calendar view): what the
    provider holds outside it was not listed, so the mirror keeps it rather than deleting it.

    ``holds`` answers whether a mirrored event lies where the sync certainly looked: it must
    overlap the window by more than :attr:`MARGIN` on both sides (an all-day event is mirrored
    at midnight UTC of its date while the provider places it in the calendar's own zone, so an
    event near an edge is left alone rather than wrongly deleted).
    """

    start: datetime
    end: datetime

    #: How far inside the window an event must reach to be judged by it.
    MARGIN = timedelta(days=1)

    def holds(self, start_at: datetime | None, end_at: datetime | None) -> bool:
        if start_at is None:
            return False
        return start_at < self.end - self.MARGIN and (end_at or start_at) > self.start + self.MARGIN


@dataclass(frozen=True)
class EventPage:
    """A page of changes; ``next_cursor`` is set on the last page only.

    ``deletions``: provider event ids that are gone; deleting a master deletes the events whose
    ``recurring_event_id`` is that master too. ``series_replaced``: masters whose every exception
    is among this page's upserts, so mirrored exceptions of theirs that are not are gone (CalDAV
    incremental syncs, where one resource holds a whole series; empty on full syncs, where
    whatever the sync did not return is gone anyway, and for the other providers).
    ``window``: on every page of a windowed full sync, the span it reads (:class:`SyncWindow`);
    None when the full sync reads the whole calendar (Google, CalDAV) and on incremental syncs.
    """

    upserts: tuple[EventData, ...]
    deletions: tuple[str, ...]
    next_cursor: str | None
    series_replaced: tuple[str, ...] = ()
    window: SyncWindow | None = None
