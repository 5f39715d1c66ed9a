"""A consumer process for the event-bus tests: records what it handles in MongoDB.

Environment (beyond ChronaPilot's settings):
- ``GROUP_ID``: consumer group.
- ``HOLD_AFTER_RECORD``: after recording a message, block (until killed) before returning,
  so the offset is never committed.
- Messages whose ``data`` has ``"poison": true`` always fail.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime

from chronapilot.common.bus import ConsumerRunner, Envelope, EventProducer, Topic
from chronapilot.common.logging import configure_logging
from chronapilot.common.settings import Settings
from chronapilot.common.store.client import Store


async def main() -> None:
    settings = Settings()
    configure_logging("INFO", "json", service="recording-consumer")
    store = await Store.connect(settings.mongo, budget_s=20)
    producer = EventProducer(settings.kafka, client_id="recording-consumer")
    await producer.start(budget_s=20)
    hold = os.environ.get("HOLD_AFTER_RECORD") == "1"

    async def handle(envelope: Envelope) -> None:
        await store.db.received.insert_one(
            {"envelope_id": envelope.id, "type": envelope.type, "pid": os.getpid(), "at": datetime.now(UTC)}
        )
        if envelope.data.get("poison"):
            raise ValueError(f"poison message {envelope.id}")
        if hold:
            await asyncio.sleep(3600)

    runner = ConsumerRunner(
        kafka=settings.kafka,
        group_id=os.environ["GROUP_ID"],
        topics=[Topic.CONNECTIONS],
        handler=handle,
        producer=producer,
    )
    await runner.start(budget_s=20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(runner.run())
    await store.db.consumers.insert_one({"pid": os.getpid(), "started_at": datetime.now(UTC)})
    await stop.wait()
    await runner.stop(timeout_s=5)
    await task
    await producer.stop()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
