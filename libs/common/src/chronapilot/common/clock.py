"""Time, injectable: services take a :class:`Clock`; tests pass a :class:`FixedClock`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def aware(value: datetime) -> datetime:
    """``value`` with UTC attached if it has no zone (a naive time read as UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def isoformat_z(value: datetime) -> str:
    """ISO 8601 in UTC with ``Z`` and millisecond precision (the API's datetime format)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
