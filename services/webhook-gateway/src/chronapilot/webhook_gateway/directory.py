"""The request path's only lookup: a provider subscription id → where its notifications go.

A :class:`SubscriptionTarget` names the connection and the provider calendar a live subscription covers,
the hash of its secret and its expiry. Lookups read ``webhook_subscriptions`` through its
``channels.id`` index once and are then served from memory for ``webhook_secret_cache_s``; an
unknown id is remembered as unknown for ``webhook_unknown_cache_s`` (short: a subscription
created by another gateway process may become known a moment later). Concurrent misses for
one id share one read. The subscription lifecycle :meth:`Directory.put`\\s what it creates and
:meth:`Directory.forget`\\s what it stops, so this process never waits for its own changes.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from chronapilot.common.store.webhook_subscriptions import WebhookSubscriptions
from chronapilot.webhook_gateway.metrics import SUBSCRIPTION_READS


@dataclass(frozen=True)
class SubscriptionTarget:
    """Where a subscription's notifications go, and what proves they are genuine."""

    connection_id: str
    calendar_id: str
    secret_hash: str
    expires_at: datetime


@dataclass(frozen=True)
class _Entry:
    target: SubscriptionTarget | None
    until: float


class Directory:
    def __init__(
        self,
        subscriptions: WebhookSubscriptions,
        *,
        ttl_s: float,
        unknown_ttl_s: float,
        max_entries: int = 200_000,
    ) -> None:
        self._subscriptions = subscriptions
        self._ttl_s = ttl_s
        self._unknown_ttl_s = unknown_ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._reading: dict[tuple[str, str], asyncio.Future[SubscriptionTarget | None]] = {}

    async def lookup(self, provider: str, subscription_id: str) -> SubscriptionTarget | None:
        """The live target of ``subscription_id`` at ``provider``, or None if unknown."""
        key = (provider, subscription_id)
        entry = self._entries.get(key)
        if entry is not None and entry.until > time.monotonic():
            return entry.target
        pending = self._reading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[SubscriptionTarget | None] = asyncio.get_running_loop().create_future()
        self._reading[key] = future
        try:
            target = await self._read(provider, subscription_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            del self._reading[key]
        future.set_result(target)
        self._remember(key, target)
        return target

    async def reread(self, provider: str, subscription_id: str) -> SubscriptionTarget | None:
        """Read past the cache: a target that looks expired may have been renewed in place by
        another gateway process."""
        target = await self._read(provider, subscription_id)
        self._remember((provider, subscription_id), target)
        return target

    def put(self, provider: str, subscription_id: str, target: SubscriptionTarget) -> None:
        """This process just stored ``target``: serve it without a read."""
        self._remember((provider, subscription_id), target)

    def forget(self, provider: str, subscription_id: str) -> None:
        """This process just stopped ``subscription_id``: its notifications are unknown now."""
        self._remember((provider, subscription_id), None)

    async def _read(self, provider: str, subscription_id: str) -> SubscriptionTarget | None:
        SUBSCRIPTION_READS.labels(provider).inc()
        record = await self._subscriptions.by_channel(subscription_id, provider=provider)
        channel = None if record is None else record.channel(subscription_id)
        if record is None or channel is None:
            return None
        return SubscriptionTarget(
            record.connection_id, record.calendar_id, channel.secret_hash, channel.expires_at
        )

    def _remember(self, key: tuple[str, str], target: SubscriptionTarget | None) -> None:
        ttl = self._ttl_s if target is not None else self._unknown_ttl_s
        self._entries[key] = _Entry(target, time.monotonic() + ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
