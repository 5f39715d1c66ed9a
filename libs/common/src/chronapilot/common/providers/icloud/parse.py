"""CalDAV payloads: WebDAV multistatus answers and iCalendar resources as ``EventData``.

Pure functions, no I/O, tested on recorded payloads.

- :func:`sync_answer`: a ``sync-collection`` REPORT answer (RFC 6578): changed members (a
  ``getetag`` propstat), removed ones (a bare ``404``), the new ``sync-token``, and whether the
  server truncated the answer (``507`` on the collection's own response: ask again with the
  new token). The collection's own href is skipped (iCloud lists it among the changes).
- :func:`etag_listing`: a ``PROPFIND Depth: 1`` answer as ``{href: etag}`` (the ctag fallback).
- :func:`multiget_answer`: a ``calendar-multiget`` answer: per href the etag and the
  ``calendar-data``, or a ``404`` (never fail the whole batch for one).
- :func:`principal_href`, :func:`calendar_home_href`, :func:`calendar_collections`: account
  discovery's ``PROPFIND`` answers (RFC 5397, RFC 4791 §6.2.1, the home's ``Depth: 1`` listing).
  Every response carrying the property counts, whatever its href (iCloud has answered ``/principal/``
  for ``/<dsid>/principal/``); only ``200`` propstats are read (iCloud sends ``404`` ones for
  unknown properties, and empty ``<prop/>`` blocks).
- :func:`parse_resource`: one calendar resource (RFC 4791 §4.1: one UID, a master and its
  ``RECURRENCE-ID`` overrides) as one :class:`EventData` per VEVENT. Ids: the href for the master
  (or a lone event), ``href#<RECURRENCE-ID>`` for an override, the RECURRENCE-ID in UTC
  (``20260316T080000Z``) or as a date (``20260316``) when all-day.

Hrefs are compared as paths, percent-decoded (servers differ in escaping ``@``); requests send
them back as the server wrote them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import icalendar

from chronapilot.common.errors import ProviderError
from chronapilot.common.providers.base import CalendarInfo
from chronapilot.common.providers.sync import OPAQUE, TRANSPARENT, Attendee, EventData, EventTime
from chronapilot.common.providers.zones import iana_zone

_DAV = "{DAV:}"
_CALDAV = "{urn:ietf:params:xml:ns:caldav}"
_CS = "{http://calendarserver.org/ns/}"
_APPLE = "{http://apple.com/ns/ical/}"
_WRITE_PRIVILEGES = frozenset({f"{_DAV}write", f"{_DAV}write-content", f"{_DAV}all"})
_TZID = re.compile(r"^TZID:(.+)$", re.MULTILINE)
#: Where a calendar without ``calendar-order`` goes: after the ordered ones.
_UNORDERED = 1 << 30
_RECURRENCE_LINES = ("RRULE", "EXRULE", "RDATE", "EXDATE")
_PARTSTAT = {
    "NEEDS-ACTION": "needsAction",
    "ACCEPTED": "accepted",
    "DECLINED": "declined",
    "TENTATIVE": "tentative",
}
_STATUSES = {"CONFIRMED": "confirmed", "TENTATIVE": "tentative", "CANCELLED": "cancelled"}


def href_key(base_url: str, href: str) -> str:
    """The id of a member: its path, percent-decoded."""
    return unquote(urlsplit(urljoin(base_url, href)).path)


@dataclass
class SyncAnswer:
    """One ``sync-collection`` answer."""

    changed: dict[str, str] = field(default_factory=dict)  # href as sent -> etag
    removed: list[str] = field(default_factory=list)  # hrefs as sent
    sync_token: str | None = None
    truncated: bool = False


def _root(body: bytes) -> ET.Element:
    try:
        # ElementTree never fetches external entities, and expat >= 2.4.1 (Python 3.11 bundles a
        # later one) refuses billion-laughs and quadratic-blowup entity expansions.
        return ET.fromstring(body)  # noqa: S314
    except ET.ParseError:
        raise ProviderError("icloud: the CalDAV server answered with XML that does not parse") from None


_STATUS = re.compile(r"[0-9]{3}")


def _status_code(text: str | None) -> int | None:
    """``HTTP/1.1 404 Not Found`` → 404; None for anything but three ASCII digits there."""
    parts = (text or "").split()
    return int(parts[1]) if len(parts) > 1 and _STATUS.fullmatch(parts[1]) else None


def _propstats(response: ET.Element) -> list[tuple[int | None, ET.Element]]:
    found = []
    for propstat in response.findall(f"{_DAV}propstat"):
        prop = propstat.find(f"{_DAV}prop")
        if prop is not None:
            found.append((_status_code(propstat.findtext(f"{_DAV}status")), prop))
    return found


def sync_answer(body: bytes, collection_url: str) -> SyncAnswer:
    """A ``sync-collection`` REPORT answer (207 multistatus)."""
    root = _root(body)
    own = href_key(collection_url, collection_url)
    answer = SyncAnswer(sync_token=(root.findtext(f"{_DAV}sync-token") or "").strip() or None)
    for response in root.findall(f"{_DAV}response"):
        href = (response.findtext(f"{_DAV}href") or "").strip()
        status = _status_code(response.findtext(f"{_DAV}status"))
        if not href:
            continue
        if href_key(collection_url, href) == own or href.endswith("/"):
            if status == 507:
                answer.truncated = True
            continue
        if status == 404:
            answer.removed.append(href)
            continue
        for code, prop in _propstats(response):
            etag = prop.findtext(f"{_DAV}getetag")
            if code in (None, 200) and etag:
                answer.changed[href] = etag.strip()
                break
        else:
            if status in (None, 200):  # a change without an etag: fetch it anyway
                answer.changed[href] = ""
    return answer


def collection_state(body: bytes) -> tuple[str | None, str | None]:
    """``(sync-token, ctag)`` of a ``PROPFIND Depth: 0`` answer on a collection."""
    root = _root(body)
    token = ctag = None
    for response in root.findall(f"{_DAV}response"):
        for code, prop in _propstats(response):
            if code not in (None, 200):
                continue
            token = token or (prop.findtext(f"{_DAV}sync-token") or "").strip() or None
            ctag = ctag or (prop.findtext(f"{_CS}getctag") or "").strip() or None
    return token, ctag


def etag_listing(body: bytes, collection_url: str) -> dict[str, str]:
    """A ``PROPFIND Depth: 1`` answer: ``{href as sent: etag}`` of the collection's members."""
    root = _root(body)
    own = href_key(collection_url, collection_url)
    listing: dict[str, str] = {}
    for response in root.findall(f"{_DAV}response"):
        href = (response.findtext(f"{_DAV}href") or "").strip()
        if not href or href.endswith("/") or href_key(collection_url, href) == own:
            continue
        for code, prop in _propstats(response):
            etag = prop.findtext(f"{_DAV}getetag")
            if code in (None, 200) and etag:
                listing[href] = etag.strip()
    return listing


