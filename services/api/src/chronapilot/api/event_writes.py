"""``POST /v1/events``, ``PATCH`` and ``DELETE /v1/events/{id}``: write-back through the provider.

Each write goes to the provider first (its own API: :mod:`chronapilot.common.providers.writes`),
then the provider's answer is written into the mirror by the mirror's one writer
(:func:`~chronapilot.common.mirror.writes.apply_page`, with the ``mirror.events_changed`` that
tells customers, in one transaction), and the answer is the mirrored event as the provider
stored it. So when the provider's own notification of the write comes back, the next sync finds
the event unchanged (same etag, same fields): no second ``event.updated``, no sync loop.

No duplicates: a create's ``write_id`` is derived from the application and its
``Idempotency-Key`` (a new one without a key), so a retry of the same request, however the
first one ended (answered, timed out at the client, or cut off between the provider's answer
and the mirror write), asks the provider for the same event, and the provider hands back the
one it already made.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Annotated, Any, cast

from aiohttp import web
from dateutil.rrule import rrulestr
from pydantic import ConfigDict, Field, StringConstraints, WithJsonSchema, model_validator

from chronapilot.api.auth import current_application
from chronapilot.api.error_codes import ErrorCode
from chronapilot.api.errors import ApiError, not_found
from chronapilot.api.requests import header_token, path_id, read_json, read_query
from chronapilot.api.schemas import AwareInstant, CalendarId, Strict, ZoneName, not_null
from chronapilot.common.bus.catalogue import SyncKind, SyncReason, SyncRequested
from chronapilot.common.errors import ProviderError
from chronapilot.common.ids import new_id
from chronapilot.common.mirror.writes import CalendarRef, apply_page
from chronapilot.common.objects import recurring_masters, render_event
from chronapilot.common.providers.base import READ, SCOPES, WRITE, CalendarProvider, TokenSet
from chronapilot.common.providers.errors import InvalidCredentials, InvalidGrant, Throttled
from chronapilot.common.providers.sync import Attendee, EventData, EventPage, EventTime
from chronapilot.common.providers.writes import (
    DRAFT_FIELDS,
    EventDraft,
    EventNotFound,
    EventWrites,
    PreconditionFailed,
    WriteRefused,
)
from chronapilot.common.runtime import RUNTIME, Runtime
from chronapilot.common.store import Document, Session

Day = date  # (a field is named ``date``)
MAX_RECURRENCE_LINES = 20
MAX_ATTENDEES = 100
MAX_IF_MATCH_LENGTH = 512
EMAIL_PATTERN = r"^[^@\s\u0085\ufeff]+@[^@\s\u0085\ufeff]+$"


class TimeIn(Strict):
    """A start or end as the read API shows it: ``date_time`` (an instant with an offset or
    ``Z``) and ``timezone`` (IANA; default UTC), or ``date`` (all-day; an end is exclusive)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["date_time"],
                    "properties": {"date_time": {"type": "string"}, "date": {"type": "null"}},
                },
                {
                    "required": ["date"],
                    "properties": {
                        "date": {"type": "string"},
                        "date_time": {"type": "null"},
                        "timezone": {"type": "null"},
                    },
                },
            ]
        }
    )

    date_time: AwareInstant | None = None
    timezone: ZoneName | None = None
    date: Day | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> TimeIn:
        if (self.date_time is None) == (self.date is None):
            raise ValueError("give either date_time (with timezone) or date")
        if self.date is not None and self.timezone is not None:
            raise ValueError("an all-day time (date) takes no timezone")
        return self

    def event_time(self) -> EventTime:
        if self.date is not None:
            return EventTime(None, self.date, None)
        return EventTime(self.date_time, None, self.timezone or "UTC")


class AttendeeIn(Strict):
    # \s differs between regex dialects (Python's, pydantic's Rust one, JSON Schema's ECMA one);
    # with U+0085 and U+FEFF named too, every dialect refuses the same characters
    email: Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=320)]
    name: Annotated[str, StringConstraints(max_length=256)] | None = None
    optional: bool = False


RecurrenceLine = Annotated[str, StringConstraints(pattern=r"^(RRULE|EXDATE|RDATE)[:;]", max_length=1024)]
Text = Annotated[str, StringConstraints(max_length=1024)]
LongText = Annotated[str, StringConstraints(max_length=8192)]


class _EventFields(Strict):
    title: Text | None = None
    description: LongText | None = None
    location: Text | None = None
    start: TimeIn | None = None
    end: TimeIn | None = None
    recurrence: list[RecurrenceLine] | None = Field(default=None, max_length=MAX_RECURRENCE_LINES)
    attendees: list[AttendeeIn] | None = Field(default=None, max_length=MAX_ATTENDEES)


