"""The ``credentials`` collection: its only reader and writer.

One document per connection (``_id`` the connection's id): the sealed access and refresh
tokens, ``access_expires_at``, ``version`` (bumped by every store, the compare-and-set of
:class:`~chronapilot.common.tokens.TokenService`), the refresh lease (``refreshing_until``,
``refreshing_by``), a transient failure's backoff (``refresh_retry_at``), and
``reauth_required_version`` when the grant is known to be gone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.cursor import AsyncCursor

from chronapilot.common.store.client import Document, Session, translate_errors
from chronapilot.common.store.repository import Repository

#: The index that serves the refresher's query for tokens due (:mod:`.indexes`).
DUE_INDEX = "by_access_expiry"
_LEASE = {"refreshing_until": "", "refreshing_by": ""}


def _free(field: str, now: datetime) -> dict[str, Any]:
    """``field`` is unset, null or in the past (a lease or backoff that no longer holds)."""
    return {field: {"$not": {"$gt": now}}}


def _free_at(doc: Document, field: str, now: datetime) -> bool:
    until = doc.get(field)
    return until is None or until <= now


class Credentials(Repository):
    COLLECTION = "credentials"

    async def scopes_of(self, connection_id: str) -> tuple[str, ...] | None:
        """The scopes recorded with the connection's credentials (the provider's for an OAuth
        grant, ChronaPilot's for a password); None without credentials."""
        with translate_errors():
            doc = await self._collection.find_one({"_id": connection_id}, {"scopes": 1})
        return None if doc is None else tuple(doc.get("scopes") or ())

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

    # the refresh lease ----------------------------------------------------------------------

    async def claim_refresh(
        self,
        connection_id: str,
        *,
        version: int,
        owner: str,
        now: datetime,
        until: datetime,
        due_before: datetime | None = None,
    ) -> Document | None:
        """Take the refresh lease for ``owner`` until ``until``, if the credentials are still at
        ``version`` and nobody holds it (``due_before``: only if the access token expires before
        then and no backoff is pending); the credentials as taken, or None."""
        query: dict[str, Any] = {"_id": connection_id, "version": version}
        query |= _free("refreshing_until", now)
        if due_before is not None:
            query |= {"access_expires_at": {"$lte": due_before}, **_free("refresh_retry_at", now)}
        with translate_errors():
            return await self._collection.find_one_and_update(
                query,
                {"$set": {"refreshing_until": until, "refreshing_by": owner}},
                return_document=ReturnDocument.AFTER,
            )

    async def renew_refresh(
        self, connection_id: str, *, version: int, owner: str, until: datetime
    ) -> Document | None:
        """Extend ``owner``'s refresh lease to ``until``; None if it is no longer ``owner``'s at
        ``version``."""
        with translate_errors():
            return await self._collection.find_one_and_update(
                {"_id": connection_id, "version": version, "refreshing_by": owner},
                {"$set": {"refreshing_until": until}},
                return_document=ReturnDocument.AFTER,
            )

    async def release_refresh(self, connection_id: str, *, owner: str) -> None:
        """Let go of ``owner``'s refresh lease (nothing was stored)."""
        with translate_errors():
            await self._collection.update_one(
                {"_id": connection_id, "refreshing_by": owner}, {"$unset": _LEASE}
            )

    # refresh outcomes ------------------------------------------------------------------------

    async def store_refreshed(
        self,
        connection_id: str,
        *,
        version: int,
        access_token: str | None,
        refresh_token: str | None,
        access_expires_at: datetime | None,
        scopes: Sequence[str] | None,
        now: datetime,
        session: Session | None = None,
    ) -> bool:
        """Store refreshed (sealed) tokens if the credentials are still at ``version`` (else a
        re-link stored a newer grant: False); the lease and any backoff end, ``version`` moves on."""
        changes: dict[str, Any] = {
            "access_token": access_token,
            "refresh_token": refresh_token,
            "access_expires_at": access_expires_at,
            "updated_at": now,
        }
        if scopes:
            changes["scopes"] = list(scopes)
        with translate_errors(session):
            stored = await self._collection.update_one(
                {"_id": connection_id, "version": version},
                {"$set": changes, "$unset": {**_LEASE, "refresh_retry_at": ""}, "$inc": {"version": 1}},
                session=session,
            )
        return stored.matched_count == 1

    async def back_off_refresh(
        self, connection_id: str, *, owner: str, retry_at: datetime, session: Session | None = None
    ) -> None:
        """A refresh by ``owner`` failed for now: no background refresh before ``retry_at``."""
        with translate_errors(session):
            await self._collection.update_one(
                {"_id": connection_id, "refreshing_by": owner},
                {"$set": {"refresh_retry_at": retry_at}, "$unset": _LEASE},
                session=session,
            )

    async def mark_reauth_required(
        self, connection_id: str, *, version: int, now: datetime, session: Session | None = None
    ) -> bool:
        """The grant is gone: the credentials at ``version`` become unusable (no access token,
        nothing to refresh) until a re-link bumps ``version``. False if no longer at ``version``."""
        with translate_errors(session):
            marked = await self._collection.update_one(
                {"_id": connection_id, "version": version},
                {
                    "$set": {
                        "access_token": None,
                        "access_expires_at": None,
                        "reauth_required_version": version + 1,
                        "updated_at": now,
                    },
                    "$unset": {**_LEASE, "refresh_retry_at": ""},
                    "$inc": {"version": 1},
                },
                session=session,
            )
        return marked.matched_count == 1

    async def delete(self, connection_id: str, *, session: Session | None = None) -> None:
        with translate_errors(session):
            await self._collection.delete_one({"_id": connection_id}, session=session)

    # the refresher's queries ------------------------------------------------------------------

    def _due(self, before: datetime, limit: int) -> AsyncCursor[Document]:
        """Tokens expiring before ``before``, soonest first, with their lease and backoff: one
        range on :data:`DUE_INDEX`."""
        return (
            self._collection.find(
                {"access_expires_at": {"$lte": before}},
                {"_id": 1, "version": 1, "refreshing_until": 1, "refresh_retry_at": 1},
            )
            .sort("access_expires_at", 1)
            .batch_size(limit)
        )

    async def due_for_refresh(
        self, *, before: datetime, now: datetime, limit: int, skip: Collection[str] = ()
    ) -> list[Document]:
        """Up to ``limit`` tokens expiring before ``before``, soonest first, that are free at
        ``now``: neither leased by a process nor waiting out a backoff (nor in ``skip``).

        The lease and backoff are checked here rather than in the query so the query stays one
        range on the index (every server plans that well); what is skipped is itself due, so
        the cost stays proportional to the tokens due.
        """
        batch: list[Document] = []
        with translate_errors():
            async for doc in self._due(before, limit):
                if doc["_id"] in skip:
                    continue
                if _free_at(doc, "refreshing_until", now) and _free_at(doc, "refresh_retry_at", now):
                    batch.append(doc)
                    if len(batch) == limit:
                        break
        return batch

    async def explain_due_for_refresh(self, before: datetime, limit: int) -> Document:
        """The server's plan for :meth:`due_for_refresh`'s query (tests and benchmarks check it
        is one index range)."""
        with translate_errors():
            return await self._due(before, limit).explain()

    async def count_expiring(self, before: datetime) -> int:
        """Stored access tokens that expire before ``before`` (refreshable ones only)."""
        with translate_errors():
            return await self._collection.count_documents({"access_expires_at": {"$lte": before}})

    async def soonest_expiry(self, before: datetime) -> datetime | None:
        """The soonest ``access_expires_at`` before ``before``, if any."""
        with translate_errors():
            soonest = await self._collection.find_one(
                {"access_expires_at": {"$lte": before}},
                {"access_expires_at": 1},
                sort=[("access_expires_at", 1)],
            )
        return None if soonest is None else soonest["access_expires_at"]
