"""CalDAV write-back: ``PUT`` and ``DELETE`` of calendar resources (RFC 4791 §5.3.2, RFC 7232).

The :class:`~chronapilot.common.providers.writes.EventWrites` contract for iCloud. Ids are the
sync's (:mod:`chronapilot.common.providers.icloud.parse`): the calendar is the collection's
absolute URL, an event the resource's path (percent-decoded), an override ``path#<RECURRENCE-ID>``.

- **create**: ``PUT <calendar>/<write_id>.ics`` with ``If-None-Match: *``, UID
  ``<write_id>@chronapilot``, ``SEQUENCE:0``. A retry of a create that reached the server answers
  ``412``: the resource already there is read and returned (never a second event).
- **update**: ``GET`` the resource, change the VEVENT's fields named in ``draft.fields``
  (``SEQUENCE`` + 1, ``DTSTAMP``/``LAST-MODIFIED`` now), ``PUT`` it back with ``If-Match`` (the
  caller's etag when given, else the one just read). With ``original_start`` the change goes into
  the override VEVENT of that occurrence (``RECURRENCE-ID`` written like the master's
  ``DTSTART``: same ``TZID``, or ``VALUE=DATE``), added from the master when there is none yet.
- **delete**: ``DELETE`` with ``If-Match`` when given (``404``: already gone). With
  ``original_start`` one occurrence is cancelled: an ``EXDATE`` on the master (its override, if
  any, dropped), ``PUT`` with ``If-Match``.

Every write reads the stored resource afterwards (``GET``: the server may have changed what it
stored, and the etag is the one of what it holds) and answers with it parsed as a sync parses it.

Times are written in the zone the caller chose (``DTSTART;TZID=<IANA zone>`` with a generated
``VTIMEZONE``), UTC when it named none, ``VALUE=DATE`` all-day; ``DTEND`` is always written
(iCloud refuses a ``DTSTART`` without ``DTEND``/``DURATION``).

Errors (:func:`write_error`): ``412`` → ``PreconditionFailed``; ``403`` → ``WriteRefused`` with
``read_only`` (or ``invalid`` when the body names a CalDAV precondition such as
``valid-calendar-data``); ``400``/``409``/``413``/``415``/``422`` → ``WriteRefused("invalid")``;
``404`` → ``EventNotFound``; ``401`` (twice) → ``InvalidCredentials``; ``429``/``503`` →
``Throttled`` (``Retry-After`` when given); other 5xx → ``Unavailable``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import icalendar
import recurring_ical_events

from chronapilot.common.errors import ProviderError
from chronapilot.common.providers.errors import (
    InvalidCredentials,
    Throttled,
    Unavailable,
    retry_after_seconds,
)
from chronapilot.common.providers.http import Answer, header
from chronapilot.common.providers.icloud.parse import (
    etag_listing,
    event_time,
    href_key,
    instance_key,
    parse_resource,
)
from chronapilot.common.providers.icloud.sync import DavRequests
from chronapilot.common.providers.sync import Attendee, EventData, EventTime
from chronapilot.common.providers.writes import (
    DRAFT_FIELDS,
    EventDraft,
    EventNotFound,
    PreconditionFailed,
    WriteRefused,
)
from chronapilot.common.providers.zones import open_zone

PRODID = "-//ChronaPilot//write-back//EN"
#: The UID of a created event is ``<write_id>@`` this.
UID_DOMAIN = "chronapilot"
RECURRENCE_PROPERTIES = ("RRULE", "EXRULE", "RDATE", "EXDATE")

_ICS = {"Content-Type": "text/calendar; charset=utf-8", "Accept": "text/calendar"}
_ANY_STATUS = range(100, 600)
_ETAG_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
)
#: RFC 4791 §5.3.2.1 / §9 preconditions that mean "this data cannot be stored" (not "no rights").
_INVALID_CONDITIONS = re.compile(
    rb"valid-calendar-data|supported-calendar-data|valid-calendar-object-resource|"
    rb"supported-calendar-component|no-uid-conflict|max-resource-size|min-date-time|max-date-time|"
    rb"max-instances|max-attendees-per-instance"
)
_PARTSTAT = {
    "needsAction": "NEEDS-ACTION",
    "accepted": "ACCEPTED",
    "declined": "DECLINED",
    "tentative": "TENTATIVE",
}


# ids and URLs ---------------------------------------------------------------------------------


def collection_url(calendar_id: str) -> str:
    """The calendar's URL with its trailing slash."""
    return calendar_id if calendar_id.endswith("/") else calendar_id + "/"


