"""The ``webhook_subscriptions`` collection: its only reader and writer.

One document per (connection, synced calendar), and the provider subscriptions that currently
cover that calendar::

    {_id: "sub_…", connection_id, provider, calendar_id,        # the provider's calendar id
     channels: [{id, resource_id, secret_hash, expires_at, since}],   # live provider
                 # subscriptions: one, two while a Google channel is being replaced
     status: "pending" | "active" | "failing" | "deleting",
     due_at,               # when the scheduler acts next: renewal time, retry time, or now
     force_renew, attempts, last_error, lease_owner, lease_until, created_at, updated_at}

The gateway's scheduler claims due documents one by one with an atomic update that sets a
lease (``due_at <= now`` and lease free, served by the ``by_due`` index), so any number of
gateway processes share the work and a crashed one's claims simply run out. Secrets are never
stored: only their SHA-256 (:func:`~chronapilot.common.providers.push.hash_secret`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, ReturnDocument

from chronapilot.common.ids import new_id
from chronapilot.common.providers.push import Subscription
from chronapilot.common.store.client import Document, Session, translate_errors
from chronapilot.common.store.repository import Repository

T = TypeVar("T")

#: ``lease_until`` of a document nobody holds.
FREE = datetime(1970, 1, 1, tzinfo=UTC)


def millis(value: datetime) -> datetime:
    """``value`` at MongoDB's precision (milliseconds), so stored and fresh values compare equal."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class LiveSubscription:
    """One live provider subscription (Google channel, Graph subscription)."""

    id: str
    resource_id: str | None
    secret_hash: str
    expires_at: datetime
    since: datetime

    @classmethod
    def of(cls, subscription: Subscription, secret_hash: str, since: datetime) -> LiveSubscription:
        return cls(
            subscription.id,
            subscription.resource_id,
            secret_hash,
            millis(subscription.expires_at),
            millis(since),
        )

    def subscription(self, calendar_id: str) -> Subscription:
        return Subscription(self.id, calendar_id, self.expires_at, self.resource_id)

    def to_mongo(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource_id": self.resource_id,
            "secret_hash": self.secret_hash,
            "expires_at": self.expires_at,
            "since": self.since,
        }


@dataclass(frozen=True)
class SubscriptionRecord:
    """One document: a synced calendar and the channels that cover it."""

    id: str
    connection_id: str
    provider: str
    calendar_id: str
    channels: tuple[LiveSubscription, ...]
    status: str
    force_renew: bool
    attempts: int

    @classmethod
    def from_mongo(cls, doc: Document) -> SubscriptionRecord:
        return cls(
            id=doc["_id"],
            connection_id=doc["connection_id"],
            provider=doc["provider"],
            calendar_id=doc["calendar_id"],
            channels=tuple(LiveSubscription(**channel) for channel in doc.get("channels") or []),
            status=doc.get("status", "pending"),
            force_renew=bool(doc.get("force_renew")),
            attempts=int(doc.get("attempts") or 0),
        )

    def current(self, now: datetime) -> LiveSubscription | None:
        """The newest channel still alive at ``now``."""
        live = [channel for channel in self.channels if channel.expires_at > now]
        return max(live, key=lambda channel: channel.expires_at) if live else None

    def channel(self, channel_id: str) -> LiveSubscription | None:
        return next((channel for channel in self.channels if channel.id == channel_id), None)