@dataclass(frozen=True)
class Fetched:
    """One href of a multiget answer: its etag and data, or ``missing``."""

    href: str
    etag: str | None
    data: str | None

    @property
    def missing(self) -> bool:
        return self.data is None


def multiget_answer(body: bytes) -> list[Fetched]:
    """A ``calendar-multiget`` answer."""
    fetched = []
    for response in _root(body).findall(f"{_DAV}response"):
        href = (response.findtext(f"{_DAV}href") or "").strip()
        if not href:
            continue
        etag = data = None
        for code, prop in _propstats(response):
            if code in (None, 200):
                etag = etag or (prop.findtext(f"{_DAV}getetag") or "").strip() or None
                data = data or prop.findtext(f"{_CALDAV}calendar-data")
        fetched.append(Fetched(href, etag, data))
    return fetched


# discovery ---------------------------------------------------------------------------------


def join_href(base_url: str, href: str) -> str:
    """``href`` (as a discovery answer names it) as an absolute URL, from ``base_url``.

    An absolute path takes ``base_url``'s scheme and host; a relative one is appended to its path;
    an absolute URL on the same host keeps ``base_url``'s spelling of it, on another host (iCloud's
    partition host) it is taken as it is."""
    base, target = urlsplit(base_url), urlsplit(href)
    if target.netloc and target.hostname != base.hostname:
        return href
    if target.path.startswith("/"):
        path = target.path
    else:
        path = base.path + ("" if base.path.endswith("/") else "/") + target.path
    return urlunsplit((base.scheme, base.netloc, path, target.query, target.fragment))


def member_href(text: str) -> str:
    """A listing's ``<href>`` as a path, percent-decoded (and ``%2540``, a doubly encoded ``@``,
    read as ``@``): the form calendar ids have always had."""
    href = unquote(text.strip().replace("%2540", "%40"))
    return unquote(urlsplit(href).path) if ":" in href else href


