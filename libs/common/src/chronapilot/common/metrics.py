"""Prometheus metrics shared by every service (each service adds its own beside these)."""

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
