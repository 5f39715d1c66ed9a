"""Folding notifications into sync requests: duplicates, bursts, Kafka failures (no I/O)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

import pytest

from chronapilot.common.backoff import Backoff
from chronapilot.common.errors import BusError
from chronapilot.webhook_gateway.coalesce import SyncRequests


class Bus:
    def __init__(self, failures: int = 0) -> None:
        self.published: list[tuple[str, str]] = []
        self.failures = failures

    async def publish(self, connection_id: str, calendar_id: str) -> None:
        if self.failures:
            self.failures -= 1
            raise BusError("broker down")
        self.published.append((connection_id, calendar_id))


class ManualTimer:
    """Time that moves only when a test advances it: timers fire in deadline order, sleeps are
    recorded and return at once."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._timers: list[tuple[float, int, Callable[[], None], _Handle]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle()
        heapq.heappush(self._timers, (self.now + delay_s, next(self._seq), callback, handle))
        return handle

    async def sleep(self, delay_s: float) -> None:
        self.slept.append(delay_s)

    async def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, firing what falls due, and let the tasks they start run."""
        until = self.now + seconds
        while self._timers and self._timers[0][0] <= until:
            due, _, callback, handle = heapq.heappop(self._timers)
            self.now = due
            if not handle.cancelled:
                callback()
            await settle()
        self.now = until
        await settle()


class _Handle:
    cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


async def settle() -> None:
    """Let every task that is ready run to its next real wait (there are none here)."""
    for _ in range(20):
        await asyncio.sleep(0)


def requests(bus: Bus, timer: ManualTimer, window_s: float = 1.0) -> SyncRequests:
    return SyncRequests(
        bus.publish,
        window_s=window_s,
        dedupe_s=60,
        retry=Backoff(base_s=0.5, cap_s=1.0, attempts=3),
        timer=timer,
    )


async def test_the_first_notification_is_published_at_once_and_a_burst_adds_one_more():
    bus, timer = Bus(), ManualTimer()
    folding = requests(bus, timer)
    assert await folding.request("con_1", "cal") is True
    assert [await folding.request("con_1", "cal") for _ in range(50)] == [False] * 50
    assert bus.published == [("con_1", "cal")]
    await timer.advance(0.99)
    assert bus.published == [("con_1", "cal")]  # the window is still open
    await timer.advance(0.01)
    assert bus.published == [("con_1", "cal")] * 2  # its trailing request
    await timer.advance(5)
    assert bus.published.count(("con_1", "cal")) == 2  # nothing folded into the trailing window


async def test_calendars_and_connections_have_their_own_windows():
    bus, timer = Bus(), ManualTimer()
    folding = requests(bus, timer)
    for key in [("con_1", "a"), ("con_1", "b"), ("con_2", "a")]:
        assert await folding.request(*key)
    assert len(bus.published) == 3


async def test_a_quiet_calendar_is_published_at_once_again_after_its_window():
    bus, timer = Bus(), ManualTimer()
    folding = requests(bus, timer)
    await folding.request("con_1", "cal")
    assert await folding.request("con_1", "cal") is False
    await timer.advance(2)  # the window closes (with its trailing request), the next one too
    assert await folding.request("con_1", "cal") is True
    assert bus.published.count(("con_1", "cal")) == 3


async def test_a_failed_leading_publish_raises_and_leaves_no_window():
    bus, timer = Bus(failures=1), ManualTimer()
    folding = requests(bus, timer)
    with pytest.raises(BusError):
        await folding.request("con_1", "cal")
    assert await folding.request("con_1", "cal") is True  # the provider's retry goes through
    assert bus.published == [("con_1", "cal")]


async def test_a_failed_trailing_publish_is_retried_with_backoff():
    bus, timer = Bus(), ManualTimer()
    folding = requests(bus, timer)
    await folding.request("con_1", "cal")
    await folding.request("con_1", "cal")
    bus.failures = 2
    await timer.advance(1)
    assert bus.published == [("con_1", "cal")] * 2  # published once, after the failures
    assert len(timer.slept) == 2 and all(0 < delay <= 1.0 for delay in timer.slept)
    await timer.advance(5)
    assert bus.published.count(("con_1", "cal")) == 2


async def test_a_trailing_request_that_keeps_failing_is_given_up_after_its_attempts():
    bus, timer = Bus(), ManualTimer()
    folding = requests(bus, timer)
    await folding.request("con_1", "cal")
    await folding.request("con_1", "cal")
    bus.failures = 10
    await timer.advance(1)
    assert bus.published == [("con_1", "cal")]
    assert len(timer.slept) == 2  # between its three attempts, none after the last


async def test_closing_publishes_what_open_windows_folded():
    bus, timer = Bus(), ManualTimer()
    folding = requests(bus, timer, window_s=10)
    await folding.request("con_1", "cal")
    await folding.request("con_1", "cal")
    await folding.close()
    assert len(bus.published) == 2


async def test_without_a_window_every_notification_is_published():
    bus, timer = Bus(), ManualTimer()
    folding = requests(bus, timer, window_s=0)
    for _ in range(3):
        assert await folding.request("con_1", "cal")
    assert len(bus.published) == 3


def test_duplicates_are_remembered_once_enqueued_and_forgotten_later():
    timer = ManualTimer()
    folding = SyncRequests(Bus().publish, window_s=1, dedupe_s=60, timer=timer)
    assert not folding.is_duplicate("chan:7")
    folding.remember("chan:7")
    assert folding.is_duplicate("chan:7")
    assert not folding.is_duplicate("chan:8")
    timer.now += 59.9
    assert folding.is_duplicate("chan:7")
    timer.now += 0.1
    assert not folding.is_duplicate("chan:7")  # forgotten after webhook_dedupe_s
    forgetful = SyncRequests(Bus().publish, window_s=1, dedupe_s=0, timer=timer)
    forgetful.remember("chan:7")
    assert not forgetful.is_duplicate("chan:7")


def test_the_duplicate_memory_is_bounded():
    folding = SyncRequests(Bus().publish, window_s=1, dedupe_s=60, max_remembered=100, timer=ManualTimer())
    for n in range(1000):
        folding.remember(f"chan:{n}")
    assert folding.is_duplicate("chan:999")
    assert not folding.is_duplicate("chan:0")
