"""The one writer of the ``connections`` collection (and its ``connection_status_history``).

Every method is one of the transitions of :mod:`chronapilot.common.connections.lifecycle`, or
a bookkeeping write (telemetry, schedule, teardown records) that is just as conditional: each
filter names the states the write is allowed from, so a writer that read the connection a
while ago cannot undo what happened since (a refresh finishing after ``DELETE`` finds the
connection ``disconnected`` and changes nothing). A transition records a history entry and
emits its event in the caller's transaction (``session``) or in its own.

Reads are free for anyone; writes to ``connections`` happen here only (a test enforces it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from chronapilot.common.bus.catalogue import (
    ConnectionActivated,
    ConnectionDisconnected,
    ConnectionStatusChanged,
    ConnectionSubscriptionsReleased,
    Event,
)
from chronapilot.common.bus.outbox import EventSink
from chronapilot.common.clock import Clock
from chronapilot.common.connections.lifecycle import (
    ACTIVE,
    DISCONNECTED,
    ERROR,
    RETRYABLE,
    Code,
)
from chronapilot.common.ids import new_id
from chronapilot.common.models import SyncMode
from chronapilot.common.store.client import Document, Store, translate_errors
from chronapilot.common.store.repository import Repository

COLLECTION = "connections"
HISTORY = "connection_status_history"
HISTORY_LIMIT = 100
LIVE = {"$in": [ACTIVE, ERROR]}

T = TypeVar("T")
Session = AsyncClientSession | None


def retryable_error(connection: Document) -> bool:
    return connection.get("status") == ERROR and (connection.get("error") or {}).get("code") in RETRYABLE


class Connections(Repository):
    """The connection repository and state machine (see the module docstring); ``page`` (the
    API's lists) is the base repository's."""

    COLLECTION = COLLECTION

    def __init__(self, store: Store, events: EventSink, clock: Clock) -> None:
        super().__init__(store)
        self._history = store.db[HISTORY]
        self._events = events
        self._clock = clock

    # reads ---------------------------------------------------------------------------------

    async def get(
        self, document_id: str, *, session: Session = None, projection: dict[str, int] | None = None
    ) -> Document | None:
        with translate_errors(session):
            return await self._collection.find_one({"_id": document_id}, projection, session=session)

    async def of_application(self, application_id: str, connection_id: str) -> Document | None:
        """The connection, if it belongs to ``application_id`` (another application's is not found)."""
        with translate_errors():
            return await self._collection.find_one({"_id": connection_id, "application_id": application_id})

    async def of_user(self, application_id: str, user_id: str) -> list[Document]:
        """Every connection of the user, in any state, oldest first."""
        with translate_errors():
            found = self._collection.find({"application_id": application_id, "user_id": user_id})
            return await found.sort("_id", 1).to_list()

    async def id_for_account(self, key: dict[str, str], *, session: Session = None) -> str | None:
        """The id of the connection that ``key`` (application, user, provider, provider
        account) names, if there is one, in any state."""
        with translate_errors(session):
            found = await self._collection.find_one(key, {"_id": 1}, session=session)
        return None if found is None else str(found["_id"])

    async def history(self, connection_id: str, limit: int = HISTORY_LIMIT) -> list[Document]:
        """The last ``limit`` transitions, newest first."""
        with translate_errors():
            cursor = self._history.find({"connection_id": connection_id}).sort([("at", -1), ("_id", -1)])
            return await cursor.limit(limit).to_list()

    async def others_holding_account(self, connection: Document) -> int:
        """How many other connections that are not disconnected hold the same provider account
        (any application: they share this deployment's OAuth client, so one grant)."""
        with translate_errors():
            return await self._collection.count_documents(
                {
                    "_id": {"$ne": connection["_id"]},
                    "provider": connection["provider"],
                    "provider_account_id": connection["provider_account_id"],
                    "status": LIVE,
                }
            )

    async def due_for_sync(self, now: datetime, limit: int) -> list[Document]:
        """Connections whose scheduled sync is due: ``polling`` ones, ``realtime`` ones (the
        safety net) and those in a retryable ``error``."""
        with translate_errors():
            return (
                await self._collection.find(
                    {
                        "$and": [
                            _SCHEDULED,
                            {"$or": [{"next_poll_at": {"$lte": now}}, {"next_poll_at": None}]},
                        ]
                    },
                    {"_id": 1, "next_poll_at": 1, "status": 1, "sync_mode": 1, "error": 1, "retry": 1},
                )
                .limit(limit)
                .to_list()
            )

    # transitions ---------------------------------------------------------------------------

    async def activate(
        self,
        session: AsyncClientSession,
        *,
        key: dict[str, str],
        email: str,
        calendar_ids: list[str],
        connection_id: str,
        token_next_at: datetime | None,
    ) -> tuple[Document, bool]:
        """``activate`` (new) or ``relink`` (any state): the same account keeps its ``con_`` id.
        ``token_next_at``: when the token refresher will refresh the new grant's access token
        (``token_refresh.next_at``)."""
        now = self._clock.now()
        before = await self._collection.find_one_and_update(
            {"_id": connection_id, **key},
            {
                "$set": {
                    "email": email,
                    "status": ACTIVE,
                    "calendar_ids": calendar_ids,
                    "error": None,
                    "disconnected_at": None,
                    "revoked_at": None,
                    "revocation": None,
                    "teardown": None,
                    "retry": None,
                    "next_poll_at": None,
                    "updated_at": now,
                    "token_refresh.failures_count": 0,
                    "token_refresh.last_error": None,
                    "token_refresh.next_at": token_next_at,
                },
                "$setOnInsert": {
                    **key,
                    "sync_mode": SyncMode.POLLING.value,
                    "last_synced_at": None,
                    "webhook_subscription": None,
                    "token_refresh.last_at": None,
                    "created_at": now,
                    "manual_refresh_at": None,
                },
                "$inc": {"version": 1},
            },
            upsert=True,
            return_document=ReturnDocument.BEFORE,
            session=session,
        )
        after = await self._collection.find_one({"_id": connection_id}, session=session)
        assert after is not None
        relinked = before is not None
        await self._record(
            session,
            after,
            code=Code.RELINKED if relinked else Code.ACTIVATED,
            message=None,
            previous=before,
        )
        await self._events.emit(
            session,
            ConnectionActivated(
                application_id=key["application_id"],
                user_id=key["user_id"],
                provider=key["provider"],
                email=email,
                relinked=relinked,
                previous_status=before["status"] if before else None,
                **_previous_error(before),
            ),
            connection_id=connection_id,
        )
        return after, relinked

    async def disconnect(self, connection_id: str, application_id: str) -> Document | None:
        """``disconnect``; None if it was disconnected already (or is not this application's).

        ``disconnected_at`` is read from the clock only once the status write holds the
        document: a fenced mirror write (:meth:`fence_mirror_write`) either committed before
        that write (so before ``disconnected_at``) or conflicts with it and then finds the
        connection disconnected. Taking the time first would let a page committed in between
        look later than the disconnect."""

        async def write(session: AsyncClientSession) -> Document | None:
            before = await self._collection.find_one_and_update(
                {"_id": connection_id, "application_id": application_id, "status": LIVE},
                {
                    "$set": {
                        "status": DISCONNECTED,
                        "next_poll_at": None,
                        "token_refresh.next_at": None,  # nothing is refreshed any more
                        "retry": None,
                        "teardown": {"subscriptions_released_at": None, "failed_subscriptions": []},
                    },
                    "$inc": {"version": 1},
                },
                return_document=ReturnDocument.BEFORE,
                session=session,
            )
            if before is None:
                return None
            now = self._clock.now()
            await self._collection.update_one(
                {"_id": connection_id},
                {"$set": {"disconnected_at": now, "updated_at": now}},
                session=session,
            )
            after = {**before, "status": DISCONNECTED, "disconnected_at": now}
            await self._record(
                session, after, code=Code.DISCONNECTED, message=None, previous=before, event=False
            )
            await self._events.emit(
                session,
                ConnectionDisconnected(application_id=application_id, provider=before["provider"]),
                connection_id=connection_id,
            )
            return await self._collection.find_one({"_id": connection_id}, session=session)

        return await self._store.in_transaction(write)

    async def reauth_required(self, connection_id: str, message: str, *, session: Session = None) -> bool:
        """``reauth_required`` (once: a connection already there is left alone)."""
        return await self._in(
            session,
            lambda s: self._to_error(
                s, connection_id, Code.REAUTH_REQUIRED, message, sources=(ACTIVE, ERROR)
            ),
        )

    async def _to_error(
        self,
        session: AsyncClientSession,
        connection_id: str,
        code: Code,
        message: str,
        *,
        sources: tuple[str, ...],
        extra: dict[str, Any] | None = None,
        extra_filter: dict[str, Any] | None = None,
    ) -> bool:
        now = self._clock.now()
        flt: dict[str, Any] = {"_id": connection_id, "status": {"$in": list(sources)}}
        flt["error.code"] = {"$ne": code.value}
        if code is not Code.REAUTH_REQUIRED:  # reauth_required is never overwritten by a lesser error
            flt["error.code"] = {"$nin": [code.value, Code.REAUTH_REQUIRED.value]}
        flt |= extra_filter or {}
        before = await self._collection.find_one_and_update(
            flt,
            {
                "$set": {
                    "status": ERROR,
                    "error": {"code": code.value, "message": message, "at": now},
                    "updated_at": now,
                    **(extra or {}),
                },
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.BEFORE,
            session=session,
        )
        if before is None:
            return False
        after = {**before, "status": ERROR, "error": {"code": code.value, "message": message, "at": now}}
        await self._record(session, after, code=code, message=message, previous=before)
        return True

    async def _recover(self, session: AsyncClientSession, connection_id: str, codes: frozenset[str]) -> bool:
        """``recovered``: ``error`` with one of ``codes`` → ``active``."""
        before = await self._collection.find_one_and_update(
            {"_id": connection_id, "status": ERROR, "error.code": {"$in": sorted(codes)}},
            {
                "$set": {"status": ACTIVE, "error": None, "updated_at": self._clock.now()},
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.BEFORE,
            session=session,
        )
        if before is None:
            return False
        await self._record(
            session,
            {**before, "status": ACTIVE, "error": None},
            code=Code.RECOVERED,
            message=None,
            previous=before,
        )
        return True

    # the API -------------------------------------------------------------------------------

    async def claim_manual_refresh(
        self, session: AsyncClientSession, connection_id: str, interval: timedelta
    ) -> Document | None:
        """Take the once-a-minute manual refresh slot; None if taken or disconnected."""
        now = self._clock.now()
        return await self._collection.find_one_and_update(
            {
                "_id": connection_id,
                "status": LIVE,
                "$or": [{"manual_refresh_at": None}, {"manual_refresh_at": {"$lte": now - interval}}],
            },
            {"$set": {"manual_refresh_at": now}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )

    # the sync worker -----------------------------------------------------------------------

    async def claim_scheduled_sync(
        self, session: AsyncClientSession, candidate: Document, now: datetime, next_at: datetime
    ) -> bool:
        """Move a due connection's ``next_poll_at`` on (one claimer wins). The claim holds only
        if the connection is still as ``candidate`` was read (due time, status, mode): ``next_at``
        was computed from that cadence, and a switch to ``realtime`` in between must not get
        the polling cadence (nor an ``error`` the healthy one)."""
        claimed = await self._collection.find_one_and_update(
            {
                "_id": candidate["_id"],
                **_SCHEDULED,
                "next_poll_at": candidate.get("next_poll_at"),
                "status": candidate.get("status"),
                "sync_mode": candidate.get("sync_mode"),
            },
            {"$set": {"next_poll_at": next_at}},
            session=session,
        )
        return claimed is not None

    async def calendars_listed(
        self,
        connection_id: str,
        ids: list[str],
        listed_at: datetime,
        *,
        session: AsyncClientSession | None = None,
    ) -> None:
        """The provider's calendar list was read at ``listed_at``: ``calendar_ids`` (the listed
        ones, in order) and ``calendars_listed_at``, which tells a sync whether it is due again
        (in ``session``'s transaction: the one that wrote the listing into the mirror)."""
        with translate_errors(session):
            await self._collection.update_one(
                {"_id": connection_id, "status": LIVE},
                {"$set": {"calendar_ids": ids, "calendars_listed_at": listed_at}},
                session=session,
            )

    async def fence_mirror_write(self, session: AsyncClientSession, connection_id: str) -> bool:
        """Inside a transaction that writes the mirror: True if the connection may still be
        synced. It writes the connection document, so a concurrent ``disconnect`` conflicts
        with the transaction instead of slipping in between the check and the write."""
        fenced = await self._collection.update_one(
            {"_id": connection_id, "status": LIVE, "error.code": {"$ne": Code.REAUTH_REQUIRED.value}},
            {"$inc": {"mirror_writes": 1}},
            session=session,
        )
        return fenced.matched_count == 1

    async def sync_succeeded(self, connection_id: str, completed: Event) -> bool:
        """``last_synced_at`` moves on; a retryable ``error`` becomes ``active``; ``completed``
        is emitted. False if the connection was disconnected meanwhile (nothing recorded)."""
        now = self._clock.now()

        async def write(session: AsyncClientSession) -> bool:
            updated = await self._collection.update_one(
                {"_id": connection_id, "status": LIVE},
                {"$set": {"last_synced_at": now, "retry": None, "updated_at": now}, "$inc": {"version": 1}},
                session=session,
            )
            if updated.matched_count == 0:
                return False
            await self._recover(session, connection_id, RETRYABLE)
            await self._events.emit(session, completed, connection_id=connection_id)
            return True

        return await self._store.in_transaction(write)

    async def sync_failed(
        self,
        connection_id: str,
        message: str,
        failed: Event,
        *,
        backoff: Callable[[int], float],
        cap_s: float,
        not_before: datetime | None = None,
    ) -> bool:
        """``sync_failed``; the retry is scheduled with ``backoff(attempt)`` capped at ``cap_s``
        (and not before ``not_before``, a provider's ``Retry-After``); ``failed`` is emitted."""
        now = self._clock.now()

        async def write(session: AsyncClientSession) -> bool:
            current = await self._collection.find_one({"_id": connection_id, "status": LIVE}, session=session)
            if current is None:
                return False
            attempt = int((current.get("retry") or {}).get("attempts", 0))
            retry_at = now + timedelta(seconds=min(backoff(attempt), cap_s))
            if not_before is not None:
                retry_at = max(retry_at, not_before)
            schedule = {"retry": {"attempts": attempt + 1, "at": retry_at}, "next_poll_at": retry_at}
            moved = await self._to_error(
                session, connection_id, Code.SYNC_FAILED, message, sources=(ACTIVE, ERROR), extra=schedule
            )
            if not moved:  # already in error: keep its code, schedule the retry
                await self._collection.update_one(
                    {"_id": connection_id, "status": LIVE},
                    {"$set": {**schedule, "updated_at": now}, "$inc": {"version": 1}},
                    session=session,
                )
            await self._events.emit(session, failed, connection_id=connection_id)
            return True

        return await self._store.in_transaction(write)

    # the token refresher -------------------------------------------------------------------

    async def token_refreshed(
        self, session: AsyncClientSession, connection_id: str, next_at: datetime | None
    ) -> None:
        now = self._clock.now()
        await self._collection.update_one(
            {"_id": connection_id, "status": LIVE},
            {
                "$set": {
                    "token_refresh.last_at": now,
                    "token_refresh.failures_count": 0,
                    "token_refresh.next_at": next_at,
                    "token_refresh.last_error": None,
                    "updated_at": now,
                },
                "$inc": {"version": 1},
            },
            session=session,
        )
        await self._recover(session, connection_id, frozenset({Code.TOKEN_REFRESH_FAILED.value}))

    async def token_refresh_failed(
        self,
        session: AsyncClientSession,
        connection_id: str,
        *,
        failures: int,
        reason: str,
        retry_at: datetime,
        failing_message: str | None,
    ) -> None:
        """Telemetry of a transient failure; ``failing_message`` given → ``token_refresh_failed``."""
        now = self._clock.now()
        await self._collection.update_one(
            {"_id": connection_id, "status": LIVE},
            {
                "$set": {
                    "token_refresh.failures_count": failures,
                    "token_refresh.last_error": reason,
                    "token_refresh.next_at": retry_at,
                    "updated_at": now,
                },
                "$inc": {"version": 1},
            },
            session=session,
        )
        if failing_message is not None:
            await self._to_error(
                session, connection_id, Code.TOKEN_REFRESH_FAILED, failing_message, sources=(ACTIVE,)
            )

    async def token_reauth_required(
        self, session: AsyncClientSession, connection_id: str, *, reason: str, message: str
    ) -> int | None:
        """The refresh was refused for good: telemetry, then ``reauth_required``. The new
        ``failures_count``, or None if the connection is disconnected."""
        before = await self._collection.find_one_and_update(
            {"_id": connection_id, "status": LIVE},
            {
                "$set": {"token_refresh.last_error": reason, "token_refresh.next_at": None},
                "$inc": {"version": 1, "token_refresh.failures_count": 1},
            },
            return_document=ReturnDocument.BEFORE,
            session=session,
        )
        if before is None:
            return None
        await self._to_error(session, connection_id, Code.REAUTH_REQUIRED, message, sources=(ACTIVE, ERROR))
        return int((before.get("token_refresh") or {}).get("failures_count", 0)) + 1

    async def record_revocation(
        self, session: AsyncClientSession, connection_id: str, revocation: dict[str, Any]
    ) -> bool:
        """The last step of the disconnect saga; False if re-linked meanwhile."""
        now = self._clock.now()
        updated = await self._collection.update_one(
            {"_id": connection_id, "status": DISCONNECTED},
            {
                "$set": {"revoked_at": now, "revocation": {**revocation, "at": now}, "updated_at": now},
                "$inc": {"version": 1},
            },
            session=session,
        )
        return updated.matched_count == 1

    # the webhook gateway -------------------------------------------------------------------

    async def set_coverage(
        self,
        session: AsyncClientSession,
        connection_id: str,
        mode: SyncMode,
        subscription: dict[str, Any] | None,
    ) -> bool:
        """``sync_mode``: ``realtime`` / ``polling`` and the earliest-expiring live
        subscription, for a connection that is not disconnected. A fall back to polling makes
        its scheduled sync due at once (the safety net's far-off time no longer applies)."""
        now = self._clock.now()
        before = await self._collection.find_one_and_update(
            {
                "_id": connection_id,
                "status": LIVE,
                "$or": [{"sync_mode": {"$ne": mode.value}}, {"webhook_subscription": {"$ne": subscription}}],
            },
            {
                "$set": {
                    "sync_mode": mode.value,
                    "webhook_subscription": subscription,
                    "updated_at": now,
                },
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.BEFORE,
            session=session,
        )
        if before is None or before.get("sync_mode") == mode.value:
            return False
        # a new cadence: polling is due at once (coverage lapsed); realtime gets its first
        # safety-net time from the schedule's next tick
        await self._collection.update_one(
            {"_id": connection_id},
            {"$set": {"next_poll_at": now if mode is SyncMode.POLLING else None}},
            session=session,
        )
        code = Code.REALTIME if mode is SyncMode.REALTIME else Code.POLLING_FALLBACK
        await self._record(
            session, {**before, "sync_mode": mode.value}, code=code, message=None, previous=before
        )
        return True

    async def subscriptions_released(
        self, connection_id: str, *, stopped: int, failed: list[dict[str, Any]]
    ) -> bool:
        """The disconnect saga's second step is over: no subscription is left (those that
        could not be stopped are recorded with their reason); ``connection.subscriptions_released``
        lets the refresher revoke. Once per disconnect."""
        now = self._clock.now()

        async def write(session: AsyncClientSession) -> bool:
            updated = await self._collection.update_one(
                {"_id": connection_id, "status": DISCONNECTED, "teardown.subscriptions_released_at": None},
                {
                    "$set": {
                        "webhook_subscription": None,
                        "sync_mode": SyncMode.POLLING.value,
                        "teardown.subscriptions_released_at": now,
                        "updated_at": now,
                    },
                    "$push": {"teardown.failed_subscriptions": {"$each": failed}},
                    "$inc": {"version": 1},
                },
                session=session,
            )
            if updated.matched_count == 0:
                return False
            await self._events.emit(
                session,
                ConnectionSubscriptionsReleased(stopped=stopped, failed=len(failed)),
                connection_id=connection_id,
            )
            return True

        return await self._store.in_transaction(write)

    # internals -----------------------------------------------------------------------------

    async def _in(self, session: Session, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        if session is not None:
            return await work(session)
        return await self._store.in_transaction(work)

    async def _record(
        self,
        session: AsyncClientSession,
        after: Document,
        *,
        code: Code,
        message: str | None,
        previous: Document | None,
        event: bool = True,
    ) -> None:
        """One history entry, and ``connection.status_changed`` for a change of an existing one."""
        now = self._clock.now()
        await self._history.insert_one(
            {
                "_id": new_id("csh"),
                "connection_id": after["_id"],
                "status": after["status"],
                "sync_mode": after.get("sync_mode") or SyncMode.POLLING.value,
                "code": code.value,
                "message": message,
                "at": now,
            },
            session=session,
        )
        if previous is None or not event or code in (Code.ACTIVATED, Code.RELINKED):
            return
        error = after.get("error") or {}
        await self._events.emit(
            session,
            ConnectionStatusChanged(
                status=after["status"],
                previous_status=previous["status"],
                sync_mode=after.get("sync_mode"),
                previous_sync_mode=previous.get("sync_mode"),
                error_code=error.get("code"),
                error_message=error.get("message"),
                **_previous_error(previous),
            ),
            connection_id=after["_id"],
        )


def _previous_error(before: Document | None) -> dict[str, Any]:
    """The ``previous_error_*`` fields of an event: the error ``before`` had (customers are told
    the values a change replaced)."""
    error = (before or {}).get("error") or {}
    return {
        "previous_error_code": error.get("code"),
        "previous_error_message": error.get("message"),
        "previous_error_at": error.get("at"),
    }


#: Connections the schedule syncs: active (polling, or realtime's safety net) or in a
#: retryable error. Disconnected and ``reauth_required`` ones are never scheduled.
_SCHEDULED: dict[str, Any] = {
    "$or": [
        {"status": ACTIVE},
        {"status": ERROR, "error.code": {"$in": sorted(RETRYABLE)}},
    ],
}