def _props(body: bytes) -> list[tuple[str, dict[str, ET.Element]]]:
    """Each response's href and its properties found (``200`` propstats only)."""
    found = []
    for response in _root(body).findall(f"{_DAV}response"):
        props: dict[str, ET.Element] = {}
        for code, prop in _propstats(response):
            if code in (None, 200):
                props.update((child.tag, child) for child in prop)
        found.append(((response.findtext(f"{_DAV}href") or "").strip(), props))
    return found


def _first_href(body: bytes, name: str) -> str | None:
    for _, props in _props(body):
        element = props.get(name)
        hrefs = [] if element is None else [(h.text or "").strip() for h in element.findall(f"{_DAV}href")]
        if any(hrefs):
            return next(href for href in hrefs if href)
    return None


def principal_href(body: bytes) -> str | None:
    """The ``current-user-principal`` href of a ``PROPFIND Depth: 0`` answer (None: unnamed, or
    ``<unauthenticated/>``)."""
    return _first_href(body, f"{_DAV}current-user-principal")


def calendar_home_href(body: bytes) -> str | None:
    """The (first) ``calendar-home-set`` href of a principal's ``PROPFIND Depth: 0`` answer."""
    return _first_href(body, f"{_CALDAV}calendar-home-set")


def calendar_collections(body: bytes, home_url: str) -> list[CalendarInfo]:
    """The calendars holding events of a home's ``PROPFIND Depth: 1`` listing, in the user's
    order (``calendar-order``, then name).

    A member is one if its ``resourcetype`` has ``C:calendar`` and its
    ``supported-calendar-component-set``, when given, has ``VEVENT`` (the home itself, VTODO
    lists, inbox/outbox and notifications are not); read-only if ``current-user-privilege-set``,
    when given, has neither ``DAV:write``, ``write-content`` nor ``all``. Its id is its href
    joined to ``home_url``."""
    found: list[tuple[int, CalendarInfo]] = []
    for href, props in _props(body):
        resource_type = props.get(f"{_DAV}resourcetype")
        if not href or resource_type is None or resource_type.find(f"{_CALDAV}calendar") is None:
            continue
        components = props.get(f"{_CALDAV}supported-calendar-component-set")
        names = [] if components is None else [comp.get("name") for comp in components if comp.get("name")]
        if names and "VEVENT" not in names:
            continue
        privileges = props.get(f"{_DAV}current-user-privilege-set")
        granted = (
            set()
            if privileges is None
            else {leaf.tag for leaf in privileges.iter() if len(leaf) == 0 and leaf is not privileges}
        )
        url = join_href(home_url, member_href(href))
        found.append(
            (
                _order(_prop_text(props, f"{_APPLE}calendar-order")),
                CalendarInfo(
                    provider_calendar_id=url,
                    name=_prop_text(props, f"{_DAV}displayname") or url.rstrip("/").rsplit("/", 1)[-1],
                    primary=False,
                    read_only=privileges is not None and not (_WRITE_PRIVILEGES & granted),
                    timezone=_tzid(_prop_text(props, f"{_CALDAV}calendar-timezone")),
                    color=_prop_text(props, f"{_APPLE}calendar-color") or None,
                ),
            )
        )
    return [calendar for _, calendar in sorted(found, key=lambda pair: (pair[0], pair[1].name))]


def _prop_text(props: Mapping[str, ET.Element], name: str) -> str:
    element = props.get(name)
    return (element.text or "").strip() if element is not None else ""


