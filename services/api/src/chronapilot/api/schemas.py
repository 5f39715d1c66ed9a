"""The public API's shapes: request bodies, query parameters and the objects it returns.

Handlers validate with these models and render with them, and ``openapi.py`` builds the
OpenAPI document from the same models, so the document matches what the server does. The
objects that webhooks carry too (connection, calendar, event) live in
:mod:`chronapilot.common.objects` and are re-exported here, so this module still names every
shape of the API but one family: customer webhooks (endpoints, deliveries and the payloads
sent) live in :mod:`chronapilot.api.webhook_schemas`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from chronapilot.api.error_codes import ErrorCode
from chronapilot.common.ids import id_pattern
from chronapilot.common.objects import DISCRIMINATED as DISCRIMINATED
from chronapilot.common.objects import ERROR_CODES_DESCRIPTION as ERROR_CODES_DESCRIPTION
from chronapilot.common.objects import HISTORY_CODES_DESCRIPTION as HISTORY_CODES_DESCRIPTION
from chronapilot.common.objects import TRANSPARENCY_DESCRIPTION as TRANSPARENCY_DESCRIPTION
from chronapilot.common.objects import CalendarErrorObject as CalendarErrorObject
from chronapilot.common.objects import CalendarObject as CalendarObject
from chronapilot.common.objects import ConnectionErrorObject as ConnectionErrorObject
from chronapilot.common.objects import ConnectionObject as ConnectionObject
from chronapilot.common.objects import ConnectionStatusName as ConnectionStatusName
from chronapilot.common.objects import EventObject as EventObject
from chronapilot.common.objects import EventTimeObject as EventTimeObject
from chronapilot.common.objects import PersonObject as PersonObject
from chronapilot.common.objects import ProviderName as ProviderName
from chronapilot.common.objects import RevocationObject as RevocationObject
from chronapilot.common.objects import StatusHistoryEntryObject as StatusHistoryEntryObject
from chronapilot.common.objects import SyncModeName as SyncModeName
from chronapilot.common.objects import TokenRefreshObject as TokenRefreshObject
from chronapilot.common.objects import Transparency as Transparency
from chronapilot.common.objects import WebhookSubscriptionObject as WebhookSubscriptionObject
from chronapilot.common.objects import dump as dump
from chronapilot.common.occurrences import EARLIEST, LATEST, MAX_WINDOW
from chronapilot.common.providers.zones import open_zone, zone_names

Scope = Literal["calendar.read", "calendar.write"]

ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=255)]
UserId = Annotated[str, StringConstraints(pattern=id_pattern("usr"))]
MetadataKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,40}$")]


class Strict(BaseModel):
    """Request models refuse unknown fields: a typo is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# -- requests ---------------------------------------------------------------------------------


