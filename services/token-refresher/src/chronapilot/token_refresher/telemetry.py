"""Token health as numbers: what the refresher exports to Prometheus.

Per connection, the telemetry lives on the connection document (``token_refresh.last_at``,
``failures_count`` — consecutive, reset by a success —, ``next_at``, ``last_error``), written
by :class:`~chronapilot.common.tokens.TokenService` in the same transaction as the tokens,
whichever process refreshed. The counters of refreshes and of failures by reason are
:data:`~chronapilot.common.tokens.REFRESHES` and
:data:`~chronapilot.common.tokens.REFRESH_FAILURES` (every process that refreshes exports
its own). Here: the fleet-wide gauges, computed from indexed queries after each tick, and the
revocation outcomes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge, Histogram

from chronapilot.common.settings import TokenSettings
from chronapilot.common.tokens import TokenService

EXPIRING_WITHIN_HOUR = Gauge(
    "chronapilot_tokens_expiring_within_hour",
    "Stored access tokens that expire within the next hour (refreshable ones only).",
)
OLDEST_OVERDUE_SECONDS = Gauge(
    "chronapilot_token_oldest_overdue_refresh_seconds",
    "How long ago the most overdue refresh became due (expiry minus margin); 0 when none is.",
)
TICK_SECONDS = Histogram(
    "chronapilot_token_refresh_tick_seconds",
    "Duration of one refresher tick (query, leases and refreshes).",
)
REVOCATIONS = Counter(
    "chronapilot_token_revocations_total",
    "Disconnects handled, by provider and outcome (revoked, not_supported, failed).",
    ["provider", "outcome"],
)

#: The gauges count every token expiring within the hour (with one-hour tokens, all of them),
#: so they are refreshed at most this often, not every tick.
FLEET_GAUGES_INTERVAL_S = 60.0


async def record_fleet_health(tokens: TokenService, settings: TokenSettings, now: datetime) -> None:
    """Set the fleet gauges, from two ranges on the ``access_expires_at`` index: the tokens
    expiring within the hour (counted), and the tokens due (only the soonest is read)."""
    credentials = tokens.credentials
    margin = timedelta(seconds=settings.refresh_margin_s)
    expiring = await credentials.count_expiring(now + timedelta(hours=1))
    soonest = await credentials.soonest_expiry(now + margin)
    EXPIRING_WITHIN_HOUR.set(expiring)
    overdue = 0.0
    if soonest is not None:
        overdue = max(0.0, (now - (soonest - margin)).total_seconds())
    OLDEST_OVERDUE_SECONDS.set(overdue)
