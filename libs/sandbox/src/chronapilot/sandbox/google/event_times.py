"""Event start/end values: reading ``{"date"}`` / ``{"dateTime", "timeZone"}`` and writing them back.

All-day values are :class:`datetime.date` (end exclusive); timed values are aware
:class:`datetime.datetime`. Timed values are served in the event's own ``timeZone`` when it has
one, otherwise in the calendar's, as Google does. ``updated``/``created`` stamps are UTC with
milliseconds (``2026-01-05T09:00:00.000Z``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chronapilot.sandbox.google.errors import ApiError, invalid_value, required_field


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises ``KeyError`` for unknown names."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise KeyError(name) from None


def is_time_zone(name: str) -> bool:
    """True for a known IANA zone name."""
    try:
        zone(name)
    except KeyError:
        return False
    return True


def parse_rfc3339(text: str) -> datetime:
    """An aware datetime from RFC 3339 (``Z`` or an offset required)."""
    value = datetime.fromisoformat(text.replace("z", "Z"))
    if value.tzinfo is None:
        raise ValueError(f"no UTC offset in {text!r}")
    return value


def format_rfc3339(value: datetime) -> str:
    """``2026-01-05T09:00:00+01:00`` (``Z`` for UTC itself)."""
    text = value.isoformat(timespec="seconds")
    return text[:-6] + "Z" if value.tzinfo is UTC else text


def format_timestamp(epoch_seconds: float) -> str:
    """An ``updated``/``created`` stamp: UTC with milliseconds."""
    stamp = datetime.fromtimestamp(epoch_seconds, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class EventTime:
    """A start or end: a date (all-day) or an aware datetime, and the ``timeZone`` given."""

    value: date | datetime
    time_zone: str | None

    @property
    def all_day(self) -> bool:
        """True for ``date`` values."""
        return not isinstance(self.value, datetime)

    def to_json(self, calendar_zone: str) -> dict[str, Any]:
        """The API form."""
        if not isinstance(self.value, datetime):
            return {"date": self.value.isoformat()}
        shown = self.value.astimezone(zone(self.time_zone or calendar_zone))
        result: dict[str, Any] = {"dateTime": format_rfc3339(shown)}
        if self.time_zone:
            result["timeZone"] = self.time_zone
        return result

    def instant(self, calendar_zone: str) -> datetime:
        """The UTC instant; an all-day value starts at midnight in the calendar's zone."""
        if isinstance(self.value, datetime):
            return self.value.astimezone(UTC)
        return datetime.combine(self.value, time(), zone(calendar_zone)).astimezone(UTC)


def read_event_time(data: Any, field_name: str) -> EventTime:
    """Parse ``start`` / ``end`` / ``originalStartTime`` from a request body."""
    if not isinstance(data, dict) or not ({"date", "dateTime"} & data.keys()):
        missing = "Missing end time." if field_name == "end" else f"Missing {field_name} time."
        raise required_field(missing)
    time_zone = data.get("timeZone")
    if time_zone is not None and (not isinstance(time_zone, str) or not is_time_zone(time_zone)):
        raise invalid_value(f"Invalid time zone definition for {field_name} time.")
    try:
        if data.get("date") is not None:
            return EventTime(date.fromisoformat(str(data["date"])), time_zone)
        text = str(data["dateTime"])
        try:
            value = parse_rfc3339(text)
        except ValueError:
            if time_zone is None:
                raise
            value = datetime.fromisoformat(text).replace(tzinfo=zone(time_zone))
        return EventTime(value, time_zone)
    except ValueError:
        raise ApiError(400, "invalid", f"Invalid {field_name} time.") from None
