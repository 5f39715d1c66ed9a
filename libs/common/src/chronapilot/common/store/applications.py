"""The ``applications`` collection: its only reader and writer."""

from __future__ import annotations

from chronapilot.common.models import Application
from chronapilot.common.store.client import Session, translate_errors
from chronapilot.common.store.repository import Repository


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
