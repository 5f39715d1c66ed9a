"""Asynchronous webhook delivery with notification faults applied.

API: build one :class:`NotificationDispatcher` per emulator, ``await start()`` it in the app's
cleanup context and ``await close()`` it on shutdown. ``dispatch(Delivery(...))`` returns at
once; a background task POSTs the notification. Deliveries on the same ``stream`` (a channel or
subscription id) leave in dispatch order, each after the previous one finished, unless a
``reorder`` fault swaps two of them. Faults come from the shared :class:`FaultRegistry`:
``drop`` withholds the notification, ``duplicate`` sends it twice, ``reorder`` holds it back
until the next one on its stream has been sent (or ``reorder_hold_seconds`` passed).
Answers in ``retry_statuses`` (and connection errors) are retried with exponential backoff up to
``attempts`` POSTs. ``await drain()`` waits until everything dispatched so far has been sent.
A delivery's headers are sent as given; no ``Content-Type`` is added unless they carry one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from chronapilot.sandbox.shared.counters import RequestCounters
from chronapilot.sandbox.shared.faults import FaultRegistry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One notification: where to POST it, with which headers and body."""

    url: str
    stream: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class NotificationDispatcher:
    """Sends notifications in background tasks, one ordered chain per stream."""

    def __init__(
        self,
        faults: FaultRegistry,
        counters: RequestCounters,
        *,
        attempts: int = 3,
        retry_statuses: tuple[int, ...] = (500, 502, 503, 504),
        backoff_seconds: float = 0.1,
        timeout_seconds: float = 10.0,
        reorder_hold_seconds: float = 5.0,
    ) -> None:
        self._faults = faults
        self._counters = counters
        self._attempts = attempts
        self._retry_statuses = retry_statuses
        self._backoff_seconds = backoff_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._reorder_hold_seconds = reorder_hold_seconds
        self._session: aiohttp.ClientSession | None = None
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._held: dict[str, tuple[Delivery, asyncio.TimerHandle]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the HTTP session (call inside the running loop)."""
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The client session, for other outbound calls an emulator makes (e.g. handshakes)."""
        if self._session is None:
            raise RuntimeError("NotificationDispatcher.start() was not awaited")
        return self._session

    def dispatch(self, delivery: Delivery) -> None:
        """Queue ``delivery`` (never blocks); faults are decided now, in dispatch order."""
        mode = self._faults.take_notification_fault(delivery.stream)
        if mode == "drop":
            self._counters.record_notification_dropped()
            return
        if mode == "reorder" and delivery.stream not in self._held:
            self._hold(delivery)
            return
        self._enqueue(delivery)
        if mode == "duplicate":
            self._enqueue(delivery)
        self._release_held(delivery.stream)

    async def drain(self) -> None:
        """Wait until every delivery dispatched so far (held ones included) has finished."""
        for stream in list(self._held):
            self._release_held(stream)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel pending deliveries and close the session."""
        for _, timer in self._held.values():
            timer.cancel()
        self._held.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    @staticmethod
    def _skipped_headers(delivery: Delivery) -> tuple[str, ...]:
        has_type = any(name.lower() == "content-type" for name in delivery.headers)
        return () if has_type else ("Content-Type",)

    def _hold(self, delivery: Delivery) -> None:
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self._reorder_hold_seconds, self._release_held, delivery.stream)
        self._held[delivery.stream] = (delivery, timer)

    def _release_held(self, stream: str) -> None:
        held = self._held.pop(stream, None)
        if held is not None:
            delivery, timer = held
            timer.cancel()
            self._enqueue(delivery)

    def _enqueue(self, delivery: Delivery) -> None:
        previous = self._tails.get(delivery.stream)
        task = asyncio.get_running_loop().create_task(self._send_after(previous, delivery))
        self._tails[delivery.stream] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._forget(delivery.stream, done))

    def _forget(self, stream: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(stream) is task:
            del self._tails[stream]

    async def _send_after(self, previous: asyncio.Task[None] | None, delivery: Delivery) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await self._send(delivery)

    async def _send(self, delivery: Delivery) -> None:
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._backoff_seconds * 2 ** (attempt - 1))
            self._counters.record_notification_sent()
            try:
                async with self.session.post(
                    delivery.url,
                    data=delivery.body,
                    headers=dict(delivery.headers),
                    skip_auto_headers=self._skipped_headers(delivery),
                ) as response:
                    await response.read()
                    if response.status not in self._retry_statuses:
                        if response.status >= 300:
                            self._counters.record_notification_failed()
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.info("notification to %s failed: %s", delivery.url, exc)
        self._counters.record_notification_failed()
