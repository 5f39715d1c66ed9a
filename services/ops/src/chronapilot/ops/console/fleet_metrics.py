"""The fleet gauges on the console's ``/metrics`` (issue 19's metric contract), recomputed from
MongoDB and Kafka every ``CHRONAPILOT_OPS_GAUGES_INTERVAL_S``.

Every label value comes from a bounded set the code chose (providers, statuses, sync modes,
topics and groups of this deployment), never an id, an e-mail or a provider's string. Each
recompute replaces a gauge's whole label set at once (no await in between), so a scrape sees
either the old set or the new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Gauge

from chronapilot.common.store.fleet import FleetSnapshot
from chronapilot.ops.console.consumer_lag import GroupLag, LagUnavailable

CONNECTIONS = Gauge(
    "chronapilot_connections",
    "Connections by provider, status and sync mode.",
    ["provider", "status", "sync_mode"],
)
SYNC_STALENESS = Gauge(
    "chronapilot_sync_staleness_seconds",
    "Age of the oldest last successful sync among active connections' calendars.",
    ["provider"],
)
CONNECTIONS_STALE = Gauge(
    "chronapilot_connections_stale",
    "Active connections whose last sync is older than the poll interval.",
    ["provider"],
)
SUBSCRIPTIONS_EXPIRING = Gauge(
    "chronapilot_subscriptions_expiring", "Webhook subscriptions expiring within 24 h.", ["provider"]
)
RENEWALS_FAILING = Gauge(
    "chronapilot_subscription_renewals_failing",
    "Webhook subscriptions whose last renewal failed.",
    ["provider"],
)
WEBHOOK_DELIVERIES = Gauge(
    "chronapilot_webhook_deliveries", "Customer webhook deliveries by status.", ["status"]
)
DEAD_LETTERS = Gauge(
    "chronapilot_dead_letters",
    "Dead letters held and not replayed, by original topic and group.",
    ["topic", "group"],
)


@dataclass
class FleetReading:
    """One recompute: what MongoDB and Kafka said, and when."""

    snapshot: FleetSnapshot
    lag: list[GroupLag] | LagUnavailable
    dead_letters: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def at(self) -> datetime:
        return self.snapshot.at


def publish(reading: FleetReading) -> None:
    snapshot = reading.snapshot
    now = snapshot.at
    _replace(CONNECTIONS, {key: float(n) for key, n in snapshot.connections.items()})
    _replace(SYNC_STALENESS, {(s.provider,): s.age_s(now) for s in snapshot.staleness})
    _replace(CONNECTIONS_STALE, {(s.provider,): float(s.stale) for s in snapshot.staleness})
    _replace(SUBSCRIPTIONS_EXPIRING, {(s.provider,): float(s.expiring) for s in snapshot.subscriptions})
    _replace(RENEWALS_FAILING, {(s.provider,): float(s.failing) for s in snapshot.subscriptions})
    _replace(WEBHOOK_DELIVERIES, {(status,): float(n) for status, n in snapshot.deliveries.items()})
    _replace(DEAD_LETTERS, {key: float(n) for key, n in reading.dead_letters.items()})


def _replace(gauge: Gauge, values: dict[tuple[str, ...], float]) -> None:
    gauge.clear()
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