def _order(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return _UNORDERED


def _tzid(calendar: str) -> str | None:
    match = _TZID.search(calendar)
    return match.group(1).strip() if match else None


# iCalendar -----------------------------------------------------------------------------------


def parse_resource(event_id: str, etag: str | None, data: str) -> list[EventData]:
    """Every VEVENT of one calendar resource; ``event_id`` is the resource's id (its href)."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError:
        raise ProviderError(f"icloud: {event_id} is not valid iCalendar data") from None
    raw = {"href": event_id, "etag": etag, "ics": data}
    return [_event(event_id, etag, component, raw) for component in calendar.walk("VEVENT")]


def _first(component: icalendar.cal.Component, name: str) -> Any:
    value = component.get(name)
    return value[0] if isinstance(value, list) else value


def _event(
    resource_id: str, etag: str | None, component: icalendar.cal.Component, raw: Mapping[str, Any]
) -> EventData:
    start = event_time(_first(component, "DTSTART"))
    end = _end(component, start)
    recurrence_id = event_time(_first(component, "RECURRENCE-ID"))
    event_id = resource_id if recurrence_id is None else f"{resource_id}#{instance_key(recurrence_id)}"
    status = str(_first(component, "STATUS") or "").upper()
    # RFC 5545 §3.8.2.7: OPAQUE unless said otherwise; CalDAV names no "self" attendee
    transparent = str(_first(component, "TRANSP") or "").upper() == "TRANSPARENT"
    return EventData(
        provider_event_id=event_id,
        ical_uid=_text(_first(component, "UID")),
        title=_text(_first(component, "SUMMARY")),
        description=_text(_first(component, "DESCRIPTION")),
        location=_text(_first(component, "LOCATION")),
        start=start,
        end=end,
        all_day=start is not None and start.date is not None,
        status=_STATUSES.get(status, "confirmed"),
        recurrence=() if recurrence_id is not None else _recurrence(component),
        recurring_event_id=resource_id if recurrence_id is not None else None,
        original_start=recurrence_id,
        organizer=_person(_first(component, "ORGANIZER"), organizer=True),
        attendees=tuple(
            person
            for person in (_person(value, organizer=False) for value in _all(component, "ATTENDEE"))
            if person is not None
        ),
        etag=etag,
        updated_at=_stamp(_first(component, "LAST-MODIFIED")) or _stamp(_first(component, "DTSTAMP")),
        raw=raw,
        transparency=TRANSPARENT if transparent else OPAQUE,
    )


def _recurrence(component: icalendar.cal.Component) -> tuple[str, ...]:
    """The master's RRULE/EXRULE/RDATE/EXDATE properties as content lines (``EXDATE;TZID=…:…``)."""
    return tuple(
        str(component.content_line(name, value)).rstrip("\r\n")
        for name in _RECURRENCE_LINES
        for value in _all(component, name)
    )


def _all(component: icalendar.cal.Component, name: str) -> list[Any]:
    value = component.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _zone_name(prop: Any, value: datetime) -> str | None:
    params: Mapping[str, Any] = getattr(prop, "params", {}) or {}
    tzid = params.get("TZID")
    if tzid:
        return iana_zone(str(tzid)) or _key(value.tzinfo)
    if value.tzinfo is not None and value.utcoffset() == timedelta(0) and _key(value.tzinfo) in (None, "UTC"):
        return "UTC"
    return _key(value.tzinfo)


def _key(zone: tzinfo | None) -> str | None:
    if isinstance(zone, ZoneInfo):
        return zone.key
    if zone is UTC:
        return "UTC"
    return iana_zone(str(zone)) if zone is not None else None


def event_time(prop: Any) -> EventTime | None:
    """An iCalendar date or date-time property as an :class:`EventTime` (floating: read as UTC)."""
    if prop is None:
        return None
    value = prop.dt
    if isinstance(value, datetime):
        zone_name = _zone_name(prop, value)
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # floating: read as UTC
        return EventTime(date_time=aware.astimezone(UTC), date=None, timezone=zone_name)
    if isinstance(value, date):
        return EventTime(date_time=None, date=value, timezone=None)
    return None


def _end(component: icalendar.cal.Component, start: EventTime | None) -> EventTime | None:
    end = event_time(_first(component, "DTEND"))
    if end is not None or start is None:
        return end
    duration = _first(component, "DURATION")
    length = duration.dt if duration is not None and isinstance(duration.dt, timedelta) else None
    if start.date is not None:
        return EventTime(None, start.date + (length or timedelta(days=1)), None)
    assert start.date_time is not None
    return EventTime(start.date_time + (length or timedelta(0)), None, start.timezone)


def instance_key(time: EventTime) -> str:
    """The RECURRENCE-ID part of an override's id: UTC ``20260316T080000Z``, or ``20260316``."""
    if time.date is not None:
        return time.date.strftime("%Y%m%d")
    assert time.date_time is not None
    return time.date_time.strftime("%Y%m%dT%H%M%SZ")


def _person(value: Any, *, organizer: bool) -> Attendee | None:
    if value is None:
        return None
    address = str(value)
    email = address[7:] if address.lower().startswith("mailto:") else address
    if not email:
        return None
    params: Mapping[str, Any] = getattr(value, "params", {}) or {}
    partstat = str(params.get("PARTSTAT") or ("ACCEPTED" if organizer else "NEEDS-ACTION")).upper()
    return Attendee(
        email=email,
        name=_text(params.get("CN")),
        response_status=_PARTSTAT.get(partstat, "needsAction"),
        optional=str(params.get("ROLE") or "").upper() in ("OPT-PARTICIPANT", "NON-PARTICIPANT"),
        organizer=organizer,
    )


def _stamp(prop: Any) -> datetime | None:
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return None


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
