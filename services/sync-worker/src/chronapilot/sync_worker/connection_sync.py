"""Syncing a connection: its calendar list, then each calendar, under a lease.

- One connection is synced by one worker at a time: Kafka keys a connection's requests to
  one partition, and a lease in MongoDB covers rebalances and manual runs.
- Retryable provider errors (429/503, timeouts) are retried with jittered exponential
  backoff that honours ``Retry-After``; a 401 is handled inside the provider client (one
  forced refresh through the shared token service).
- A persistent failure puts the connection in ``error`` with ``error.code: sync_failed``; a
  later successful sync returns it to ``active``. ``last_synced_at`` moves only on success.
- A grant the provider no longer honours is the token service's business: it marks the
  connection ``reauth_required`` and the sync stops quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

from pymongo.asynchronous.client_session import AsyncClientSession

from chronapilot.common.backoff import Backoff
from chronapilot.common.bus.catalogue import (
    ConnectionStatusChanged,
    SyncCompleted,
    SyncFailed,
    SyncMode,
    SyncRequested,
)
from chronapilot.common.calendars import upsert_calendars
from chronapilot.common.errors import ChronaPilotError, ProviderError
from chronapilot.common.ids import new_id
from chronapilot.common.logging import bind_context, get_logger
from chronapilot.common.models import ConnectionStatus
from chronapilot.common.providers.base import CalendarProvider
from chronapilot.common.providers.sync import SyncingProvider
from chronapilot.common.runtime import Runtime
from chronapilot.common.store import Document, Lease
from chronapilot.common.tokens import TokenService
from chronapilot.sync_worker.calendar_sync import sync_calendar
from chronapilot.sync_worker.mirror import Applied, CalendarRef

log = get_logger(__name__)
SYNC_FAILED = "sync_failed"
REAUTH_REQUIRED = "reauth_required"


def _same_calendar(requested: str | None, provider_calendar_id: str) -> bool:
    """A request names its calendar (or none: all); CalDAV servers differ in escaping URLs."""
    return requested is None or unquote(requested) == unquote(provider_calendar_id)


class LeaseBusy(ChronaPilotError):
    code = "sync_busy"


class ConnectionSyncer:
    def __init__(
        self, runtime: Runtime, providers: dict[str, CalendarProvider], tokens: TokenService
    ) -> None:
        self._runtime = runtime
        self._providers = providers
        self._tokens = tokens
        self._settings = runtime.settings.sync
        self._owner = new_id("req")
        self._backoff = Backoff(base_s=self._settings.backoff_s, cap_s=60.0)

    async def handle(self, connection_id: str, request: SyncRequested) -> None:
        with bind_context(connection_id=connection_id):
            db = self._runtime.db.db
            connection = await db.connections.find_one({"_id": connection_id})
            if connection is None or not self._syncable(connection):
                log.info("sync.skipped", status=connection and connection.get("status"))
                return
            async with self._lease(connection_id):
                await self._sync(connection, request)

    @staticmethod
    def _syncable(connection: Document) -> bool:
        if connection["status"] == ConnectionStatus.DISCONNECTED:
            return False
        error = connection.get("error") or {}
        return not (connection["status"] == ConnectionStatus.ERROR and error.get("code") == REAUTH_REQUIRED)

    @contextlib.asynccontextmanager
    async def _lease(self, connection_id: str) -> AsyncIterator[None]:
        lease = Lease(self._runtime.db.db, f"sync:{connection_id}", self._owner, self._runtime.clock)
        ttl = self._settings.lease_s
        deadline = asyncio.get_running_loop().time() + 2 * ttl
        while not await lease.acquire(ttl):
            if asyncio.get_running_loop().time() > deadline:
                raise LeaseBusy(f"connection {connection_id} is being synced elsewhere")
            await asyncio.sleep(1.0)

        async def renew() -> None:
            while True:
                await asyncio.sleep(ttl / 3)
                await lease.acquire(ttl)

        renewer = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await lease.release()

    async def _sync(self, connection: Document, request: SyncRequested) -> None:
        runtime = self._runtime
        provider = self._providers.get(connection["provider"])
        if not isinstance(provider, SyncingProvider):
            log.warning("sync.provider_unavailable", provider=connection["provider"])
            return
        token = self._tokens.token_source(connection["_id"])
        total = Applied()
        calendars = 0
        try:
            refs = await self._with_retries(lambda: self._calendars(connection, provider, token))
            wanted = [r for r in refs if _same_calendar(request.calendar_id, r.provider_calendar_id)]
            for ref in wanted:
                result = await self._with_retries(
                    lambda ref=ref: sync_calendar(
                        runtime.db.db,
                        provider,
                        token,
                        ref,
                        full=request.mode is SyncMode.FULL,
                        clock=runtime.clock,
                        raw_max_bytes=self._settings.raw_max_bytes,
                    )
                )
                total.add(result.applied)
                calendars += 1
        except ProviderError as exc:
            if exc.reauth_required:
                log.info("sync.stopped_reauth_required")
                return
            await self._failed(connection, request, exc)
            return
        await self._completed(connection, request, calendars, total)

    async def _calendars(
        self, connection: Document, provider: CalendarProvider, token: Any
    ) -> list[CalendarRef]:
        runtime = self._runtime
        listed = await provider.list_calendars(token)
        db = runtime.db.db
        ids = await upsert_calendars(
            db,
            None,
            connection_id=connection["_id"],
            application_id=connection["application_id"],
            calendars=listed,
            now=runtime.clock.now(),
        )
        if ids != connection.get("calendar_ids"):
            await db.connections.update_one({"_id": connection["_id"]}, {"$set": {"calendar_ids": ids}})
        found = {c["_id"]: c async for c in db.calendars.find({"_id": {"$in": ids}})}
        return [
            CalendarRef(i, connection["_id"], connection["application_id"], found[i]["provider_calendar_id"])
            for i in ids
            if i in found
        ]

    async def _with_retries(self, operation: Any) -> Any:
        attempt = 0
        while True:
            try:
                return await operation()
            except ProviderError as exc:
                attempt += 1
                if not exc.retryable or attempt >= self._settings.max_attempts:
                    raise
                delay = self._backoff.delay(attempt - 1, retry_after=exc.retry_after)
                log.warning(
                    "sync.retrying",
                    error=exc.code,
                    status=exc.status,
                    attempt=attempt,
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)

    async def _completed(
        self, connection: Document, request: SyncRequested, calendars: int, total: Applied
    ) -> None:
        runtime = self._runtime
        now = runtime.clock.now()

        async def record(session: AsyncClientSession) -> None:
            changes: dict[str, Any] = {"last_synced_at": now, "updated_at": now}
            current = await runtime.db.db.connections.find_one({"_id": connection["_id"]}, session=session)
            if current is None:
                return
            recovered = (
                current["status"] == ConnectionStatus.ERROR
                and (current.get("error") or {}).get("code") == SYNC_FAILED
            )
            if recovered:
                changes.update(status=ConnectionStatus.ACTIVE.value, error=None)
            await runtime.db.db.connections.update_one(
                {"_id": connection["_id"]}, {"$set": changes, "$inc": {"version": 1}}, session=session
            )
            if recovered:
                await runtime.emit(
                    session,
                    ConnectionStatusChanged(
                        status="active", previous_status="error", sync_mode=current.get("sync_mode")
                    ),
                    connection_id=connection["_id"],
                )
            await runtime.emit(
                session,
                SyncCompleted(
                    mode=request.mode,
                    reason=request.reason,
                    synced_at=now,
                    calendars=calendars,
                    upserted=total.upserted,
                    deleted=total.deleted,
                ),
                connection_id=connection["_id"],
            )

        await runtime.db.in_transaction(record)
        log.info(
            "sync.completed",
            calendars=calendars,
            upserted=total.upserted,
            deleted=total.deleted,
            mode=request.mode,
            reason=request.reason,
        )

    async def _failed(self, connection: Document, request: SyncRequested, error: ProviderError) -> None:
        runtime = self._runtime
        now = runtime.clock.now()
        message = f"{error.code}: {error.message}"[:500]

        async def record(session: AsyncClientSession) -> None:
            current = await runtime.db.db.connections.find_one({"_id": connection["_id"]}, session=session)
            if current is None or current["status"] == ConnectionStatus.DISCONNECTED:
                return
            await runtime.db.db.connections.update_one(
                {"_id": connection["_id"]},
                {
                    "$set": {
                        "status": ConnectionStatus.ERROR.value,
                        "updated_at": now,
                        "error": {"code": SYNC_FAILED, "message": message, "at": now},
                    },
                    "$inc": {"version": 1},
                },
                session=session,
            )
            if current["status"] != ConnectionStatus.ERROR:
                await runtime.emit(
                    session,
                    ConnectionStatusChanged(
                        status="error",
                        previous_status=current["status"],
                        error_code=SYNC_FAILED,
                        error_message=message,
                    ),
                    connection_id=connection["_id"],
                )
            await runtime.emit(
                session,
                SyncFailed(
                    mode=request.mode,
                    reason=request.reason,
                    error_code=SYNC_FAILED,
                    error_message=message,
                    retryable=error.retryable,
                ),
                connection_id=connection["_id"],
            )

        await runtime.db.in_transaction(record)
        log.warning("sync.failed", error=message)
