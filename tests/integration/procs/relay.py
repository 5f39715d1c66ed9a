"""An outbox relay process for the event-bus tests.

``PAUSE_BEFORE=publish`` blocks after reading unsent events and before publishing them;
``PAUSE_BEFORE=mark`` blocks after publishing and before marking them sent. Either way it
first writes a ``relay_paused`` document, so the test knows when to ``kill -9`` it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime

from chronapilot.common.bus import EventProducer, OutboxRelay
from chronapilot.common.logging import configure_logging
from chronapilot.common.settings import Settings
from chronapilot.common.store.client import Document, Store


class PausingRelay(OutboxRelay):
    def __init__(self, store: Store, producer: EventProducer, pause_before: str | None) -> None:
        super().__init__(store.db, producer, poll_interval_s=0.05, lease_s=2.0)
        self._store = store
        self._pause_before = pause_before

    async def _pause(self, where: str, records: list[Document]) -> None:
        if self._pause_before == where:
            await self._store.db.relay_paused.insert_one(
                {"where": where, "ids": [r["_id"] for r in records], "at": datetime.now(UTC)}
            )
            await asyncio.sleep(3600)

    async def _publish(self, records: list[Document]) -> None:
        await self._pause("publish", records)
        await super()._publish(records)

    async def _mark_sent(self, records: list[Document]) -> None:
        await self._pause("mark", records)
        await super()._mark_sent(records)


async def main() -> None:
    settings = Settings()
    configure_logging("INFO", "json", service="relay")
    store = await Store.connect(settings.mongo, budget_s=20)
    producer = EventProducer(settings.kafka, client_id="relay")
    await producer.start(budget_s=20)
    relay = PausingRelay(store, producer, os.environ.get("PAUSE_BEFORE"))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, relay.stop)
    await relay.run()
    await producer.stop()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
