"""Force a resync of one connection: the API's ``POST /v1/connections/{id}/refresh`` and the
operator's "force resync" (console, CLI) take this one path.

A full sync is requested (``sync.requested``, reason ``manual``) at most once a minute per
connection: the slot is claimed atomically on the connection document, in the transaction that
queues the request, so any number of processes agree. A disconnected connection is never synced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from chronapilot.common.bus.catalogue import SyncKind, SyncReason, SyncRequested
from chronapilot.common.bus.outbox import EventSink
from chronapilot.common.clock import Clock
from chronapilot.common.connections import Connections
from chronapilot.common.models import ConnectionStatus
from chronapilot.common.store.client import Document, Session, Store

#: At most one manual resync per connection in this interval.
RESYNC_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class ResyncRequested:
    """The full sync is queued; ``connection`` as it is now."""

    connection: Document


@dataclass(frozen=True)
class ResyncRefused:
    """Nothing was queued: ``disconnected``, ``not_found`` or ``rate_limited`` (then
    ``retry_in_s`` says when the next one is allowed)."""

    reason: str
    retry_in_s: int = 0


async def request_resync(
    store: Store, connections: Connections, events: EventSink, clock: Clock, connection_id: str
) -> ResyncRequested | ResyncRefused:
    """Queue a full sync of ``connection_id`` unless it is disconnected or one was requested
    less than :data:`RESYNC_INTERVAL` ago."""
    current = await connections.get(connection_id)
    if current is None:
        return ResyncRefused("not_found")
    if current["status"] == ConnectionStatus.DISCONNECTED:
        return ResyncRefused("disconnected")
    now = clock.now()

    async def claim(session: Session) -> Document | None:
        claimed = await connections.claim_manual_refresh(session, connection_id, RESYNC_INTERVAL)
        if claimed is not None:
            requested = SyncRequested(mode=SyncKind.FULL, reason=SyncReason.MANUAL)
            await events.emit(session, requested, connection_id=connection_id)
        return claimed

    claimed = await store.in_transaction(claim)
    if claimed is not None:
        return ResyncRequested(claimed)
    current = await connections.get(connection_id)
    if current is None or current["status"] == ConnectionStatus.DISCONNECTED:
        return ResyncRefused("disconnected")
    last = current["manual_refresh_at"]
    wait = max(1, int((last + RESYNC_INTERVAL - now).total_seconds() + 0.999))
    return ResyncRefused("rate_limited", retry_in_s=wait)
