"""Syncing a connection: its calendar list (when due: :mod:`~chronapilot.sync_worker.calendar_list`),
then each calendar, under a lease.

- One connection is synced by one worker at a time: Kafka keys a connection's requests to
  one partition, and a lease in MongoDB covers rebalances and manual runs. A worker that loses
  its lease stops before its next write.
- Every write of the mirror (the calendar list, a page, a full sync's deletions, the cursor) is
  fenced: it runs in a transaction that first checks with the connection's owner that the
  connection may still be synced, so nothing is written after ``DELETE`` (the sync stops
  between pages). What a write changed is told in the same transaction
  (``mirror.calendars_changed``, ``mirror.events_changed``).
- Retryable provider errors (429/503, timeouts) are retried with jittered exponential
  backoff that honours ``Retry-After`` up to ``CHRONAPILOT_SYNC_RETRY_AFTER_MAX_S``; a longer
  one fails this sync and schedules the next at that time. A 401 is handled inside the
  provider client (one forced refresh through the shared token service).
- A calendar the provider refuses (403/404) is marked ``sync_status: error`` on the calendar
  and skipped; the other calendars sync. A refusal of the whole account (a 401 after a forced
  refresh, a 403 listing calendars, every calendar refused, a CalDAV 401) moves the connection
  to ``error`` / ``reauth_required``, once.
- A failure that is not the account's puts the connection in ``error`` / ``sync_failed``; the
  schedule retries it with backoff (capped at the poll interval) and a successful sync returns
  it to ``active``. ``last_synced_at`` moves only on success.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from chronapilot.common.backoff import Backoff, retry
from chronapilot.common.bus.catalogue import (
    SyncCompleted,
    SyncFailed,
    SyncKind,
    SyncRequested,
)
from chronapilot.common.connections import Code
from chronapilot.common.errors import ChronaPilotError, ProviderError
from chronapilot.common.ids import new_id
from chronapilot.common.logging import bind_context, get_logger
from chronapilot.common.mirror.writes import Applied, CalendarRef, apply_listing
from chronapilot.common.models import ConnectionStatus
from chronapilot.common.providers.base import CalendarProvider
from chronapilot.common.providers.errors import InvalidCredentials
from chronapilot.common.providers.registry import Providers
from chronapilot.common.runtime import Runtime
from chronapilot.common.store import Document, Session
from chronapilot.common.store.calendars import Listing
from chronapilot.common.tokens import TokenService
from chronapilot.sync_worker.calendar_list import listing_due, same_calendar
from chronapilot.sync_worker.calendar_sync import sync_calendar
from chronapilot.sync_worker.telemetry import EVENTS_WRITTEN, SYNC_FAILURES, SYNC_SECONDS

log = get_logger(__name__)
T = TypeVar("T")
REAUTH_MESSAGE = "The provider no longer accepts this connection's authorization; re-link the account."


def calendar_error_code(error: ProviderError) -> str | None:
    """The calendar's ``error.code`` when a call for one calendar failed because of that
    calendar; None when the failure is the account's (a 401 after a forced refresh, re-auth)
    or the provider's (retryable: down, throttling), which stops the whole sync."""
    if error.retryable or isinstance(error, InvalidCredentials) or error.status == 401:
        return None
    if error.status == 403:
        return "calendar_forbidden"
    if error.status in (404, 410):
        return "calendar_not_found"
    if error.reauth_required:
        return None
    return "calendar_sync_failed"


class LeaseBusy(ChronaPilotError):
    """Another worker holds the connection's sync lease (it is syncing it now)."""

    code = "sync_busy"


class SyncStopped(ChronaPilotError):
    """The connection may no longer be synced (disconnected, re-auth required) or this worker
    lost its lease: stop without writing."""

    code = "sync_stopped"


class RetryLater(ChronaPilotError):
    """The provider asked to come back later than a sync may wait in place."""

    code = "retry_later"

    def __init__(self, error: ProviderError, after_s: float) -> None:
        super().__init__(f"{error.code}: retry after {after_s:.0f}s")
        self.error = error
        self.after_s = after_s