class CreateEventBody(_EventFields):
    calendar_id: CalendarId
    start: TimeIn
    end: TimeIn


class UpdateEventBody(_EventFields):
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [{"required": [name]} for name in sorted(DRAFT_FIELDS)],
            "not": {
                "required": ["original_start", "recurrence"],
                "properties": {"original_start": {"type": "object"}},
            },
        }
    )
    start: TimeIn | None = Field(default=None, json_schema_extra=not_null)
    end: TimeIn | None = Field(default=None, json_schema_extra=not_null)
    original_start: TimeIn | None = Field(
        default=None, description="Change one occurrence of a series: its start as the series has it."
    )

    @model_validator(mode="after")
    def _something(self) -> UpdateEventBody:
        for name in ("start", "end"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null: an event keeps its times")
        if not self.changed:
            raise ValueError(f"give at least one of {', '.join(sorted(DRAFT_FIELDS))}")
        if self.original_start is not None and "recurrence" in self.changed:
            raise ValueError("one occurrence has no recurrence of its own")
        return self

    @property
    def changed(self) -> frozenset[str]:
        return frozenset(self.model_fields_set & DRAFT_FIELDS)


def _checked(check: Any, *args: Any, param: str) -> None:
    """Run a cross-field ``check``; its ValueError as a 400 naming ``param``."""
    try:
        check(*args)
    except ValueError as exc:
        raise ApiError(400, "parameter_invalid", f"{param}: {exc}", param=param) from None


def _check_times(start: EventTime, end: EventTime) -> None:
    if (start.date is None) != (end.date is None):
        raise ValueError("start and end must both be timed (date_time) or both all-day (date)")
    if start.date is not None and end.date is not None:
        if end.date <= start.date:
            raise ValueError("must be after start (an all-day end is exclusive)")
    elif start.date_time is not None and end.date_time is not None and end.date_time < start.date_time:
        raise ValueError("must not be before start")


def _check_recurrence(lines: list[str], start: EventTime) -> None:
    dtstart = start.date_time or datetime.combine(cast(date, start.date), datetime.min.time())
    if start.date_time is None:
        dtstart = dtstart.replace(tzinfo=None)
    try:
        rrulestr("\n".join(lines), dtstart=dtstart, forceset=True, ignoretz=start.date_time is None)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"recurrence does not parse: {exc}") from None


# -- handlers ---------------------------------------------------------------------------------


async def create_event(request: web.Request) -> web.Response:
    body = await read_json(request, CreateEventBody)
    runtime = request.app[RUNTIME]
    application_id = current_application(request).id
    _checked(_check_times, body.start.event_time(), body.end.event_time(), param="end")
    if body.recurrence:
        _checked(_check_recurrence, body.recurrence, body.start.event_time(), param="recurrence")
    calendar = await runtime.repos.calendars.of_application(application_id, body.calendar_id)
    if calendar is None:
        raise not_found("calendar", "calendar_id")
    writer, token, instances = await _writer(runtime, calendar)
    draft = _draft(body, DRAFT_FIELDS)
    write_id = write_id_of(application_id, request.headers.get("Idempotency-Key"))
    data = await _call(writer.create_event(token, calendar["provider_calendar_id"], draft, write_id=write_id))
    stored = await _mirror(runtime, calendar, upserts=(data,), series_as_instances=instances)
    return web.json_response(await _render(runtime, stored), status=201)


async def update_event(request: web.Request) -> web.Response:
    event_id = path_id(request, "evt", "event")
    body = await read_json(request, UpdateEventBody)
    runtime = request.app[RUNTIME]
    event, calendar = await _event_and_calendar(request, runtime, event_id)
    if body.original_start is not None and not event.get("recurrence"):
        raise ApiError(
            400, "parameter_invalid", "original_start is for a recurring series.", param="original_start"
        )
    start = body.start.event_time() if body.start else _stored_time(event.get("start"))
    end = body.end.event_time() if body.end else _stored_time(event.get("end"))
    if (body.start or body.end) and start is not None and end is not None:
        _checked(_check_times, start, end, param="end")
    if body.recurrence and start is not None:
        _checked(_check_recurrence, body.recurrence, start, param="recurrence")
    writer, token, instances = await _writer(runtime, calendar)
    data = await _call(
        writer.update_event(
            token,
            calendar["provider_calendar_id"],
            event["provider_event_id"],
            _draft(body, body.changed),
            if_match=_if_match(request),
            original_start=body.original_start.event_time() if body.original_start else None,
        )
    )
    stored = await _mirror(
        runtime,
        calendar,
        upserts=(data,),
        series_as_instances=instances,
        series_changed=bool(event.get("recurrence")),
    )
    return web.json_response(await _render(runtime, stored))


