"""The ``credentials`` collection: its only reader and writer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

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
        fields: Mapping[str, Any],
        stale: Iterable[str],
        now: datetime,
    ) -> None:
        """Store the (already sealed) credential fields consent produced for ``connection_id``,
        dropping the ``stale`` fields of another credential shape; the version moves on so a
        refresh that read the old ones loses its race."""
        with translate_errors(session):
            await self._collection.update_one(
                {"_id": connection_id},
                {
                    "$set": {"provider": provider, **fields, "updated_at": now},
                    "$unset": dict.fromkeys(stale, ""),
                    "$inc": {"version": 1},
                },
                upsert=True,
                session=session,
            )