class FencedWrites:
    """The :class:`~chronapilot.sync_worker.calendar_sync.MirrorGuard` of one sync."""

    def __init__(self, runtime: Runtime, connection_id: str) -> None:
        self._runtime = runtime
        self._connection_id = connection_id
        self.lease_lost = False

    async def write(self, work: Callable[[Session], Awaitable[T]]) -> T:
        if self.lease_lost:
            raise SyncStopped("the sync lease was lost")

        async def fenced(session: Session) -> T:
            if not await self._runtime.connections.fence_mirror_write(session, self._connection_id):
                raise SyncStopped("the connection may no longer be synced")
            return await work(session)

        return await self._runtime.store.in_transaction(fenced)


class ConnectionSyncer:
    def __init__(self, runtime: Runtime, providers: Providers, tokens: TokenService) -> None:
        self._runtime = runtime
        self._providers = providers
        self._tokens = tokens
        self._settings = runtime.settings.sync
        self._owner = new_id("req")
        self._backoff = Backoff(base_s=self._settings.backoff_s, cap_s=60.0)

    async def handle(self, connection_id: str, request: SyncRequested) -> None:
        with bind_context(connection_id=connection_id):
            connection = await self._runtime.connections.get(connection_id)
            if connection is None or not self._syncable(connection):
                log.info("sync.skipped", status=connection and connection.get("status"))
                return
            guard = FencedWrites(self._runtime, connection_id)
            try:
                async with self._lease(connection_id, guard):
                    try:
                        await self._sync(connection, request, guard)
                    except SyncStopped as stopped:
                        log.info("sync.stopped", reason=stopped.message)
            except LeaseBusy:
                await self._follow_up(connection_id, request)

    async def _follow_up(self, connection_id: str, request: SyncRequested) -> None:
        """Another worker is syncing the connection: not a failure (nothing is retried or
        dead-lettered). It may have read the provider before the change this request is about,
        so the request goes back on the topic, behind the running sync, to be served after it."""
        await self._runtime.emit(None, request, connection_id=connection_id)
        log.info("sync.busy_requeued", mode=request.mode.value, reason=request.reason.value)

    @staticmethod
    def _syncable(connection: Document) -> bool:
        if connection["status"] == ConnectionStatus.DISCONNECTED:
            return False
        error = connection.get("error") or {}
        return not (
            connection["status"] == ConnectionStatus.ERROR and error.get("code") == Code.REAUTH_REQUIRED
        )

    @contextlib.asynccontextmanager
    async def _lease(self, connection_id: str, guard: FencedWrites) -> AsyncIterator[None]:
        lease = self._runtime.lease(f"sync:{connection_id}", self._owner)
        ttl = self._settings.lease_s
        deadline = asyncio.get_running_loop().time() + 2 * ttl
        while not await lease.acquire(ttl):
            if asyncio.get_running_loop().time() > deadline:
                raise LeaseBusy(f"connection {connection_id} is being synced elsewhere")
            await asyncio.sleep(1.0)

        async def renew() -> None:
            while True:
                await asyncio.sleep(ttl / 3)
                try:
                    held = await lease.acquire(ttl)
                except ChronaPilotError as exc:  # the store hiccuped: the lease may still be ours
                    log.warning("sync.lease_renewal_failed", error=str(exc))
                    continue
                if not held:
                    guard.lease_lost = True  # another worker has it: write nothing more
                    log.warning("sync.lease_lost")
                    return

        renewer = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await lease.release()

    async def _sync(self, connection: Document, request: SyncRequested, guard: FencedWrites) -> None:
        provider = self._providers.get(connection["provider"])
        if provider is None:
            log.warning("sync.provider_unavailable", provider=connection["provider"])
            return
        started = time.perf_counter()
        try:
            await self._sync_with(provider, connection, request, guard)
        finally:
            SYNC_SECONDS.labels(provider.name, request.mode.value).observe(time.perf_counter() - started)

    async def _sync_with(
        self, provider: CalendarProvider, connection: Document, request: SyncRequested, guard: FencedWrites
    ) -> None:
        runtime = self._runtime
        token = self._tokens.token_source(connection["_id"])
        total = Applied()
        calendars = 0
        forbidden = 0
        failed: ProviderError | None = None
        failed_calendar: str | None = None
        gone = False
        try:
            refs, listed = await self._with_retries(
                lambda: self._calendars(connection, provider, token, request, guard)
            )
            wanted = [r for r in refs if same_calendar(request.calendar_id, r.provider_calendar_id)]
            for ref in wanted:
                try:
                    result = await self._with_retries(
                        lambda ref=ref: sync_calendar(
                            runtime.repos,
                            provider,
                            token,
                            ref,
                            full=request.mode is SyncKind.FULL,
                            clock=runtime.clock,
                            raw_max_bytes=self._settings.raw_max_bytes,
                            guard=guard,
                            outbox=runtime.outbox,
                        )
                    )
                except ProviderError as exc:
                    code = calendar_error_code(exc)
                    if code is None:
                        raise  # the account's or the provider's trouble, not this calendar's
                    await runtime.repos.calendars.record_outcome(
                        ref.id,
                        now=runtime.clock.now(),
                        error={"code": code, "message": _message(exc)},
                    )
                    log.warning("sync.calendar_failed", calendar_id=ref.id, code=code, status=exc.status)
                    forbidden += code == "calendar_forbidden"
                    gone = gone or code == "calendar_not_found"
                    if failed is None and code == "calendar_sync_failed":
                        failed, failed_calendar = exc, ref.id
                    continue
                await runtime.repos.calendars.record_outcome(ref.id, now=runtime.clock.now(), error=None)
                EVENTS_WRITTEN.labels(provider.name).inc(result.applied.upserted + result.applied.deleted)
                total.add(result.applied)
                calendars += 1
            if wanted and forbidden == len(wanted):
                raise ProviderError("the provider refused every calendar", status=403, reauth_required=True)
            if gone and not listed:  # the provider's sign that its calendar list changed
                await self._with_retries(lambda: self._list(connection, provider, token, guard))
        except RetryLater as later:
            await self._failed(connection, request, later.error, not_before_s=later.after_s)
            return
        except ProviderError as exc:
            if exc.reauth_required:
                await self._reauth_required(connection["_id"], exc)
                SYNC_FAILURES.labels(provider.name, Code.REAUTH_REQUIRED.value).inc()
                return
            await self._failed(connection, request, exc)
            return
        if failed is not None:
            await self._failed(connection, request, failed, calendar_id=failed_calendar)
            return
        await self._completed(connection, request, calendars, total)

    async def _calendars(
        self,
        connection: Document,
        provider: CalendarProvider,
        token: Any,
        request: SyncRequested,
        guard: FencedWrites,
    ) -> tuple[list[CalendarRef], bool]:
        """The calendars to sync, and whether the provider's list was read for them (when due)
        rather than taken from the mirror."""
        calendars = self._runtime.repos.calendars
        ids = list(connection.get("calendar_ids") or ())
        found = await calendars.provider_calendar_ids(ids)
        due = listing_due(
            request,
            listed_at=connection.get("calendars_listed_at"),
            now=self._runtime.clock.now(),
            interval=timedelta(seconds=self._settings.calendar_list_interval_s),
            mirrored=found.values(),
        )
        if due:
            ids = await self._list(connection, provider, token, guard)
            found = await calendars.provider_calendar_ids(ids)
        refs = [
            CalendarRef(i, connection["_id"], connection["application_id"], found[i])
            for i in ids
            if i in found
        ]
        return refs, due

    async def _list(
        self, connection: Document, provider: CalendarProvider, token: Any, guard: FencedWrites
    ) -> list[str]:
        """Read the provider's calendar list into the mirror, telling what it changed (in one
        fenced transaction); the listed calendars' ids."""
        runtime = self._runtime
        now = runtime.clock.now()
        listed = await provider.list_calendars(token)

        async def write(session: Session) -> Listing:
            # the mirror's calendars and the connection's calendar_ids change together
            listing = await apply_listing(
                runtime.repos.calendars, connection, listed, now, outbox=runtime.outbox, session=session
            )
            await runtime.connections.calendars_listed(connection["_id"], listing.ids, now, session=session)
            return listing

        listing = await guard.write(write)
        log.info("sync.calendars_listed", calendars=len(listing.ids), **listing.changes)
        return listing.ids

    async def _with_retries(self, operation: Any) -> Any:
        """``operation()`` with the provider's retryable errors retried (``max_attempts``); a
        ``Retry-After`` beyond ``retry_after_max_s`` is rescheduled (:class:`RetryLater`), not
        slept on."""
        limit = self._settings.retry_after_max_s
        calls = 0

        async def attempt() -> Any:
            nonlocal calls
            calls += 1
            return await operation()

        def retrying(exc: Exception, attempt: int, delay: float) -> None:
            assert isinstance(exc, ProviderError)
            log.warning(
                "sync.retrying",
                error=exc.code,
                status=exc.status,
                attempt=attempt,
                retry_in_s=round(delay, 2),
            )

        try:
            return await retry(
                attempt,
                backoff=Backoff(
                    base_s=self._backoff.base_s,
                    cap_s=self._backoff.cap_s,
                    attempts=self._settings.max_attempts,
                ),
                should_retry=lambda exc: (
                    isinstance(exc, ProviderError)
                    and exc.retryable
                    and (exc.retry_after is None or exc.retry_after <= limit)
                ),
                retry_after=lambda exc: exc.retry_after if isinstance(exc, ProviderError) else None,
                on_retry=retrying,
            )
        except ProviderError as exc:
            if (
                exc.retryable
                and exc.retry_after is not None
                and exc.retry_after > limit
                and calls < self._settings.max_attempts
            ):
                raise RetryLater(exc, exc.retry_after) from exc  # rescheduled, not slept on
            raise

    async def _completed(
        self, connection: Document, request: SyncRequested, calendars: int, total: Applied
    ) -> None:
        now = self._runtime.clock.now()
        completed = SyncCompleted(
            mode=request.mode,
            reason=request.reason,
            synced_at=now,
            calendars=calendars,
            upserted=total.upserted,
            deleted=total.deleted,
        )
        if not await self._runtime.connections.sync_succeeded(connection["_id"], completed):
            log.info("sync.discarded", reason="disconnected")
            return
        log.info(
            "sync.completed",
            calendars=calendars,
            upserted=total.upserted,
            deleted=total.deleted,
            mode=request.mode,
            reason=request.reason,
        )

    async def _failed(
        self,
        connection: Document,
        request: SyncRequested,
        error: ProviderError,
        *,
        not_before_s: float | None = None,
        calendar_id: str | None = None,
    ) -> None:
        runtime = self._runtime
        message = _message(error)
        failed = SyncFailed(
            mode=request.mode,
            reason=request.reason,
            error_code=Code.SYNC_FAILED.value,
            error_message=message,
            retryable=error.retryable,
            calendar_id=calendar_id,
        )
        now = runtime.clock.now()
        await runtime.connections.sync_failed(
            connection["_id"],
            message,
            failed,
            backoff=lambda attempt: self._backoff.delay(min(attempt, 20)),
            cap_s=self._settings.poll_interval_s,
            not_before=None if not_before_s is None else now + timedelta(seconds=not_before_s),
        )
        SYNC_FAILURES.labels(connection["provider"], Code.SYNC_FAILED.value).inc()
        log.warning("sync.failed", error=message, retry_not_before_s=not_before_s)

    async def _reauth_required(self, connection_id: str, error: ProviderError) -> None:
        moved = await self._runtime.connections.reauth_required(connection_id, REAUTH_MESSAGE)
        log.warning("sync.reauth_required", error=error.code, status=error.status, moved=moved)


def _message(error: ProviderError) -> str:
    """What the provider's refusal was, for the API: the error's code and HTTP status, never
    the provider's text (it may echo input or tokens)."""
    status = f" (HTTP {error.status})" if error.status else ""
    return f"{error.code}{status}"[:500]