def not_null(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of an optional field that may be left out but not sent as null
    (the handler refuses it)."""
    branches = schema.pop("anyOf")
    schema.update(next(branch for branch in branches if branch != {"type": "null"}))
    schema.pop("default", None)


class CreateUserBody(Strict):
    external_id: ExternalId | None = Field(
        default=None, description="Your own id for this user (not unique-enforced)."
    )
    metadata: dict[MetadataKey, Annotated[str, StringConstraints(max_length=500)]] = Field(
        default_factory=dict,
        max_length=50,
        description="Up to 50 key-value pairs for your use: keys of 1 to 40 letters, digits, "
        "`_` or `-`; string values up to 500 characters.",
        json_schema_extra={"additionalProperties": False},  # no key outside the pattern
    )


class StartConnectionBody(Strict):
    provider: ProviderName = Field(description="`google`, `microsoft` or `icloud` (beta).")
    user_id: UserId = Field(description="The ChronaPilot user the connection belongs to.")
    return_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] = Field(
        description="Where the end-user's browser goes after consent: absolute `https` "
        "(`http` only for localhost), under one of your application's allowed prefixes."
    )
    scopes: list[Scope] | None = Field(
        default=None,
        min_length=1,
        max_length=2,
        description="Restrict the requested access (default: read and write).",
    )
    state: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, description="Opaque value echoed to `return_url` (default: generated)."
    )


class ListQuery(Strict):
    limit: int = Field(default=10, ge=1, le=100, description="Page size, 1 to 100.")
    starting_after: str | None = Field(default=None, description="Cursor: an id from the list.")
    ending_before: str | None = Field(default=None, description="Cursor: an id from the list.")


class ListUsersQuery(ListQuery):
    external_id: ExternalId | None = None


class ListConnectionsQuery(ListQuery):
    user_id: UserId | None = None
    provider: ProviderName | None = None
    status: ConnectionStatusName | None = None


class ExpandQuery(Strict):
    expand: list[Literal["calendars", "status_history"]] = Field(
        default_factory=list,
        alias="expand[]",
        description=(
            "`calendars` to inline them; `status_history` for the last 100 transitions of the "
            "connection, newest first."
        ),
    )
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# -- objects ----------------------------------------------------------------------------------


class UserObject(BaseModel):
    id: str
    object: Literal["user"] = "user"
    external_id: str | None
    metadata: dict[str, str]
    created_at: datetime


class ConnectionStartObject(BaseModel):
    object: Literal["connection_start"] = "connection_start"
    redirect_url: str = Field(description="Send the end-user's browser here.")
    state: str = Field(description="Echoed to `return_url` with the outcome.")
    expires_at: datetime = Field(description="The consent session's end (10 minutes).")


T = TypeVar("T")


class ListObject(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    url: str


class ErrorDetail(BaseModel):
    type: Literal[
        "invalid_request_error",
        "authentication_error",
        "rate_limit_error",
        "idempotency_error",
        "permission_error",
        "api_error",
    ]
    code: ErrorCode = Field(description="Stable; see the error code reference (docs/errors.md).")
    message: str = Field(description="For people; may change.")
    param: str | None = Field(default=None, description="The parameter at fault, when one is.")


class ErrorObject(BaseModel):
    error: ErrorDetail


class UserList(ListObject[UserObject]):
    """A page of users, newest first."""


class ConnectionList(ListObject[ConnectionObject]):
    """A page of connections, newest first."""


# -- the mirror -------------------------------------------------------------------------------

CalendarId = Annotated[str, StringConstraints(pattern=id_pattern("cal"))]
ConnectionId = Annotated[str, StringConstraints(pattern=id_pattern("con"))]


class ListCalendarsQuery(ListQuery):
    connection_id: ConnectionId | None = Field(default=None, description="Only this connection's.")


INSTANT_BOUNDS = f"between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)"


def _supported_instant(value: datetime) -> datetime:
    """``value`` in UTC (without an offset: read as UTC), refused outside the years a window
    may reach (an offset can take year 1 or 9999 out of ``datetime``'s range)."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"must lie {INSTANT_BOUNDS}")
    return utc


#: The instants the schema offers: RFC 3339 in the years no offset takes out of the supported
#: range (the server takes a little more: any instant within it, and without an offset as UTC).
INSTANT_SCHEMA = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^(190[1-9]|19[1-9]\d|20\d\d|21[0-8]\d|219[0-8])-",
}

#: An instant of a query: read in UTC, within the supported years.
Instant = Annotated[
    datetime, AfterValidator(_supported_instant), WithJsonSchema(INSTANT_SCHEMA, mode="validation")
]
AwareInstant = Annotated[
    AwareDatetime, AfterValidator(_supported_instant), WithJsonSchema(INSTANT_SCHEMA, mode="validation")
]


class ListEventsQuery(ListQuery):
    calendar_id: CalendarId = Field(description="The calendar whose events to list.")
    start: Instant | None = Field(
        default=None,
        description="Only events ending after this instant (ISO 8601; without an offset: UTC; "
        f"{INSTANT_BOUNDS}). Required with `expand_recurring=true`.",
    )
    end: Instant | None = Field(
        default=None,
        description="Only events starting before this instant (ISO 8601; without an offset: UTC; "
        f"{INSTANT_BOUNDS}). Required with `expand_recurring=true`.",
    )
    updated_since: Instant | None = Field(
        default=None,
        description="Only events the mirror changed at or after this instant "
        f"({INSTANT_BOUNDS}; not with `expand_recurring=true`).",
    )
    include_deleted: bool = Field(
        default=False,
        description="Include events deleted at the provider (not with `expand_recurring=true`).",
    )
    expand_recurring: bool = Field(
        default=False,
        description="List occurrences instead of stored events: every instance overlapping "
        f"[`start`, `end`) (at most {MAX_WINDOW.days} days) as an `occurrence` object, series "
        "expanded in their own time zone, exceptions in place of the instances they replace "
        "(at their new time), cancelled instances and EXDATEs left out; ordered by start, "
        "then id. The cursors are occurrence ids from the list (one whose occurrence has "
        "left the window since, cancelled, deleted or moved, resumes where it was).",
    )


class OccurrenceObject(BaseModel):
    """One instance of an event in a window (``expand_recurring=true``)."""

    model_config = DISCRIMINATED
    id: str = Field(
        description="Stable across calls. An instance of a series mirrored with its master (and "
        "the exception that replaces it): `<master evt_ id>_<original start>`, the original start "
        "in UTC (`20260316T080000Z`) or its date when all-day (`20260316`); any other: the "
        "event's `evt_` id."
    )
    object: Literal["occurrence"] = "occurrence"
    event_id: str = Field(
        description="The stored event it comes from (`evt_`): the series master for a generated "
        "instance, else the exception or the single event itself."
    )
    calendar_id: str
    connection_id: str
    provider_event_id: str = Field(description="The provider's id of `event_id`.")
    ical_uid: str | None
    title: str | None
    description: str | None
    location: str | None
    start: EventTimeObject
    end: EventTimeObject
    all_day: bool
    status: str = Field(description="`confirmed` or `tentative` (cancelled instances are left out).")
    transparency: Transparency = Field(description=TRANSPARENCY_DESCRIPTION)
    recurring_event_id: str | None = Field(
        description="The series master's `evt_` id, when the master is mirrored (Microsoft mirrors "
        "instances only: then null, and `provider_recurring_event_id` names the series)."
    )
    provider_recurring_event_id: str | None
    original_start: EventTimeObject | None = Field(
        description="The instance's slot in its series (where a moved one was); null for a single event."
    )
    organizer: PersonObject | None
    attendees: list[PersonObject]
    etag: str | None = Field(description="The provider's etag / changeKey of `event_id`.")
    provider_updated_at: datetime | None
    updated_at: datetime = Field(description="When the mirror last changed `event_id`.")


class CalendarList(ListObject[CalendarObject]):
    """A page of calendars, newest first."""


EventOrOccurrence = Annotated[EventObject | OccurrenceObject, Field(discriminator="object")]


class EventList(ListObject[EventOrOccurrence]):
    """A page of events, newest in the mirror first; with `expand_recurring=true`, a page of
    occurrences in start order."""


# -- free/busy --------------------------------------------------------------------------------


def _zone_name(value: str) -> str:
    if open_zone(value) is None:
        raise ValueError("not an IANA time zone name")
    return value


def _varnames(values: list[str]) -> list[str]:
    """Distinct identifiers for an enum's values, for client generators (``x-enum-varnames``):
    ``Etc/GMT+1`` and ``Etc/GMT-1`` must not both become ``ETC_GMT1``."""
    names: list[str] = []
    for value in values:
        spelled = value.replace("+", "_PLUS_").replace("-", "_MINUS_")
        name = re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z]", "_", spelled)).strip("_").upper()
        while name in names:
            name += "_"
        names.append(name)
    return names


