"""Refreshing access tokens ahead of expiry: the refresher's tick.

Every ``refresh_tick_interval_s`` the refresher asks MongoDB for the credentials whose access
token expires within ``refresh_margin_s`` (:func:`due_query`: one range on the
``access_expires_at`` index, so a tick reads the tokens due and nothing else), leases a batch
of them (:meth:`TokenService.lease_due`: other refresher processes querying at the same moment
skip those and take the next batch), and refreshes them with bounded concurrency. A full batch
means more may be waiting: the next batch follows at once, without waiting for the tick.

Credentials with nothing to refresh never match: iCloud's have no ``access_expires_at``, and a
connection marked ``reauth_required`` has its ``access_expires_at`` cleared until re-linked.
Tokens in backoff after a transient failure (``refresh_retry_at`` in the future) and tokens
another process is refreshing (``refreshing_until``) are due but skipped (:func:`next_batch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from chronapilot.common.logging import get_logger
from chronapilot.common.runtime import Runtime
from chronapilot.common.settings import TokenSettings
from chronapilot.common.store.client import Document, translate_errors
from chronapilot.common.tokens import TokenService
from chronapilot.token_refresher.telemetry import FLEET_GAUGES_INTERVAL_S, TICK_SECONDS, record_fleet_health

#: The index that serves the tick's query (``chronapilot.common.store.indexes``).
DUE_INDEX = "by_access_expiry"
log = get_logger(__name__)


def due_query(now: datetime, margin: timedelta) -> dict[str, Any]:
    """Credentials whose access token expires before ``now + margin``: one index range."""
    return {"access_expires_at": {"$lte": now + margin}}


def find_due(credentials: AsyncCollection[Document], now: datetime, margin: timedelta, limit: int) -> Any:
    """The tick's cursor: tokens due, soonest expiry first, with their lease and backoff."""
    return (
        credentials.find(
            due_query(now, margin),
            {"_id": 1, "version": 1, "refreshing_until": 1, "refresh_retry_at": 1},
        )
        .sort("access_expires_at", 1)
        .batch_size(limit)
    )


async def next_batch(
    credentials: AsyncCollection[Document],
    now: datetime,
    margin: timedelta,
    limit: int,
    *,
    skip: Collection[str] = (),
) -> list[Document]:
    """Up to ``limit`` tokens due and free: neither leased by a process nor waiting out a backoff
    (nor in ``skip``: the ones this tick already tried).

    The lease and backoff are checked here rather than in the query so the query stays one
    range on the index (every server plans that well); what is skipped is itself due, so the
    cost stays proportional to the tokens due.
    """
    batch: list[Document] = []
    with translate_errors():
        async for doc in find_due(credentials, now, margin, limit):
            if doc["_id"] in skip:
                continue
            if _free(doc, "refreshing_until", now) and _free(doc, "refresh_retry_at", now):
                batch.append(doc)
                if len(batch) == limit:
                    break
    return batch


def _free(doc: Document, field: str, now: datetime) -> bool:
    until = doc.get(field)
    return until is None or until <= now


@dataclass
class TickResult:
    """What one tick did: outcomes by result (``refreshed``, ``failed``, ``busy``, …)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    batches: int = 0


async def refresh_due_tokens(
    tokens: TokenService, settings: TokenSettings, now: datetime, *, stopping: asyncio.Event | None = None
) -> TickResult:
    """One tick: lease and refresh every token due at ``now``, batch after batch (on
    ``stopping``, the batch in hand is finished and the rest left to other processes)."""
    credentials = tokens.credentials
    margin = timedelta(seconds=settings.refresh_margin_s)
    due_before = now + margin
    limit = asyncio.Semaphore(settings.refresh_concurrency)
    result = TickResult()

    async def refresh_one(doc: Document) -> None:
        async with limit:
            outcome = await tokens.refresh_leased(doc)
        result.outcomes[outcome.result] += 1

    tried: set[str] = set()
    while True:
        candidates = await next_batch(credentials, now, margin, settings.refresh_batch_size, skip=tried)
        tried.update(doc["_id"] for doc in candidates)
        leased = await tokens.lease_due(candidates, due_before=due_before, now=now)
        result.batches += 1
        await asyncio.gather(*(refresh_one(doc) for doc in leased))
        if len(candidates) < settings.refresh_batch_size or (stopping is not None and stopping.is_set()):
            return result


async def run_refresh_loop(runtime: Runtime, stopping: asyncio.Event) -> None:
    """Tick until ``stopping``; an infrastructure failure costs one tick, never the loop."""
    settings = runtime.settings.tokens
    gauges_at = 0.0
    while not stopping.is_set():
        started = time.monotonic()
        try:
            result = await refresh_due_tokens(
                runtime.tokens, settings, runtime.clock.now(), stopping=stopping
            )
            if sum(result.outcomes.values()):
                log.info("tokens.tick", batches=result.batches, **dict(result.outcomes))
            if time.monotonic() >= gauges_at:
                await record_fleet_health(runtime.tokens, settings, runtime.clock.now())
                gauges_at = time.monotonic() + FLEET_GAUGES_INTERVAL_S
        except Exception as exc:  # noqa: BLE001 - logged here, where it is handled: the next tick retries
            log.warning("tokens.tick_failed", error_type=type(exc).__name__, error=str(exc))
        TICK_SECONDS.observe(time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.refresh_tick_interval_s)
