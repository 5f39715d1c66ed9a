"""Inbound notifications: bytes in → parse → verify → dedupe → enqueue → answer.

Nothing here writes to MongoDB or calls a provider: the only read is the cached
:class:`~chronapilot.webhook_gateway.directory.Directory` lookup of the subscription's secret
hash, and the only write is to Kafka (sync requests, lifecycle facts). Work happens later,
in the sync worker and in :mod:`chronapilot.webhook_gateway.subscriptions`.

How each item is answered (a request's status is the best of its items'):

============================  ======================================================
item                          answer, effect
============================  ======================================================
handshake (Microsoft)         ``200 text/plain`` echoing ``validationToken``
change, genuine               ``accepted_status`` (Google 200, Microsoft 202); a sync request
                              for its calendar, or folded into the pending one
Google ``sync`` message       200; nothing (the channel works). Acknowledged even before the
                              channel is stored (Google sends it while ``events.record`` answers)
duplicate                     ``accepted_status``; nothing
lifecycle (Microsoft)         202; ``subscription.lifecycle_notified`` (renew / recreate off
                              the request path); ``missed`` and ``subscriptionRemoved`` also
                              request a sync of the calendar
malformed                     400
forged (secret mismatch)      403 (a genuine provider never sends one, so nobody retries it)
unknown subscription          404, or ``accepted_status`` when the provider retries client
                              errors (Microsoft: for 4 hours) — a subscription ChronaPilot
                              dropped must not be redelivered for hours
expired subscription          410, or ``accepted_status`` for the same reason
Kafka unavailable             503 (both providers retry 5xx)
============================  ======================================================

Rejections are counted per item (``chronapilot_webhook_notifications_total``) and logged once
per request: the provider, how many items each reason refused and a few of their subscription
ids; never the presented secret. A request costs one directory lookup per distinct
subscription id, whatever the number of its items (a batch repeating one id, or many, folds);
Microsoft's parser refuses a batch of more than
:data:`~chronapilot.common.providers.microsoft.push.MAX_BATCH_ITEMS` items (400), so one
request costs a bounded number of lookups.
"""

from __future__ import annotations

import enum
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from chronapilot.common.bus.catalogue import SubscriptionLifecycleNotified
from chronapilot.common.clock import Clock
from chronapilot.common.errors import BusError
from chronapilot.common.logging import get_logger
from chronapilot.common.providers.push import (
    Changed,
    Handshake,
    InvalidNotification,
    LifecycleEvent,
    Notification,
    PushSubscriptions,
    secret_matches,
)
from chronapilot.webhook_gateway.coalesce import SyncRequests
from chronapilot.webhook_gateway.directory import Directory, SubscriptionTarget
from chronapilot.webhook_gateway.metrics import ACK_SECONDS, NOTIFICATIONS

log = get_logger(__name__)

MAX_VALIDATION_TOKEN = 1024
#: Subscription ids a rejection log line names (and their length): enough to look into, while
#: an unauthenticated batch of thousands of made-up ids stays one short line.
_LOGGED_IDS = 5
_LOGGED_ID_LENGTH = 100
_SYNC_AFTER = frozenset({LifecycleEvent.MISSED, LifecycleEvent.SUBSCRIPTION_REMOVED})


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    FOLDED = "folded"
    INITIAL = "initial"
    DUPLICATE = "duplicate"
    LIFECYCLE = "lifecycle"
    FORGED = "forged"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


_OK = frozenset({Outcome.ACCEPTED, Outcome.FOLDED, Outcome.INITIAL, Outcome.DUPLICATE, Outcome.LIFECYCLE})
_REJECTED = frozenset({Outcome.FORGED, Outcome.UNKNOWN, Outcome.EXPIRED})


#: ``async (connection_id, fact)``: put a lifecycle fact on Kafka.
LifecyclePublisher = Callable[[str, SubscriptionLifecycleNotified], Awaitable[None]]


