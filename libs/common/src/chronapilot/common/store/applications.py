"""The ``applications`` collection: its only reader and writer."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from chronapilot.common.clock import aware
from chronapilot.common.errors import Conflict
from chronapilot.common.models import ApiKey, Application
from chronapilot.common.store.client import Session, translate_errors
from chronapilot.common.store.repository import Repository

_ATTEMPTS = 5


class Applications(Repository):
    COLLECTION = "applications"

    async def create(self, application: Application) -> None:
        """Insert a new application (raises :class:`~chronapilot.common.errors.Conflict` if one
        of its key hashes is already taken)."""
        with translate_errors():
            await self._collection.insert_one(application.to_mongo())

    async def by_key_hash(self, key_hash: str) -> Application | None:
        """The application one of whose API keys (revoked or not) has this SHA-256."""
        with translate_errors():
            raw = await self._collection.find_one({"api_keys.hash": key_hash})
        return None if raw is None else Application.from_mongo(raw)

    async def by_id(self, application_id: str) -> Application | None:
        with translate_errors():
            raw = await self._collection.find_one({"_id": application_id})
        return None if raw is None else Application.from_mongo(raw)

    async def by_key_id(self, key_id: str) -> Application | None:
        """The application holding the API key ``key_id`` (an operator's lookup: no index)."""
        with translate_errors():
            raw = await self._collection.find_one({"api_keys.id": key_id})
        return None if raw is None else Application.from_mongo(raw)

    async def all(self, *, limit: int) -> list[Application]:
        """Up to ``limit`` applications, newest first."""
        with translate_errors():
            raws = await self._collection.find({}).sort("_id", -1).limit(limit).to_list()
        return [Application.from_mongo(raw) for raw in raws]

    async def add_key(self, application_id: str, api_key: ApiKey) -> bool:
        """Add ``api_key`` to the application; False when there is no such application."""
        with translate_errors():
            result = await self._collection.update_one(
                {"_id": application_id}, {"$push": {"api_keys": api_key.model_dump()}}
            )
        return result.matched_count == 1

    async def revoke_key(self, key_id: str, *, at: datetime) -> Application | None:
        """Make the key ``key_id`` stop working at ``at``, unless it stops earlier already; the
        application as it then is, or None when no application holds that key.

        The key is changed by its place in the list, on condition it is still there with the
        ``revoked_at`` read (a concurrent change is read again)."""
        for _ in range(_ATTEMPTS):
            with translate_errors():
                raw = await self._collection.find_one({"api_keys.id": key_id})
            if raw is None:
                return None
            index, current = next((i, k) for i, k in enumerate(raw["api_keys"]) if k["id"] == key_id)
            revoked_at = current.get("revoked_at")
            if revoked_at is not None and aware(revoked_at) <= at:
                return Application.from_mongo(raw)
            path = f"api_keys.{index}"
            with translate_errors():
                changed = await self._collection.find_one_and_update(
                    {"_id": raw["_id"], f"{path}.id": key_id, f"{path}.revoked_at": revoked_at},
                    {"$set": {f"{path}.revoked_at": at}},
                    return_document=ReturnDocument.AFTER,
                )
            if changed is not None:
                return Application.from_mongo(changed)
        raise Conflict(f"API key {key_id} kept changing while being revoked")

    async def reserve_endpoint_slot(self, application_id: str, cap: int, *, session: Session) -> bool:
        """Count one more webhook endpoint for the application, unless it holds ``cap`` already
        (in the creating transaction: two creates cannot both take the last place)."""
        with translate_errors(session):
            result = await self._collection.update_one(
                {"_id": application_id, "webhook_endpoint_count": {"$not": {"$gte": cap}}},
                {"$inc": {"webhook_endpoint_count": 1}},
                session=session,
            )
        return result.modified_count == 1

    async def release_endpoint_slot(self, application_id: str, *, session: Session) -> None:
        """One webhook endpoint fewer (it was deleted in ``session``)."""
        with translate_errors(session):
            await self._collection.update_one(
                {"_id": application_id, "webhook_endpoint_count": {"$gt": 0}},
                {"$inc": {"webhook_endpoint_count": -1}},
                session=session,
            )
