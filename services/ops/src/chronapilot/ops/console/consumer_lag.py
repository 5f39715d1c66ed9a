"""Consumer lag per group, read from Kafka: each group's committed offsets against the
partitions' end offsets, on this deployment's topics.

A broker that cannot answer (an embedded broker without the group APIs, or one that is down)
gives :class:`LagUnavailable` with the reason: the console shows that, never a made-up zero.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from chronapilot.common.bus.topics import Topic, topic_name
from chronapilot.common.logging import get_logger
from chronapilot.common.settings import KafkaSettings

log = get_logger(__name__)

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    lag: int
    partitions: int


@dataclass(frozen=True)
class LagUnavailable:
    reason: str


async def consumer_lag(settings: KafkaSettings) -> list[GroupLag] | LagUnavailable:
    """Lag by (group, topic) over this deployment's topics; :class:`LagUnavailable` if the
    broker cannot tell."""
    try:
        return await asyncio.wait_for(_read(settings), TIMEOUT_S * 3)
    except (KafkaError, OSError, TimeoutError, ValueError, TypeError) as exc:
        log.warning("ops.consumer_lag_unavailable", error=type(exc).__name__)
        return LagUnavailable(f"the broker did not answer the group-offset requests ({type(exc).__name__})")


async def _read(settings: KafkaSettings) -> list[GroupLag]:
    ours = sorted(topic_name(settings.topic_prefix, topic) for topic in Topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="chronapilot-ops",
        enable_auto_commit=False,
        request_timeout_ms=int(TIMEOUT_S * 1000),
    )
    await asyncio.wait_for(consumer.start(), TIMEOUT_S)
    try:
        existing = await consumer.topics()
        partitions = [
            TopicPartition(topic, partition)
            for topic in ours
            if topic in existing
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    committed = await _committed(settings, partitions)
    lags: list[GroupLag] = []
    for group, offsets in sorted(committed.items()):
        by_topic: dict[str, list[int]] = {}
        for tp, offset in offsets.items():
            by_topic.setdefault(tp.topic, []).append(max(0, ends.get(tp, offset) - offset))
        lags += [GroupLag(group, t, sum(v), len(v)) for t, v in sorted(by_topic.items())]
    return lags


async def _committed(
    settings: KafkaSettings, partitions: list[TopicPartition]
) -> dict[str, dict[TopicPartition, int]]:
    """Each group's committed offsets on ``partitions`` (the groups that committed any).

    The partitions are named in the request: asking for "all of the group's partitions" is an
    OffsetFetch form that some Kafka-protocol brokers answer in a shape clients cannot read."""
    if not partitions:
        return {}
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="chronapilot-ops",
        request_timeout_ms=int(TIMEOUT_S * 1000),
    )
    await asyncio.wait_for(admin.start(), TIMEOUT_S)
    try:
        groups = sorted({str(group[0]) for group in await admin.list_consumer_groups()})
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
            mine = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            if mine:
                committed[group] = mine
        return committed
    finally:
        await admin.close()