def resource_url(calendar_id: str, write_id: str) -> str:
    """Where a create with ``write_id`` puts its resource: ``<calendar>/<write_id>.ics``."""
    return collection_url(calendar_id) + quote(write_id, safe="") + ".ics"


def resource_uid(write_id: str) -> str:
    """The UID of the event a create with ``write_id`` makes."""
    return f"{write_id}@{UID_DOMAIN}"


def split_event_id(calendar_id: str, event_id: str) -> tuple[str, str, str | None]:
    """``(resource URL, resource id, instance key or None)`` of an event id (``path`` or
    ``path#<RECURRENCE-ID>``, as the sync names events; a full URL is taken too)."""
    resource, _, key = event_id.partition("#")
    base = urlsplit(collection_url(calendar_id))
    path = urlsplit(resource).path if "://" in resource else resource
    if not path.startswith("/"):
        path = base.path + path
    url = f"{base.scheme}://{base.netloc}{quote(path)}"
    return url, href_key(url, url), key or None


def occurrence_from_key(key: str) -> EventTime:
    """The ``original_start`` an override id's key names (``20260316T080000Z`` or ``20260316``)."""
    try:
        if "T" in key:
            return EventTime(datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC), None, None)
        return EventTime(None, datetime.strptime(key, "%Y%m%d").date(), None)
    except ValueError:
        raise EventNotFound(f"icloud: {key!r} names no occurrence") from None


# errors ---------------------------------------------------------------------------------------


def write_error(status: int, headers: Mapping[str, str], body: bytes = b"") -> ProviderError:
    """A CalDAV answer to a write (or to the reads around it) as the error it means."""
    message = f"icloud: CalDAV answered {status}"
    if status == 401:
        return InvalidCredentials("icloud: the Apple ID or app-specific password was refused")
    if status == 412:
        return PreconditionFailed()
    if status == 404:
        return EventNotFound()
    if status in (403, 409) and _INVALID_CONDITIONS.search(body):
        condition = _INVALID_CONDITIONS.search(body)
        assert condition is not None
        return WriteRefused(
            f"{message}: the server refused the event ({condition.group().decode()})",
            reason="invalid",
            status=status,
        )
    if status == 403:
        return WriteRefused(f"{message}: the calendar is read-only", reason="read_only", status=status)
    if status in (400, 409, 413, 415, 422):
        return WriteRefused(f"{message}: the server refused the event", reason="invalid", status=status)
    if status in (429, 503):
        retry_after = retry_after_seconds(header(headers, "Retry-After"))
        return Throttled(message, status=status, retry_after=retry_after)
    if status >= 500:
        return Unavailable(message, status=status)
    return ProviderError(message, status=status)


def checked(answer: Answer, ok: Iterable[int]) -> Answer:
    """``answer`` if its status is in ``ok``; else :func:`write_error` is raised."""
    if answer.status not in set(ok):
        raise write_error(answer.status, answer.headers, answer.body)
    return answer


def _invalid(message: str) -> WriteRefused:
    return WriteRefused(f"icloud: {message}", reason="invalid")


# iCalendar ------------------------------------------------------------------------------------


def ical_time(time: EventTime) -> date | datetime:
    """An :class:`EventTime` as iCalendar writes it: a date (all-day), a wall time in the zone
    it names (``TZID``), or UTC."""
    if time.date is not None:
        return time.date
    if time.date_time is None:
        raise _invalid("a time has neither a date nor a date-time")
    instant = time.date_time if time.date_time.tzinfo is not None else time.date_time.replace(tzinfo=UTC)
    if time.timezone is None or time.timezone == "UTC":
        return instant.astimezone(UTC)
    zone = open_zone(time.timezone)
    if zone is None:
        raise _invalid(f"unknown time zone {time.timezone!r}")
    if zone.key == "UTC":
        return instant.astimezone(UTC)
    return instant.astimezone(zone)