async def delete_event(request: web.Request) -> web.Response:
    event_id = path_id(request, "evt", "event")
    runtime = request.app[RUNTIME]
    event, calendar = await _event_and_calendar(request, runtime, event_id)
    original_start = _original_start_query(request)
    if original_start is not None and not event.get("recurrence"):
        raise ApiError(
            400, "parameter_invalid", "original_start is for a recurring series.", param="original_start"
        )
    writer, token, instances = await _writer(runtime, calendar)
    await _call(
        writer.delete_event(
            token,
            calendar["provider_calendar_id"],
            event["provider_event_id"],
            if_match=_if_match(request),
            original_start=original_start,
        )
    )
    if original_start is None:
        await _mirror(
            runtime,
            calendar,
            deletions=(event["provider_event_id"],),
            series_as_instances=instances,
            series_changed=bool(event.get("recurrence")),
        )
        event = await runtime.repos.events.of_application(calendar["application_id"], event_id) or event
    else:
        await _sync_soon(runtime, calendar)  # the cancelled occurrence reaches the mirror with it
    return web.json_response(await _render(runtime, event))


# -- the pieces -------------------------------------------------------------------------------


async def _event_and_calendar(
    request: web.Request, runtime: Runtime, event_id: str
) -> tuple[Document, Document]:
    application_id = current_application(request).id
    event = await runtime.repos.events.of_application(application_id, event_id)
    if event is None or event.get("deleted"):
        raise not_found("event")
    calendar = await runtime.repos.calendars.of_application(application_id, event["calendar_id"])
    if calendar is None:
        raise not_found("event")
    return event, calendar


async def _writer(runtime: Runtime, calendar: Document) -> tuple[EventWrites, Any, bool]:
    """The provider that writes to ``calendar`` and a token for it, once the connection may:
    live (409 otherwise), granted writes (403 ``scope_insufficient``), a calendar the account may
    write to (403 ``calendar_read_only``)."""
    connection = await runtime.connections.get(calendar["connection_id"])
    if connection is None or connection.get("status") == "disconnected":
        raise ApiError(409, "connection_disconnected", "The calendar's connection is disconnected.")
    if connection.get("status") != "active":
        raise ApiError(
            409,
            "connection_not_active",
            f"The calendar's connection is {connection.get('status')}; writes need an active one.",
        )
    provider = runtime.providers.get(connection["provider"])
    if provider is None:
        raise ApiError(409, "provider_unavailable", "The calendar's provider is not configured.")
    if WRITE not in await _granted(runtime, provider, connection["_id"]):
        raise ApiError(
            403,
            "scope_insufficient",
            "The connection was linked for reading only; link it again with calendar.write.",
            type_="permission_error",
        )
    if calendar.get("read_only"):
        raise ApiError(
            403, "calendar_read_only", "The calendar is read-only for this account.", type_="permission_error"
        )
    token = runtime.tokens.token_source(connection["_id"])
    return cast(EventWrites, provider), token, provider.capabilities.series_as_instances


async def _granted(runtime: Runtime, provider: CalendarProvider, connection_id: str) -> tuple[str, ...]:
    """The ChronaPilot scopes the connection's credentials carry (password credentials record
    the ones asked for; an OAuth grant the provider's, mapped back)."""
    stored = await runtime.repos.credentials.scopes_of(connection_id)
    if stored is None:
        return ()
    if not stored:  # credentials that recorded no scopes: reading, as at consent
        return (READ,)
    if set(stored) <= set(SCOPES):
        return stored
    return provider.granted_scopes(TokenSet("", None, None, stored))


def _draft(body: _EventFields, fields: frozenset[str]) -> EventDraft:
    return EventDraft(
        title=body.title,
        description=body.description,
        location=body.location,
        start=body.start.event_time() if body.start else None,
        end=body.end.event_time() if body.end else None,
        recurrence=tuple(body.recurrence or ()),
        attendees=tuple(
            Attendee(a.email, a.name, "needsAction", a.optional, False) for a in (body.attendees or ())
        ),
        fields=fields,
    )


def write_id_of(application_id: str, idempotency_key: str | None) -> str:
    """The create's write id: the same for every retry of one ``Idempotency-Key``."""
    if idempotency_key is None:
        return new_id("wr")
    digest = hashlib.sha256(f"{application_id}\0{idempotency_key}".encode()).hexdigest()
    return f"wr_{digest[:32]}"


def _if_match(request: web.Request) -> str | None:
    return header_token(request, "If-Match", MAX_IF_MATCH_LENGTH)


#: What ``original_start`` of a query takes: a date, or an instant with an offset or ``Z``.
OriginalStart = Annotated[
    str,
    StringConstraints(max_length=40),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date", "maxLength": 10},
                {"type": "string", "format": "date-time", "maxLength": 40},
            ]
        },
        mode="validation",
    ),
]


