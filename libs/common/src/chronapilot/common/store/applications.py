"""The ``applications`` collection: its only reader and writer."""

from __future__ import annotations

from chronapilot.common.models import Application
from chronapilot.common.store.client import translate_errors
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