class WebhookSubscriptions(Repository):
    """Every write runs in a transaction (the caller's, or one of its own): the gateway writes
    these documents inside transactions too, and a plain write that meets a transaction's
    uncommitted write is retried by the server until that transaction ends, where a
    transaction's write conflict aborts at once and is retried by the driver. The embedded
    test server livelocked on the former (a plain update spinning on a document a transaction
    held, the transaction waiting for the collection the spinning write kept taking)."""

    COLLECTION = "webhook_subscriptions"

    async def _write(self, work: Callable[[Session], Awaitable[T]], session: Session | None = None) -> T:
        if session is not None:
            with translate_errors(session):
                return await work(session)
        return await self._store.in_transaction(work)

    async def ensure(
        self, connection_id: str, provider: str, calendar_ids: Sequence[str], *, now: datetime
    ) -> None:
        """One document per synced calendar (new ones due now; ones that are not covered made
        due now); documents of calendars no longer synced are marked for deletion."""
        calendar_ids = list(calendar_ids)

        async def work(session: Session) -> None:
            for calendar_id in calendar_ids:
                await self._collection.update_one(
                    {"connection_id": connection_id, "calendar_id": calendar_id},
                    {
                        "$setOnInsert": {
                            "_id": new_id("sub"),
                            "provider": provider,
                            "channels": [],
                            "status": "pending",
                            "due_at": now,
                            "force_renew": False,
                            "attempts": 0,
                            "last_error": None,
                            "lease_owner": None,
                            "lease_until": FREE,
                            "created_at": now,
                            "updated_at": now,
                        }
                    },
                    upsert=True,
                    session=session,
                )
            await self._collection.update_many(
                {
                    "connection_id": connection_id,
                    "calendar_id": {"$in": calendar_ids},
                    "status": {"$ne": "active"},
                },
                {"$set": {"status": "pending", "due_at": now, "updated_at": now}},
                session=session,
            )
            await self._collection.update_many(
                {"connection_id": connection_id, "calendar_id": {"$nin": calendar_ids}},
                {"$set": {"status": "deleting", "due_at": now, "updated_at": now}},
                session=session,
            )

        await self._write(work)

    async def mark_all_deleting(self, connection_id: str, *, now: datetime) -> None:
        async def work(session: Session) -> None:
            await self._collection.update_many(
                {"connection_id": connection_id},
                {"$set": {"status": "deleting", "due_at": now, "updated_at": now}},
                session=session,
            )

        await self._write(work)

    async def claim_due(
        self, *, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[SubscriptionRecord]:
        """Up to ``limit`` documents due at ``now``, soonest first, each leased to ``owner``
        until ``lease_until``."""
        claimed = []

        async def claim(session: Session) -> Document | None:
            return await self._collection.find_one_and_update(
                {"due_at": {"$lte": now}, "lease_until": {"$lte": now}},
                {"$set": {"lease_owner": owner, "lease_until": lease_until}},
                sort=[("due_at", ASCENDING)],
                return_document=ReturnDocument.AFTER,
                session=session,
            )

        for _ in range(limit):
            doc = await self._write(claim)
            if doc is None:
                break
            claimed.append(SubscriptionRecord.from_mongo(doc))
        return claimed

    async def for_connection(
        self, connection_id: str, *, session: Session | None = None
    ) -> list[SubscriptionRecord]:
        with translate_errors(session):
            docs = await self._collection.find({"connection_id": connection_id}, session=session).to_list()
        return [SubscriptionRecord.from_mongo(doc) for doc in docs]

    async def states_of(self, connection_id: str) -> list[Document]:
        """The connection's documents for operators: ids, status, schedule, expiry and last
        error (the channels' secret hashes left out)."""
        with translate_errors():
            found = self._collection.find({"connection_id": connection_id}, {"channels.secret_hash": 0})
            return await found.sort("calendar_id", 1).to_list()

    async def by_channel(self, channel_id: str, *, provider: str | None = None) -> SubscriptionRecord | None:
        """The document whose channels include ``channel_id`` (at ``provider``, if given)."""
        query: dict[str, Any] = {"channels.id": channel_id}
        if provider is not None:
            query["provider"] = provider
        with translate_errors():
            doc = await self._collection.find_one(query)
        return None if doc is None else SubscriptionRecord.from_mongo(doc)

    async def exist_for(self, connection_id: str) -> bool:
        """Whether any document is kept for the connection."""
        with translate_errors():
            return await self._collection.find_one({"connection_id": connection_id}, {"_id": 1}) is not None

    async def make_due(
        self,
        record_id: str,
        *,
        now: datetime,
        force_renew: bool = False,
        drop_channel: str | None = None,
    ) -> None:
        """Make ``record_id`` due ``now`` (``force_renew``: renew even if not expiring;
        ``drop_channel``: forget that channel, the provider removed it)."""
        update: dict[str, Any] = {"$set": {"due_at": now, "updated_at": now}}
        if force_renew:
            update["$set"]["force_renew"] = True
        if drop_channel is not None:
            update["$pull"] = {"channels": {"id": drop_channel}}

        async def work(session: Session) -> None:
            await self._collection.update_one({"_id": record_id}, update, session=session)

        await self._write(work)

    async def add_channel(self, record_id: str, channel: LiveSubscription, *, now: datetime) -> None:
        async def work(session: Session) -> None:
            await self._collection.update_one(
                {"_id": record_id},
                {"$push": {"channels": channel.to_mongo()}, "$set": {"updated_at": now}},
                session=session,
            )

        await self._write(work)

    async def extend_channel(
        self, record_id: str, channel_id: str, expires_at: datetime, *, now: datetime
    ) -> None:
        async def work(session: Session) -> None:
            await self._collection.update_one(
                {"_id": record_id, "channels.id": channel_id},
                {"$set": {"channels.$.expires_at": millis(expires_at), "updated_at": now}},
                session=session,
            )

        await self._write(work)

    async def settle(
        self,
        record_id: str,
        *,
        due_at: datetime,
        status: str,
        now: datetime,
        channels: Sequence[LiveSubscription] | None = None,
        attempts: int = 0,
        last_error: str | None = None,
        session: Session | None = None,
        fenced: bool = False,
    ) -> bool:
        """Record the outcome of a claimed document's work and release its lease. ``fenced``:
        only if the document was not marked ``deleting`` meanwhile; False when it was (nothing
        written)."""
        changes: dict[str, Any] = {
            "status": status,
            "due_at": due_at,
            "attempts": attempts,
            "last_error": last_error,
            "lease_owner": None,
            "lease_until": FREE,
            "updated_at": now,
        }
        if status == "active":
            changes["force_renew"] = False
        if channels is not None:
            changes["channels"] = [channel.to_mongo() for channel in channels]
        selector: dict[str, Any] = {"_id": record_id}
        if fenced:
            selector["status"] = {"$ne": "deleting"}

        async def work(session: Session) -> bool:
            updated = await self._collection.update_one(selector, {"$set": changes}, session=session)
            return updated.matched_count == 1

        return await self._write(work, session)

    async def retry_soon(self, record_id: str, retry_at: datetime, *, owner: str) -> None:
        """Due again by ``retry_at`` (never later than it was), and ``owner``'s lease ends then."""

        async def work(session: Session) -> None:
            await self._collection.update_one(
                {"_id": record_id, "due_at": {"$gt": retry_at}},
                {"$set": {"due_at": retry_at}},
                session=session,
            )
            await self._collection.update_one(
                {"_id": record_id, "lease_owner": owner}, {"$set": {"lease_until": retry_at}}, session=session
            )

        await self._write(work)

    async def delete(self, record_id: str, *, session: Session | None = None) -> None:
        async def work(session: Session) -> None:
            await self._collection.delete_one({"_id": record_id}, session=session)

        await self._write(work, session)

    async def count(self, connection_id: str, *, session: Session | None = None) -> int:
        with translate_errors(session):
            return await self._collection.count_documents({"connection_id": connection_id}, session=session)
