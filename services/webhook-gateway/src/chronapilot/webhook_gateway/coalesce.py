"""From accepted notifications to sync requests: duplicates dropped, bursts folded.

- **Duplicates**: a notification's ``dedupe_key`` (Google: channel and message number; Graph:
  subscription, change, item and etag) is remembered for ``webhook_dedupe_s`` once it has been
  enqueued; the same notification again is acknowledged and dropped. Memory is per process: a
  duplicate reaching another gateway process gets through, and the per-calendar folding below
  (and the sync worker's own coalescing) absorbs it.
- **Bursts**: per ``(connection, calendar)``, the first notification publishes a sync request
  at once (the *leading* edge: lowest latency) and opens a window of ``webhook_debounce_s``;
  notifications inside the window only mark it; when it closes a marked window publishes one
  more request (the *trailing* edge: the changes made after the first sync started are not
  missed) and opens the next window. A burst of any length yields about one request per window.

The leading request is awaited before the provider gets its answer, so a Kafka failure turns
into a 5xx the provider retries. A trailing request is published after the answers went out:
a process that dies inside a window loses at most that window's folded notifications (the
leading sync of the window, and the sync worker's polling safety net, bound the damage).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from chronapilot.common.backoff import Backoff, retry
from chronapilot.common.errors import BusError
from chronapilot.common.logging import get_logger
from chronapilot.webhook_gateway.metrics import SYNC_REQUESTS

log = get_logger(__name__)

#: ``async (connection_id, calendar_id)``: publish one incremental sync request.
Publish = Callable[[str, str], Awaitable[None]]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Timer(Protocol):
    """The coalescer's sense of time: a monotonic reading, timers and sleeps (tests pass one
    they advance by hand)."""

    def monotonic(self) -> float: ...

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Cancellable: ...

    async def sleep(self, delay_s: float) -> None: ...


class LoopTimer:
    """Real time: the running event loop's timers."""

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Cancellable:
        return asyncio.get_running_loop().call_later(delay_s, callback)

    async def sleep(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)


@dataclass
class _Window:
    pending: bool = False
    timer: Cancellable | None = field(default=None, repr=False)


class SyncRequests:
    def __init__(
        self,
        publish: Publish,
        *,
        window_s: float,
        dedupe_s: float,
        max_remembered: int = 500_000,
        retry: Backoff | None = None,
        timer: Timer | None = None,
    ) -> None:
        self._publish = publish
        self._timer = timer or LoopTimer()
        self._window_s = window_s
        self._dedupe_s = dedupe_s
        self._max_remembered = max_remembered
        self._retry = retry or Backoff(base_s=0.2, cap_s=5.0, attempts=5)
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # duplicates ---------------------------------------------------------------------------

    def is_duplicate(self, key: str) -> bool:
        """True when ``key`` was remembered (and has not been forgotten since)."""
        until = self._seen.get(key)
        return until is not None and until > self._timer.monotonic()

    def remember(self, key: str) -> None:
        """Remember ``key`` for ``webhook_dedupe_s``: call once its notification is enqueued."""
        now = self._timer.monotonic()
        self._seen[key] = now + self._dedupe_s
        self._seen.move_to_end(key)
        while self._seen:
            oldest = next(iter(self._seen.values()))
            if len(self._seen) <= self._max_remembered and oldest > now:
                break
            self._seen.popitem(last=False)

    # bursts -------------------------------------------------------------------------------

    async def request(self, connection_id: str, calendar_id: str) -> bool:
        """A sync of the calendar is due: True if a request was published now, False if it was
        folded into the open window. A failed leading publish raises ``BusError``."""
        if self._window_s <= 0:
            await self._publish(connection_id, calendar_id)
            SYNC_REQUESTS.labels("leading").inc()
            return True
        key = (connection_id, calendar_id)
        window = self._windows.get(key)
        if window is not None:
            window.pending = True
            return False
        window = self._windows[key] = _Window()
        try:
            await self._publish(connection_id, calendar_id)
        except BaseException:
            if not window.pending:
                del self._windows[key]
                raise
            self._schedule_close(key, window)  # notifications folded meanwhile still get a sync
            raise
        SYNC_REQUESTS.labels("leading").inc()
        self._schedule_close(key, window)
        return True

    def _schedule_close(self, key: tuple[str, str], window: _Window) -> None:
        window.timer = self._timer.call_later(self._window_s, lambda: self._close(key))

    def _close(self, key: tuple[str, str]) -> None:
        window = self._windows.pop(key, None)
        if window is None or not window.pending:
            return
        following = self._windows[key] = _Window()
        task = asyncio.get_running_loop().create_task(self._send_trailing(key, following))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_trailing(self, key: tuple[str, str], window: _Window) -> None:
        def retrying(exc: Exception, attempt: int, delay: float) -> None:
            log.warning("sync_request.retrying", connection_id=key[0], error=str(exc))

        try:
            await retry(
                lambda: self._publish(*key),
                backoff=self._retry,
                should_retry=lambda exc: isinstance(exc, BusError),
                on_retry=retrying,
                sleep=self._timer.sleep,
            )
            SYNC_REQUESTS.labels("trailing").inc()
        except BusError:
            log.error("sync_request.lost", connection_id=key[0], attempts=self._retry.attempts)
        self._schedule_close(key, window)

    async def close(self) -> None:
        """Shutdown: publish what open windows folded, then stop."""
        pending = [key for key, window in self._windows.items() if window.pending]
        for window in self._windows.values():
            if window.timer is not None:
                window.timer.cancel()
        self._windows.clear()
        if self._tasks:
            _, unfinished = await asyncio.wait(list(self._tasks), timeout=5.0)
            for task in unfinished:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for key in pending:
            try:
                await self._publish(*key)
                SYNC_REQUESTS.labels("trailing").inc()
            except BusError as exc:
                log.error("sync_request.lost", connection_id=key[0], error=str(exc))
