"""The sync schedule: connections in ``polling`` mode get an incremental sync every
``CHRONAPILOT_SYNC_POLL_INTERVAL_S`` (default 5 minutes), ``realtime`` ones a safety-net sync
every ``CHRONAPILOT_SYNC_SAFETY_NET_INTERVAL_S`` (default 6 h), and connections in a retryable
``error`` a retry with backoff capped at the poll interval.

Each connection carries ``next_poll_at``. A tick claims the due ones atomically (so with
several workers each due connection is claimed once) and emits a ``sync.requested`` (reason
``poll``) in the same transaction; the sync runs wherever Kafka routes the connection. Due
times are jittered by ±20% and a connection seen for the first time is given a random offset
within one interval, so connections spread over time instead of firing together.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import timedelta

from chronapilot.common.bus.catalogue import SyncKind, SyncReason, SyncRequested
from chronapilot.common.errors import StoreError
from chronapilot.common.logging import get_logger
from chronapilot.common.models import SyncMode
from chronapilot.common.runtime import Runtime
from chronapilot.common.settings import SyncSettings
from chronapilot.common.store import Document, Session

log = get_logger(__name__)
BATCH = 500


def cadence_s(connection: Document, settings: SyncSettings) -> float:
    """Seconds until this connection's next scheduled sync: the poll interval (``polling``, and
    the cap of an ``error``'s retry), or the safety net (``realtime``)."""
    if connection.get("status") == "active" and connection.get("sync_mode") == SyncMode.REALTIME:
        return settings.safety_net_interval_s
    return settings.poll_interval_s


async def poll_due_connections(runtime: Runtime) -> int:
    """One tick: request a sync for every due connection; return how many were requested.

    Due: ``polling`` connections every poll interval, ``realtime`` ones every safety-net
    interval, and connections in a retryable ``error`` at their retry time (backoff capped at
    the poll interval). A connection seen for the first time gets a random offset within one
    cadence instead of a sync (its initial sync just ran)."""
    settings = runtime.settings.sync
    now = runtime.clock.now()
    due = await runtime.connections.due_for_sync(now, BATCH)
    requested = 0
    for candidate in due:
        first_time = candidate.get("next_poll_at") is None and candidate.get("status") == "active"
        interval = cadence_s(candidate, settings)
        offset = random.uniform(0, interval) if first_time else interval * random.uniform(0.8, 1.2)

        async def claim(
            session: Session,
            candidate: dict = candidate,  # type: ignore[type-arg]
            first_time: bool = first_time,
            offset: float = offset,
        ) -> bool:
            claimed = await runtime.connections.claim_scheduled_sync(
                session, candidate, now, now + timedelta(seconds=offset)
            )
            if not claimed or first_time:
                return False
            await runtime.emit(
                session,
                SyncRequested(mode=SyncKind.INCREMENTAL, reason=SyncReason.POLL),
                connection_id=candidate["_id"],
            )
            return True

        if await runtime.store.in_transaction(claim):
            requested += 1
    return requested


async def polling_loop(runtime: Runtime, stopping: asyncio.Event) -> None:
    tick = runtime.settings.sync.poll_tick_s
    while not stopping.is_set():
        try:
            requested = await poll_due_connections(runtime)
            if requested:
                log.info("polling.requested", connections=requested)
        except StoreError as exc:
            log.warning("polling.failed", error=str(exc))
        except Exception:  # one bad tick (a write conflict, a bug) must not end the schedule
            log.exception("polling.crashed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), tick * random.uniform(0.9, 1.1))
