"""Reads across collections for the operators' view of the whole fleet (the ops console, its
fleet gauges, the operator CLI): counts and ages, never a secret.

Each read projects only the fields it counts, and the summing happens here, in Python, over
those small documents: the console recomputes them every few seconds, and a plain find is
served the same way by every MongoDB-protocol server. Nothing here writes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chronapilot.common.store.client import Document, Store, translate_errors

#: The reasons a connection leaves ``active`` that the overview counts per hour.
FAILURE_CODES = ("sync_failed", "reauth_required", "token_refresh_failed")


@dataclass(frozen=True)
class Staleness:
    """One provider's freshness: the oldest last successful sync among its active connections'
    calendars (a calendar never synced counts from its connection's creation), and how many
    of those connections have a calendar older than the poll interval."""

    provider: str
    oldest_sync_at: datetime | None
    active: int
    stale: int

    def age_s(self, now: datetime) -> float:
        return 0.0 if self.oldest_sync_at is None else max(0.0, (now - self.oldest_sync_at).total_seconds())

    @property
    def stale_share(self) -> float:
        return self.stale / self.active if self.active else 0.0


@dataclass(frozen=True)
class SubscriptionHealth:
    """Webhook subscriptions of one provider: expiring within the horizon, failing renewals."""

    provider: str
    expiring: int
    failing: int


@dataclass(frozen=True)
class TokenHealth:
    """Connections (not disconnected) of one provider whose last token refreshes failed."""

    provider: str
    failing_connections: int
    failures: int


@dataclass(frozen=True)
class OutboxLag:
    unsent: int
    oldest_unsent_at: datetime | None

    def age_s(self, now: datetime) -> float:
        if self.oldest_unsent_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_unsent_at).total_seconds())


@dataclass
class FleetSnapshot:
    """Everything the overview shows that MongoDB knows, read at ``at``."""

    at: datetime
    connections: dict[tuple[str, str, str], int]
    staleness: list[Staleness]
    failures_last_hour: dict[tuple[str, str], int]
    subscriptions: list[SubscriptionHealth]
    tokens: list[TokenHealth]
    outbox: OutboxLag
    deliveries: dict[str, int]
    failing_deliveries: int
    incomplete_teardowns: list[Document] = field(default_factory=list)


class Fleet:
    """Fleet-wide reads (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self._db = store.db

    async def snapshot(self, now: datetime, *, poll_interval: timedelta) -> FleetSnapshot:
        return FleetSnapshot(
            at=now,
            connections=await self.connection_counts(),
            staleness=await self.staleness(now, poll_interval=poll_interval),
            failures_last_hour=await self.failures_since(now - timedelta(hours=1)),
            subscriptions=await self.subscription_health(now, horizon=timedelta(hours=24)),
            tokens=await self.token_health(),
            outbox=await self.outbox_lag(),
            deliveries=await self.delivery_counts(),
            failing_deliveries=await self.failing_deliveries(),
            incomplete_teardowns=await self.incomplete_teardowns(limit=20),
        )

    async def connection_counts(self) -> dict[tuple[str, str, str], int]:
        """Connections by (provider, status, sync_mode)."""
        docs = await self._find("connections", {}, {"provider": 1, "status": 1, "sync_mode": 1})
        return dict(
            Counter(
                (str(d.get("provider")), str(d.get("status")), str(d.get("sync_mode") or "polling"))
                for d in docs
            )
        )

    async def staleness(self, now: datetime, *, poll_interval: timedelta) -> list[Staleness]:
        connections = await self._find(
            "connections",
            {"status": "active"},
            {"provider": 1, "calendar_ids": 1, "last_synced_at": 1, "created_at": 1},
        )
        calendar_ids = [cid for c in connections for cid in c.get("calendar_ids") or []]
        calendars = {
            d["_id"]: d
            for d in await self._find(
                "calendars", {"_id": {"$in": calendar_ids}}, {"last_synced_at": 1, "removed": 1}
            )
        }
        oldest: dict[str, datetime | None] = {}
        active: Counter[str] = Counter()
        stale: Counter[str] = Counter()
        for connection in connections:
            provider = str(connection["provider"])
            synced = _connection_oldest_sync(connection, calendars)
            active[provider] += 1
            if synced is None or now - synced > poll_interval:
                stale[provider] += 1
            current = oldest.get(provider)
            if synced is not None and (current is None or synced < current):
                oldest[provider] = synced
            else:
                oldest.setdefault(provider, current)
        return [Staleness(p, oldest.get(p), active[p], stale[p]) for p in sorted(active)]

    async def failures_since(self, since: datetime) -> dict[tuple[str, str], int]:
        """Transitions into an error since ``since``, by (provider, code)."""
        entries = await self._find(
            "connection_status_history",
            {"at": {"$gte": since}, "code": {"$in": list(FAILURE_CODES)}},
            {"connection_id": 1, "code": 1},
        )
        providers = await self._providers_of(e["connection_id"] for e in entries)
        return dict(Counter((providers.get(e["connection_id"], "unknown"), str(e["code"])) for e in entries))

    async def subscription_health(self, now: datetime, *, horizon: timedelta) -> list[SubscriptionHealth]:
        records = await self._find(
            "webhook_subscriptions",
            {"status": {"$ne": "deleting"}},
            {"provider": 1, "status": 1, "channels.expires_at": 1},
        )
        expiring: Counter[str] = Counter()
        failing: Counter[str] = Counter()
        providers: set[str] = set()
        for record in records:
            provider = str(record.get("provider"))
            providers.add(provider)
            ends = [c["expires_at"] for c in record.get("channels") or [] if c.get("expires_at")]
            if ends and now < max(ends) <= now + horizon:
                expiring[provider] += 1
            if record.get("status") == "failing":
                failing[provider] += 1
        return [SubscriptionHealth(p, expiring[p], failing[p]) for p in sorted(providers)]

    async def token_health(self) -> list[TokenHealth]:
        docs = await self._find(
            "connections",
            {"status": {"$ne": "disconnected"}, "token_refresh.failures_count": {"$gt": 0}},
            {"provider": 1, "token_refresh.failures_count": 1},
        )
        connections: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        for doc in docs:
            provider = str(doc["provider"])
            connections[provider] += 1
            failures[provider] += int(doc["token_refresh"]["failures_count"])
        return [TokenHealth(p, connections[p], failures[p]) for p in sorted(connections)]

    async def outbox_lag(self) -> OutboxLag:
        with translate_errors():
            unsent = await self._db.outbox.count_documents({"sent_at": None})
            oldest = await self._db.outbox.find_one(
                {"sent_at": None}, {"created_at": 1}, sort=[("sent_at", 1), ("_id", 1)]
            )
        return OutboxLag(unsent, None if oldest is None else oldest.get("created_at"))

    async def delivery_counts(self) -> dict[str, int]:
        """Customer webhook deliveries by status."""
        docs = await self._find("webhook_deliveries", {}, {"status": 1})
        return dict(Counter(str(d.get("status")) for d in docs))

    async def failing_deliveries(self) -> int:
        """Pending deliveries whose last attempt failed (being retried)."""
        with translate_errors():
            return await self._db.webhook_deliveries.count_documents(
                {"status": "pending", "attempts": {"$gt": 0}}
            )

    async def incomplete_teardowns(self, *, limit: int) -> list[Document]:
        """Disconnected connections whose disconnect saga has not finished (no revocation
        recorded yet), oldest disconnect first."""
        with translate_errors():
            cursor = self._db.connections.find(
                {"status": "disconnected", "revoked_at": None},
                {"provider": 1, "email": 1, "disconnected_at": 1, "teardown": 1},
            )
            return await cursor.sort("disconnected_at", 1).limit(limit).to_list()

    async def in_error(self, *, limit: int) -> list[Document]:
        """Connections in ``error``, the most recent error first."""
        with translate_errors():
            cursor = self._db.connections.find({"status": "error"}, {"provider": 1, "email": 1, "error": 1})
            return await cursor.sort("error.at", -1).limit(limit).to_list()

    async def search(self, query: str, *, limit: int = 20) -> list[Document]:
        """Connections whose id is ``query`` or whose account e-mail is ``query`` (any case)."""
        text = query.strip()
        if not text:
            return []
        flt: dict[str, Any] = (
            {"_id": text}
            if text.startswith("con_")
            else {"email": {"$regex": f"^{re.escape(text)}$", "$options": "i"}}
        )
        with translate_errors():
            cursor = self._db.connections.find(
                flt, {"provider": 1, "email": 1, "status": 1, "sync_mode": 1, "error": 1, "created_at": 1}
            )
            return await cursor.sort("_id", -1).limit(limit).to_list()

    async def _providers_of(self, connection_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(connection_ids))
        docs = await self._find("connections", {"_id": {"$in": ids}}, {"provider": 1})
        return {d["_id"]: str(d["provider"]) for d in docs}

    async def _find(self, collection: str, flt: dict[str, Any], projection: dict[str, int]) -> list[Document]:
        with translate_errors():
            return await self._db[collection].find(flt, projection).to_list()


def _connection_oldest_sync(connection: Document, calendars: dict[str, Document]) -> datetime | None:
    """The oldest last sync among the connection's calendars (its own ``last_synced_at`` when
    it lists none); a calendar never synced counts from the connection's creation."""
    times: list[datetime] = []
    for calendar_id in connection.get("calendar_ids") or []:
        calendar = calendars.get(calendar_id)
        if calendar is None or calendar.get("removed"):
            continue
        times.append(calendar.get("last_synced_at") or connection["created_at"])
    if not times:
        times.append(connection.get("last_synced_at") or connection["created_at"])
    return min(times) if times else None
