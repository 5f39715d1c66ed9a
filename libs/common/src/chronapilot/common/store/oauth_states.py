"""The ``oauth_states`` collection: its only reader and writer.

A consent session is single use: it is open while ``used_at`` is None and ``expires_at`` is
ahead, and :meth:`OAuthStates.consume` closes it atomically (one caller wins).
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from chronapilot.common.store.client import Document, translate_errors
from chronapilot.common.store.repository import Repository


class OAuthStates(Repository):
    COLLECTION = "oauth_states"

    async def create(self, consent_session: Document) -> None:
        with translate_errors():
            await self._collection.insert_one(consent_session)

    async def find_open(self, state: str, provider: str, now: datetime) -> Document | None:
        """The open (unused, unexpired) session for ``state`` and ``provider``."""
        with translate_errors():
            return await self._collection.find_one(
                {"state": state, "provider": provider, "used_at": None, "expires_at": {"$gt": now}}
            )

    async def consume(self, state: str, provider: str, now: datetime) -> Document | None:
        """Close the open session for ``state``: once, and only while it is fresh; the session
        as closed, or None if there was none to close."""
        with translate_errors():
            return await self._collection.find_one_and_update(
                {"state": state, "provider": provider, "used_at": None, "expires_at": {"$gt": now}},
                {"$set": {"used_at": now}},
                return_document=ReturnDocument.AFTER,
            )

    async def count_attempt(self, session_id: str, *, max_attempts: int) -> Document | None:
        """Count one more password attempt on an unused session with fewer than
        ``max_attempts``; the session after counting, or None if none may be made."""
        with translate_errors():
            return await self._collection.find_one_and_update(
                {"_id": session_id, "used_at": None, "attempts": {"$lt": max_attempts}},
                {"$inc": {"attempts": 1}},
                return_document=ReturnDocument.AFTER,
            )