def _time_like(template: date | datetime, time: EventTime) -> date | datetime:
    """``time`` written like ``template`` (a master's ``DTSTART``): a date, a wall time in the
    template's zone, or floating (the parser reads floating times as UTC)."""
    if not isinstance(template, datetime):
        if time.date is not None:
            return time.date
        assert time.date_time is not None
        return time.date_time.astimezone(UTC).date()
    if time.date_time is None:
        raise EventNotFound("icloud: a timed series has no all-day occurrence")
    instant = time.date_time if time.date_time.tzinfo is not None else time.date_time.replace(tzinfo=UTC)
    if template.tzinfo is None:
        return instant.astimezone(UTC).replace(tzinfo=None)
    return instant.astimezone(template.tzinfo)


def _key_of(value: date | datetime) -> str:
    stamp = icalendar.vDDDTypes(value)
    time = event_time(stamp)
    assert time is not None
    return instance_key(time)


def _first(component: icalendar.cal.Component, name: str) -> Any:
    value = component.get(name)
    return value[0] if isinstance(value, list) else value


def _recurrence_properties(lines: Iterable[str]) -> list[tuple[str, Any]]:
    """RRULE/EXRULE/RDATE/EXDATE content lines (``EXDATE;TZID=Europe/Berlin:20260316T090000``)
    as iCalendar properties, parsed by icalendar itself."""
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        return []
    text = "BEGIN:VEVENT\r\n" + "\r\n".join(lines) + "\r\nEND:VEVENT\r\n"
    try:
        holder = icalendar.Event.from_ical(text)
    except ValueError as exc:
        raise _invalid(f"a recurrence line does not parse: {exc}") from None
    properties: list[tuple[str, Any]] = []
    for name, value in holder.property_items(recursive=False):
        if name in ("BEGIN", "END"):
            continue
        if name not in RECURRENCE_PROPERTIES:
            raise _invalid(f"{name} is not a recurrence line")
        properties.append((name, value))
    if len(properties) != len(lines):
        raise _invalid("a recurrence line does not parse")
    return properties


def _attendee(person: Attendee) -> icalendar.vCalAddress:
    address = icalendar.vCalAddress(f"mailto:{person.email}")
    if person.name:
        address.params["CN"] = person.name
    address.params["ROLE"] = "OPT-PARTICIPANT" if person.optional else "REQ-PARTICIPANT"
    address.params["PARTSTAT"] = _PARTSTAT.get(person.response_status, "NEEDS-ACTION")
    return address


def _organizer(person: Attendee) -> icalendar.vCalAddress:
    address = icalendar.vCalAddress(f"mailto:{person.email}")
    if person.name:
        address.params["CN"] = person.name
    return address


def _set_text(event: icalendar.Event, name: str, value: str | None) -> None:
    event.pop(name, None)
    if value:
        event.add(name, value)


def _set_times(event: icalendar.Event, draft: EventDraft, fields: frozenset[str]) -> None:
    old_start = _first(event, "DTSTART")
    old_end = _first(event, "DTEND")
    if "start" in fields:
        if draft.start is None:
            raise _invalid("an event needs a start")
        start = ical_time(draft.start)
        event.pop("DTSTART", None)
        event.add("dtstart", start)
    start_prop = _first(event, "DTSTART")
    if start_prop is None:
        raise _invalid("the stored event has no start")
    start = start_prop.dt
    if "end" in fields and draft.end is not None:
        end = ical_time(draft.end)
    elif "end" not in fields and old_end is not None and old_start is not None and "start" in fields:
        # the start moved alone: the event keeps its length (when the kind of time stays)
        if isinstance(old_start.dt, datetime) == isinstance(start, datetime):
            end = start + (_comparable(old_end.dt) - _comparable(old_start.dt))
        else:
            end = start if isinstance(start, datetime) else start + timedelta(days=1)
    elif "end" not in fields and old_end is not None:
        return
    else:  # no end given (or cleared): zero length, a day when all-day (iCloud needs a DTEND)
        duration = _first(event, "DURATION")
        if duration is not None and "end" not in fields:
            return
        end = start if isinstance(start, datetime) else start + timedelta(days=1)
    if isinstance(end, datetime) != isinstance(start, datetime):
        raise _invalid("the start and the end must both be dates or both be date-times")
    if _comparable(end) < _comparable(start):
        raise _invalid("the event ends before it starts")
    event.pop("DTEND", None)
    event.pop("DURATION", None)
    event.add("dtend", end)


