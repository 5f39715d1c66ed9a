"""The polling schedule: connections in ``polling`` mode get an incremental sync every
``CHRONAPILOT_SYNC_POLL_INTERVAL_S`` (default 5 minutes).

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

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from chronapilot.common.bus.catalogue import SyncMode, SyncReason, SyncRequested
from chronapilot.common.errors import StoreError
from chronapilot.common.logging import get_logger
from chronapilot.common.models import ConnectionStatus
from chronapilot.common.models import SyncMode as ConnectionSyncMode
from chronapilot.common.runtime import Runtime

log = get_logger(__name__)
BATCH = 500


def _due_filter(now: object) -> dict[str, object]:
    return {
        "sync_mode": ConnectionSyncMode.POLLING.value,
        "status": ConnectionStatus.ACTIVE.value,
        "$or": [{"next_poll_at": {"$lte": now}}, {"next_poll_at": None}],
    }


async def poll_due_connections(runtime: Runtime) -> int:
    """One tick: request a sync for every due connection; return how many were requested."""
    settings = runtime.settings.sync
    interval = settings.poll_interval_s
    db = runtime.db.db
    now = runtime.clock.now()
    due = await db.connections.find(_due_filter(now), {"_id": 1, "next_poll_at": 1}).limit(BATCH).to_list()
    requested = 0
    for candidate in due:
        first_time = candidate.get("next_poll_at") is None
        offset = random.uniform(0, interval) if first_time else interval * random.uniform(0.8, 1.2)

        async def claim(
            session: AsyncClientSession,
            candidate: dict = candidate,  # type: ignore[type-arg]
            first_time: bool = first_time,
            offset: float = offset,
        ) -> bool:
            claimed = await db.connections.find_one_and_update(
                {"_id": candidate["_id"], **_due_filter(now)},
                {"$set": {"next_poll_at": now + timedelta(seconds=offset)}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if claimed is None or first_time:
                return False
            await runtime.emit(
                session,
                SyncRequested(mode=SyncMode.INCREMENTAL, reason=SyncReason.POLL),
                connection_id=candidate["_id"],
            )
            return True

        if await runtime.db.in_transaction(claim):
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), tick * random.uniform(0.9, 1.1))
