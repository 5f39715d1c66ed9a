"""What a connection's subscriptions mean for it: ``sync_mode`` ``realtime`` while every synced
calendar has a live subscription, else ``polling``; ``webhook_subscription`` the live one that
expires first (``{id, expires_at}``), decided by :func:`coverage_of` (no I/O). A change of
mode emits ``connection.status_changed``.

Also the lookups the subscription lifecycle shares: the connection, its synced calendars (the
mirror's ``calendars`` not ``removed``) and its provider's push component.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chronapilot.common.logging import get_logger
from chronapilot.common.models import ConnectionStatus, SyncMode
from chronapilot.common.providers.push import PushSubscriptions
from chronapilot.common.runtime import Runtime
from chronapilot.common.store.client import Document, Session
from chronapilot.webhook_gateway.records import SubscriptionRecord, SubscriptionRecords

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


@dataclass(frozen=True)
class Coverage:
    """What a connection's subscriptions cover: ``covered`` and ``uncovered`` synced calendars,
    the ``mode`` that follows (``realtime`` only when every synced calendar is covered, and
    there is at least one), and the live ``subscription`` that expires first
    (``{id, expires_at}``, None when none is live)."""

    mode: SyncMode
    subscription: dict[str, Any] | None
    covered: frozenset[str]
    uncovered: frozenset[str]

    @property
    def partial(self) -> bool:
        """Some synced calendars are covered, not all (the connection is polled meanwhile)."""
        return bool(self.covered and self.uncovered)


def coverage_of(
    records: Iterable[SubscriptionRecord], calendars: Iterable[str], now: datetime, *, push: bool
) -> Coverage:
    """The coverage of a connection whose synced calendars are ``calendars`` by ``records`` (all
    of its records) at ``now``; a provider without ``push`` covers nothing."""
    synced = frozenset(calendars)
    if not push:
        return Coverage(SyncMode.POLLING, None, frozenset(), synced)
    current = {record.calendar_id: record.current(now) for record in records}
    covered = frozenset(calendar for calendar in synced if current.get(calendar) is not None)
    mode = SyncMode.REALTIME if synced and covered == synced else SyncMode.POLLING
    live = [channel for channel in current.values() if channel is not None]
    subscription = None
    if live:
        earliest = min(live, key=lambda channel: channel.expires_at)
        subscription = {"id": earliest.id, "expires_at": earliest.expires_at}
    return Coverage(mode, subscription, covered, synced - covered)


async def update_coverage(runtime: Runtime, records: SubscriptionRecords, connection_id: str) -> None:
    """Set the connection's ``sync_mode`` and ``webhook_subscription`` from its subscriptions
    (:func:`coverage_of`; one transaction: two gateways updating one connection see each
    other's writes)."""

    async def update(session: Session) -> None:
        connection = await find_connection(runtime, connection_id, session)
        if connection is None or connection["status"] == ConnectionStatus.DISCONNECTED:
            return
        push = push_provider(runtime, connection["provider"]) is not None
        recorded: list[SubscriptionRecord] = []
        calendars: list[str] = []
        if push:
            # calendars, then subscriptions (the order before the refactor): read the other way
            # round, two gateways' transactions were seen to stall each other on the embedded
            # MongoDB-protocol server
            calendars = await synced_calendars(runtime, connection_id, session)
            recorded = await records.for_connection(connection_id, session)
        covered = coverage_of(recorded, calendars, runtime.clock.now(), push=push)
        mode, subscription = covered.mode, covered.subscription
        if connection.get("sync_mode") == mode and connection.get("webhook_subscription") == subscription:
            return
        if await runtime.connections.set_coverage(session, connection_id, mode, subscription):
            log.info("connection.sync_mode", connection_id=connection_id, sync_mode=mode.value)

    await runtime.store.in_transaction(update)