ZONE_SCHEMA: dict[str, Any] = {
    "title": "TimeZoneName",
    "description": "An IANA time-zone name, a UTC alias or a Windows zone name (mapped to its IANA zone).",
    "type": "string",
    "enum": zone_names(),
    "x-enum-varnames": _varnames(zone_names()),
}
#: A time-zone name the API opens (IANA, a UTC alias or a Windows name), all listed in the
#: schema: no other string is accepted.
ZoneName = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_zone_name),
    WithJsonSchema(ZONE_SCHEMA, mode="validation"),
]


class FreeBusyQuery(Strict):
    start: AwareInstant = Field(
        description=f"Start of the window, ISO 8601 with an offset or `Z`, {INSTANT_BOUNDS}."
    )
    end: AwareInstant = Field(
        description="End of the window (exclusive), after `start` and at most "
        f"{MAX_WINDOW.days} days after it, {INSTANT_BOUNDS}."
    )
    calendar_ids: list[CalendarId] = Field(
        default_factory=list,
        alias="calendar_ids[]",
        max_length=100,
        description="Only these calendars of the user (default: every calendar of the user).",
    )
    timezone: ZoneName | None = Field(
        default=None,
        description="IANA time zone in which all-day events block their days and floating "
        "times (CalDAV without TZID) their wall times (a Windows zone name is mapped to its IANA "
        "zone; default: each calendar's own zone, else UTC).",
    )
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class IntervalObject(BaseModel):
    start: datetime
    end: datetime = Field(description="Exclusive.")


class BusyIntervalObject(IntervalObject):
    calendar_ids: list[str] = Field(description="The calendars whose events make this interval busy.")


class FreeBusyCalendarObject(BaseModel):
    calendar_id: str
    connection_id: str
    provider: ProviderName
    name: str
    busy: list[IntervalObject] = Field(description="This calendar's busy intervals, merged and sorted.")
    all_day_timezone: str = Field(
        description="The time zone its all-day events and floating times were read in."
    )
    sync_mode: SyncModeName = Field(
        description="`realtime`: provider changes reach the mirror within seconds; `polling`: "
        "within the poll interval (5 minutes by default)."
    )
    sync_status: Literal["ok", "error"] | None = Field(
        description="The calendar's last sync: `ok`, `error` (its mirrored events still count, "
        "as of `last_synced_at`), null before its first sync."
    )
    last_synced_at: datetime | None = Field(description="The busy intervals are as fresh as this.")
    error: CalendarErrorObject | None


class ExcludedCalendarObject(BaseModel):
    calendar_id: str
    connection_id: str
    reason: Literal["connection_error", "connection_disconnected", "calendar_removed"] = Field(
        description="`connection_error`, `connection_disconnected`: only `active` connections "
        "count; `calendar_removed`: the provider no longer lists the calendar."
    )


class FreeBusyObject(BaseModel):
    """The user's busy time in the window."""

    object: Literal["free_busy"] = "free_busy"
    user_id: str
    start: datetime
    end: datetime
    timezone: str | None = Field(description="The `timezone` asked for, if any.")
    busy: list[BusyIntervalObject] = Field(
        description="Every counted calendar's busy time, clipped to the window, sorted, with "
        "overlapping and touching intervals merged."
    )
    calendars: list[FreeBusyCalendarObject] = Field(
        description="The calendars counted: every calendar of the user's `active` connections "
        "(or those of `calendar_ids[]`) that the provider still lists."
    )
    excluded_calendars: list[ExcludedCalendarObject] = Field(
        description="The user's calendars in scope that were not counted, and why."
    )
