"""Leases: one holder at a time for a named piece of work, safe across processes.

A lease is a document ``{_id: name, owner, expires_at}`` in ``leases``. Taking it succeeds
when it is free, expired, or already ours; the holder renews it before it expires. A crashed
holder's lease simply runs out, and another process takes over.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from chronapilot.common.clock import Clock
from chronapilot.common.store.client import Document, translate_errors

COLLECTION = "leases"


class Lease:
    def __init__(self, db: AsyncDatabase[Document], name: str, owner: str, clock: Clock) -> None:
        self._leases = db[COLLECTION]
        self.name = name
        self.owner = owner
        self._clock = clock

    async def acquire(self, ttl_s: float) -> bool:
        """Take or renew the lease for ``ttl_s``; False when someone else holds it."""
        now = self._clock.now()
        with translate_errors():
            try:
                await self._leases.update_one(
                    {"_id": self.name, "$or": [{"owner": self.owner}, {"expires_at": {"$lte": now}}]},
                    {"$set": {"owner": self.owner, "expires_at": now + timedelta(seconds=ttl_s)}},
                    upsert=True,
                )
            except DuplicateKeyError:
                return False
        return True

    async def release(self) -> None:
        with translate_errors():
            await self._leases.delete_one({"_id": self.name, "owner": self.owner})


async def lease_holder(db: AsyncDatabase[Document], name: str) -> tuple[str, datetime] | None:
    """Who holds (or last held) the lease ``name`` and until when; None when nobody ever did."""
    with translate_errors():
        lease = await db[COLLECTION].find_one({"_id": name})
    return None if lease is None else (str(lease["owner"]), lease["expires_at"])
