"""The ``sync_state`` collection: its only reader and writer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chronapilot.common.store.client import Session, translate_errors
from chronapilot.common.store.repository import Repository


class SyncStates(Repository):
    COLLECTION = "sync_state"

    async def cursor(self, calendar_id: str) -> str | None:
        """The provider's cursor stored by the calendar's last completed sync, if any."""
        cursor, _ = await self.resume_point(calendar_id)
        return cursor

    async def resume_point(self, calendar_id: str) -> tuple[str | None, datetime | None]:
        """The stored cursor and when the calendar's last full sync completed (None: never)."""
        with translate_errors():
            state = await self._collection.find_one(
                {"_id": calendar_id}, {"cursor": 1, "last_full_sync_at": 1}
            )
        return (state.get("cursor"), state.get("last_full_sync_at")) if state else (None, None)

    async def save_cursor(
        self,
        calendar_id: str,
        *,
        connection_id: str,
        cursor: str | None,
        synced_at: datetime,
        full: bool,
        session: Session | None = None,
    ) -> None:
        """A sync of the calendar completed: its next cursor and when (``full``: also
        ``last_full_sync_at``)."""
        state: dict[str, Any] = {"connection_id": connection_id, "cursor": cursor, "last_sync_at": synced_at}
        if full:
            state["last_full_sync_at"] = synced_at
        with translate_errors(session):
            await self._collection.update_one(
                {"_id": calendar_id}, {"$set": state}, upsert=True, session=session
            )
