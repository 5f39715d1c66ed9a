"""Small helpers the tests share: waiting on outcomes, running child processes, sample events,
a plain transactional write guard and an outbox without a relay."""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar, cast

from chronapilot.common.bus import Envelope, Event, emit
from chronapilot.common.providers.sync import EventData, EventTime
from chronapilot.common.store import Session, Store
from chronapilot.devstack.processes import Child

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T] | T], *, timeout_s: float = 30.0, interval_s: float = 0.1
) -> T:
    """Call ``probe()`` (a coroutine function or a plain one) until it returns something
    truthy, and return that; fail after ``timeout_s``.

    Every assertion on something another task, process, consumer or server produces waits
    through this (never a bare ``assert`` made once, never a ``sleep`` "long enough"). To assert
    that something does *not* happen, first wait here for a positive marker proving the system
    had its chance (a later event handled, a consumer caught up), then assert the absence."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return cast(T, result)
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s:g}s (last: {result!r})")
        await asyncio.sleep(interval_s)  # the poll interval


def spawn_python(name: str, script: Path, env: dict[str, str], log_dir: Path) -> Child:
    return Child.start(name, [sys.executable, str(script)], env=env, log_path=log_dir / f"{name}.log")


RETURN_PREFIX = "http://localhost:4000/return/"


#: The instant the sample events are built around (a Monday, before the EU DST change).
SAMPLE_T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def sample_event(
    event_id: str,
    title: str = "standup",
    *,
    updated: datetime | None = SAMPLE_T0,
    series: str | None = None,
    status: str = "confirmed",
) -> EventData:
    """A one-hour event the day after :data:`SAMPLE_T0` as a provider page carries it;
    ``series``: an exception of that master (its original start is its start)."""
    start = EventTime(SAMPLE_T0 + timedelta(days=1), None, "UTC")
    return EventData(
        provider_event_id=event_id,
        ical_uid=f"{event_id}@example.com",
        title=title,
        description=None,
        location=None,
        start=start,
        end=EventTime(SAMPLE_T0 + timedelta(days=1, hours=1), None, "UTC"),
        all_day=False,
        status=status,
        recurrence=(),
        recurring_event_id=series,
        original_start=start if series else None,
        organizer=None,
        attendees=(),
        etag=f'"{title}"',
        updated_at=updated,
        raw={"id": event_id, "summary": title},
    )


class InTransaction:
    """A sync's write guard without the connection fence (for tests with no connection)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def write(self, work: Callable[[Session], Awaitable[T]]) -> T:
        return await self._store.in_transaction(work)


class QueuedOutbox:
    """The transactional outbox with no relay: events are queued in the ``outbox`` collection
    (in the writer's transaction, as in a service) for the test to read back."""

    def __init__(self, store: Store, topic_prefix: str = "test") -> None:
        self._store = store
        self._topic_prefix = topic_prefix

    async def emit(self, session: Session | None, event: Event, *, connection_id: str) -> Envelope:
        db, prefix = self._store.db, self._topic_prefix
        return await emit(db, session, event, connection_id=connection_id, topic_prefix=prefix)

    async def queued(self, event_type: str | None = None) -> list[Envelope]:
        """What was queued (of ``event_type``, or all), in order."""
        records = await self._store.db.outbox.find({}).sort("_id", 1).to_list()
        envelopes = [Envelope.model_validate(record["envelope"]) for record in records]
        return [e for e in envelopes if event_type is None or e.type == event_type]
