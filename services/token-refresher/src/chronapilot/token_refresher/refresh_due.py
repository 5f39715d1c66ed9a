"""Refreshing access tokens ahead of expiry: the refresher's tick.

Every ``refresh_tick_interval_s`` the refresher asks MongoDB for the credentials whose access
token expires within ``refresh_margin_s`` (:func:`due_query`, served by the ``refresh_due``
index, so a tick reads the tokens due and nothing else), leases a batch of them
(:meth:`TokenService.lease_due`: other refresher processes querying at the same moment skip
those and take the next batch), and refreshes them with bounded concurrency. A full batch
means more may be waiting: the next batch follows at once, without waiting for the tick.

Credentials with nothing to refresh never match: iCloud's have no ``access_expires_at``, and a
connection marked ``reauth_required`` has its ``access_expires_at`` cleared until re-linked.
Tokens in backoff after a transient failure (``refresh_retry_at`` in the future) and tokens
another process is refreshing (``refreshing_until``) are skipped by the same query.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from chronapilot.common.logging import get_logger
from chronapilot.common.runtime import Runtime
from chronapilot.common.settings import TokenSettings
from chronapilot.common.store.client import Document, translate_errors
from chronapilot.common.tokens import TokenService
from chronapilot.token_refresher.telemetry import TICK_SECONDS, record_fleet_health

#: The index the tick's query uses (``chronapilot.common.store.indexes``).
DUE_INDEX = "refresh_due"
log = get_logger(__name__)


def due_query(now: datetime, margin: timedelta) -> dict[str, Any]:
    """Credentials whose access token expires before ``now + margin``, not in backoff, not leased."""
    return {
        "access_expires_at": {"$lte": now + margin},
        "refresh_retry_at": {"$not": {"$gt": now}},
        "refreshing_until": {"$not": {"$gt": now}},
    }


def find_due(credentials: AsyncCollection[Document], now: datetime, margin: timedelta, limit: int) -> Any:
    """The cursor of one tick's query: soonest expiry first, ids and versions only."""
    return (
        credentials.find(due_query(now, margin), {"_id": 1, "version": 1})
        .sort("access_expires_at", 1)
        .hint(DUE_INDEX)
        .limit(limit)
    )


@dataclass
class TickResult:
    """What one tick did: outcomes by result (``refreshed``, ``failed``, ``busy``, …)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    batches: int = 0


async def refresh_due_tokens(tokens: TokenService, settings: TokenSettings, now: datetime) -> TickResult:
    """One tick: lease and refresh every token due at ``now``, batch after batch."""
    credentials = tokens.credentials
    margin = timedelta(seconds=settings.refresh_margin_s)
    due_before = now + margin
    limit = asyncio.Semaphore(settings.refresh_concurrency)
    result = TickResult()

    async def refresh_one(doc: Document) -> None:
        async with limit:
            outcome = await tokens.refresh_leased(doc)
        result.outcomes[outcome.result] += 1

    while True:
        with translate_errors():
            candidates = await find_due(credentials, now, margin, settings.refresh_batch_size).to_list()
        leased = await tokens.lease_due(candidates, due_before=due_before, now=now)
        result.batches += 1
        await asyncio.gather(*(refresh_one(doc) for doc in leased))
        if len(candidates) < settings.refresh_batch_size or not leased:
            return result


async def run_refresh_loop(runtime: Runtime, stopping: asyncio.Event) -> None:
    """Tick until ``stopping``; an infrastructure failure costs one tick, never the loop."""
    settings = runtime.settings.tokens
    while not stopping.is_set():
        started = time.monotonic()
        try:
            result = await refresh_due_tokens(runtime.token_service, settings, runtime.clock.now())
            if sum(result.outcomes.values()):
                log.info("tokens.tick", batches=result.batches, **dict(result.outcomes))
            await record_fleet_health(runtime.token_service, settings, runtime.clock.now())
        except Exception as exc:  # noqa: BLE001 - logged here, where it is handled: the next tick retries
            log.warning("tokens.tick_failed", error_type=type(exc).__name__, error=str(exc))
        TICK_SECONDS.observe(time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.refresh_tick_interval_s)
