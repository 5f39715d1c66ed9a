"""The consumer runner: a consumer group, handlers, retries, dead letters, clean commits.

- Offsets are committed manually, after the handler returned: the handler's writes are
  durable before Kafka forgets the message. A consumer killed before its commit gets the
  message again (handlers are idempotent).
- Partitions are handled concurrently (bounded); one partition's messages in order. A
  partition is paused while its messages are handled, so a slow one holds up nobody else.
- A failing handler is retried with backoff. Infrastructure errors (MongoDB or Kafka
  unreachable) are retried until they pass or the process stops, because every message
  would fail alike; any other error is retried ``max_attempts`` times, then the message goes
  to the dead-letter topic with the error, and the partition moves on. A message that is not
  a valid envelope goes there at once.
- With a dead-letter store (``dead_letters``, as every service has), a dead letter is also
  held in MongoDB before the offset is committed, and the runner also consumes the replay
  topic: a message replayed there (``chronapilot dlq replay``) is handled by the group it is
  addressed to (header ``group_id``) with the normal handler and skipped by every other
  group; the record then says ``replayed``, or holds the new error.
- On SIGTERM (:meth:`ConsumerRunner.stop`) in-flight messages finish and are committed.
- ``chronapilot_consumer_lag{group,topic}`` is how many messages of the partitions this runner
  has assigned are not handled yet (the partition's end minus the next offset to handle),
  summed per topic; updated as batches arrive and at least every :data:`LAG_REFRESH_S`. A
  topic none of whose partitions is assigned here any more has no series.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel, Field, ValidationError
from pymongo.errors import ConnectionFailure

from chronapilot.common.backoff import Backoff
from chronapilot.common.bus.envelope import Envelope
from chronapilot.common.bus.producer import EventProducer, start_with_budget
from chronapilot.common.bus.topics import Topic, topic_name
from chronapilot.common.errors import BusError, StoreError
from chronapilot.common.logging import bind_context, get_logger
from chronapilot.common.metrics import CONSUMER_LAG, DEAD_LETTERED, HANDLER_SECONDS, MESSAGES_HANDLED, REPLAYS
from chronapilot.common.settings import KafkaSettings
from chronapilot.common.store.dead_letters import DeadLetters

Handler = Callable[[Envelope], Awaitable[None]]
log = get_logger(__name__)

_INFRASTRUCTURE_ERRORS = (StoreError, BusError, ConnectionFailure, KafkaError, ConnectionError)
#: The longest ``chronapilot_consumer_lag`` goes without an update while the runner runs.
LAG_REFRESH_S = 1.0

#: Headers of a replayed message: the group it is for, its dead letter, where it first came from.
REPLAY_GROUP, REPLAY_LETTER, REPLAY_TOPIC = "group_id", "dead_letter_id", "original_topic"
REPLAY_PARTITION, REPLAY_OFFSET = "original_partition", "original_offset"
#: Headers of a dead-letter message: the group that gave up on it, the error's type.
DEAD_LETTER_GROUP, DEAD_LETTER_ERROR = "group_id", "error_type"


def _headers(record: ConsumerRecord) -> dict[str, str]:
    return {name: value.decode(errors="replace") for name, value in (record.headers or ())}


class DeadLetter(BaseModel):
    """The value of a dead-letter message: where it came from, why it failed, what it was."""

    original_topic: str
    partition: int
    offset: int
    group_id: str
    key: str | None
    value: str = Field(description="The original value, decoded as UTF-8 (invalid bytes replaced).")
    error_type: str
    error_message: str
    attempts: int
    failed_at: datetime


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._runner.finish(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None


class ConsumerRunner:
    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        group_id: str,
        topics: list[Topic],
        handler: Handler,
        producer: EventProducer,
        concurrency: int = 8,
        client_id: str | None = None,
        dead_letters: DeadLetters | None = None,
    ) -> None:
        self.group_id = group_id
        self._topics = [topic_name(kafka.topic_prefix, topic) for topic in topics]
        self._dead_letter_topic = topic_name(kafka.topic_prefix, Topic.DEAD_LETTER)
        self._replay_topic = topic_name(kafka.topic_prefix, Topic.REPLAY)
        self._dead_letters = dead_letters
        if dead_letters is not None:
            self._topics.append(self._replay_topic)
        self._servers = kafka.bootstrap_servers
        self._handler = handler
        self._producer = producer
        self._max_attempts = kafka.consumer_max_attempts
        self._backoff = Backoff(base_s=kafka.consumer_backoff_s, cap_s=30.0)
        self._slots = asyncio.Semaphore(concurrency)
        self._commit_lock = asyncio.Lock()
        self._in_flight: dict[TopicPartition, asyncio.Task[None]] = {}
        #: The next offset to handle of each in-flight partition (its fetch position is ahead).
        self._next_offsets: dict[TopicPartition, int] = {}
        self._lag_topics: set[str] = set()
        self._lag_updated = 0.0
        self._stopping = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers,
            group_id=group_id,
            client_id=client_id or group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=200,
            # how long the broker may hold an empty fetch; a broker that holds it to the end
            # even when a message arrives (the embedded one) adds up to this to every hop
            # (500 ms by default: customer webhooks took 330 ms p50 from the mirror, now 95 ms)
            fetch_max_wait_ms=100,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            max_poll_interval_ms=600_000,
        )

    async def start(self, *, budget_s: float) -> None:
        self._consumer.subscribe(self._topics, listener=_Rebalance(self))
        await start_with_budget(self._consumer, f"consumer:{self.group_id}", self._servers, budget_s)

    async def run(self) -> None:
        """Consume until :meth:`stop`."""
        while not self._stopping.is_set():
            try:
                batches = await self._consumer.getmany(timeout_ms=200)
            except KafkaError as exc:
                log.warning("consumer.fetch_failed", group=self.group_id, error=str(exc))
                await asyncio.sleep(1.0)
                continue
            for partition, records in batches.items():
                if not records:
                    continue
                if partition in self._in_flight:  # paused partitions return nothing; be safe
                    self._consumer.seek(partition, records[0].offset)
                    continue
                self._consumer.pause(partition)
                self._next_offsets[partition] = records[0].offset
                self._in_flight[partition] = asyncio.create_task(self._drain(partition, records))
            if batches or time.monotonic() - self._lag_updated >= LAG_REFRESH_S:
                await self._update_lag()

    async def _update_lag(self) -> None:
        """Set the lag of every topic with a partition assigned here; drop the others'."""
        self._lag_updated = time.monotonic()
        behind: dict[str, int] = {}
        for partition in self._consumer.assignment():
            behind.setdefault(partition.topic, 0)
            end = self._consumer.highwater(partition)
            done = self._next_offsets.get(partition)
            if done is None:
                try:
                    done = await asyncio.wait_for(self._consumer.position(partition), 1.0)
                except (TimeoutError, KafkaError):
                    continue  # no position yet (just assigned) or no longer assigned
            if end is not None:
                behind[partition.topic] += max(0, end - done)
        for topic, lag in behind.items():
            CONSUMER_LAG.labels(self.group_id, topic).set(lag)
        self._drop_lag(self._lag_topics - behind.keys())
        self._lag_topics = set(behind)

    def _drop_lag(self, topics: set[str]) -> None:
        for topic in topics:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.group_id, topic)

    async def stop(self, *, timeout_s: float = 20.0) -> None:
        """Stop fetching, let in-flight messages finish and commit, then leave the group."""
        self._stopping.set()
        try:
            await asyncio.wait_for(self.finish(set(self._in_flight)), timeout_s)
        except TimeoutError:
            log.warning("consumer.stop_timeout", group=self.group_id)
            for task in self._in_flight.values():
                task.cancel()
        try:  # leaving the group can hang on a broker mid-rebalance; offsets are committed already
            await asyncio.wait_for(self._consumer.stop(), timeout=10.0)
        except TimeoutError:
            log.warning("consumer.leave_group_timeout", group=self.group_id)
        self._drop_lag(self._lag_topics)
        self._lag_topics = set()

    async def finish(self, partitions: set[TopicPartition]) -> None:
        """Wait until the in-flight work of ``partitions`` is handled and committed."""
        tasks = [self._in_flight[p] for p in partitions if p in self._in_flight]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _drain(self, partition: TopicPartition, records: list[ConsumerRecord]) -> None:
        try:
            async with self._slots:
                for record in records:
                    if not await self._handle(record):
                        return  # stopping: leave the rest uncommitted, to be redelivered
                    await self._commit(partition, record.offset + 1)
                    self._next_offsets[partition] = record.offset + 1
        except Exception:
            log.exception("consumer.partition_failed", group=self.group_id, partition=str(partition))
        finally:
            del self._in_flight[partition]
            self._next_offsets.pop(partition, None)
            if partition in self._consumer.assignment() and not self._stopping.is_set():
                self._consumer.resume(partition)

    async def _commit(self, partition: TopicPartition, offset: int) -> None:
        async with self._commit_lock:
            await self._consumer.commit({partition: offset})

    async def _handle(self, record: ConsumerRecord) -> bool:
        """Handle one record (or dead-letter it). False when stopping before it was done."""
        replay_of: str | None = None
        if record.topic == self._replay_topic:
            headers = _headers(record)
            if headers.get(REPLAY_GROUP) != self.group_id:
                REPLAYS.labels(self.group_id, "skipped").inc()
                return True
            replay_of = headers.get(REPLAY_LETTER)
        try:
            envelope = Envelope.from_bytes(record.value or b"")
        except ValidationError as exc:
            await self._dead_letter(record, "?", exc, attempts=0, replay_of=replay_of)
            return True
        with bind_context(
            connection_id=envelope.connection_id, message_id=envelope.id, event_type=envelope.type
        ):
            started = time.perf_counter()
            attempt = 0
            while True:
                try:
                    await self._handler(envelope)
                except _INFRASTRUCTURE_ERRORS as exc:
                    delay = self._backoff.delay(min(attempt, 8))
                    log.warning("consumer.infrastructure_error", error=str(exc), retry_in_s=round(delay, 2))
                except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then dead-lettered
                    if attempt + 1 >= self._max_attempts:
                        await self._dead_letter(
                            record, envelope.type, exc, attempts=attempt + 1, replay_of=replay_of
                        )
                        self._observe(envelope.type, "dead_lettered", started)
                        return True
                    delay = self._backoff.delay(attempt)
                    log.warning(
                        "consumer.handler_failed",
                        error=f"{type(exc).__name__}: {exc}",
                        attempt=attempt + 1,
                        retry_in_s=round(delay, 2),
                    )
                else:
                    self._observe(envelope.type, "ok", started)
                    if replay_of is not None:
                        await self._replayed(replay_of)
                    return True
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return False

    def _observe(self, event_type: str, outcome: str, started: float) -> None:
        MESSAGES_HANDLED.labels(self.group_id, event_type, outcome).inc()
        HANDLER_SECONDS.labels(self.group_id, event_type).observe(time.perf_counter() - started)

    async def _replayed(self, letter_id: str) -> None:
        REPLAYS.labels(self.group_id, "handled").inc()
        log.info("consumer.replay_handled", dead_letter_id=letter_id)
        if self._dead_letters is not None:
            dead_letters = self._dead_letters
            await self._until_stored(lambda: dead_letters.mark_replayed(letter_id, now=datetime.now(UTC)))

    async def _until_stored(self, write: Callable[[], Awaitable[object]]) -> None:
        """Run a dead-letter store write until MongoDB takes it (the offset waits for it)."""
        while True:
            try:
                await write()
                return
            except StoreError as exc:
                log.warning("consumer.dead_letter_store_failed", error=str(exc))
                await asyncio.sleep(1.0)

    async def _dead_letter(
        self,
        record: ConsumerRecord,
        event_type: str,
        error: BaseException,
        *,
        attempts: int,
        replay_of: str | None = None,
    ) -> None:
        origin = (record.topic, record.partition, record.offset)
        if replay_of is not None:
            replayed = _headers(record)
            origin = (
                replayed.get(REPLAY_TOPIC, record.topic),
                int(replayed.get(REPLAY_PARTITION, record.partition)),
                int(replayed.get(REPLAY_OFFSET, record.offset)),
            )
        letter = DeadLetter(
            original_topic=origin[0],
            partition=origin[1],
            offset=origin[2],
            group_id=self.group_id,
            key=record.key.decode(errors="replace") if record.key else None,
            value=(record.value or b"").decode(errors="replace"),
            error_type=type(error).__name__,
            error_message=str(error)[:2000],
            attempts=attempts,
            failed_at=datetime.now(UTC),
        )
        log.error(
            "consumer.dead_lettered",
            topic=record.topic,
            offset=record.offset,
            error_type=letter.error_type,
            error=letter.error_message,
            attempts=attempts,
        )
        DEAD_LETTERED.labels(self.group_id, event_type).inc()
        if replay_of is not None:
            REPLAYS.labels(self.group_id, "dead_lettered").inc()
        await self._hold(letter, event_type, replay_of)
        headers = [
            (DEAD_LETTER_GROUP, self.group_id.encode()),
            (DEAD_LETTER_ERROR, letter.error_type.encode()),
        ]
        while True:
            try:
                await self._producer.send(
                    self._dead_letter_topic, record.key, letter.model_dump_json().encode(), headers
                )
                return
            except BusError as exc:
                log.warning("consumer.dead_letter_publish_failed", error=str(exc))
                await asyncio.sleep(1.0)

    async def _hold(self, letter: DeadLetter, event_type: str, replay_of: str | None) -> None:
        """Keep the dead letter in MongoDB for the operator (before the offset commits)."""
        dead_letters = self._dead_letters
        if dead_letters is None:
            return
        if replay_of is not None:
            await self._until_stored(
                lambda: dead_letters.hold_again(
                    replay_of,
                    error_type=letter.error_type,
                    error_message=letter.error_message,
                    attempts=letter.attempts,
                    failed_at=letter.failed_at,
                )
            )
            return
        try:
            envelope_id: str | None = Envelope.model_validate_json(letter.value).id
        except ValidationError:
            envelope_id = None
        await self._until_stored(
            lambda: dead_letters.record(
                group_id=letter.group_id,
                topic=letter.original_topic,
                partition=letter.partition,
                offset=letter.offset,
                key=letter.key,
                value=letter.value,
                event_type=event_type,
                envelope_id=envelope_id,
                error_type=letter.error_type,
                error_message=letter.error_message,
                attempts=letter.attempts,
                failed_at=letter.failed_at,
            )
        )
