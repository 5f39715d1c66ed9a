"""The ``idempotency_keys`` collection: its only reader and writer.

A record ``{_id, fingerprint, status, body, created_at, expires_at}`` is claimed by the first
request with its key (``status`` None while it runs), completed with the answer to replay, or
released so that a retry runs the request again.
"""

from __future__ import annotations

from datetime import datetime

from pymongo.errors import DuplicateKeyError

from chronapilot.common.store.client import translate_errors
from chronapilot.common.store.repository import Repository


class IdempotencyKeys(Repository):
    COLLECTION = "idempotency_keys"

    async def claim(self, record_id: str, *, fingerprint: str, now: datetime, expires_at: datetime) -> bool:
        """Reserve ``record_id`` for a request running now; False if a record already holds it."""
        with translate_errors():
            try:
                await self._collection.insert_one(
                    {
                        "_id": record_id,
                        "fingerprint": fingerprint,
                        "status": None,
                        "body": None,
                        "created_at": now,
                        "expires_at": expires_at,
                    }
                )
            except DuplicateKeyError:
                return False
        return True

    async def complete(self, record_id: str, *, status: int, body: bytes) -> None:
        """Store the answer to replay to retries."""
        with translate_errors():
            await self._collection.update_one({"_id": record_id}, {"$set": {"status": status, "body": body}})

    async def release(self, record_id: str) -> None:
        """Forget the record: the next request with its key runs again."""
        with translate_errors():
            await self._collection.delete_one({"_id": record_id})
