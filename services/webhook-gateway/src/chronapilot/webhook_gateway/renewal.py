"""A subscription's next step, decided without I/O (:func:`next_step`): create, renew, stop,
or leave alone, and when to look again. :mod:`~chronapilot.webhook_gateway.subscriptions`
reads the situation, asks here, and does what the step says.

- **Stop** when the record is being deleted, the connection is gone or disconnected, its
  provider has no push component (``provider.push`` is None), or the calendar is no longer synced.
- **Wait** while the connection is in an ``error`` that does not heal by itself (re-auth
  required): nothing is created or renewed; look again after ``retry_cap``.
- **Create** when no channel is live (none yet, expired, or dropped by the provider).
- **Renew** the newest live channel when asked to (``reauthorizationRequired``) or from
  :func:`renew_at`: ``renew_margin`` before it expires, at most half its lifetime. How is the
  provider's business: Graph extends in place, Google (no renewable subscriptions) overlaps a
  new channel with the old one, so while both live the newer one decides.
- **Keep** otherwise, until :func:`renew_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from chronapilot.common.models import ConnectionStatus
from chronapilot.webhook_gateway.records import LiveSubscription, SubscriptionRecord


class Action(StrEnum):
    CREATE = "create"
    RENEW = "renew"
    KEEP = "keep"
    WAIT = "wait"
    STOP = "stop"


@dataclass(frozen=True)
class Step:
    """What to do with a record now. ``due_at``: when to look again (``KEEP``, ``WAIT``), or now
    (the other actions, whose outcome sets the next time). ``channel``: the live channel
    ``RENEW`` renews and ``KEEP`` keeps. ``reason``: why a ``STOP`` (``disconnected``,
    ``not_synced``, ``calendar_removed``)."""

    action: Action
    due_at: datetime
    channel: LiveSubscription | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Situation:
    """What the decision reads besides the record: the connection's ``status`` (None when it is
    gone), whether its ``error`` heals by itself, whether its provider has push, whether the
    record's calendar is still synced."""

    status: str | None
    retryable_error: bool
    push: bool
    calendar_synced: bool


def renew_at(channel: LiveSubscription, margin: timedelta) -> datetime:
    """When ``channel`` is renewed: ``margin`` before it expires, at most half its lifetime."""
    lifetime = channel.expires_at - channel.since
    return channel.expires_at - min(margin, lifetime / 2)


def retry_at(now: datetime, delay: timedelta, current: LiveSubscription | None) -> datetime:
    """When a failed create or renew is tried again: after ``delay``, but no later than the
    live channel's expiry (coverage changes then)."""
    due_at = now + delay
    return due_at if current is None else min(due_at, current.expires_at)


def next_step(
    record: SubscriptionRecord,
    situation: Situation,
    now: datetime,
    *,
    renew_margin: timedelta,
    retry_cap: timedelta,
) -> Step:
    status = situation.status
    if record.status == "deleting" or status in (None, ConnectionStatus.DISCONNECTED) or not situation.push:
        reason = "disconnected" if status != ConnectionStatus.ACTIVE else "not_synced"
        return Step(Action.STOP, now, reason=reason)
    if not situation.calendar_synced:
        return Step(Action.STOP, now, reason="calendar_removed")
    if status != ConnectionStatus.ACTIVE and not situation.retryable_error:
        return Step(Action.WAIT, now + retry_cap)
    current = record.current(now)
    if current is None:
        return Step(Action.CREATE, now)
    if record.force_renew or now >= renew_at(current, renew_margin):
        return Step(Action.RENEW, now, channel=current)
    return Step(Action.KEEP, renew_at(current, renew_margin), channel=current)
