"""The event bus end to end: outbox → relay → Kafka → consumer group in another process."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from chronapilot.common.bus import DeadLetter, EventProducer, OutboxRelay, Topic, emit, topic_name
from chronapilot.common.bus.catalogue import ConnectionActivated, ConnectionStatusChanged
from chronapilot.common.store.client import Store

from helpers import eventually, spawn_python

PROCS = Path(__file__).parent / "procs"
pytestmark = pytest.mark.integration


def activated(n: int = 0) -> ConnectionActivated:
    return ConnectionActivated(
        application_id="app_x", user_id=f"usr_{n}", provider="google", email=f"u{n}@example.com"
    )


async def write_in_transaction(
    store: Store, prefix: str, events: list[tuple[str, object]], *, fail: bool = False
) -> list[str]:
    """Change state and emit events in one transaction; return the envelope ids."""

    async def work(session):  # type: ignore[no-untyped-def]
        ids = []
        for connection_id, event in events:
            await store.db.connections.update_one(
                {"_id": connection_id}, {"$inc": {"version": 1}}, upsert=True, session=session
            )
            envelope = await emit(store.db, session, event, connection_id=connection_id, topic_prefix=prefix)
            ids.append(envelope.id)
        if fail:
            raise RuntimeError("the state change fails after the emit")
        return ids

    return await store.in_transaction(work)


async def received_ids(store: Store) -> list[str]:
    return [doc["envelope_id"] async for doc in store.db.received.find()]


@pytest.fixture
async def producer(isolated, topics):
    started = EventProducer(isolated.settings().kafka, client_id="test")
    await started.start(budget_s=20)
    yield started
    await started.stop()


@pytest.fixture
def consumer_process(isolated, tmp_path, topics):
    children = []

    def start(group: str = "recorders", **extra: str):
        child = spawn_python(
            f"consumer-{len(children)}",
            PROCS / "recording_consumer.py",
            isolated.env(GROUP_ID=group, **extra),
            tmp_path,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop(5)


@pytest.fixture
def relay_process(isolated, tmp_path, topics):
    children = []

    def start(**extra: str):
        child = spawn_python(f"relay-{len(children)}", PROCS / "relay.py", isolated.env(**extra), tmp_path)
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop(5)


async def test_an_event_written_through_the_outbox_reaches_a_consumer_in_another_process(
    isolated, store, producer, consumer_process
):
    consumer_process()
    ids = await write_in_transaction(store, isolated.topic_prefix, [("con_a", activated())])
    relay = OutboxRelay(store.db, producer, poll_interval_s=0.05, lease_s=2)
    task = asyncio.create_task(relay.run())
    try:
        got = await eventually(lambda: received_ids(store), timeout_s=60)
        assert got == ids
        # the relay marks it sent after Kafka acknowledged it: the consumer may have it first
        await eventually(lambda: store.db.outbox.find_one({"_id": ids[0], "sent_at": {"$ne": None}}))
    finally:
        relay.stop()
        await task


async def test_a_failed_transaction_leaves_neither_state_nor_event(isolated, store):
    with pytest.raises(RuntimeError):
        await write_in_transaction(store, isolated.topic_prefix, [("con_b", activated())], fail=True)
    assert await store.db.outbox.count_documents({}) == 0
    assert await store.db.connections.count_documents({}) == 0


@pytest.mark.parametrize("killed_before", ["publish", "mark"])
async def test_killing_the_relay_mid_publication_loses_nothing(
    isolated, store, consumer_process, relay_process, killed_before
):
    consumer_process()
    ids = await write_in_transaction(
        store, isolated.topic_prefix, [(f"con_{n}", activated(n)) for n in range(5)]
    )
    doomed = relay_process(PAUSE_BEFORE=killed_before)
    await eventually(lambda: store.db.relay_paused.find_one({"where": killed_before}), timeout_s=60)
    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait(10)
    assert await store.db.outbox.count_documents({"sent_at": None}) == 5

    relay_process()  # a fresh relay takes over once the dead one's lease runs out
    got = await eventually(lambda: _all_of(store, ids), timeout_s=60)
    assert set(got) == set(ids)
    await eventually(lambda: _unsent_is_zero(store), timeout_s=30)


async def _all_of(store: Store, ids: list[str]) -> list[str]:
    got = await received_ids(store)
    return got if set(ids) <= set(got) else []


async def _unsent_is_zero(store: Store) -> bool:
    return await store.db.outbox.count_documents({"sent_at": None}) == 0


async def test_a_consumer_killed_before_its_commit_gets_the_message_again(
    isolated, store, producer, consumer_process, relay_process
):
    holder = consumer_process(HOLD_AFTER_RECORD="1")
    relay_process()
    ids = await write_in_transaction(store, isolated.topic_prefix, [("con_k", activated())])
    first = await eventually(lambda: store.db.received.find_one({"envelope_id": ids[0]}), timeout_s=60)
    assert first["pid"] == holder.pid
    holder.process.send_signal(signal.SIGKILL)
    holder.process.wait(10)

    successor = consumer_process()
    again = await eventually(
        lambda: store.db.received.find_one({"envelope_id": ids[0], "pid": successor.pid}),
        timeout_s=90,
    )
    assert again is not None


async def test_a_handler_that_always_fails_sends_the_message_to_the_dead_letter_topic(
    isolated, store, producer, consumer_process, relay_process
):
    consumer_process()
    relay_process()
    poison = ConnectionStatusChanged(status="error", previous_status="active")
    ids = await write_in_transaction(store, isolated.topic_prefix, [("con_p", poison)])
    # The poison flag lives in the envelope data; write it as the emitter would for a bad payload.
    await store.db.outbox.update_one({"_id": ids[0]}, {"$set": {"envelope.data.poison": True}})
    healthy = await write_in_transaction(store, isolated.topic_prefix, [("con_p", activated())])

    # The next message on the same key (same partition) is handled: the partition moved on.
    await eventually(lambda: store.db.received.find_one({"envelope_id": healthy[0]}), timeout_s=60)
    attempts = await store.db.received.count_documents({"envelope_id": ids[0]})
    assert attempts == 3  # CHRONAPILOT_KAFKA_CONSUMER_MAX_ATTEMPTS

    letters = await read_dead_letters(isolated, expected=1)
    assert letters[0].original_topic == topic_name(isolated.topic_prefix, Topic.CONNECTIONS)
    assert letters[0].error_type == "ValueError"
    assert ids[0] in letters[0].error_message
    assert letters[0].attempts == 3
    assert ids[0] in letters[0].value


async def test_a_message_that_is_not_an_envelope_is_dead_lettered_at_once(
    isolated, store, producer, consumer_process
):
    consumer_process()
    topic = topic_name(isolated.topic_prefix, Topic.CONNECTIONS)
    await producer.send(topic, b"con_z", b"{not json")
    letters = await read_dead_letters(isolated, expected=1)
    assert letters[0].value == "{not json"
    assert letters[0].attempts == 0
    assert letters[0].error_type == "ValidationError"


async def read_dead_letters(isolated, *, expected: int) -> list[DeadLetter]:
    settings = isolated.settings()
    consumer = AIOKafkaConsumer(
        topic_name(isolated.topic_prefix, Topic.DEAD_LETTER),
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    letters: list[DeadLetter] = []
    try:

        async def more():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                letters.extend(DeadLetter.model_validate_json(r.value) for r in records)
            return len(letters) >= expected

        await eventually(more, timeout_s=60)
    finally:
        await consumer.stop()
    return letters
