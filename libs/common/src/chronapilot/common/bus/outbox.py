"""The transactional outbox and its relay.

Writers call :func:`emit` inside the MongoDB transaction that changes state, so the state
change and the event commit together or not at all. The relay publishes unsent events in
order and marks them sent. If it crashes between publishing and marking, the events are
published again on restart (at least once; consumers dedupe on the envelope id); nothing is
lost at any point.

One relay publishes at a time (a lease), so a connection's events keep their order even
with several processes running; every service runs a relay and another takes over within the
lease time when the leader dies.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from chronapilot.common.bus.catalogue import Event, wrap
from chronapilot.common.bus.envelope import Envelope
from chronapilot.common.bus.producer import EventProducer
from chronapilot.common.bus.topics import topic_name
from chronapilot.common.clock import Clock, SystemClock, aware
from chronapilot.common.errors import BusError, StoreError
from chronapilot.common.ids import new_id
from chronapilot.common.logging import get_logger
from chronapilot.common.metrics import OUTBOX_LAG_SECONDS, OUTBOX_LEADER, OUTBOX_PUBLISHED
from chronapilot.common.store.client import Document, Store, translate_errors
from chronapilot.common.store.leases import Lease, lease_holder

COLLECTION = "outbox"
RELAY_LEASE = "outbox-relay"
log = get_logger(__name__)


async def emit(
    db: AsyncDatabase[Document],
    session: AsyncClientSession | None,
    event: Event,
    *,
    connection_id: str,
    topic_prefix: str,
) -> Envelope:
    """Queue ``event`` for publication, in ``session``'s transaction."""
    envelope = wrap(event, connection_id)
    record: dict[str, Any] = {
        "_id": envelope.id,
        "topic": topic_name(topic_prefix, event.TOPIC),
        "envelope": envelope.model_dump(mode="json"),
        "created_at": envelope.occurred_at,
        "sent_at": None,
    }
    with translate_errors():
        await db[COLLECTION].insert_one(record, session=session)
    return envelope


class EventSink(Protocol):
    """Where a writer queues the events of its writes: an :class:`Outbox` (``runtime.outbox``)."""

    async def emit(
        self, session: AsyncClientSession | None, event: Event, *, connection_id: str
    ) -> Envelope: ...


class Outbox:
    """Where a process queues its events: :func:`emit` into the outbox, then the relay woken."""

    def __init__(self, db: AsyncDatabase[Document], relay: OutboxRelay, *, topic_prefix: str) -> None:
        self._db = db
        self._relay = relay
        self._topic_prefix = topic_prefix

    async def emit(self, session: AsyncClientSession | None, event: Event, *, connection_id: str) -> Envelope:
        """Queue ``event`` in ``session``'s transaction (or on its own); wake the relay."""
        envelope = await emit(
            self._db, session, event, connection_id=connection_id, topic_prefix=self._topic_prefix
        )
        self._relay.wake()
        return envelope


class OutboxRelay:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        producer: EventProducer,
        *,
        poll_interval_s: float = 0.05,
        lease_s: float = 10.0,
        batch_size: int = 500,
        clock: Clock | None = None,
        name: str = "relay",
    ) -> None:
        self._outbox = db[COLLECTION]
        self._producer = producer
        self._poll_interval_s = poll_interval_s
        self._lease_s = lease_s
        self._batch_size = batch_size
        self._clock = clock or SystemClock()
        self._lease = Lease(db, RELAY_LEASE, f"{name}:{new_id('req')}", self._clock)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        """Publish soon: something was just written to the outbox by this process."""
        self._wake.set()

    async def run(self) -> None:
        """Publish until :meth:`stop`; holds the lease while it is the leader."""
        renew_at = 0.0
        leader = False
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            try:
                if loop.time() >= renew_at:
                    leader = await self._lease.acquire(self._lease_s)
                    OUTBOX_LEADER.set(1 if leader else 0)
                    renew_at = loop.time() + self._lease_s / 3
                if leader and await self.publish_pending() == self._batch_size:
                    continue  # more waiting: no pause
            except (StoreError, BusError) as exc:
                log.warning("outbox.relay_failed", error=str(exc))
                await asyncio.sleep(1.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
        if leader:
            with contextlib.suppress(StoreError):
                await self._lease.release()
        OUTBOX_LEADER.set(0)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch of unsent events in order, then mark them sent; return its size."""
        records = await self._unsent()
        if records:
            await self._publish(records)
            await self._mark_sent(records)
        return len(records)

    async def _unsent(self) -> list[Document]:
        with translate_errors():
            cursor = self._outbox.find({"sent_at": None}).sort("_id", 1).limit(self._batch_size)
            records = await cursor.to_list()
        oldest = aware(records[0]["created_at"]) if records else self._clock.now()
        OUTBOX_LAG_SECONDS.set(max(0.0, (self._clock.now() - oldest).total_seconds()))
        return records

    async def _publish(self, records: list[Document]) -> None:
        await self._producer.publish_many(
            [(record["topic"], Envelope.model_validate(record["envelope"])) for record in records]
        )

    async def _mark_sent(self, records: list[Document]) -> None:
        with translate_errors():
            await self._outbox.update_many(
                {"_id": {"$in": [record["_id"] for record in records]}},
                {"$set": {"sent_at": self._clock.now()}},
            )
        OUTBOX_PUBLISHED.inc(len(records))


@dataclass(frozen=True)
class OutboxStatus:
    """The outbox as an operator sees it (``chronapilot outbox status``)."""

    unsent: int
    oldest_unsent_at: datetime | None
    #: The relay holding (or that last held) the lease: ``<service>:<id>``, and until when.
    leader: str | None
    lease_expires_at: datetime | None


async def outbox_status(store: Store) -> OutboxStatus:
    """How many events wait for the relay, since when, and which relay leads."""
    outbox = store.db[COLLECTION]
    with translate_errors():
        unsent = await outbox.count_documents({"sent_at": None})
        oldest = await outbox.find_one(
            {"sent_at": None}, {"created_at": 1}, sort=[("sent_at", 1), ("_id", 1)]
        )
    holder = await lease_holder(store.db, RELAY_LEASE)
    return OutboxStatus(
        unsent=unsent,
        oldest_unsent_at=None if oldest is None else aware(oldest["created_at"]),
        leader=None if holder is None else holder[0],
        lease_expires_at=None if holder is None else aware(holder[1]),
    )
