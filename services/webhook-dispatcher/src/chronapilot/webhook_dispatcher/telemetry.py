"""The dispatcher's Prometheus metrics (bounded labels: no endpoint URLs or ids)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ATTEMPTS = Counter(
    "chronapilot_webhook_attempts_total",
    "Delivery attempts by outcome: succeeded, http_error, gone (410), timeout, network, blocked "
    "(an unsafe destination or an unreadable secret).",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "chronapilot_webhook_attempt_seconds",
    "Duration of one delivery attempt (the endpoint's answer time).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERY_LAG_SECONDS = Histogram(
    "chronapilot_webhook_delivery_lag_seconds",
    "From a delivery's creation to its first attempt's success.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CREATED = Counter(
    "chronapilot_webhook_deliveries_created_total",
    "Deliveries created by the fan-out, by public event type.",
    ["type"],
)
