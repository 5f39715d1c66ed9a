"""Graph's ways of writing time: zone names, `dateTimeTimeZone` values, UTC stamps.

Graph writes local wall times without an offset (`2026-03-01T09:00:00.0000000`) next to a zone
name, which may be an IANA name or a Windows one (`Pacific Standard Time`); stamps such as
`lastModifiedDateTime` are UTC with seven fractional digits and a `Z`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The Windows names Outlook uses most; anything else must be an IANA name.
WINDOWS_ZONES: dict[str, str] = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kyiv",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "E. South America Standard Time": "America/Sao_Paulo",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
}

_FRACTION = re.compile(r"\.(\d+)")


class InvalidTime(ValueError):
    """A time zone or date-time Graph would refuse."""


def zone(name: str | None) -> ZoneInfo:
    """The zone behind a Graph `timeZone` value (Windows or IANA name); empty means UTC."""
    if not name:
        return ZoneInfo("UTC")
    iana = WINDOWS_ZONES.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidTime(f"unknown time zone {name!r}") from exc


def parse_local(value: str) -> datetime:
    """A Graph wall time (no offset, up to seven fractional digits) as a naive datetime."""
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidTime(f"invalid dateTime {value!r}") from exc
    return parsed.replace(tzinfo=None) if parsed.tzinfo is None else _to_naive_utc(parsed)


def parse_instant(value: str) -> datetime:
    """An ISO 8601 instant (`Z`, an offset, or none meaning UTC) as an aware UTC datetime."""
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.strip())
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidTime(f"invalid date-time {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _to_naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """A wall time in `tz` as an aware UTC instant (the earlier one when ambiguous)."""
    return wall.replace(tzinfo=tz).astimezone(UTC)


def format_local(value: datetime) -> str:
    """A Graph wall time: `2026-03-01T09:00:00.0000000`."""
    v = value
    day = f"{v.year:04d}-{v.month:02d}-{v.day:02d}"
    clock = f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    return f"{day}T{clock}.{v.microsecond:06d}0"


def format_stamp(value: datetime) -> str:
    """A Graph UTC stamp: `2026-01-01T10:00:00.1234560Z`."""
    return format_local(value.astimezone(UTC)) + "Z"


def format_offset(value: datetime) -> str:
    """The `+00:00` form notifications use for `subscriptionExpirationDateTime`."""
    return value.astimezone(UTC).isoformat(timespec="seconds")


def date_time_time_zone(instant: datetime, tz_name: str) -> dict[str, str]:
    """A `dateTimeTimeZone` value for `instant` shown in `tz_name`."""
    shown = instant.astimezone(zone(tz_name))
    return {"dateTime": format_local(shown), "timeZone": tz_name}


def midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def utc_now() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "WINDOWS_ZONES",
    "InvalidTime",
    "date_time_time_zone",
    "format_local",
    "format_offset",
    "format_stamp",
    "localize",
    "midnight",
    "parse_instant",
    "parse_local",
    "utc_now",
    "zone",
]