class DeleteEventQuery(Strict):
    original_start: OriginalStart | None = Field(
        default=None,
        description="Cancel one occurrence of a series: its start as the series has it, a date "
        "(`YYYY-MM-DD`, all-day series) or an instant with an offset or `Z`.",
    )


def _original_start_query(request: web.Request) -> EventTime | None:
    value = read_query(request, DeleteEventQuery).original_start
    if value is None:
        return None
    try:
        if len(value) == 10:
            return EventTime(None, date.fromisoformat(value), None)
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise ApiError(
            400,
            "parameter_invalid",
            "original_start must be a date (YYYY-MM-DD) or an instant with an offset or Z.",
            param="original_start",
        )
    return EventTime(instant, None, None)


def _stored_time(value: Any) -> EventTime | None:
    if not value:
        return None
    raw_date = value.get("date")
    return EventTime(
        value.get("date_time"), date.fromisoformat(raw_date) if raw_date else None, value.get("timezone")
    )


async def _call(call: Any) -> Any:
    """Await a provider write; its failures as the API's answers."""
    try:
        return await call
    except PreconditionFailed:
        raise ApiError(
            412, "precondition_failed", "The event changed at the provider since that etag.", param="If-Match"
        ) from None
    except EventNotFound:
        raise ApiError(404, "resource_missing", "The event is no longer at the provider.") from None
    except WriteRefused as exc:
        if exc.reason == "invalid":
            raise ApiError(400, "provider_rejected", f"The provider refused the event: {exc}") from None
        code: ErrorCode = "calendar_read_only" if exc.reason == "read_only" else "scope_insufficient"
        raise ApiError(403, code, str(exc) or code, type_="permission_error") from None
    except (InvalidGrant, InvalidCredentials):
        raise ApiError(409, "connection_reauth_required", "The connection must be linked again.") from None
    except (Throttled, ProviderError) as exc:
        wait = exc.retry_after if exc.retry_after else 2
        raise ApiError(
            503,
            "provider_unavailable",
            "The provider is busy or unavailable; nothing was written. Retry after Retry-After.",
            type_="api_error",
            headers={"Retry-After": str(max(1, round(wait)))},
        ) from None


async def _sync_soon(runtime: Runtime, calendar: Document) -> None:
    """Ask for the calendar's incremental sync now (what a write changed beyond its answer)."""
    request_sync = SyncRequested(
        mode=SyncKind.INCREMENTAL, reason=SyncReason.MANUAL, calendar_id=calendar["provider_calendar_id"]
    )
    await runtime.emit(None, request_sync, connection_id=calendar["connection_id"])


async def _mirror(
    runtime: Runtime,
    calendar: Document,
    *,
    upserts: tuple[EventData, ...] = (),
    deletions: tuple[str, ...] = (),
    series_as_instances: bool = False,
    series_changed: bool = False,
) -> Document | None:
    """Write the provider's answer into the mirror (and tell it); the stored event of the first
    upsert.

    A provider whose sync mirrors a series as its occurrences (``series_as_instances``):
    a master in the answer is kept but marked not to be expanded, and a write that touched a
    series asks for the calendar's sync at once, which brings its occurrences."""
    ref = CalendarRef(
        calendar["_id"],
        calendar["connection_id"],
        calendar["application_id"],
        calendar["provider_calendar_id"],
    )
    page = EventPage(upserts=upserts, deletions=deletions, next_cursor=None)
    now = runtime.clock.now()
    masters = [u.provider_event_id for u in upserts if u.recurrence] if series_as_instances else []

    async def write(session: Session) -> None:
        await apply_page(
            runtime.repos.events,
            ref,
            page,
            now,
            raw_max_bytes=runtime.settings.sync.raw_max_bytes,
            outbox=runtime.outbox,
            session=session,
        )
        await runtime.repos.events.mark_instances_mirrored(ref, masters, session=session)

    await runtime.store.in_transaction(write)
    if series_as_instances and (masters or series_changed or any(u.recurring_event_id for u in upserts)):
        await _sync_soon(runtime, calendar)
    if not upserts:
        return None
    key = (calendar["connection_id"], calendar["provider_calendar_id"], upserts[0].provider_event_id)
    ids = await runtime.repos.events.ids_by_provider_id([key])
    event_id = ids.get(upserts[0].provider_event_id)
    return (
        None
        if event_id is None
        else await runtime.repos.events.of_application(calendar["application_id"], event_id)
    )


async def _render(runtime: Runtime, stored: Document | None) -> dict[str, Any]:
    if stored is None:
        raise ApiError(
            503,
            "mirror_unavailable",
            "The event was written; read it again shortly.",
            type_="api_error",
            headers={"Retry-After": "2"},
        )
    return render_event(stored, await recurring_masters(runtime.repos, [stored]))
