"""Refreshing access tokens ahead of expiry: the refresher's tick.

Every ``refresh_tick_interval_s`` the refresher asks MongoDB for the credentials whose access
token expires within ``refresh_margin_s`` (:meth:`Credentials.due_for_refresh
<chronapilot.common.store.credentials.Credentials.due_for_refresh>`: one range on the
``access_expires_at`` index, so a tick reads the tokens due and nothing else), leases a batch
of them (:meth:`TokenService.lease_due`: other refresher processes querying at the same moment
skip those and take the next batch), and refreshes them with bounded concurrency. A full batch
means more may be waiting: the next batch follows at once, without waiting for the tick.

Credentials with nothing to refresh never match: iCloud's have no ``access_expires_at``, and a
connection marked ``reauth_required`` has its ``access_expires_at`` cleared until re-linked.
Tokens in backoff after a transient failure (``refresh_retry_at`` in the future) and tokens
another process is refreshing (``refreshing_until``) are due but skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chronapilot.common.logging import get_logger
from chronapilot.common.runtime import Runtime
from chronapilot.common.settings import TokenSettings
from chronapilot.common.store.client import Document
from chronapilot.common.tokens import TokenService
from chronapilot.token_refresher.telemetry import FLEET_GAUGES_INTERVAL_S, TICK_SECONDS, record_fleet_health

log = get_logger(__name__)


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
    due_before = now + timedelta(seconds=settings.refresh_margin_s)
    limit = asyncio.Semaphore(settings.refresh_concurrency)
    result = TickResult()

    async def refresh_one(doc: Document) -> None:
        async with limit:
            outcome = await tokens.refresh_leased(doc)
        result.outcomes[outcome.result] += 1

    tried: set[str] = set()
    while True:
        candidates = await credentials.due_for_refresh(
            before=due_before, now=now, limit=settings.refresh_batch_size, skip=tried
        )
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
