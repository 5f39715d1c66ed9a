"""events.list: full listings, windows, expansion into instances, paging and incremental sync.

A listing walks the calendar's change log (see ``event_log``) from the start (full) or from the
sync token's sequence (incremental) up to the sequence current when its first page was asked
for; page tokens carry that position, so paging never rescans earlier pages and changes made
while paging surface in the next incremental sync. ``orderBy=startTime`` (which needs
``singleEvents=true``) collects and sorts instead, paging by offset.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from chronapilot.sandbox.google.errors import bad_request, full_sync_required, invalid_value, time_range_empty
from chronapilot.sandbox.google.event_log import EventLog, StoredEvent, UnknownSyncToken
from chronapilot.sandbox.google.event_times import (
    format_rfc3339,
    format_timestamp,
    is_time_zone,
    parse_rfc3339,
    read_event_time,
    zone,
)
from chronapilot.sandbox.google.recurrence import instance_resource, occurrences
from chronapilot.sandbox.google.store import Calendar

DEFAULT_PAGE_SIZE = 250
MAX_PAGE_SIZE = 2500
EXPANSION_HORIZON = timedelta(days=365)
NOT_ALLOWED_WITH_SYNC_TOKEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
DEFAULT_REMINDERS = [{"method": "popup", "minutes": 10}]


@dataclass(frozen=True)
class EventQuery:
    """The events.list parameters the emulator honours."""

    max_results: int = DEFAULT_PAGE_SIZE
    page_token: str | None = None
    sync_token: str | None = None
    single_events: bool = False
    show_deleted: bool = False
    time_min: datetime | None = None
    time_max: datetime | None = None
    updated_min: datetime | None = None
    order_by: str | None = None
    q: str | None = None
    ical_uid: str | None = None
    max_attendees: int | None = None
    time_zone: str | None = None

    @property
    def filtered(self) -> bool:
        """True when a parameter that rules out a follow-up incremental sync was used."""
        return any(
            value is not None
            for value in (
                self.time_min,
                self.time_max,
                self.updated_min,
                self.order_by,
                self.q,
                self.ical_uid,
            )
        )

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> EventQuery:
        """Validate query parameters; raises 400 :class:`ApiError` as Google does."""
        sync_token = params.get("syncToken")
        if sync_token is not None:
            for name in NOT_ALLOWED_WITH_SYNC_TOKEN:
                if name in params:
                    raise bad_request(f"The parameter {name} is not allowed together with syncToken.")
            if params.get("showDeleted") == "false":
                raise bad_request("The parameter showDeleted=false is not allowed together with syncToken.")
        query = cls(
            max_results=_page_size(params.get("maxResults")),
            page_token=params.get("pageToken"),
            sync_token=sync_token,
            single_events=_boolean(params, "singleEvents"),
            show_deleted=_boolean(params, "showDeleted") or sync_token is not None,
            time_min=_instant(params, "timeMin"),
            time_max=_instant(params, "timeMax"),
            updated_min=_instant(params, "updatedMin"),
            order_by=params.get("orderBy"),
            q=params.get("q"),
            ical_uid=params.get("iCalUID"),
            max_attendees=_page_size(params["maxAttendees"]) if "maxAttendees" in params else None,
            time_zone=params.get("timeZone"),
        )
        if query.time_zone is not None and not is_time_zone(query.time_zone):
            raise invalid_value(f"Invalid time zone: {query.time_zone}")
        if query.order_by not in (None, "startTime", "updated"):
            raise invalid_value(f"Invalid value for: orderBy: {query.order_by}")
        if query.order_by == "startTime" and not query.single_events:
            raise bad_request("The requested ordering is not available for the particular query.", "invalid")
        if query.time_min and query.time_max and query.time_max <= query.time_min:
            raise time_range_empty("timeMax")
        return query


def _boolean(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise invalid_value(f"Invalid boolean value: '{value}'.")
    return value.lower() == "true"


def _page_size(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(value)
    except ValueError:
        raise invalid_value(f"Invalid value '{value}'. Values must be within the range: [1, 2500]") from None
    if size < 1:
        raise invalid_value(f"Invalid value '{value}'. Values must be within the range: [1, 2500]")
    return min(size, MAX_PAGE_SIZE)


def _instant(params: Mapping[str, str], name: str) -> datetime | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return parse_rfc3339(value).astimezone(UTC)
    except ValueError:
        raise bad_request("Bad Request") from None


@dataclass
class _Position:
    """Where the next page starts: after ``after``, skipping ``skip`` items of the next event."""

    epoch: str
    upto: int
    after: int
    skip: int
    incremental: bool

    def encode(self) -> str:
        raw = json.dumps(
            [self.epoch, self.upto, self.after, self.skip, self.incremental], separators=(",", ":")
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, log: EventLog) -> _Position:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            epoch, upto, after, skip, incremental = json.loads(raw)
            position = cls(str(epoch), int(upto), int(after), int(skip), bool(incremental))
        except (binascii.Error, ValueError, TypeError):
            raise invalid_value("Invalid page token value.") from None
        if position.epoch != log.epoch or position.upto > log.seq:
            raise invalid_value("Invalid page token value.")
        return position


class EventListing:
    """One events.list call on one calendar."""

    def __init__(self, calendar: Calendar, query: EventQuery, now: float) -> None:
        self._calendar = calendar
        self._log = calendar.log
        self._query = query
        self._horizon = datetime.fromtimestamp(now, UTC) + EXPANSION_HORIZON

    def render(self) -> bytes:
        """The response body as JSON; stored events reuse their cached encoding."""
        body = self.page()
        items = body.pop("items")
        envelope = json.dumps(body, separators=(",", ":")).encode()
        encoded = b",".join(self._encode(item) for item in items)
        return b'%s,"items":[%s]}' % (envelope[:-1], encoded)

    def _encode(self, item: dict[str, Any]) -> bytes:
        stored = self._log.events.get(item["id"])
        if stored is not None and stored.resource is item:
            return stored.encoded()
        return json.dumps(item, separators=(",", ":")).encode()

    def page(self) -> dict[str, Any]:
        """The response body."""
        if self._query.order_by == "startTime":
            items, next_page = self._sorted_page()
        else:
            items, next_page = self._walk_page()
        body = self._envelope()
        if next_page is not None:
            body["nextPageToken"] = next_page
        elif not self._query.filtered:
            body["nextSyncToken"] = self._log.sync_token(self._upto)
        limit, shown_zone = self._query.max_attendees, self._query.time_zone
        if limit is not None:
            items = [limit_attendees(item, limit) for item in items]
        if shown_zone is not None:
            body["timeZone"] = shown_zone
            items = [in_time_zone(item, shown_zone) for item in items]
        body["items"] = items
        return body

    def _start(self) -> _Position:
        query = self._query
        if query.page_token:
            position = _Position.decode(query.page_token, self._log)
        elif query.sync_token is not None:
            try:
                since = self._log.parse_sync_token(query.sync_token)
            except UnknownSyncToken:
                raise full_sync_required() from None
            position = _Position(self._log.epoch, self._log.seq, since, 0, True)
        else:
            position = _Position(self._log.epoch, self._log.seq, 0, 0, False)
        self._upto = position.upto
        return position

    def _walk_page(self) -> tuple[list[dict[str, Any]], str | None]:
        position = self._start()
        room = self._query.max_results
        items: list[dict[str, Any]] = []
        for stored in self._log.changed_after(position.after, position.upto):
            # A skip belongs to the event the last page stopped inside; if that event changed
            # since, it moved past ``upto`` and the next event starts from its first item.
            skip = position.skip if stored.seq == position.after + 1 else 0
            position.skip = 0
            remaining = islice(self._items_for(stored, position.incremental), skip, None)
            taken = list(islice(remaining, room))
            items.extend(taken)
            room -= len(taken)
            if room == 0:
                if next(remaining, None) is not None:
                    position.after, position.skip = stored.seq - 1, skip + len(taken)
                else:
                    position.after = stored.seq
                return items, position.encode()
        return items, None

    def _sorted_page(self) -> tuple[list[dict[str, Any]], str | None]:
        position = self._start()
        everything = [
            item
            for stored in self._log.changed_after(0, position.upto)
            for item in self._items_for(stored, incremental=False)
        ]
        everything.sort(key=_start_key)
        offset = position.skip
        items = everything[offset : offset + self._query.max_results]
        if offset + len(items) < len(everything):
            position.skip = offset + len(items)
            return items, position.encode()
        return items, None

    def _items_for(self, stored: StoredEvent, incremental: bool) -> Iterable[dict[str, Any]]:
        resource = stored.resource
        if stored.cancelled:
            if incremental:
                return [resource]
            if not self._matches_filters(resource):
                return []
            if self._query.updated_min is not None:
                return [resource] if self._updated_since(resource) else []
            return [resource] if self._keeps_cancelled(stored) else []
        if not incremental and not self._matches_filters(resource):
            return []
        if "recurrence" in resource:
            if self._query.single_events:
                return self._instances(resource, incremental)
            if not incremental and not self._series_in_window(resource):
                return []
            return [resource]
        if not incremental and not self._in_window(stored):
            return []
        return [resource]

    def _keeps_cancelled(self, stored: StoredEvent) -> bool:
        resource = stored.resource
        is_instance = "recurringEventId" in resource
        query = self._query
        if query.show_deleted:
            wanted = is_instance or not query.single_events or stored.id not in self._log.series_ids
        else:
            wanted = is_instance and not query.single_events and self._master_alive(resource)
        return wanted and (not is_instance or self._original_in_window(resource))

    def _master_alive(self, resource: dict[str, Any]) -> bool:
        master = self._log.get(resource["recurringEventId"])
        return master is not None and not master.cancelled

    def _matches_filters(self, resource: dict[str, Any]) -> bool:
        query = self._query
        if query.ical_uid is not None and resource.get("iCalUID") != query.ical_uid:
            return False
        if query.updated_min is not None and not self._updated_since(resource):
            return False
        if query.q:
            text = " ".join(str(resource.get(key, "")) for key in ("summary", "description", "location"))
            return query.q.lower() in text.lower()
        return True

    def _updated_since(self, resource: dict[str, Any]) -> bool:
        minimum = self._query.updated_min
        return minimum is None or parse_rfc3339(resource["updated"]) >= minimum

    def _in_window(self, stored: StoredEvent) -> bool:
        query = self._query
        if query.time_min is None and query.time_max is None:
            return True
        if stored.span is None:
            zone = self._calendar.time_zone
            start = read_event_time(stored.resource["start"], "start").instant(zone)
            end = read_event_time(stored.resource["end"], "end").instant(zone)
            stored.span = (start, end)
        return self._overlaps(*stored.span)

    def _overlaps(self, start: datetime, end: datetime) -> bool:
        query = self._query
        if query.time_max is not None and start >= query.time_max:
            return False
        return query.time_min is None or end > query.time_min or (start == end and start >= query.time_min)

    def _original_in_window(self, resource: dict[str, Any]) -> bool:
        if self._query.time_min is None and self._query.time_max is None:
            return True
        original = read_event_time(resource["originalStartTime"], "originalStartTime")
        instant = original.instant(self._calendar.time_zone)
        return self._overlaps(instant, instant + timedelta(seconds=1))

    def _series_in_window(self, master: dict[str, Any]) -> bool:
        if self._query.time_min is None and self._query.time_max is None:
            return True
        found = occurrences(
            master,
            self._calendar.time_zone,
            window_start=self._query.time_min,
            window_end=self._query.time_max,
            horizon_end=self._query.time_max or self._horizon,
        )
        return next(found, None) is not None

    def _instances(self, master: dict[str, Any], incremental: bool) -> Iterator[dict[str, Any]]:
        zone = self._calendar.time_zone
        window_start = None if incremental else self._query.time_min
        window_end = None if incremental else self._query.time_max
        for occurrence in occurrences(
            master, zone, window_start=window_start, window_end=window_end, horizon_end=self._horizon
        ):
            instance = instance_resource(master, occurrence, zone)
            if instance["id"] not in self._log.events:
                yield instance

    def _envelope(self) -> dict[str, Any]:
        calendar = self._calendar
        latest = self._log.last_changed()
        return {
            "kind": "calendar#events",
            "etag": f'"{self._log.seq}{len(self._log.events):07d}"',
            "summary": calendar.summary,
            "description": calendar.description,
            "updated": latest.resource["updated"] if latest else format_timestamp(0),
            "timeZone": calendar.time_zone,
            "accessRole": "owner",
            "defaultReminders": DEFAULT_REMINDERS,
        }


def limit_attendees(item: dict[str, Any], limit: int) -> dict[str, Any]:
    """``maxAttendees``: past the limit, only the calendar's own attendee stays."""
    attendees = item.get("attendees", [])
    if len(attendees) <= limit:
        return item
    kept = [attendee for attendee in attendees if attendee.get("self")]
    return {**item, "attendees": kept, "attendeesOmitted": True}


def in_time_zone(item: dict[str, Any], shown_zone: str) -> dict[str, Any]:
    """``timeZone``: every ``dateTime`` written with that zone's offset (``timeZone`` fields kept)."""
    shown = dict(item)
    for key in ("start", "end", "originalStartTime"):
        value = item.get(key)
        if isinstance(value, dict) and "dateTime" in value:
            moment = parse_rfc3339(value["dateTime"]).astimezone(zone(shown_zone))
            shown[key] = {**value, "dateTime": format_rfc3339(moment)}
    return shown


def _start_key(item: dict[str, Any]) -> datetime:
    start = read_event_time(item.get("start") or item.get("originalStartTime"), "start")
    return start.instant("UTC")
