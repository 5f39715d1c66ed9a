"""Write-back: the contract every provider implements to create, change and delete events.

ChronaPilot writes through the provider's own API (Google ``events.insert/patch/delete``, Graph
``POST/PATCH/DELETE …/events``, CalDAV ``PUT``/``DELETE``) and answers with the event as the
provider stored it (:class:`~chronapilot.common.providers.sync.EventData`, the same shape a sync
reads, so the mirror is written from it directly).

No duplicates, ever
-------------------
A create carries a ``write_id`` chosen by ChronaPilot *before* the call and kept with the
write's intent, so every retry — an ``Idempotency-Key`` retry, a client timeout followed by a
retry, a crash between the provider's answer and the mirror write — repeats the same create:

- Google: the event ``id`` is :func:`google_event_id` of ``write_id`` (base32hex, the client may
  choose it); a second insert answers ``409 duplicate`` and the provider returns the existing
  event instead of a second one.
- Microsoft: ``transactionId`` is ``write_id``; Graph answers a retry with the event already
  created. (The provider also looks for an event with that ``transactionId`` before creating.)
- CalDAV: the resource name is ``<write_id>.ics`` and the UID ``<write_id>@chronapilot``; the
  ``PUT`` carries ``If-None-Match: *``, so a retry answers ``412`` and the provider reads the
  resource it created.

Conflicts and occurrences
-------------------------
``if_match`` (the etag the caller last saw) makes a change conditional: the provider raises
:class:`PreconditionFailed` when the event changed since. ``original_start`` addresses one
occurrence of a series (its start as the series generates it): a change makes it an exception
at the provider, a delete cancels it.

Times: an :class:`EventTime` with ``date_time`` (an aware instant) and ``timezone`` (IANA) is
written in that zone (its wall time there, and the zone), so the provider stores the zone the
caller chose; one with ``date`` is all-day (``end`` exclusive).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chronapilot.common.errors import ProviderError
from chronapilot.common.providers.base import TokenSource
from chronapilot.common.providers.sync import Attendee, EventData, EventTime

#: The fields of a draft; a patch sets only those in :attr:`EventDraft.fields`.
DRAFT_FIELDS = frozenset({"title", "description", "location", "start", "end", "recurrence", "attendees"})


@dataclass(frozen=True)
class EventDraft:
    """An event as ChronaPilot asks a provider to store it.

    A create sets every field (None: empty); a patch sets only those named in ``fields`` (None
    there clears it). ``recurrence``: RRULE / EXDATE / RDATE lines as iCalendar writes them
    (``RRULE:FREQ=WEEKLY;COUNT=5``)."""

    title: str | None = None
    description: str | None = None
    location: str | None = None
    start: EventTime | None = None
    end: EventTime | None = None
    recurrence: tuple[str, ...] = ()
    attendees: tuple[Attendee, ...] = ()
    fields: frozenset[str] = DRAFT_FIELDS


class PreconditionFailed(ProviderError):
    """``If-Match`` did not match: the event changed at the provider since the caller read it."""

    code = "precondition_failed"

    def __init__(self, message: str = "the event changed at the provider", *, status: int | None = 412):
        super().__init__(message, status=status)


class EventNotFound(ProviderError):
    """The event (or the occurrence) is not at the provider (deleted there, or never was)."""

    code = "event_not_found"

    def __init__(self, message: str = "the event is not at the provider", *, status: int | None = 404):
        super().__init__(message, status=status)


class WriteRefused(ProviderError):
    """The provider refused the write itself: a read-only calendar, a scope without writes
    (``reason``: ``read_only`` or ``scope_insufficient``), or an event it cannot store
    (``invalid``, with the provider's message)."""

    code = "write_refused"

    def __init__(self, message: str, *, reason: str, status: int | None = None):
        super().__init__(message, status=status)
        self.reason = reason


class EventWrites(Protocol):
    """Creating, changing and deleting events at one provider (see the module docstring)."""

    async def create_event(
        self, token: TokenSource, calendar_id: str, draft: EventDraft, *, write_id: str
    ) -> EventData:
        """Create the event, or return the one an earlier attempt with ``write_id`` created."""
        ...

    async def update_event(
        self,
        token: TokenSource,
        calendar_id: str,
        event_id: str,
        draft: EventDraft,
        *,
        if_match: str | None = None,
        original_start: EventTime | None = None,
    ) -> EventData:
        """Change the fields of ``draft.fields`` (of one occurrence with ``original_start``)."""
        ...

    async def delete_event(
        self,
        token: TokenSource,
        calendar_id: str,
        event_id: str,
        *,
        if_match: str | None = None,
        original_start: EventTime | None = None,
    ) -> None:
        """Delete the event (cancel one occurrence with ``original_start``); an event already
        gone counts as deleted."""
        ...


def google_event_id(write_id: str) -> str:
    """A Google event id for ``write_id``: base32hex (``a`` to ``v``, ``0`` to ``9``), stable, 32
    characters (a hash: any ``write_id`` maps into Google's alphabet)."""
    digest = hashlib.sha256(write_id.encode()).digest()[:20]
    return base64.b32hexencode(digest).decode().lower().rstrip("=")[:32]


if TYPE_CHECKING:  # every provider writes (checked by mypy, no import at run time)
    from chronapilot.common.providers.google.client import GoogleProvider
    from chronapilot.common.providers.icloud.caldav import ICloudProvider
    from chronapilot.common.providers.microsoft.client import MicrosoftProvider

    def _every_provider_writes(
        g: GoogleProvider, m: MicrosoftProvider, i: ICloudProvider
    ) -> list[EventWrites]:
        return [g, m, i]
