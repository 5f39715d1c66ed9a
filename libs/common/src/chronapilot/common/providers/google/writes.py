"""Google write-back: ``events.insert``, ``events.patch`` and ``events.delete`` behind
:class:`~chronapilot.common.providers.writes.EventWrites`.

What Google does, and what is done about it here
(developers.google.com/calendar/api/v3/reference/events,
developers.google.com/calendar/api/guides/version-resources):

- a create chooses the event ``id`` (:func:`~chronapilot.common.providers.writes.google_event_id`
  of the write id); an insert with an id the calendar already holds answers ``409 duplicate``,
  also when that event has since been deleted, so a retry reads the event the first attempt
  made instead of making a second one. (Google's reference adds that, the system being
  distributed, a collision may not be detected at creation time: that is a risk of Google's,
  not one a client can close.)
- ``If-Match`` with an etag makes ``patch``/``delete`` conditional: ``412`` when the event changed;
- one occurrence of a series is the instance id ``<seriesId>_<originalStart>``: the original
  start in UTC, basic format (``20270104T090000Z``), or its date (``20270104``) for all-day
  series; a patch there makes an exception, a delete cancels the occurrence;
- a timed value is written as its wall time in the chosen zone with that zone's offset, and
  the zone as ``timeZone`` (Google keeps it, and expands a series in it); an all-day value
  as ``date`` (end exclusive);
- refusals: ``403 insufficientPermissions`` (the token has no write scope), ``403 forbidden``
  / ``requiredAccessLevel`` / ``forbiddenForNonOrganizer`` (the calendar or the event is
  read-only for this account), ``400`` (an event Google cannot store). Everything else goes
  through the client's :func:`~chronapilot.common.providers.google.client.translate_error`
  (``429``/``403 rateLimitExceeded`` → ``Throttled``, ``5xx`` → ``Unavailable``…).
- a deleted event answers ``410 deleted`` (``404`` once purged): a delete counts it as done,
  a patch as :class:`~chronapilot.common.providers.writes.EventNotFound`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC
from typing import Any, NoReturn
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chronapilot.common.providers.base import TokenSource
from chronapilot.common.providers.errors import Unavailable
from chronapilot.common.providers.google.parse import is_deletion, parse_event
from chronapilot.common.providers.http import Answer, ProviderHttp, Translate, parse_json_object
from chronapilot.common.providers.sync import Attendee, EventData, EventTime
from chronapilot.common.providers.telemetry import Operation
from chronapilot.common.providers.writes import (
    EventDraft,
    EventNotFound,
    PreconditionFailed,
    WriteRefused,
    google_event_id,
)

#: 403 reasons meaning "this account may not write here" (the calendar, or the event).
READ_ONLY_REASONS = frozenset({"forbidden", "requiredAccessLevel", "forbiddenForNonOrganizer"})
#: 403 reasons meaning "this token may not write at all".
SCOPE_REASONS = frozenset({"insufficientPermissions"})


# request bodies -----------------------------------------------------------------------------


def event_time_json(value: EventTime, *, patch: bool = False, recurring: bool = False) -> dict[str, Any]:
    """A ``start``/``end`` value. A patch names the other form as ``null`` too, so an event can
    switch between all-day and timed (Google merges objects field by field). A timed value
    without a zone is written in UTC; with ``recurring`` it then says ``timeZone: UTC``, as
    Google requires a zone to expand a series in."""
    if value.date is not None:
        body: dict[str, Any] = {"date": value.date.isoformat()}
        if patch:
            body.update(dateTime=None, timeZone=None)
        return body
    if value.date_time is None:
        raise WriteRefused("an event time has neither a date nor a date-time", reason="invalid")
    instant = value.date_time if value.date_time.tzinfo is not None else value.date_time.replace(tzinfo=UTC)
    zone_name = value.timezone or ("UTC" if recurring else None)
    body = {
        "dateTime": instant.astimezone(_zone(zone_name) if zone_name else UTC).isoformat(timespec="seconds")
    }
    if zone_name:
        body["timeZone"] = zone_name
    elif patch:
        body["timeZone"] = None
    if patch:
        body["date"] = None
    return body


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WriteRefused(f"unknown time zone {name!r}", reason="invalid") from None


def attendee_json(attendee: Attendee) -> dict[str, Any]:
    """An ``attendees[]`` entry: e-mail, name, and ``optional`` when it is."""
    body: dict[str, Any] = {"email": attendee.email}
    if attendee.name:
        body["displayName"] = attendee.name
    if attendee.optional:
        body["optional"] = True
    return body


def event_body(draft: EventDraft, *, patch: bool = False) -> dict[str, Any]:
    """The fields of ``draft.fields`` as an ``Event`` body. An insert leaves out what is empty;
    a patch sends it as ``null`` (text) or ``[]`` (lists), which clears it at Google."""
    recurring = bool(draft.recurrence)
    fields = draft.fields
    body: dict[str, Any] = {}
    for name, key in (("title", "summary"), ("description", "description"), ("location", "location")):
        if name in fields and (patch or getattr(draft, name) is not None):
            body[key] = getattr(draft, name)
    for name in ("start", "end"):
        value: EventTime | None = getattr(draft, name)
        if name not in fields:
            continue
        if value is None:
            if patch:
                raise WriteRefused(f"an event cannot lose its {name}", reason="invalid")
            continue
        body[name] = event_time_json(value, patch=patch, recurring=recurring)
    if "recurrence" in fields and (patch or draft.recurrence):
        body["recurrence"] = list(draft.recurrence)
    if "attendees" in fields and (patch or draft.attendees):
        body["attendees"] = [attendee_json(attendee) for attendee in draft.attendees]
    return body


def instance_id(event_id: str, original_start: EventTime) -> str:
    """The id of the occurrence of series ``event_id`` that starts at ``original_start``."""
    if original_start.date is not None:
        return f"{event_id}_{original_start.date.strftime('%Y%m%d')}"
    if original_start.date_time is None:
        raise WriteRefused(
            "an occurrence's original start has neither a date nor a date-time", reason="invalid"
        )
    instant = original_start.date_time
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return f"{event_id}_{instant.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


# errors -------------------------------------------------------------------------------------


def _reasons_and_message(answer: Answer) -> tuple[set[str], str]:
    error = parse_json_object(answer.body).get("error")
    envelope: dict[str, Any] = error if isinstance(error, dict) else {}
    reasons = {str(item.get("reason")) for item in envelope.get("errors") or [] if isinstance(item, dict)}
    return reasons, str(envelope.get("message") or "")


def raise_write_error(answer: Answer, translate: Translate) -> NoReturn:
    """Raise what a write's failed ``answer`` means; what is not particular to writes is the
    client's ``translate`` (throttling, outages, credentials)."""
    reasons, message = _reasons_and_message(answer)
    detail = f"google: {answer.status} {'/'.join(sorted(reasons)) or 'error'}: {message}".rstrip(": ")
    if answer.status == 403 and reasons & SCOPE_REASONS:
        raise WriteRefused(detail, reason="scope_insufficient", status=403)
    if answer.status == 403 and reasons & READ_ONLY_REASONS:
        raise WriteRefused(detail, reason="read_only", status=403)
    if answer.status == 400:
        raise WriteRefused(message or detail, reason="invalid", status=400)
    if answer.status == 412:
        raise PreconditionFailed(detail)
    if answer.status in (404, 410):
        raise EventNotFound(detail, status=answer.status)
    raise translate(answer.status, answer.headers, answer.body)


