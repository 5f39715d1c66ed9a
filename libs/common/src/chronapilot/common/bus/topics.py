"""Topic names. Each is versioned (``….v1``) and prefixed by ``CHRONAPILOT_KAFKA_TOPIC_PREFIX``."""

from __future__ import annotations

import enum


class Topic(enum.StrEnum):
    """Logical topics; :func:`topic_name` gives the broker's name for one."""

    CONNECTIONS = "connections.v1"
    SYNC_REQUESTS = "sync.requests.v1"
    SYNC_RESULTS = "sync.results.v1"
    TOKENS = "tokens.v1"
    SUBSCRIPTIONS = "subscriptions.v1"
    MIRROR = "mirror.v1"
    DEAD_LETTER = "deadletter.v1"
    REPLAY = "replay.v1"


TOPIC_DESCRIPTIONS: dict[Topic, str] = {
    Topic.CONNECTIONS: "Lifecycle of connections: activated, disconnected, status changed.",
    Topic.SYNC_REQUESTS: "Requests to sync a connection (or one of its calendars).",
    Topic.SYNC_RESULTS: "Outcomes of syncs: completed or failed.",
    Topic.TOKENS: "Token health: refreshed, refresh failed.",
    Topic.SUBSCRIPTIONS: "Webhook subscriptions: created, renewed, removed.",
    Topic.MIRROR: (
        "What the mirror's writes changed: events created, updated or deleted in a calendar; "
        "calendars created, updated or removed in a connection."
    ),
    Topic.DEAD_LETTER: "Messages a consumer could not handle after bounded retries, with the error.",
    Topic.REPLAY: (
        "Dead letters an operator replays (`chronapilot dlq replay`): the original message, "
        "addressed to the one consumer group that failed on it (header `group_id`); every other "
        "group skips it."
    ),
}


def topic_name(prefix: str, topic: Topic) -> str:
    return f"{prefix}.{topic.value}"
