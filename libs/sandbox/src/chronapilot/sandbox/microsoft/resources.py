"""Graph's JSON for users, calendars and events, exactly as the reference names the fields."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .recurrence import Instance, bounds
from .store import Calendar, StoredEvent, User
from .times import date_time_time_zone, format_local, format_stamp, zone

_TAGS = re.compile(r"<[^>]+>")


def user_json(user: User, base: str) -> dict[str, Any]:
    return {
        "@odata.context": f"{base}/v1.0/$metadata#users/$entity",
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": user.given_name,
        "jobTitle": None,
        "mail": user.mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": user.surname,
        "userPrincipalName": user.user_principal_name,
        "id": user.id,
    }


def calendar_json(cal: Calendar, owner: User) -> dict[str, Any]:
    return {
        "id": cal.id,
        "name": cal.name,
        "color": cal.color,
        "hexColor": cal.hex_color,
        "isDefaultCalendar": cal.is_default,
        "changeKey": cal.change_key,
        "canShare": True,
        "canViewPrivateItems": True,
        "canEdit": cal.can_edit,
        "isRemovable": not cal.is_default,
        "isTallyingResponses": True,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "owner": {"name": owner.display_name, "address": owner.user_principal_name},
    }


@dataclass(frozen=True, slots=True)
class Presentation:
    """How the client asked to see events (`Prefer: outlook.timezone`, `outlook.body-content-type`)."""

    time_zone: str = ""  # empty: UTC, unnamed in Preference-Applied
    text_body: bool = False

    def preferences_applied(self) -> list[str]:
        applied = [f'outlook.timezone="{self.time_zone}"'] if self.time_zone else []
        return applied + (['outlook.body-content-type="text"'] if self.text_body else [])


def event_json(
    ev: StoredEvent,
    owner: User,
    base: str,
    shown: Presentation,
    instance: Instance | None = None,
) -> dict[str, Any]:
    """An event: the master or single itself (`instance` None) or one calendar-view item."""
    fields = ev.fields
    change_key = ev.change_key
    modified = ev.modified
    kind = "seriesMaster" if fields.get("recurrence") else "singleInstance"
    item_id = ev.id
    if instance is not None:
        kind = instance.kind
        item_id = instance.item_id
        if kind == "exception" and instance.key is not None:
            override = ev.exceptions.get(instance.key, {})  # gone if the series was rescheduled since
            fields = {**fields, **override.get("fields", {})}
            modified = override.get("modified", modified)
            change_key = f"{change_key[:12]}{instance.key[-6:]}"
        start, end = instance.start, instance.end
    else:
        start, end = bounds(fields)
    body = fields.get("body") or {"contentType": "text", "content": ""}
    organizer = fields.get("organizer") or {}
    organizer_address = ((organizer.get("emailAddress") or {}).get("address") or "").lower()
    is_organizer = organizer_address == owner.user_principal_name.lower()
    location = fields.get("location") or {"displayName": ""}
    data: dict[str, Any] = {
        "@odata.etag": f'W/"{change_key}"',
        "id": item_id,
        "createdDateTime": ev.created,
        "lastModifiedDateTime": modified,
        "changeKey": change_key,
        "categories": fields.get("categories") or [],
        "transactionId": fields.get("transactionId"),
        "originalStartTimeZone": fields["start"].get("timeZone") or "UTC",
        "originalEndTimeZone": fields["end"].get("timeZone") or "UTC",
        "iCalUId": ev.ical_uid if instance is None else f"{ev.ical_uid}{instance.key or ''}",
        "uid": ev.ical_uid,
        "reminderMinutesBeforeStart": fields.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": fields.get("isReminderOn", True),
        "hasAttachments": False,
        "subject": fields.get("subject") or "",
        "bodyPreview": _preview(body),
        "importance": fields.get("importance") or "normal",
        "sensitivity": fields.get("sensitivity") or "normal",
        "isAllDay": bool(fields.get("isAllDay")),
        "isCancelled": False,
        "isOrganizer": is_organizer,
        "responseRequested": fields.get("responseRequested", True),
        "seriesMasterId": ev.id if instance is not None and kind != "singleInstance" else None,
        "showAs": fields.get("showAs") or "busy",
        "type": kind,
        "webLink": f"{base}/owa/?itemid={item_id}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": bool(fields.get("isOnlineMeeting")),
        "onlineMeetingProvider": "unknown",
        "allowNewTimeProposals": fields.get("allowNewTimeProposals", True),
        "isDraft": False,
        "hideAttendees": bool(fields.get("hideAttendees")),
        "responseStatus": _response_status(fields, owner, is_organizer),
        "body": _as_text(body) if shown.text_body else body,
        "start": _shown(start, fields, shown.time_zone, "start"),
        "end": _shown(end, fields, shown.time_zone, "end"),
        "location": location,
        "locations": fields.get("locations") or ([location] if location.get("displayName") else []),
        "recurrence": fields.get("recurrence") if instance is None else None,
        "attendees": [_attendee(a) for a in fields.get("attendees") or []],
        "organizer": organizer,
        "onlineMeeting": None,
    }
    if instance is not None and instance.original_start is not None:
        data["originalStart"] = _offset_stamp(instance.original_start)
    return data


def _shown(instant: datetime, fields: dict[str, Any], tz_pref: str, which: str) -> dict[str, str]:
    if fields.get("isAllDay"):
        # All-day items stay at midnight, whatever zone the client asked to see.
        event_zone = fields[which].get("timeZone") or "UTC"
        wall = instant.astimezone(zone(event_zone))
        return {"dateTime": format_local(wall), "timeZone": tz_pref or event_zone}
    return date_time_time_zone(instant, tz_pref or "UTC")


def _offset_stamp(value: datetime) -> str:
    return format_stamp(value)[:-9] + "Z"


def _as_text(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("contentType") != "html":
        return body
    text = html.unescape(_TAGS.sub(" ", str(body.get("content") or "")))
    return {"contentType": "text", "content": " ".join(text.split())}


def _preview(body: dict[str, Any]) -> str:
    content = str(body.get("content") or "")
    if not content:
        return ""
    if body.get("contentType") == "html":
        content = html.unescape(_TAGS.sub(" ", content))
    return " ".join(content.split())[:255]


def _response_status(fields: dict[str, Any], owner: User, is_organizer: bool) -> dict[str, Any]:
    if is_organizer:
        return {"response": "organizer", "time": "0001-01-01T00:00:00Z"}
    me = owner.user_principal_name.lower()
    for attendee in fields.get("attendees") or []:
        if ((attendee.get("emailAddress") or {}).get("address") or "").lower() == me:
            return attendee.get("status") or {"response": "none", "time": "0001-01-01T00:00:00Z"}
    return {"response": "none", "time": "0001-01-01T00:00:00Z"}


def _attendee(attendee: dict[str, Any]) -> dict[str, Any]:
    """An attendee as Graph returns it: `type` and `status` are always there."""
    return {
        "type": attendee.get("type") or "required",
        "status": attendee.get("status") or {"response": "none", "time": "0001-01-01T00:00:00Z"},
        "emailAddress": attendee.get("emailAddress") or {},
    }


def removed_json(item_id: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.event", "id": item_id, "@removed": {"reason": "deleted"}}
