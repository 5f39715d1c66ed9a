"""The page an event's ``htmlLink`` opens: a read-only HTML view of the event (no sign-in).

``GET /calendar/event?eid=<base64url("<eventId> <calendarId>")>``, the shape of Google's links.
"""

from __future__ import annotations

import base64
import binascii
from html import escape

from aiohttp import web

from chronapilot.sandbox.google.emulator import EMULATOR

routes = web.RouteTableDef()


def _when(value: dict[str, str]) -> str:
    text = value.get("dateTime") or value.get("date") or ""
    zone = value.get("timeZone")
    return f"{text} ({zone})" if zone else text


@routes.get("/calendar/event")
async def event_page(request: web.Request) -> web.Response:
    """Show the event an ``htmlLink`` points to, or 404."""
    eid = request.query.get("eid", "")
    try:
        event_id, _, calendar_id = (
            base64.urlsafe_b64decode(eid + "=" * (-len(eid) % 4)).decode().partition(" ")
        )
    except (binascii.Error, UnicodeDecodeError):
        raise web.HTTPNotFound() from None
    calendar = request.app[EMULATOR].store.calendars.get(calendar_id)
    stored = calendar.log.get(event_id) if calendar else None
    if calendar is None or stored is None:
        raise web.HTTPNotFound()
    event = stored.resource
    rows = [
        ("Calendar", calendar.summary),
        ("Status", event.get("status", "")),
        ("Starts", _when(event.get("start", {}))),
        ("Ends", _when(event.get("end", {}))),
        ("Location", event.get("location", "")),
        ("Repeats", "; ".join(event.get("recurrence", []))),
        ("Guests", ", ".join(attendee["email"] for attendee in event.get("attendees", []))),
    ]
    table = "".join(
        f"<tr><th scope='row'>{escape(name)}</th><td>{escape(str(value))}</td></tr>"
        for name, value in rows
        if value
    )
    title = escape(str(event.get("summary") or "(No title)"))
    html = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><main><h1>{title}</h1><table>{table}</table>"
        f"<p>{escape(str(event.get('description', '')))}</p></main></body></html>"
    )
    return web.Response(text=html, content_type="text/html")
