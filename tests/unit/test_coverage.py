"""Which calendars a connection's subscriptions cover, and its sync mode (coverage_of): pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chronapilot.common.models import SyncMode
from chronapilot.webhook_gateway.coverage import coverage_of
from chronapilot.webhook_gateway.records import LiveSubscription, SubscriptionRecord

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def channel(name: str, expires_in: timedelta) -> LiveSubscription:
    return LiveSubscription(name, None, "hash", NOW + expires_in, NOW - timedelta(days=1))


def record(calendar: str, *channels: LiveSubscription) -> SubscriptionRecord:
    return SubscriptionRecord(f"sub_{calendar}", "con_1", "microsoft", calendar, channels, "active", False, 0)


def test_every_synced_calendar_covered_means_realtime_and_the_earliest_expiry_is_shown():
    records = [record("a", channel("ca", timedelta(days=2))), record("b", channel("cb", timedelta(hours=3)))]
    coverage = coverage_of(records, ["a", "b"], NOW, push=True)
    assert coverage.mode is SyncMode.REALTIME
    assert coverage.subscription == {"id": "cb", "expires_at": NOW + timedelta(hours=3)}
    assert (coverage.covered, coverage.uncovered, coverage.partial) == ({"a", "b"}, set(), False)


def test_one_uncovered_calendar_means_polling_partially_covered():
    records = [record("a", channel("ca", timedelta(days=2))), record("b")]
    coverage = coverage_of(records, ["a", "b", "c"], NOW, push=True)
    assert coverage.mode is SyncMode.POLLING
    assert (coverage.covered, coverage.uncovered, coverage.partial) == ({"a"}, {"b", "c"}, True)
    assert coverage.subscription == {"id": "ca", "expires_at": NOW + timedelta(days=2)}


def test_an_expired_channel_covers_nothing():
    expired = record("a", channel("ca", timedelta(0)))
    coverage = coverage_of([expired], ["a"], NOW, push=True)
    assert (coverage.mode, coverage.subscription, coverage.partial) == (SyncMode.POLLING, None, False)
    assert coverage.uncovered == {"a"}


def test_a_replaced_google_channel_counts_by_the_newer_of_the_two():
    overlapping = record("a", channel("old", timedelta(minutes=5)), channel("new", timedelta(days=7)))
    coverage = coverage_of([overlapping], ["a"], NOW, push=True)
    assert coverage.mode is SyncMode.REALTIME
    assert coverage.subscription == {"id": "new", "expires_at": NOW + timedelta(days=7)}


def test_no_synced_calendar_is_polling_even_with_live_channels():
    """A record whose calendar is no longer synced (being stopped) still shows as live."""
    leftover = record("removed", channel("cr", timedelta(days=1)))
    coverage = coverage_of([leftover], [], NOW, push=True)
    assert coverage.mode is SyncMode.POLLING
    assert coverage.subscription == {"id": "cr", "expires_at": NOW + timedelta(days=1)}


def test_a_provider_without_push_is_polled_and_covers_nothing():
    coverage = coverage_of([record("a", channel("ca", timedelta(days=1)))], ["a"], NOW, push=False)
    assert (coverage.mode, coverage.subscription) == (SyncMode.POLLING, None)
    assert (coverage.covered, coverage.uncovered) == (set(), {"a"})
