"""The ``credentials`` collection: its only reader and writer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from chronapilot.common.store.client import Session, translate_errors
from chronapilot.common.store.repository import Repository


class Credentials(Repository):
    COLLECTION = "credentials"

    async def save_grant(
        self,
        session: Session | None,
        connection_id: str,
        *,
        provider: str,
        access_token: str | None,
        refresh_token: str | None,
        access_expires_at: datetime | None,
        scopes: Sequence[str],
        username: str | None,
        now: datetime,
    ) -> None:
        """Store the (already sealed) tokens consent produced for ``connection_id``, replacing
        any it had; the version moves on so a refresh that read the old ones loses its race."""
        with translate_errors(session):
            await self._collection.update_one(
                {"_id": connection_id},
                {
                    "$set": {
                        "provider": provider,
                        "access_token": access_token,
                        "refresh_token": refresh_token,
                        "access_expires_at": access_expires_at,
                        "scopes": list(scopes),
                        "username": username,
                        "updated_at": now,
                    },
                    "$inc": {"version": 1},
                },
                upsert=True,
                session=session,
            )