def _comparable(value: date | datetime) -> date | datetime:
    """Floating date-times read as UTC (as the parser reads them), so any two compare."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def apply_draft(event: icalendar.Event, draft: EventDraft, *, master: bool) -> None:
    """The fields of ``draft.fields`` written into ``event`` (a master or an override)."""
    fields = draft.fields
    if "title" in fields:
        _set_text(event, "SUMMARY", draft.title)
    if "description" in fields:
        _set_text(event, "DESCRIPTION", draft.description)
    if "location" in fields:
        _set_text(event, "LOCATION", draft.location)
    if "start" in fields or "end" in fields or "DTEND" not in event:
        _set_times(event, draft, fields)
    if "recurrence" in fields:
        if not master and draft.recurrence:
            raise _invalid("one occurrence of a series cannot recur itself")
        if master:
            for name in RECURRENCE_PROPERTIES:
                event.pop(name, None)
            for name, value in _recurrence_properties(draft.recurrence):
                event.add(name, value)
    if "attendees" in fields:
        event.pop("ATTENDEE", None)
        for person in draft.attendees:
            event.add("attendee", _attendee(person))
        organizer = next((person for person in draft.attendees if person.organizer), None)
        if organizer is not None:
            event.pop("ORGANIZER", None)
            event.add("organizer", _organizer(organizer))


def _stamp(event: icalendar.Event, now: datetime) -> None:
    for name in ("DTSTAMP", "LAST-MODIFIED"):
        event.pop(name, None)
        event.add(name, now.astimezone(UTC))


def _bump(event: icalendar.Event, now: datetime) -> None:
    sequence = _first(event, "SEQUENCE")
    event.pop("SEQUENCE", None)
    event.add("sequence", int(sequence) + 1 if sequence is not None else 1)
    _stamp(event, now)


def _new_calendar() -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    return calendar


def new_resource(draft: EventDraft, *, uid: str, now: datetime) -> icalendar.Calendar:
    """The calendar resource a create writes: one VEVENT with every field of ``draft``."""
    if draft.start is None:
        raise _invalid("an event needs a start")
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("sequence", 0)
    event.add("created", now.astimezone(UTC))
    _stamp(event, now)
    apply_draft(event, replace(draft, fields=DRAFT_FIELDS), master=True)
    calendar = _new_calendar()
    calendar.add_component(event)
    return calendar


#: How far a generated VTIMEZONE reaches before the earliest start and after the latest one
#: (it covers 2038 at least, icalendar's default end).
_ZONE_MARGIN = timedelta(days=366)
_ZONE_HORIZON = timedelta(days=366 * 20)


def serialize(calendar: icalendar.Calendar) -> str:
    """The resource as text, with a VTIMEZONE for every TZID it uses, reaching from a year
    before its earliest start (a short one: a zone's whole history since 1970 is kilobytes)."""
    starts = [
        value if not isinstance(value, datetime) else value.date()
        for event in _events(calendar)
        if (value := getattr(_first(event, "DTSTART"), "dt", None)) is not None
    ]
    first = min(starts, default=date(1970, 1, 2)) - _ZONE_MARGIN
    last = max(date(2038, 1, 1), max(starts, default=first) + _ZONE_HORIZON)
    calendar.add_missing_timezones(first_date=max(first, date(1970, 1, 1)), last_date=last)
    return str(calendar.to_ical().decode("utf-8"))


def read_calendar(data: str) -> icalendar.Calendar:
    try:
        return icalendar.Calendar.from_ical(data)
    except ValueError:
        raise ProviderError("icloud: the stored resource is not valid iCalendar data") from None


def _events(calendar: icalendar.Calendar) -> list[icalendar.Event]:
    return [component for component in calendar.subcomponents if isinstance(component, icalendar.Event)]


def master_of(calendar: icalendar.Calendar) -> icalendar.Event | None:
    return next((event for event in _events(calendar) if "RECURRENCE-ID" not in event), None)


def override_of(calendar: icalendar.Calendar, key: str) -> icalendar.Event | None:
    """The override VEVENT whose RECURRENCE-ID is the occurrence ``key`` (:func:`instance_key`)."""
    for event in _events(calendar):
        rid = event_time(_first(event, "RECURRENCE-ID"))
        if rid is not None and instance_key(rid) == key:
            return event
    return None


def _recurs(master: icalendar.Event) -> bool:
    return "RRULE" in master or "RDATE" in master


def is_occurrence(calendar: icalendar.Calendar, master: icalendar.Event, key: str) -> bool:
    """Whether the series ``master`` generates the occurrence ``key`` (EXDATEs excluded)."""
    if not _recurs(master):
        return False
    start = _first(master, "DTSTART").dt
    when = occurrence_from_key(key)
    if when.date is not None:
        low: date | datetime = when.date - timedelta(days=1)
        high: date | datetime = when.date + timedelta(days=2)
    else:
        assert when.date_time is not None
        low, high = when.date_time - timedelta(days=2), when.date_time + timedelta(days=2)
        if isinstance(start, datetime) and start.tzinfo is None:
            low, high = low.replace(tzinfo=None), high.replace(tzinfo=None)
    series = _new_calendar()
    series.add_component(master)
    for occurrence in recurring_ical_events.of(series).between(low, high):
        rid = _first(occurrence, "RECURRENCE-ID") or _first(occurrence, "DTSTART")
        if rid is not None and _key_of(rid.dt) == key:
            return True
    return False


def override_for(calendar: icalendar.Calendar, key: str) -> icalendar.Event:
    """The override VEVENT of occurrence ``key``: the one there, or a new one made from the master
    (its fields, no recurrence, ``RECURRENCE-ID`` like its ``DTSTART``); ``EventNotFound`` when the
    series has no such occurrence."""
    existing = override_of(calendar, key)
    if existing is not None:
        return existing
    master = master_of(calendar)
    if master is None or not is_occurrence(calendar, master, key):
        raise EventNotFound("icloud: the series has no such occurrence")
    master_start = _first(master, "DTSTART").dt
    original = _time_like(master_start, occurrence_from_key(key))
    override = icalendar.Event()
    for name, value in master.property_items(recursive=False):
        if name in ("BEGIN", "END", "DTSTART", "DTEND", "DURATION", "SEQUENCE", *RECURRENCE_PROPERTIES):
            continue
        override.add(name, value)
    override.add("recurrence-id", original)
    override.add("dtstart", original)
    master_end = _first(master, "DTEND")
    duration = _first(master, "DURATION")
    if master_end is not None:
        length = master_end.dt - master_start
    elif duration is not None:
        length = duration.dt
    else:
        length = timedelta(days=1) if not isinstance(master_start, datetime) else timedelta(0)
    override.add("dtend", original + length)
    sequence = _first(master, "SEQUENCE")
    override.add("sequence", int(sequence) if sequence is not None else 0)
    calendar.add_component(override)
    return override


def cancel_occurrence(calendar: icalendar.Calendar, key: str, *, now: datetime) -> bool:
    """Occurrence ``key`` cancelled in ``calendar``: an EXDATE on the master, its override dropped.
    False when there was nothing to cancel (already excluded, never an occurrence)."""
    override = override_of(calendar, key)
    master = master_of(calendar)
    if master is None:
        if override is None:
            return False
        calendar.subcomponents.remove(override)
        return True
    if override is None and not is_occurrence(calendar, master, key):
        return False
    if override is not None:
        calendar.subcomponents.remove(override)
    master_start = _first(master, "DTSTART").dt
    excluded = _time_like(master_start, occurrence_from_key(key))
    if key not in _excluded_keys(master):
        master.add("exdate", excluded)
    _bump(master, now)
    return True


def _excluded_keys(master: icalendar.Event) -> set[str]:
    values = master.get("EXDATE")
    lists = values if isinstance(values, list) else [values] if values is not None else []
    return {_key_of(item.dt) for exdate in lists for item in exdate.dts}


# the requests ---------------------------------------------------------------------------------


class ICloudWrites:
    """The writes to one calendar collection over :class:`~.sync.DavRequests`."""

    def __init__(self, dav: DavRequests, calendar_id: str, *, now: datetime | None = None) -> None:
        self._dav = dav
        self._calendar = collection_url(calendar_id)
        self._now = now

    def _clock(self) -> datetime:
        return self._now or datetime.now(UTC)

    async def create(self, draft: EventDraft, *, write_id: str) -> EventData:
        url = resource_url(self._calendar, write_id)
        uid = resource_uid(write_id)
        body = serialize(new_resource(draft, uid=uid, now=self._clock()))
        answer = await self._put(url, body, {"If-None-Match": "*"})
        resource_id = href_key(url, url)
        etag, data = await self._get(url)
        if answer.status == 412:  # an earlier attempt created it: that one is the event
            stored = master_of(read_calendar(data))
            if stored is None or str(_first(stored, "UID")) != uid:
                raise ProviderError(f"icloud: {resource_id} holds another event than write {write_id!r}")
        return self._event(resource_id, etag, data, resource_id)

    async def update(
        self,
        event_id: str,
        draft: EventDraft,
        *,
        if_match: str | None,
        original_start: EventTime | None,
    ) -> EventData:
        url, resource_id, key = split_event_id(self._calendar, event_id)
        if original_start is not None:
            key = instance_key(_normalized(original_start))
        etag, data = await self._get(url)
        calendar = read_calendar(data)
        now = self._clock()
        if key is None:
            target = master_of(calendar)
            if target is None:
                raise EventNotFound("icloud: the resource holds only occurrences; name one")
            wanted = resource_id
        else:
            target = override_for(calendar, key)
            wanted = f"{resource_id}#{key}"
        apply_draft(target, draft, master=key is None)
        _bump(target, now)
        answer = await self._put(url, serialize(calendar), _if_match(if_match or etag))
        checked(answer, (200, 201, 204))
        etag, data = await self._get(url)
        return self._event(resource_id, etag, data, wanted)

    async def delete(self, event_id: str, *, if_match: str | None, original_start: EventTime | None) -> None:
        url, _, key = split_event_id(self._calendar, event_id)
        if original_start is not None:
            key = instance_key(_normalized(original_start))
        if key is None:
            answer = await self._dav.call(
                "DELETE", url, "", depth=None, ok=_ANY_STATUS, headers=_if_match(if_match)
            )
            if answer.status != 404:
                checked(answer, (200, 202, 204))
            return
        try:
            etag, data = await self._get(url)
        except EventNotFound:
            return  # the whole series is gone, the occurrence with it
        calendar = read_calendar(data)
        if not cancel_occurrence(calendar, key, now=self._clock()):
            return
        if not _events(calendar):  # the resource held that occurrence alone
            answer = await self._dav.call(
                "DELETE", url, "", depth=None, ok=_ANY_STATUS, headers=_if_match(if_match or etag)
            )
            if answer.status != 404:
                checked(answer, (200, 202, 204))
            return
        answer = await self._put(url, serialize(calendar), _if_match(if_match or etag))
        checked(answer, (200, 201, 204))

    # requests ---------------------------------------------------------------------------------

    async def _put(self, url: str, body: str, conditions: Mapping[str, str]) -> Answer:
        answer = await self._dav.call(
            "PUT", url, body, depth=None, ok=_ANY_STATUS, headers={**_ICS, **conditions}
        )
        if answer.status == 412 and "If-None-Match" in conditions:
            return answer
        return checked(answer, (200, 201, 204))

    async def _get(self, url: str) -> tuple[str | None, str]:
        """The resource's etag and data (``EventNotFound`` when it is gone)."""
        answer = checked(
            await self._dav.call("GET", url, "", depth=None, ok=_ANY_STATUS, headers=_ICS), (200,)
        )
        etag = header(answer.headers, "ETag")
        if not etag:  # a server need not send it on GET: ask for the property
            listed = checked(
                await self._dav.call("PROPFIND", url, _ETAG_BODY, depth="0", ok=_ANY_STATUS), (207,)
            )
            etag = next(iter(etag_listing(listed.body, self._calendar).values()), None)
        try:
            return etag, answer.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ProviderError("icloud: the stored resource is not UTF-8") from None

    @staticmethod
    def _event(resource_id: str, etag: str | None, data: str, wanted: str) -> EventData:
        events = parse_resource(resource_id, etag, data)
        found = next((event for event in events if event.provider_event_id == wanted), None)
        if found is None:
            raise EventNotFound(f"icloud: {wanted} is not in the stored resource")
        return found


def _if_match(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag else {}


def _normalized(time: EventTime) -> EventTime:
    """An occurrence's start as the ids name it: a date, or the instant in UTC."""
    if time.date is not None:
        return EventTime(None, time.date, None)
    if time.date_time is None:
        raise EventNotFound("icloud: an occurrence needs a start")
    instant = time.date_time if time.date_time.tzinfo is not None else time.date_time.replace(tzinfo=UTC)
    return EventTime(instant.astimezone(UTC), None, None)
