"""Folding notifications into sync requests: duplicates, bursts, Kafka failures (no I/O)."""

from __future__ import annotations

import pytest

from chronapilot.common.backoff import Backoff
from chronapilot.common.errors import BusError
from chronapilot.webhook_gateway.coalesce import SyncRequests

from helpers import eventually


class Bus:
    def __init__(self, failures: int = 0) -> None:
        self.published: list[tuple[str, str]] = []
        self.failures = failures

    async def publish(self, connection_id: str, calendar_id: str) -> None:
        if self.failures:
            self.failures -= 1
            raise BusError("broker down")
        self.published.append((connection_id, calendar_id))


def requests(bus: Bus, window_s: float = 0.1) -> SyncRequests:
    return SyncRequests(
        bus.publish, window_s=window_s, dedupe_s=60, retry=Backoff(base_s=0.01, cap_s=0.02, attempts=3)
    )


async def windows_closed(folding: SyncRequests, bus: Bus) -> None:
    """Every window open now has closed (and published what was folded into it): a probe
    window of the same length, opened after them and marked, closes after them (timers fire
    in deadline order) and publishes its trailing request."""
    probe = ("con_probe", f"cal-{len(bus.published)}")
    assert await folding.request(*probe) is True
    assert await folding.request(*probe) is False
    await eventually(lambda: bus.published.count(probe) == 2, timeout_s=5, interval_s=0.01)


async def test_the_first_notification_is_published_at_once_and_a_burst_adds_one_more():
    bus = Bus()
    folding = requests(bus)
    assert await folding.request("con_1", "cal") is True
    assert [await folding.request("con_1", "cal") for _ in range(50)] == [False] * 50
    assert bus.published == [("con_1", "cal")]
    await eventually(lambda: bus.published == [("con_1", "cal")] * 2, timeout_s=5, interval_s=0.01)
    await windows_closed(folding, bus)
    assert bus.published.count(("con_1", "cal")) == 2  # nothing folded into the trailing window


async def test_calendars_and_connections_have_their_own_windows():
    bus = Bus()
    folding = requests(bus)
    for key in [("con_1", "a"), ("con_1", "b"), ("con_2", "a")]:
        assert await folding.request(*key)
    assert len(bus.published) == 3


async def test_a_quiet_calendar_is_published_at_once_again_after_its_window():
    bus = Bus()
    folding = requests(bus, window_s=0.05)
    await folding.request("con_1", "cal")
    await windows_closed(folding, bus)
    assert await folding.request("con_1", "cal") is True
    assert bus.published.count(("con_1", "cal")) == 2


async def test_a_failed_leading_publish_raises_and_leaves_no_window():
    bus = Bus(failures=1)
    folding = requests(bus)
    with pytest.raises(BusError):
        await folding.request("con_1", "cal")
    assert await folding.request("con_1", "cal") is True  # the provider's retry goes through
    assert bus.published == [("con_1", "cal")]


async def test_a_failed_trailing_publish_is_retried():
    bus = Bus()
    folding = requests(bus, window_s=0.05)
    await folding.request("con_1", "cal")
    await folding.request("con_1", "cal")
    bus.failures = 2
    await eventually(lambda: bus.published == [("con_1", "cal")] * 2, timeout_s=5, interval_s=0.01)
    await windows_closed(folding, bus)
    assert bus.published.count(("con_1", "cal")) == 2  # published once, after the failures


async def test_closing_publishes_what_open_windows_folded():
    bus = Bus()
    folding = requests(bus, window_s=10)
    await folding.request("con_1", "cal")
    await folding.request("con_1", "cal")
    await folding.close()
    assert len(bus.published) == 2


async def test_without_a_window_every_notification_is_published():
    bus = Bus()
    folding = requests(bus, window_s=0)
    for _ in range(3):
        assert await folding.request("con_1", "cal")
    assert len(bus.published) == 3


def test_duplicates_are_remembered_once_enqueued_and_forgotten_later():
    folding = SyncRequests(Bus().publish, window_s=1, dedupe_s=60)
    assert not folding.is_duplicate("chan:7")
    folding.remember("chan:7")
    assert folding.is_duplicate("chan:7")
    assert not folding.is_duplicate("chan:8")
    forgetful = SyncRequests(Bus().publish, window_s=1, dedupe_s=0)
    forgetful.remember("chan:7")
    assert not forgetful.is_duplicate("chan:7")


def test_the_duplicate_memory_is_bounded():
    folding = SyncRequests(Bus().publish, window_s=1, dedupe_s=60, max_remembered=100)
    for n in range(1000):
        folding.remember(f"chan:{n}")
    assert folding.is_duplicate("chan:999")
    assert not folding.is_duplicate("chan:0")
