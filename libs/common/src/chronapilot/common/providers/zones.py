"""Time-zone names as IANA names: Windows names (Outlook, Graph, CalDAV exports) mapped through
CLDR's table (as icalendar ships it); unknown or custom zones give None. Every zone name that
comes from outside (a provider, a request, a stored calendar) is opened here: ``ZoneInfo``
itself reads any path under the tz database (``America`` is a directory: ``IsADirectoryError``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

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


def zone_names() -> list[str]:
    """Every name :func:`open_zone` opens (IANA, the UTC aliases, Windows names), sorted."""
    names = _IANA | _UTC_NAMES | set(WINDOWS_TO_OLSON)
    return sorted(name for name in names if open_zone(name) is not None)


def open_zone(name: object) -> ZoneInfo | None:
    """The zone ``name`` (Windows or IANA) names; None for unknown or custom zones."""
    iana = iana_zone(name)
    if iana is None:
        return None
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # a Windows name mapped past the tz data
        return None
