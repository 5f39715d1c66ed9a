"""Prometheus metrics shared by every service (each service adds its own beside these).

Label values always come from bounded sets chosen in code: a group, an event type, a route
template, a provider name, an outcome. Never an id, an e-mail, a provider's text or a raw path.
``docs/metrics.md`` lists every metric of every process.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_HANDLED = Counter(
    "chronapilot_messages_handled_total",
    "Kafka messages handled, by consumer group, event type and outcome.",
    ["group", "type", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "chronapilot_handler_seconds",
    "Time spent in a message handler (all attempts).",
    ["group", "type"],
)
DEAD_LETTERED = Counter(
    "chronapilot_dead_lettered_total",
    "Messages sent to the dead-letter topic, by consumer group and event type.",
    ["group", "type"],
)
REPLAYS = Counter(
    "chronapilot_replays_total",
    "Messages read from the replay topic, by consumer group and outcome (handled, dead_lettered, "
    "or skipped: addressed to another group).",
    ["group", "outcome"],
)
OUTBOX_PUBLISHED = Counter("chronapilot_outbox_published_total", "Events published by the outbox relay.")
OUTBOX_LAG_SECONDS = Gauge(
    "chronapilot_outbox_oldest_unsent_seconds",
    "Age of the oldest unsent outbox event seen by the relay (0 when empty).",
)
OUTBOX_LEADER = Gauge("chronapilot_outbox_relay_leader", "1 while this process holds the outbox relay lease.")

BUILD_INFO = Gauge(
    "chronapilot_build_info",
    "Always 1; the labels say which service and which version this process runs.",
    ["service", "version"],
)
READY = Gauge(
    "chronapilot_ready",
    "1 while this process's readiness checks (MongoDB, Kafka) pass, else 0 (re-evaluated every ~10 s).",
    ["service"],
)
HTTP_REQUESTS = Counter(
    "chronapilot_http_requests_total",
    "Requests the public API and webhook gateway answered, by route template, method and status.",
    ["service", "route", "method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "chronapilot_http_request_seconds",
    "Time from a request's arrival to its answer, by route template and method.",
    ["service", "route", "method"],
)
PROVIDER_REQUESTS = Counter(
    "chronapilot_provider_requests_total",
    "HTTP requests sent to a calendar provider, by operation and outcome.",
    ["provider", "operation", "outcome"],
)
PROVIDER_REQUEST_SECONDS = Histogram(
    "chronapilot_provider_request_seconds",
    "Time a provider took to answer one HTTP request (or to fail it), by operation.",
    ["provider", "operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
CONSUMER_LAG = Gauge(
    "chronapilot_consumer_lag",
    "Messages behind the end of the partitions this process has assigned, by group and topic.",
    ["group", "topic"],
)
