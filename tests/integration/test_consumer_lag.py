"""``chronapilot_consumer_lag``: what a consumer has not handled yet, summed over its partitions,
falling to 0 once it caught up, gone once it stopped."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from prometheus_client import REGISTRY

from chronapilot.common.bus import EventProducer, Topic, topic_name
from chronapilot.common.bus.consumer import ConsumerRunner
from chronapilot.common.bus.envelope import Envelope

from helpers import eventually

pytestmark = pytest.mark.integration


def lag(group: str, topic: str) -> float | None:
    return REGISTRY.get_sample_value("chronapilot_consumer_lag", {"group": group, "topic": topic})


async def test_the_lag_counts_unhandled_messages_across_partitions_and_falls_to_zero(isolated, topics):
    settings = isolated.settings()
    topic = topic_name(settings.kafka.topic_prefix, Topic.CONNECTIONS)
    group = f"{settings.kafka.topic_prefix}.lag-test"
    producer = EventProducer(settings.kafka, client_id="lag-test")
    await producer.start(budget_s=20)
    # keys spread over the partitions; nothing consumes them yet
    sent = [Envelope(type="test.happened", version=1, connection_id=f"con_lag{n}") for n in range(7)]
    await producer.publish_many([(topic, envelope) for envelope in sent])
    release = asyncio.Event()
    handled: list[str] = []

    async def handle(envelope: Envelope) -> None:
        await release.wait()
        handled.append(envelope.id)

    runner = ConsumerRunner(
        kafka=settings.kafka, group_id=group, topics=[Topic.CONNECTIONS], handler=handle, producer=producer
    )
    await runner.start(budget_s=20)
    task = asyncio.create_task(runner.run())
    try:
        # every partition's first message is held in its handler: nothing is handled yet
        await eventually(lambda: lag(group, topic) == len(sent), timeout_s=30)
        release.set()
        await eventually(lambda: len(handled) == len(sent), timeout_s=30)
        await eventually(lambda: lag(group, topic) == 0, timeout_s=30)
    finally:
        release.set()
        await runner.stop(timeout_s=5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await producer.stop()
    assert lag(group, topic) is None, "a stopped consumer leaves no lag series behind"
