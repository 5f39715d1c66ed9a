"""This gateway process's hold on the ``webhook_subscriptions`` documents
(:mod:`chronapilot.common.store.webhook_subscriptions`): its clock, the owner name its claims
are leased under, and how long a claim lasts.

The scheduler claims due documents with a lease, so any number of gateway processes share the
work and a crashed one's claims simply run out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chronapilot.common.clock import Clock
from chronapilot.common.store import Session
from chronapilot.common.store.webhook_subscriptions import (
    LiveSubscription,
    SubscriptionRecord,
    WebhookSubscriptions,
)

__all__ = ["LiveSubscription", "SubscriptionRecord", "SubscriptionRecords"]


class SubscriptionRecords:
    def __init__(
        self, subscriptions: WebhookSubscriptions, *, clock: Clock, owner: str, lease_s: float
    ) -> None:
        self._subscriptions = subscriptions
        self._clock = clock
        self._owner = owner
        self._lease = timedelta(seconds=lease_s)

    async def ensure(self, connection_id: str, provider: str, calendar_ids: list[str]) -> None:
        """One document per synced calendar (new ones due now; ones that are not covered made
        due now); documents of calendars no longer synced are marked for deletion."""
        await self._subscriptions.ensure(connection_id, provider, calendar_ids, now=self._clock.now())

    async def mark_all_deleting(self, connection_id: str) -> None:
        await self._subscriptions.mark_all_deleting(connection_id, now=self._clock.now())

    async def claim_due(self, limit: int) -> list[SubscriptionRecord]:
        """Up to ``limit`` due documents, each leased to this process."""
        now = self._clock.now()
        return await self._subscriptions.claim_due(
            now=now, owner=self._owner, lease_until=now + self._lease, limit=limit
        )

    async def for_connection(
        self, connection_id: str, session: Session | None = None
    ) -> list[SubscriptionRecord]:
        return await self._subscriptions.for_connection(connection_id, session=session)

    async def by_channel(self, channel_id: str) -> SubscriptionRecord | None:
        return await self._subscriptions.by_channel(channel_id)

    async def request(
        self, record_id: str, *, force_renew: bool = False, drop_channel: str | None = None
    ) -> None:
        """Make ``record_id`` due now (a lifecycle notification asked for work)."""
        await self._subscriptions.make_due(
            record_id, now=self._clock.now(), force_renew=force_renew, drop_channel=drop_channel
        )

    async def add_channel(self, record_id: str, channel: LiveSubscription) -> None:
        """Start accepting ``channel``'s notifications (before the old one is stopped)."""
        await self._subscriptions.add_channel(record_id, channel, now=self._clock.now())

    async def extend_channel(self, record_id: str, channel_id: str, expires_at: datetime) -> None:
        await self._subscriptions.extend_channel(record_id, channel_id, expires_at, now=self._clock.now())

    async def settle(
        self,
        record_id: str,
        *,
        due_at: datetime,
        status: str,
        channels: list[LiveSubscription] | None = None,
        attempts: int = 0,
        last_error: str | None = None,
        session: Session | None = None,
        fenced: bool = False,
    ) -> bool:
        """Record the outcome of a claimed document's work and release its lease. ``fenced``:
        only if the document was not marked ``deleting`` meanwhile (a disconnect while a
        provider call was in flight); False when it was (nothing written)."""
        return await self._subscriptions.settle(
            record_id,
            due_at=due_at,
            status=status,
            now=self._clock.now(),
            channels=channels,
            attempts=attempts,
            last_error=last_error,
            session=session,
            fenced=fenced,
        )

    async def retry_soon(self, record_id: str, retry_at: datetime) -> None:
        """Work on the document failed for a transient reason (a write conflict with another
        gateway, a store hiccup): any gateway may claim it again from ``retry_at`` (this
        process's lease ends then, and it is due by then), not only when the lease runs out."""
        await self._subscriptions.retry_soon(record_id, retry_at, owner=self._owner)

    async def delete(self, record_id: str, session: Session | None = None) -> None:
        await self._subscriptions.delete(record_id, session=session)

    async def count(self, connection_id: str, session: Session | None = None) -> int:
        return await self._subscriptions.count(connection_id, session=session)
