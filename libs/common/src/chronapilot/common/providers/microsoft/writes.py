"""Microsoft write-back: Graph ``POST``/``PATCH``/``DELETE`` of events (the ``EventWrites`` contract
of :mod:`chronapilot.common.providers.writes`).

Requests (learn.microsoft.com/graph/api/calendar-post-events, …/event-update, …/event-delete):

- create: ``POST /me/calendars/{id}/events`` with ``transactionId`` = the write id → ``201``;
- change: ``PATCH /me/events/{id}`` with only the draft's fields → ``200`` with the item;
- delete: ``DELETE /me/events/{id}`` → ``204``; an item already gone (``404``) counts as deleted;
- one occurrence of a series: its own item id, found with ``GET /me/events/{master}/instances``
  over a window around the occurrence's original start and matched on ``originalStart``; a
  PATCH makes it an exception, a DELETE cancels it.

No duplicates. Graph documents ``transactionId`` as "a custom identifier specified by a client
app for the server to avoid redundant POST operations in case of client retries to create the
same event", but not what the retry is answered with, nor for how long it remembers the id. So
a create first looks for an event already carrying the id (``$filter=transactionId eq '…'`` on
the calendar's events; a Graph that refuses that filter with ``400`` is simply not asked), and
after a ``409`` looks again; only then does it POST. A retry after a lost answer therefore finds
its event whichever way Graph behaves.

Conditional writes: ``If-Match`` carries the caller's etag as Graph spells it (``W/"<changeKey>"``;
:class:`EventData` keeps the bare change key, which is wrapped); ``412`` (or ``409
ErrorIrresolvableConflict`` on a conditional write) is :class:`PreconditionFailed`.

Times are written as the wall time in the event's own zone with that zone
(``{"dateTime": "2026-03-02T09:30:00", "timeZone": "Asia/Kolkata"}``), and the answer is asked
for in that zone too (``Prefer: outlook.timezone``), so the parsed event keeps it even where
Graph's ``originalStartTimeZone`` is a name we cannot map. All-day events are ``isAllDay`` with
midnight starts and ends (end exclusive). Recurrence lines are RRULEs, translated to Graph's
``patternedRecurrence`` by :func:`graph_recurrence`; what Graph cannot express (EXDATE, RDATE,
several rules, BYHOUR …) is refused as ``WriteRefused(reason="invalid")``.

Refusals: ``403`` is ``WriteRefused`` — ``read_only`` when the calendar says ``canEdit: false``
(Graph answers ``ErrorAccessDenied`` both for that and for a token without
``Calendars.ReadWrite``, so the calendar is read to tell them apart), ``scope_insufficient``
otherwise; ``400`` is ``invalid`` with Graph's message. The rest goes through
:func:`~chronapilot.common.providers.microsoft.client.translate_error` (429/503 ``Throttled``,
5xx ``Unavailable``, 401 after one forced refresh ``InvalidCredentials``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from chronapilot.common.providers.base import TokenSource
from chronapilot.common.providers.http import Answer, ProviderHttp, Translate, parse_json_object
from chronapilot.common.providers.microsoft.parse import parse_event
from chronapilot.common.providers.sync import Attendee, EventData, EventTime
from chronapilot.common.providers.telemetry import Operation
from chronapilot.common.providers.writes import (
    DRAFT_FIELDS,
    EventDraft,
    EventNotFound,
    PreconditionFailed,
    WriteRefused,
)
from chronapilot.common.providers.zones import iana_zone, open_zone

#: How far around an occurrence's original start its series' instances are read.
OCCURRENCE_WINDOW = timedelta(days=1)
_MAX_PAGES = 20

_WEEKDAYS = {
    "MO": "monday",
    "TU": "tuesday",
    "WE": "wednesday",
    "TH": "thursday",
    "FR": "friday",
    "SA": "saturday",
    "SU": "sunday",
}
_WEEKDAY_OF = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INDEX = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
_RULE_PARTS = frozenset(
    {"FREQ", "INTERVAL", "BYDAY", "COUNT", "UNTIL", "WKST", "BYMONTHDAY", "BYMONTH", "BYSETPOS"}
)


def _invalid(message: str) -> WriteRefused:
    return WriteRefused(f"microsoft: {message}", reason="invalid")


# the request body ------------------------------------------------------------------------------


def event_body(draft: EventDraft, *, current_start: EventTime | None = None) -> dict[str, Any]:
    """The Graph event JSON for ``draft.fields`` (a create names every field).

    ``current_start``: the event's start at the provider, when a patch changes the recurrence
    but not the start (the pattern's start date and zone come from it)."""
    fields = draft.fields
    body: dict[str, Any] = {}
    if "title" in fields:
        body["subject"] = draft.title or ""
    if "description" in fields:
        body["body"] = {"contentType": "text", "content": draft.description or ""}
    if "location" in fields:
        body["location"] = {"displayName": draft.location or ""}
    if "start" in fields or "end" in fields:
        body.update(_times(draft, fields))
    if "attendees" in fields:
        body["attendees"] = [_attendee(a) for a in draft.attendees if not a.organizer]
    if "recurrence" in fields:
        start = draft.start if "start" in fields else current_start
        body["recurrence"] = graph_recurrence(draft.recurrence, start) if draft.recurrence else None
    return body


def _times(draft: EventDraft, fields: Collection[str]) -> dict[str, Any]:
    named = [(name, value) for name, value in (("start", draft.start), ("end", draft.end)) if name in fields]
    if any(value is None for _, value in named):
        raise _invalid("an event needs a start and an end")
    times = [value for _, value in named if value is not None]
    all_day = times[0].date is not None
    if any((value.date is not None) != all_day for value in times):
        raise _invalid("start and end must both be dates (all-day) or both be times")
    if len(times) == 2 and _sort_key(times[1]) < _sort_key(times[0]):
        raise _invalid("the end of an event must not be earlier than its start")
    body: dict[str, Any] = {name: graph_time(value) for name, value in named if value is not None}
    body["isAllDay"] = all_day
    return body


def _sort_key(value: EventTime) -> datetime:
    if value.date_time is not None:
        return value.date_time.astimezone(UTC)
    assert value.date is not None
    return datetime.combine(value.date, time(), UTC)


def graph_time(value: EventTime) -> dict[str, str]:
    """A ``dateTimeTimeZone``: the wall time in the event's zone (midnight for a date), no offset."""
    zone_name = event_zone(value)
    if value.date is not None:
        return {"dateTime": f"{value.date.isoformat()}T00:00:00", "timeZone": zone_name}
    if value.date_time is None:
        raise _invalid("a start or end has neither a date nor a time")
    instant = value.date_time if value.date_time.tzinfo else value.date_time.replace(tzinfo=UTC)
    wall = instant.astimezone(open_zone(zone_name) or UTC)
    return {"dateTime": wall.replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": zone_name}


def event_zone(value: EventTime | None) -> str:
    """The IANA zone an event time is written in (``UTC`` when it names none Graph would know)."""
    name = iana_zone(value.timezone) if value is not None else None
    return name if name is not None and open_zone(name) is not None else "UTC"


def _attendee(attendee: Attendee) -> dict[str, Any]:
    address: dict[str, str] = {"address": attendee.email}
    if attendee.name:
        address["name"] = attendee.name
    return {"emailAddress": address, "type": "optional" if attendee.optional else "required"}


# recurrence -------------------------------------------------------------------------------------


def graph_recurrence(lines: tuple[str, ...], start: EventTime | None) -> dict[str, Any]:
    """RRULE lines as Graph's ``patternedRecurrence`` (pattern + range, in the start's zone).

    Graph has one pattern per series and no EXDATE/RDATE: anything else is refused. Supported:
    ``FREQ`` DAILY, WEEKLY (``BYDAY``, ``WKST``), MONTHLY (``BYMONTHDAY``, or one ``BYDAY`` with an
    ordinal or with ``BYSETPOS``), YEARLY (``BYMONTH`` with ``BYMONTHDAY`` or such a ``BYDAY``);
    ``INTERVAL``; ``COUNT`` or ``UNTIL``."""
    rules = [line for line in lines if line.strip()]
    others = [line for line in rules if not line.strip().upper().startswith("RRULE:")]
    if others:
        kind = others[0].split(":", 1)[0].split(";", 1)[0]
        raise _invalid(f"Graph cannot store {kind} in a recurrence (only one RRULE)")
    if len(rules) != 1:
        raise _invalid("Graph stores one RRULE per series")
    if start is None:
        raise _invalid("a recurring event needs a start")
    parts = _rule_parts(rules[0].strip()[len("RRULE:") :])
    zone_name = event_zone(start)
    first = _first_day(start, zone_name)
    freq = parts.get("FREQ")
    try:
        interval = int(parts.get("INTERVAL", "1"))
    except ValueError:
        raise _invalid(f"INTERVAL={parts['INTERVAL']} is not a number") from None
    if interval < 1:
        raise _invalid("INTERVAL must be at least 1")
    pattern: dict[str, Any] = {"interval": interval, "firstDayOfWeek": _weekday(parts.get("WKST", "MO"))}
    days = _by_day(parts.get("BYDAY"))
    if "BYSETPOS" in parts and (freq not in ("MONTHLY", "YEARLY") or len(days) != 1 or days[0][0]):
        raise _invalid("BYSETPOS is only understood with one plain BYDAY in a MONTHLY or YEARLY rule")
    if freq == "DAILY":
        _only(parts, set())
        pattern["type"] = "daily"
    elif freq == "WEEKLY":
        _only(parts, {"BYDAY"})
        if any(ordinal for ordinal, _ in days):
            raise _invalid("a WEEKLY rule's BYDAY takes no ordinal")
        pattern["type"] = "weekly"
        pattern["daysOfWeek"] = [day for _, day in days] or [_WEEKDAY_OF[first.weekday()]]
    elif freq in ("MONTHLY", "YEARLY"):
        _only(parts, {"BYDAY", "BYMONTHDAY", "BYSETPOS"} | ({"BYMONTH"} if freq == "YEARLY" else set()))
        pattern.update(_monthly(parts, days, first, yearly=freq == "YEARLY"))
    else:
        raise _invalid(f"FREQ={freq} cannot be written to Graph (DAILY, WEEKLY, MONTHLY, YEARLY can)")
    return {"pattern": pattern, "range": _range(parts, first, zone_name, _start_time(start, zone_name))}


def _rule_parts(rule: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in rule.split(";"):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip().upper()
        if not sep or not value.strip():
            raise _invalid(f"the RRULE part {item!r} has no value")
        if name not in _RULE_PARTS:
            raise _invalid(f"the RRULE part {name} cannot be written to Graph")
        parts[name] = value.strip().upper()
    return parts


def _only(parts: Mapping[str, str], allowed: set[str]) -> None:
    extra = set(parts) - allowed - {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST"}
    if extra:
        raise _invalid(f"{', '.join(sorted(extra))} cannot be written to Graph with FREQ={parts['FREQ']}")


def _weekday(code: str) -> str:
    try:
        return _WEEKDAYS[code]
    except KeyError:
        raise _invalid(f"{code} is not a weekday") from None


def _by_day(value: str | None) -> list[tuple[int, str]]:
    if not value:
        return []
    days: list[tuple[int, str]] = []
    for item in value.split(","):
        code, number = item.strip()[-2:], item.strip()[:-2]
        try:
            ordinal = int(number) if number not in ("", "+") else 0
        except ValueError:
            raise _invalid(f"BYDAY={item} is not a weekday") from None
        days.append((ordinal, _weekday(code)))
    return days


def _monthly(
    parts: Mapping[str, str], days: list[tuple[int, str]], first: date, *, yearly: bool
) -> dict[str, Any]:
    pattern: dict[str, Any] = {}
    if yearly:
        month = _number(parts.get("BYMONTH", str(first.month)), "BYMONTH", 1, 12)
        pattern["month"] = month
    if days:
        ordinals = {ordinal for ordinal, _ in days} if "BYSETPOS" not in parts else {int(parts["BYSETPOS"])}
        if "BYMONTHDAY" in parts or len(ordinals) != 1 or next(iter(ordinals)) not in _INDEX:
            raise _invalid("a MONTHLY/YEARLY BYDAY needs one ordinal (1 to 4, or -1) for all its days")
        pattern["type"] = "relativeYearly" if yearly else "relativeMonthly"
        pattern["daysOfWeek"] = [day for _, day in days]
        pattern["index"] = _INDEX[next(iter(ordinals))]
        return pattern
    pattern["type"] = "absoluteYearly" if yearly else "absoluteMonthly"
    pattern["dayOfMonth"] = _number(parts.get("BYMONTHDAY", str(first.day)), "BYMONTHDAY", 1, 31)
    return pattern


def _number(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise _invalid(f"{name}={value} must be one number") from None
    if not low <= number <= high:
        raise _invalid(f"{name}={value} must be between {low} and {high}")
    return number


def _range(parts: Mapping[str, str], first: date, zone_name: str, start_time: time) -> dict[str, Any]:
    start = {"startDate": first.isoformat(), "recurrenceTimeZone": zone_name}
    if "COUNT" in parts and "UNTIL" in parts:
        raise _invalid("an RRULE has COUNT or UNTIL, not both")
    if "COUNT" in parts:
        count = _number(parts["COUNT"], "COUNT", 1, 999)
        return {"type": "numbered", "numberOfOccurrences": count, **start}
    if "UNTIL" in parts:
        return {
            "type": "endDate",
            "endDate": _until(parts["UNTIL"], zone_name, start_time).isoformat(),
            **start,
        }
    return {"type": "noEnd", **start}


def _until(value: str, zone_name: str, start_time: time) -> date:
    """The last day UNTIL lets an occurrence start on, in the series' zone (Graph's ``endDate``
    is a date, inclusive; UNTIL an instant, inclusive: an UNTIL before the series' time of day
    ends the series the day before)."""
    try:
        if "T" not in value:
            return datetime.strptime(value, "%Y%m%d").date()
        stamp = datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")
    except ValueError:
        raise _invalid(f"UNTIL={value} is not a date or a date-time") from None
    zone = open_zone(zone_name) or UTC
    instant = stamp.replace(tzinfo=UTC) if value.endswith("Z") else stamp.replace(tzinfo=zone)
    local = instant.astimezone(zone)
    return local.date() - timedelta(days=1) if local.time() < start_time else local.date()


def _first_day(start: EventTime, zone_name: str) -> date:
    if start.date is not None:
        return start.date
    assert start.date_time is not None
    return start.date_time.astimezone(open_zone(zone_name) or UTC).date()


def _start_time(start: EventTime, zone_name: str) -> time:
    if start.date_time is None:
        return time()
    return start.date_time.astimezone(open_zone(zone_name) or UTC).time()


_GRAPH_WEEKDAYS = {name: code for code, name in _WEEKDAYS.items()}
_GRAPH_INDEX = {name: number for number, name in _INDEX.items()}


def rrule_of(recurrence: object) -> tuple[str, ...]:
    """Graph's ``patternedRecurrence`` of a series master as one RRULE line (``()`` if none or
    unreadable): the answer to a recurring create keeps the rule the mirror shows."""
    if not isinstance(recurrence, Mapping):
        return ()
    pattern, rng = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    kind = str(pattern.get("type") or "")
    if kind not in (
        "daily",
        "weekly",
        "absoluteMonthly",
        "relativeMonthly",
        "absoluteYearly",
        "relativeYearly",
    ):
        return ()
    freq = {"daily": "DAILY", "weekly": "WEEKLY"}.get(kind) or ("MONTHLY" if "Monthly" in kind else "YEARLY")
    parts = [f"FREQ={freq}"]
    if int(pattern.get("interval") or 1) > 1:
        parts.append(f"INTERVAL={int(pattern['interval'])}")
    days = [_GRAPH_WEEKDAYS.get(str(day).lower(), "") for day in pattern.get("daysOfWeek") or ()]
    if kind.startswith("absolute") and kind.endswith("Yearly"):
        parts.append(f"BYMONTH={int(pattern.get('month') or 1)}")
    if kind.startswith("relative"):
        if kind == "relativeYearly":
            parts.append(f"BYMONTH={int(pattern.get('month') or 1)}")
        index = _GRAPH_INDEX.get(str(pattern.get("index") or "first"), 1)
        parts.append("BYDAY=" + ",".join(f"{index}{day}" for day in days if day))
    elif kind == "weekly" and days:
        parts.append("BYDAY=" + ",".join(day for day in days if day))
    elif kind.startswith("absolute"):
        parts.append(f"BYMONTHDAY={int(pattern.get('dayOfMonth') or 1)}")
    if rng.get("type") == "numbered":
        parts.append(f"COUNT={int(rng.get('numberOfOccurrences') or 1)}")
    elif rng.get("type") == "endDate" and rng.get("endDate"):
        parts.append("UNTIL=" + str(rng["endDate"]).replace("-", "")[:8])
    return ("RRULE:" + ";".join(parts),)


# the calls --------------------------------------------------------------------------------------


class MicrosoftWrites:
    """Creating, changing and deleting Graph events (see the module docstring)."""

    def __init__(
        self, http: ProviderHttp, graph_url: str, *, translate: Translate, same_origin: Callable[[str], str]
    ) -> None:
        self._http = http
        self._graph_url = graph_url
        self._translate = translate
        self._same_origin = same_origin

    async def create(
        self, token: TokenSource, calendar_id: str, draft: EventDraft, *, write_id: str
    ) -> EventData:
        if not write_id:
            raise ValueError("write_id is required")
        body = {**event_body(replace(draft, fields=DRAFT_FIELDS)), "transactionId": write_id}
        headers = _prefer(draft.start)
        existing = await self._by_transaction(token, calendar_id, write_id, headers)
        if existing is not None:
            return existing
        url = f"{self._calendar_url(calendar_id)}/events"
        answer = await self._call("POST", url, token, body=body, headers=headers)
        if answer.status == 409:
            existing = await self._by_transaction(token, calendar_id, write_id, headers)
            if existing is not None:
                return existing
        await self._check_write(answer, token, calendar_id, (200, 201))
        return _event(answer.json())

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
        headers = _prefer(draft.start if "start" in draft.fields else None)
        item_id = event_id
        if original_start is not None:
            occurrence = await self._occurrence(token, event_id, original_start)
            if occurrence is None:
                raise EventNotFound("microsoft: the series has no occurrence at that start")
            item_id = occurrence
        current_start: EventTime | None = None
        if "recurrence" in draft.fields and draft.recurrence and "start" not in draft.fields:
            current_start = (await self._get(token, item_id)).start
        body = event_body(draft, current_start=current_start)
        answer = await self._call(
            "PATCH", self._event_url(item_id), token, body=body, headers={**headers, **_if_match(if_match)}
        )
        if answer.status == 404:
            raise EventNotFound("microsoft: the event is not at the provider")
        await self._check_write(answer, token, calendar_id, (200,), conditional=if_match is not None)
        return _event(answer.json())

    async def delete(
        self,
        token: TokenSource,
        calendar_id: str,
        event_id: str,
        *,
        if_match: str | None = None,
        original_start: EventTime | None = None,
    ) -> None:
        item_id = event_id
        if original_start is not None:
            try:
                occurrence = await self._occurrence(token, event_id, original_start)
            except EventNotFound:
                return
            if occurrence is None:  # cancelled already (or never there): nothing to delete
                return
            item_id = occurrence
        answer = await self._call("DELETE", self._event_url(item_id), token, headers=_if_match(if_match))
        if answer.status in (404, 410):
            return
        await self._check_write(answer, token, calendar_id, (200, 204), conditional=if_match is not None)

    # lookups -------------------------------------------------------------------------------

    async def _by_transaction(
        self, token: TokenSource, calendar_id: str, write_id: str, headers: Mapping[str, str]
    ) -> EventData | None:
        """The calendar's event created with ``transactionId`` = ``write_id``, if Graph can say."""
        literal = write_id.replace("'", "''")
        answer = await self._call(
            "GET",
            f"{self._calendar_url(calendar_id)}/events",
            token,
            params={"$filter": f"transactionId eq '{literal}'", "$top": "10"},
            headers=headers,
        )
        if answer.status == 400:  # the filter is not understood: rely on Graph's own dedup
            return None
        await self._check_write(answer, token, calendar_id, (200,))
        for item in answer.json().get("value") or ():
            if isinstance(item, Mapping) and item.get("transactionId") == write_id and item.get("id"):
                return _event(item)
        return None

    async def _get(self, token: TokenSource, item_id: str) -> EventData:
        answer = await self._call("GET", self._event_url(item_id), token, headers=_prefer(None))
        if answer.status == 404:
            raise EventNotFound("microsoft: the event is not at the provider")
        self._check(answer, (200,))
        return _event(answer.json())

    async def _occurrence(self, token: TokenSource, series_id: str, original_start: EventTime) -> str | None:
        """The item id of the series' occurrence (or exception) whose original start is
        ``original_start``; None when the series has none there (cancelled or never)."""
        moment = _sort_key(original_start)
        params: Mapping[str, str] | None = {
            "startDateTime": _iso(moment - OCCURRENCE_WINDOW),
            "endDateTime": _iso(moment + OCCURRENCE_WINDOW + timedelta(days=1)),
        }
        url = f"{self._event_url(series_id)}/instances"
        for _ in range(_MAX_PAGES):
            answer = await self._call("GET", url, token, params=params, headers=_prefer(None))
            if answer.status == 404:
                raise EventNotFound("microsoft: the series is not at the provider")
            page = self._check(answer, (200,)).json()
            for item in page.get("value") or ():
                if isinstance(item, Mapping) and _starts_originally_at(item, original_start):
                    return str(item["id"])
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return None
            url, params = self._same_origin(str(next_link)), None
        return None

    # HTTP ----------------------------------------------------------------------------------

    def _calendar_url(self, calendar_id: str) -> str:
        return f"{self._graph_url}/me/calendars/{quote(calendar_id, safe='')}"

    def _event_url(self, item_id: str) -> str:
        return f"{self._graph_url}/me/events/{quote(item_id, safe='')}"

    async def _call(
        self,
        method: str,
        url: str,
        token: TokenSource,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One bearer call with a JSON body (``ProviderHttp.authorized``: the 401 rule)."""
        return await self._http.authorized(
            method, url, token, operation=Operation.WRITE_EVENT, params=params, headers=headers, body=body
        )

    def _check(self, answer: Answer, ok: Collection[int]) -> Answer:
        return self._http.check(answer, ok)

    async def _check_write(
        self,
        answer: Answer,
        token: TokenSource,
        calendar_id: str,
        ok: Collection[int],
        *,
        conditional: bool = False,
    ) -> Answer:
        """``answer`` if ok; else the write-back error it means (see the module docstring)."""
        if answer.status in ok:
            return answer
        code, message = _graph_error(answer.body)
        if answer.status == 412 or (
            conditional and answer.status == 409 and code == "errorirresolvableconflict"
        ):
            raise PreconditionFailed(f"microsoft: the event changed at the provider ({message})")
        if answer.status == 400:
            raise WriteRefused(
                f"microsoft: {message or 'Graph refused the event'}", reason="invalid", status=400
            )
        if answer.status == 403:
            reason = "scope_insufficient"
            if code != "authorization_requestdenied" and await self._calendar_is_read_only(
                token, calendar_id
            ):
                reason = "read_only"
            raise WriteRefused(f"microsoft: {reason.replace('_', ' ')}: {message}", reason=reason, status=403)
        raise self._translate(answer.status, answer.headers, answer.body)

    async def _calendar_is_read_only(self, token: TokenSource, calendar_id: str) -> bool:
        answer = await self._call("GET", self._calendar_url(calendar_id), token)
        if answer.status != 200:
            return False
        return answer.json().get("canEdit") is False


def _graph_error(body: bytes) -> tuple[str, str]:
    error = parse_json_object(body).get("error")
    if not isinstance(error, Mapping):
        return "", ""
    return str(error.get("code") or "").lower(), str(error.get("message") or "")


def _event(item: Mapping[str, Any]) -> EventData:
    event = parse_event(item)
    if item.get("type") == "seriesMaster" and item.get("recurrence"):
        event = replace(event, recurrence=rrule_of(item["recurrence"]))
    return event


def _prefer(start: EventTime | None) -> dict[str, str]:
    zone_name = event_zone(start) if start is not None and start.date is None else "UTC"
    return {"Prefer": f'outlook.timezone="{zone_name}", outlook.body-content-type="text"'}


def _if_match(etag: str | None) -> dict[str, str]:
    if etag is None:
        return {}
    tag = etag.strip()
    if tag != "*" and not tag.startswith(('W/"', '"')):
        tag = f'W/"{tag}"'
    return {"If-Match": tag}


def _starts_originally_at(item: Mapping[str, Any], original_start: EventTime) -> bool:
    event = parse_event(item)
    if event.original_start is None or event.original_start.date_time is None:
        return False
    instant = event.original_start.date_time
    if original_start.date is not None:
        zone = open_zone(event.original_start.timezone) or UTC
        return instant.astimezone(zone).date() == original_start.date
    assert original_start.date_time is not None
    return instant == original_start.date_time.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["MicrosoftWrites", "event_body", "graph_recurrence", "graph_time", "rrule_of"]
