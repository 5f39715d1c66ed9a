"""The ``idempotency_keys`` collection: its only reader and writer.

A record ``{_id, fingerprint, status, body, owner, created_at, locked_until, expires_at}`` is
reserved by the first request with its key (``status`` None while it runs, held by ``owner``
until ``locked_until``), completed with the answer to replay (``body`` sealed by the API: an
answer can hold a secret shown once), or released so that a retry runs the request again. A
request that died mid-way cannot release its key: once its lock has run out, a retry of the
same request takes the key over. The server prunes records when they expire (a TTL index on
``expires_at``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo.errors import DuplicateKeyError

from chronapilot.common.clock import aware
from chronapilot.common.errors import StoreError
from chronapilot.common.store.client import Document, translate_errors
from chronapilot.common.store.repository import Repository

_ATTEMPTS = 3  # insert, or take over, racing with other requests for the same key


def locked_until(record: Document, lock: timedelta) -> datetime:
    """Until when the request holding ``record`` may still be running. A record without
    ``locked_until`` (written before the lock existed) is locked for ``lock`` from its creation."""
    until = record.get("locked_until")
    return aware(until) if until is not None else aware(record["created_at"]) + lock


class IdempotencyKeys(Repository):
    COLLECTION = "idempotency_keys"

    async def reserve(
        self,
        record_id: str,
        *,
        fingerprint: str,
        owner: str,
        now: datetime,
        lock: timedelta,
        ttl: timedelta,
    ) -> Document | None:
        """Take ``record_id`` for ``owner``'s request (None), or return the record that holds
        it: a finished request's answer, another request, or the same one still running. A key
        past its ``ttl`` starts afresh; the same request's key whose lock ran out is taken over."""
        held: Document | None = None
        with translate_errors():
            for _ in range(_ATTEMPTS):
                try:
                    await self._collection.insert_one(
                        {
                            "_id": record_id,
                            "fingerprint": fingerprint,
                            "status": None,
                            "body": None,
                            "owner": owner,
                            "created_at": now,
                            "locked_until": now + lock,
                            "expires_at": now + ttl,
                        }
                    )
                    return None
                except DuplicateKeyError:
                    held = await self._collection.find_one({"_id": record_id})
                if held is None:
                    continue  # pruned meanwhile
                if aware(held["expires_at"]) <= now:
                    await self._collection.delete_one({"_id": record_id, "expires_at": held["expires_at"]})
                    continue
                if (
                    held["fingerprint"] != fingerprint
                    or held["status"] is not None
                    or locked_until(held, lock) > now
                ):
                    return held
                taken = await self._collection.find_one_and_update(
                    {"_id": record_id, "status": None, "owner": held.get("owner")},
                    {"$set": {"owner": owner, "locked_until": now + lock, "taken_over_at": now}},
                )
                if taken is not None:
                    return None
        if held is None:
            raise StoreError(f"idempotency key record {record_id} kept changing under this request")
        return held

    async def complete(self, record_id: str, *, owner: str, status: int, body: str | bytes) -> None:
        """Store the answer to replay to retries (if ``owner`` still holds the key)."""
        with translate_errors():
            await self._collection.update_one(
                {"_id": record_id, "owner": owner},
                {"$set": {"status": status, "body": body, "locked_until": None}},
            )

    async def release(self, record_id: str, *, owner: str) -> None:
        """Give the key up (if ``owner`` still holds it): the next request with it runs again."""
        with translate_errors():
            await self._collection.delete_one({"_id": record_id, "owner": owner})