# calls --------------------------------------------------------------------------------------


class GoogleEventWrites:
    """Creates, changes and deletes events through Calendar API v3 (see the module docstring)."""

    def __init__(self, http: ProviderHttp, api_url: str, translate: Translate) -> None:
        self._http = http
        self._api_url = api_url
        self._translate = translate

    def _events_url(self, calendar_id: str, event_id: str | None = None) -> str:
        url = f"{self._api_url}/calendars/{quote(calendar_id, safe='')}/events"
        return url if event_id is None else f"{url}/{quote(event_id, safe='')}"

    async def _call(
        self,
        method: str,
        url: str,
        token: TokenSource,
        *,
        body: dict[str, Any] | None = None,
        if_match: str | None = None,
    ) -> Answer:
        """One bearer call with a JSON body (``ProviderHttp.authorized``: the 401 rule)."""
        headers = {"If-Match": if_match} if if_match is not None else None
        return await self._http.authorized(
            method, url, token, operation=Operation.WRITE_EVENT, headers=headers, body=body
        )

    def _event(self, answer: Answer, ok: Collection[int] = (200,)) -> EventData:
        if answer.status not in ok:
            raise_write_error(answer, self._translate)
        return parse_event(answer.json(), None)

    async def create(
        self, token: TokenSource, calendar_id: str, draft: EventDraft, *, write_id: str
    ) -> EventData:
        """events.insert with the write's own id; a ``409`` reads the event an earlier attempt made."""
        event_id = google_event_id(write_id)
        body = {**event_body(draft), "id": event_id}
        answer = await self._call("POST", self._events_url(calendar_id), token, body=body)
        if answer.status != 409:
            return self._event(answer)
        existing = await self._call("GET", self._events_url(calendar_id, event_id), token)
        if existing.status == 404:  # the id is taken, but not readable yet
            raise Unavailable(
                "google: insert answered 409 duplicate, yet the event is not readable", status=404
            )
        if existing.status != 200:
            raise_write_error(existing, self._translate)
        item = existing.json()
        if is_deletion(item):
            raise EventNotFound("google: the event this write created was deleted since", status=410)
        return parse_event(item, None)

    async def update(
        self,
        token: TokenSource,
        calendar_id: str,
        event_id: str,
        draft: EventDraft,
        *,
        if_match: str | None = None,
        original_start: EventTime | None = None,
    ) -> EventData:
        """events.patch of ``draft.fields``, on the occurrence's instance id with ``original_start``."""
        target = instance_id(event_id, original_start) if original_start is not None else event_id
        body = event_body(draft, patch=True)
        url = self._events_url(calendar_id, target)
        return self._event(await self._call("PATCH", url, token, body=body, if_match=if_match))

    async def delete(
        self,
        token: TokenSource,
        calendar_id: str,
        event_id: str,
        *,
        if_match: str | None = None,
        original_start: EventTime | None = None,
    ) -> None:
        """events.delete (cancels the occurrence with ``original_start``); gone already is done."""
        target = instance_id(event_id, original_start) if original_start is not None else event_id
        answer = await self._call("DELETE", self._events_url(calendar_id, target), token, if_match=if_match)
        if answer.status in (200, 204, 404, 410):
            return
        raise_write_error(answer, self._translate)
