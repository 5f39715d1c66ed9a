"""Replaying dead letters to the one consumer group that failed on them.

A held record (:mod:`chronapilot.common.store.dead_letters`) is moved to ``replaying`` (one
caller wins), then its original message (same key and value) is published to the replay topic
with headers naming its group and record; every :class:`~chronapilot.common.bus.ConsumerRunner`
consumes that topic and only the named group handles it, with its normal handler. A publish
that fails puts the record back to ``held``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chronapilot.common.bus.consumer import (
    REPLAY_GROUP,
    REPLAY_LETTER,
    REPLAY_OFFSET,
    REPLAY_PARTITION,
    REPLAY_TOPIC,
)
from chronapilot.common.bus.producer import EventProducer
from chronapilot.common.bus.topics import Topic, topic_name
from chronapilot.common.clock import Clock
from chronapilot.common.errors import BusError
from chronapilot.common.store.client import Document
from chronapilot.common.store.dead_letters import DeadLetters


class ReplayOutcome(enum.StrEnum):
    PUBLISHED = "published"
    NOT_FOUND = "not_found"
    OTHER_GROUP = "other_group"  # the record is another group's: not replayed to this one
    NOT_HELD = "not_held"  # replaying or replayed already
    PUBLISH_FAILED = "publish_failed"


@dataclass(frozen=True)
class Replay:
    letter_id: str
    outcome: ReplayOutcome
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is ReplayOutcome.PUBLISHED


async def replay_dead_letters(
    dead_letters: DeadLetters,
    producer: EventProducer,
    *,
    letter_ids: list[str],
    group_id: str,
    topic_prefix: str,
    clock: Clock,
) -> list[Replay]:
    """Replay each held record of ``letter_ids`` to ``group_id`` (the group that failed on it);
    one outcome per id, in order."""
    found = {doc["_id"]: doc for doc in await dead_letters.in_order(letter_ids)}
    replay_topic = topic_name(topic_prefix, Topic.REPLAY)
    outcomes: list[Replay] = []
    for letter_id in letter_ids:
        letter = found.get(letter_id)
        if letter is None:
            outcomes.append(Replay(letter_id, ReplayOutcome.NOT_FOUND, "no such dead letter"))
        elif letter["group_id"] != group_id:
            outcomes.append(
                Replay(letter_id, ReplayOutcome.OTHER_GROUP, f"it failed in group {letter['group_id']}")
            )
        else:
            outcomes.append(await _replay_one(dead_letters, producer, letter, replay_topic, clock))
    return outcomes


async def _replay_one(
    dead_letters: DeadLetters, producer: EventProducer, letter: Document, replay_topic: str, clock: Clock
) -> Replay:
    letter_id = str(letter["_id"])
    started = await dead_letters.start_replay(letter_id, now=clock.now())
    if started is None:
        return Replay(letter_id, ReplayOutcome.NOT_HELD, f"its status is {letter['status']}")
    headers = [
        (REPLAY_GROUP, str(started["group_id"]).encode()),
        (REPLAY_LETTER, letter_id.encode()),
        (REPLAY_TOPIC, str(started["topic"]).encode()),
        (REPLAY_PARTITION, str(started["partition"]).encode()),
        (REPLAY_OFFSET, str(started["offset"]).encode()),
    ]
    key = started["key"].encode() if started.get("key") is not None else None
    try:
        await producer.send(replay_topic, key, str(started["value"]).encode(), headers)
    except BusError as exc:
        await dead_letters.abandon_replay(letter_id)
        return Replay(letter_id, ReplayOutcome.PUBLISH_FAILED, exc.message)
    return Replay(letter_id, ReplayOutcome.PUBLISHED)
