"""``GET /v1/users/{id}/free_busy``: a user's busy time over every synced calendar of their
active connections, with each calendar's share and freshness.

The rules of what is busy live in :mod:`chronapilot.common.free_busy`; this module picks the
calendars (tenancy, the ``calendar_ids[]`` filter, which connections count), reads their events
and occurrences for the window, and renders the answer.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, tzinfo

from aiohttp import web

from chronapilot.api.auth import current_application
from chronapilot.api.errors import ApiError, not_found
from chronapilot.api.requests import path_id, read_query
from chronapilot.api.schemas import (
    BusyIntervalObject,
    CalendarErrorObject,
    ExcludedCalendarObject,
    FreeBusyCalendarObject,
    FreeBusyObject,
    FreeBusyQuery,
    IntervalObject,
    dump,
)
from chronapilot.common.free_busy import (
    ALL_DAY_REACH,
    Interval,
    busy_intervals,
    merge_calendars,
    occurrences_around,
)
from chronapilot.common.models import ConnectionStatus
from chronapilot.common.occurrences import MAX_WINDOW
from chronapilot.common.providers.zones import open_zone
from chronapilot.common.runtime import RUNTIME, Runtime
from chronapilot.common.store import Document

PARAM = "calendar_ids[]"


@dataclass(frozen=True)
class Counted:
    calendar: Document
    connection: Document
    all_day_zone: tzinfo


async def get_free_busy(request: web.Request) -> web.Response:
    user_id = path_id(request, "usr", "user")
    query = read_query(request, FreeBusyQuery)
    window = _window(query)
    application_id = current_application(request).id
    runtime = request.app[RUNTIME]
    if await runtime.repos.users.of_application(application_id, user_id) is None:
        raise not_found("user")
    connections = {c["_id"]: c for c in await runtime.connections.of_user(application_id, user_id)}
    calendars = await _in_scope(runtime, application_id, connections, query.calendar_ids)
    counted: list[Counted] = []
    excluded: list[ExcludedCalendarObject] = []
    for calendar in calendars:
        connection = connections[calendar["connection_id"]]
        reason = _excluded_because(connection, calendar)
        if reason is None:
            zone = _zone(query.timezone or calendar.get("timezone"))
            counted.append(Counted(calendar, connection, zone))
        else:
            excluded.append(
                ExcludedCalendarObject(
                    calendar_id=calendar["_id"], connection_id=calendar["connection_id"], reason=reason
                )
            )
    busy = await _busy_by_calendar(runtime, counted, window)
    answer = FreeBusyObject(
        user_id=user_id,
        start=window.start,
        end=window.end,
        timezone=query.timezone,
        busy=[
            BusyIntervalObject(start=b.start, end=b.end, calendar_ids=list(b.calendar_ids))
            for b in merge_calendars(busy)
        ],
        calendars=[_render_calendar(c, busy[c.calendar["_id"]]) for c in counted],
        excluded_calendars=excluded,
    )
    return web.json_response(dump(answer))


def _window(query: FreeBusyQuery) -> Interval:
    start, end = query.start, query.end  # UTC, within the supported years (FreeBusyQuery)
    if start >= end:
        raise ApiError(400, "parameter_invalid", "start must be before end.", param="start")
    if end - start > MAX_WINDOW:
        raise ApiError(
            400,
            "parameter_invalid",
            f"The window is longer than {MAX_WINDOW.days} days: ask for several windows.",
            param="end",
        )
    return Interval(start, end)


async def _in_scope(
    runtime: Runtime, application_id: str, connections: dict[str, Document], wanted: list[str]
) -> list[Document]:
    """The user's calendars in scope, in the order of their connections (oldest first) and of
    each connection's calendar list (primary first); ``wanted``: only those, each checked."""
    owned = await runtime.repos.calendars.of_connections(list(connections))
    if wanted:
        mine = {c["_id"] for c in owned}
        for calendar_id in dict.fromkeys(wanted):
            if calendar_id in mine:
                continue
            if await runtime.repos.calendars.of_application(application_id, calendar_id) is None:
                raise ApiError(404, "resource_missing", f"No such calendar: {calendar_id}.", param=PARAM)
            raise ApiError(
                400, "parameter_invalid", f"Calendar {calendar_id} belongs to another user.", param=PARAM
            )
        owned = [c for c in owned if c["_id"] in set(wanted)]
    order = {connection_id: n for n, connection_id in enumerate(connections)}

    def place(calendar: Document) -> tuple[int, int, str]:
        listed = connections[calendar["connection_id"]].get("calendar_ids", [])
        at = listed.index(calendar["_id"]) if calendar["_id"] in listed else len(listed)
        return order[calendar["connection_id"]], at, calendar["_id"]

    return sorted(owned, key=place)


def _excluded_because(connection: Document, calendar: Document) -> str | None:
    status = connection["status"]
    if status == ConnectionStatus.DISCONNECTED:
        return "connection_disconnected"
    if status != ConnectionStatus.ACTIVE:
        return "connection_error"
    if calendar.get("removed"):
        return "calendar_removed"
    return None


def _zone(name: str | None) -> tzinfo:
    return open_zone(name) or UTC


async def _busy_by_calendar(
    runtime: Runtime, counted: list[Counted], window: Interval
) -> dict[str, list[Interval]]:
    """Each counted calendar's busy intervals. The expansion is CPU work (a year of ten busy
    calendars: most of a second), so it runs in a thread, one calendar at a time (the
    occurrence cap is per calendar)."""
    if not counted:
        return {}
    docs = await runtime.repos.events.in_window(
        [c.calendar["_id"] for c in counted], window.start - ALL_DAY_REACH, window.end + ALL_DAY_REACH
    )
    by_calendar: dict[str, list[Document]] = defaultdict(list)
    for doc in docs:
        by_calendar[doc["calendar_id"]].append(doc)

    def compute() -> dict[str, list[Interval]]:
        return {
            c.calendar["_id"]: busy_intervals(
                occurrences_around(by_calendar[c.calendar["_id"]], window),
                window,
                account_email=c.connection["email"],
                all_day_zone=c.all_day_zone,
            )
            for c in counted
        }

    return await asyncio.to_thread(compute)


def _render_calendar(counted: Counted, busy: list[Interval]) -> FreeBusyCalendarObject:
    calendar, connection = counted.calendar, counted.connection
    return FreeBusyCalendarObject(
        calendar_id=calendar["_id"],
        connection_id=calendar["connection_id"],
        provider=connection["provider"],
        name=calendar["name"],
        busy=[IntervalObject(start=b.start, end=b.end) for b in busy],
        all_day_timezone=str(counted.all_day_zone),
        sync_mode=connection["sync_mode"],
        sync_status=calendar.get("sync_status"),
        last_synced_at=calendar.get("last_synced_at"),
        error=CalendarErrorObject(**calendar["error"]) if calendar.get("error") else None,
    )
