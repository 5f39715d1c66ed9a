"""A subscription's next step (renewal.next_step): pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chronapilot.webhook_gateway.records import LiveSubscription, SubscriptionRecord
from chronapilot.webhook_gateway.renewal import Action, Situation, next_step, renew_at, retry_at

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
MARGIN = timedelta(hours=1)
CAP = timedelta(minutes=5)
WEEK = timedelta(days=7)
FINE = Situation(status="active", retryable_error=False, push=True, calendar_synced=True)


def channel(name: str, *, expires_in: timedelta, lifetime: timedelta = WEEK) -> LiveSubscription:
    expires_at = NOW + expires_in
    return LiveSubscription(name, None, "hash", expires_at, expires_at - lifetime)


def record(
    *channels: LiveSubscription, status: str = "active", force_renew: bool = False, provider="google"
) -> SubscriptionRecord:
    return SubscriptionRecord("sub_1", "con_1", provider, "cal", channels, status, force_renew, attempts=0)


def step_for(w: SubscriptionRecord, situation: Situation = FINE, now: datetime = NOW):
    return next_step(w, situation, now, renew_margin=MARGIN, retry_cap=CAP)


def test_a_new_watch_gets_a_subscription_now():
    step = step_for(record(status="pending"))
    assert (step.action, step.due_at, step.channel) == (Action.CREATE, NOW, None)


def test_a_live_subscription_is_left_alone_until_the_margin_before_expiry():
    live = channel("c1", expires_in=timedelta(days=3))
    step = step_for(record(live))
    assert (step.action, step.channel) == (Action.KEEP, live)
    assert step.due_at == live.expires_at - MARGIN


def test_exactly_at_the_renewal_margin_it_is_renewed():
    live = channel("c1", expires_in=MARGIN)
    step = step_for(record(live))
    assert (step.action, step.channel, step.due_at) == (Action.RENEW, live, NOW)
    just_before = step_for(record(live), now=NOW - timedelta(microseconds=1))
    assert just_before.action is Action.KEEP


def test_a_short_lived_subscription_is_renewed_at_half_its_lifetime():
    short = channel("c1", expires_in=timedelta(seconds=10), lifetime=timedelta(seconds=20))
    assert renew_at(short, MARGIN) == NOW
    assert step_for(record(short)).action is Action.RENEW
    assert step_for(record(short), now=NOW - timedelta(seconds=1)).due_at == NOW


def test_an_expired_subscription_is_created_again():
    expired = channel("c1", expires_in=timedelta(0))  # expiring now is expired
    assert step_for(record(expired)).action is Action.CREATE
    long_gone = channel("c1", expires_in=-timedelta(days=1))
    assert step_for(record(long_gone, status="failing")).action is Action.CREATE


def test_a_lifecycle_request_renews_at_once():
    live = channel("c1", expires_in=timedelta(days=3))
    step = step_for(record(live, force_renew=True))
    assert (step.action, step.channel) == (Action.RENEW, live)


def test_google_channels_that_overlap_during_a_replacement_are_judged_by_the_newer_one():
    """Google's channels cannot be renewed: the provider overlaps a new one with the old, so
    the old one running out soon is no reason to renew again."""
    old = channel("old", expires_in=timedelta(minutes=10))
    new = channel("new", expires_in=timedelta(days=7))
    step = step_for(record(old, new, provider="google"))
    assert (step.action, step.channel) == (Action.KEEP, new)
    assert step.due_at == new.expires_at - MARGIN


def test_renewable_graph_and_non_renewable_google_subscriptions_are_both_renewed_at_the_margin():
    """The decision is the same; how it is renewed (extended in place, or replaced) is the
    provider module's (capabilities.renewable_subscriptions)."""
    for provider in ("microsoft", "google"):
        live = channel("c1", expires_in=timedelta(minutes=30))
        assert step_for(record(live, provider=provider)).action is Action.RENEW


@pytest.mark.parametrize(
    ("situation", "status", "reason"),
    [
        (Situation(None, False, push=True, calendar_synced=False), "active", "disconnected"),
        (Situation("disconnected", False, push=True, calendar_synced=True), "active", "disconnected"),
        (FINE, "deleting", "not_synced"),
        (Situation("active", False, push=False, calendar_synced=True), "active", "not_synced"),
        (Situation("active", False, push=True, calendar_synced=False), "active", "calendar_removed"),
        (Situation("error", True, push=True, calendar_synced=True), "deleting", "disconnected"),
    ],
)
def test_stopped_when_deleted_disconnected_without_push_or_no_longer_synced(situation, status, reason):
    step = step_for(record(channel("c1", expires_in=WEEK), status=status), situation)
    assert (step.action, step.reason, step.due_at) == (Action.STOP, reason, NOW)


def test_a_connection_waiting_for_reauth_is_left_alone_and_looked_at_again_after_the_cap():
    live = channel("c1", expires_in=timedelta(minutes=10))
    reauth = Situation("error", retryable_error=False, push=True, calendar_synced=True)
    step = step_for(record(live, status="failing"), reauth)
    assert (step.action, step.due_at) == (Action.WAIT, NOW + CAP)


def test_a_connection_in_a_retryable_error_keeps_its_subscriptions_alive():
    live = channel("c1", expires_in=timedelta(minutes=10))
    retrying = Situation("error", retryable_error=True, push=True, calendar_synced=True)
    assert step_for(record(live), retrying).action is Action.RENEW


def test_a_failed_attempt_is_retried_after_the_backoff_but_no_later_than_the_expiry():
    live = channel("c1", expires_in=timedelta(minutes=2))
    assert retry_at(NOW, timedelta(minutes=5), live) == live.expires_at
    assert retry_at(NOW, timedelta(minutes=1), live) == NOW + timedelta(minutes=1)
    assert retry_at(NOW, timedelta(minutes=5), None) == NOW + timedelta(minutes=5)
