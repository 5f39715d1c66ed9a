"""The ``ops_samples`` collection: what the ops console samples every ~30 s for its charts.

One document per time bucket (``_id`` = the bucket's start), so several console replicas write
the same document instead of duplicates, and every replica and a restarted one draw the same
history. A TTL index removes samples a day old (:data:`RETENTION`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chronapilot.common.store.client import Document, translate_errors
from chronapilot.common.store.repository import Repository

RETENTION = timedelta(hours=24)


def bucket_start(at: datetime, every: timedelta) -> datetime:
    step = every.total_seconds()
    return datetime.fromtimestamp(at.timestamp() // step * step, tz=UTC)


class OpsSamples(Repository):
    COLLECTION = "ops_samples"

    async def record(self, at: datetime, every: timedelta, values: dict[str, Any]) -> None:
        """Record ``values`` for the bucket of ``at`` (the first writer of a bucket wins)."""
        start = bucket_start(at, every)
        with translate_errors():
            await self._collection.update_one(
                {"_id": start.isoformat()},
                {"$setOnInsert": {"at": start, "values": values}},
                upsert=True,
            )

    async def since(self, at: datetime) -> list[Document]:
        """Samples from ``at`` on, oldest first."""
        with translate_errors():
            return await self._collection.find({"at": {"$gte": at}}).sort("at", 1).to_list()
