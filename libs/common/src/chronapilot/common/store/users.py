"""The ``users`` collection: its only reader and writer."""

from __future__ import annotations

from chronapilot.common.models import User
from chronapilot.common.store.client import Document, translate_errors
from chronapilot.common.store.repository import Repository


class Users(Repository):
    COLLECTION = "users"

    async def create(self, user: User) -> None:
        with translate_errors():
            await self._collection.insert_one(user.to_mongo())

    async def of_application(self, application_id: str, user_id: str) -> Document | None:
        """The user, if it belongs to ``application_id`` (another application's is not found)."""
        with translate_errors():
            return await self._collection.find_one({"_id": user_id, "application_id": application_id})

    async def exists(self, application_id: str, user_id: str) -> bool:
        with translate_errors():
            found = await self._collection.find_one(
                {"_id": user_id, "application_id": application_id}, {"_id": 1}
            )
        return found is not None