@dataclass
class Receiver:
    """What the request path needs: the push component of each provider with one (by name),
    the lookup, the sync requests."""

    providers: dict[str, PushSubscriptions]
    directory: Directory
    sync_requests: SyncRequests
    publish_lifecycle: LifecyclePublisher
    clock: Clock

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        name = request.match_info["provider"]
        provider = self.providers.get(name)
        if provider is None:
            raise web.HTTPNotFound(text="no webhook for this provider")
        try:
            return await self._answer(provider, request)
        finally:
            ACK_SECONDS.labels(name).observe(time.perf_counter() - started)

    async def _answer(self, provider: PushSubscriptions, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            parsed = provider.parse_notification(request.headers, body, request.query)
        except InvalidNotification as exc:
            return _reject(provider.name, "malformed", 400, reason=exc.message)
        if isinstance(parsed, Handshake):
            if len(parsed.token) > MAX_VALIDATION_TOKEN:
                return _reject(provider.name, "malformed", 400, reason="validation token too long")
            NOTIFICATIONS.labels(provider.name, "handshake").inc()
            return web.Response(text=parsed.token, content_type="text/plain", headers=_NOSNIFF)
        outcomes: list[Outcome] = []
        targets: dict[str, SubscriptionTarget | None] = {}  # one lookup per subscription id of the request
        synced: set[tuple[str, str]] = set()  # a batch asks once per calendar
        rejected: dict[str, Outcome] = {}
        try:
            for item in parsed:
                if item.subscription_id not in targets:
                    targets[item.subscription_id] = await self._target(provider, item.subscription_id)
                outcome = await self._item(item, targets[item.subscription_id], synced)
                NOTIFICATIONS.labels(provider.name, outcome.value).inc()
                outcomes.append(outcome)
                if outcome in _REJECTED:
                    rejected.setdefault(item.subscription_id, outcome)
        except BusError as exc:
            NOTIFICATIONS.labels(provider.name, "failed").inc()
            log.warning("webhook.enqueue_failed", provider=provider.name, error=str(exc))
            return web.Response(status=503, text="try again")
        finally:
            _log_rejected(provider.name, outcomes, rejected)
        return _status(provider, outcomes)

    async def _target(self, provider: PushSubscriptions, subscription_id: str) -> SubscriptionTarget | None:
        target = await self.directory.lookup(provider.name, subscription_id)
        if target is not None and target.expires_at <= self.clock.now():
            target = await self.directory.reread(provider.name, subscription_id)
        return target

    async def _item(
        self, item: Notification, target: SubscriptionTarget | None, synced: set[tuple[str, str]]
    ) -> Outcome:
        if target is None and isinstance(item, Changed) and item.initial:
            return Outcome.INITIAL  # a channel's first message races its storing; it asks for nothing
        if target is None:
            return Outcome.UNKNOWN
        if target.expires_at <= self.clock.now():
            return Outcome.EXPIRED
        if not secret_matches(item.secret, target.secret_hash):
            return Outcome.FORGED
        return await self._accept(item, target, synced)

    async def _accept(
        self, item: Notification, target: SubscriptionTarget, synced: set[tuple[str, str]]
    ) -> Outcome:
        if self.sync_requests.is_duplicate(item.dedupe_key):
            return Outcome.DUPLICATE
        if isinstance(item, Changed):
            if item.initial:
                outcome = Outcome.INITIAL
            elif (target.connection_id, target.calendar_id) in synced:
                outcome = Outcome.FOLDED
            elif await self.sync_requests.request(target.connection_id, target.calendar_id):
                outcome = Outcome.ACCEPTED
            else:
                outcome = Outcome.FOLDED
            synced.add((target.connection_id, target.calendar_id))
        else:
            fact = SubscriptionLifecycleNotified(
                subscription_id=item.subscription_id,
                calendar_id=target.calendar_id,
                lifecycle_event=item.event.value,
            )
            await self.publish_lifecycle(target.connection_id, fact)
            if item.event in _SYNC_AFTER and (target.connection_id, target.calendar_id) not in synced:
                await self.sync_requests.request(target.connection_id, target.calendar_id)
                synced.add((target.connection_id, target.calendar_id))
            log.info(
                "webhook.lifecycle", subscription_id=item.subscription_id, lifecycle_event=item.event.value
            )
            outcome = Outcome.LIFECYCLE
        self.sync_requests.remember(item.dedupe_key)
        return outcome


_NOSNIFF = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def _status(provider: PushSubscriptions, outcomes: list[Outcome]) -> web.Response:
    """The request's answer: acknowledged if any item was, else the most telling rejection."""
    if any(outcome in _OK for outcome in outcomes):
        return web.Response(status=provider.accepted_status)
    if Outcome.FORGED in outcomes:
        return web.Response(status=403, text="forged")
    if provider.retries_client_errors:
        return web.Response(status=provider.accepted_status)
    if Outcome.EXPIRED in outcomes:
        return web.Response(status=410, text="subscription expired")
    return web.Response(status=404, text="unknown subscription")


def _log_rejected(provider: str, outcomes: list[Outcome], rejected: dict[str, Outcome]) -> None:
    """One line for the request's refused items, however many."""
    if not rejected:
        return
    counts = Counter(outcome.value for outcome in outcomes if outcome in _REJECTED)
    log.info(
        "webhook.rejected",
        provider=provider,
        reasons=dict(counts),
        subscriptions=len(rejected),
        subscription_ids=[sid[:_LOGGED_ID_LENGTH] for sid in list(rejected)[:_LOGGED_IDS]],
    )


def _reject(provider: str, outcome: str, status: int, *, reason: str) -> web.Response:
    NOTIFICATIONS.labels(provider, outcome).inc()
    log.info("webhook.rejected", provider=provider, reason=outcome, detail=reason)
    return web.Response(status=status, text=outcome)
