"""Time-zone names as IANA names: Windows names (Outlook, Graph, CalDAV exports) mapped through
CLDR's table (as icalendar ships it); unknown or custom zones give None."""

from __future__ import annotations

from zoneinfo import available_timezones

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

_IANA = frozenset(available_timezones()) | {"UTC"}
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Z", "GMT", "tzone://Microsoft/Utc", "Coordinated Universal Time"})


def iana_zone(name: object) -> str | None:
    """``name`` (Windows or IANA) as an IANA name; None for unknown or custom zones."""
    if not isinstance(name, str) or not name:
        return None
    if name in _UTC_NAMES:
        return "UTC"
    if name in _IANA:
        return name
    mapped = WINDOWS_TO_OLSON.get(name)
    return str(mapped) if mapped else None
