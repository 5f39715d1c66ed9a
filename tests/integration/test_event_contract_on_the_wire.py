"""What the bus really puts on Kafka matches docs/events/asyncapi.json: the key against the
message binding's key schema, the headers against the message's headers schema, the value
against its payload."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer

from chronapilot.common.bus import EventProducer, Topic, topic_name
from chronapilot.common.bus.catalogue import (
    ConnectionActivated,
    Event,
    SyncKind,
    SyncReason,
    SyncRequested,
    TokenRefreshed,
    wrap,
)
from chronapilot.common.ids import new_id

from helpers import eventually

pytestmark = pytest.mark.integration

SPEC = json.loads((Path(__file__).resolve().parents[2] / "docs" / "events" / "asyncapi.json").read_text())
EVENTS: list[Event] = [
    ConnectionActivated(application_id="app_1", user_id="usr_1", provider="google", email="a@example.com"),
    SyncRequested(mode=SyncKind.FULL, reason=SyncReason.INITIAL),
    TokenRefreshed(expires_at=datetime(2026, 1, 1, tzinfo=UTC), rotated=False),
]


def schema(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` resolvable on its own: references point into the document's components."""
    return {**node, "components": SPEC["components"]}


async def test_published_events_match_their_documented_key_headers_and_payload(isolated, topics):
    kafka = isolated.settings().kafka
    producer = EventProducer(kafka, client_id="test")
    await producer.start(budget_s=20)
    connection_id = new_id("con")
    try:
        for event in EVENTS:
            await producer.publish(topic_name(isolated.topic_prefix, event.TOPIC), wrap(event, connection_id))
    finally:
        await producer.stop()

    names = sorted({topic_name(isolated.topic_prefix, event.TOPIC) for event in EVENTS})
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:

        async def all_read() -> bool:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
            return len(records) >= len(EVENTS)

        await eventually(all_read, timeout_s=60)
    finally:
        await consumer.stop()

    assert {Topic(r.topic.removeprefix(f"{isolated.topic_prefix}.")) for r in records} == {
        e.TOPIC for e in EVENTS
    }
    for record in records:
        value = json.loads(record.value)
        message = SPEC["components"]["messages"][value["type"].replace(".", "_")]
        jsonschema.validate(record.key.decode(), message["bindings"]["kafka"]["key"])
        headers = {name: raw.decode() for name, raw in record.headers}
        jsonschema.validate(headers, message["headers"])
        assert set(headers) == set(message["headers"]["properties"]), "every header is documented"
        jsonschema.validate(value, schema(message["payload"]))
