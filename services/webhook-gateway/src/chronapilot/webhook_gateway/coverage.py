"""What a connection's subscriptions mean for it: ``sync_mode`` ``realtime`` while every synced
calendar has a live subscription, else ``polling``; ``webhook_subscription`` the live one that
expires first (``{id, expires_at}``). A change of mode emits ``connection.status_changed``.

Also the lookups the subscription lifecycle shares: the connection, its synced calendars (the
mirror's ``calendars`` not ``removed``) and its provider's push component.
"""

from __future__ import annotations

from chronapilot.common.logging import get_logger
from chronapilot.common.models import ConnectionStatus, SyncMode
from chronapilot.common.providers.push import PushSubscriptions
from chronapilot.common.runtime import Runtime
from chronapilot.common.store.client import Document, Session
from chronapilot.webhook_gateway.watches import Watches

log = get_logger(__name__)


def push_provider(runtime: Runtime, name: str) -> PushSubscriptions | None:
    """The push component of provider ``name``; None without one (its connections are polled)."""
    provider = runtime.providers.get(name)
    return None if provider is None else provider.push


async def find_connection(
    runtime: Runtime, connection_id: str, session: Session | None = None
) -> Document | None:
    return await runtime.connections.get(
        connection_id,
        session=session,
        projection={"status": 1, "provider": 1, "sync_mode": 1, "webhook_subscription": 1, "error": 1},
    )


async def synced_calendars(runtime: Runtime, connection_id: str, session: Session | None = None) -> list[str]:
    """The provider ids of the connection's calendars that are synced."""
    return await runtime.repos.calendars.synced_provider_ids(connection_id, session=session)


async def update_coverage(runtime: Runtime, watches: Watches, connection_id: str) -> None:
    """Set the connection's ``sync_mode`` and ``webhook_subscription`` from its subscriptions
    (one transaction: two gateways updating one connection see each other's writes)."""

    async def update(session: Session) -> None:
        connection = await find_connection(runtime, connection_id, session)
        if connection is None or connection["status"] == ConnectionStatus.DISCONNECTED:
            return
        mode, subscription = SyncMode.POLLING, None
        if push_provider(runtime, connection["provider"]) is not None:
            calendars = await synced_calendars(runtime, connection_id, session)
            now = runtime.clock.now()
            current = {
                w.calendar_id: w.current(now) for w in await watches.for_connection(connection_id, session)
            }
            if calendars and all(current.get(calendar) is not None for calendar in calendars):
                mode = SyncMode.REALTIME
            live = [channel for channel in current.values() if channel is not None]
            if live:
                earliest = min(live, key=lambda channel: channel.expires_at)
                subscription = {"id": earliest.id, "expires_at": earliest.expires_at}
        if connection.get("sync_mode") == mode and connection.get("webhook_subscription") == subscription:
            return
        if await runtime.connections.set_coverage(session, connection_id, mode, subscription):
            log.info("connection.sync_mode", connection_id=connection_id, sync_mode=mode.value)

    await runtime.store.in_transaction(update)
