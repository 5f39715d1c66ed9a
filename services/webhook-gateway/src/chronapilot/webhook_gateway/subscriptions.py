"""The subscription lifecycle policy: which calendars are covered, when subscriptions are
created, renewed and stopped, and what the connection's ``sync_mode`` says about it.

- **Activation** (``connection.activated``, or back to ``active`` from ``error``): one
  subscription per synced calendar (``calendars`` not ``removed``), created by the scheduler at
  once. Providers without a push component (``provider.push`` None: iCloud) stay in ``polling``.
- **Renewal**: ahead of expiry by ``subscription_renew_margin_s`` (at most half the
  subscription's lifetime). Providers whose ``push.renewable`` is true extend in place;
  the others get a new subscription that overlaps the old one until it is stopped (the provider
  module does it; see :meth:`PushSubscriptions.renew_subscription`). A ``reauthorizationRequired``
  lifecycle notification renews at once; ``subscriptionRemoved`` creates a new one.
- **Disconnection**, or a calendar no longer synced: stopped at the provider (best effort: a
  subscription the provider still has runs out by itself) and deleted here.
- **Failures**: retried with a jittered exponential backoff (``subscription_retry_*``), and a
  subscription that could not be renewed is looked at again when it expires.
- **Coverage**: after every change the connection gets ``webhook_subscription`` = the earliest
  expiring live subscription (``{id, expires_at}``) and ``sync_mode`` = ``realtime`` while every
  synced calendar has a live subscription, else ``polling`` (the sync worker then polls it); a
  change of mode emits ``connection.status_changed``.

Work is found by the scheduler (:meth:`SubscriptionKeeper.run`) over the ``due_at`` index, in
leased batches (:mod:`chronapilot.webhook_gateway.records`), so several gateway processes share
it safely; event handlers only mark documents due and wake it. What each claimed document
needs next is decided by :func:`~chronapilot.webhook_gateway.renewal.next_step` (no I/O).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from datetime import timedelta

from chronapilot.common.backoff import Backoff
from chronapilot.common.bus.catalogue import (
    Event,
    SubscriptionCreated,
    SubscriptionLifecycleNotified,
    SubscriptionRemoved,
    SubscriptionRenewed,
)
from chronapilot.common.connections import retryable_error
from chronapilot.common.errors import ChronaPilotError, ProviderError
from chronapilot.common.logging import get_logger
from chronapilot.common.models import ConnectionStatus
from chronapilot.common.providers.base import TokenSource
from chronapilot.common.providers.push import LifecycleEvent, PushSubscriptions, Subscription, hash_secret
from chronapilot.common.runtime import Runtime
from chronapilot.common.store.client import Document, Session
from chronapilot.webhook_gateway.coverage import (
    find_connection,
    push_provider,
    synced_calendars,
    update_coverage,
)
from chronapilot.webhook_gateway.directory import Directory, SubscriptionTarget
from chronapilot.webhook_gateway.metrics import SUBSCRIPTION_ACTIONS
from chronapilot.webhook_gateway.records import LiveSubscription, SubscriptionRecord, SubscriptionRecords
from chronapilot.webhook_gateway.renewal import Action, Situation, Step, next_step, renew_at, retry_at

log = get_logger(__name__)
#: Attempts to stop a subscription at the provider before it is given up (and recorded).
STOP_ATTEMPTS = 6


class Fenced(ChronaPilotError):
    """The subscription document was marked for deletion while a provider call was in flight."""

    code = "subscription_fenced"


class SubscriptionKeeper:
    def __init__(self, runtime: Runtime, directory: Directory, *, owner: str) -> None:
        self._runtime = runtime
        self._directory = directory
        self._settings = runtime.settings.realtime
        self._clock = runtime.clock
        self._records = SubscriptionRecords(
            runtime.repos.webhook_subscriptions,
            clock=runtime.clock,
            owner=owner,
            lease_s=self._settings.subscription_lease_s,
        )
        self._backoff = Backoff(
            base_s=self._settings.subscription_retry_base_s, cap_s=self._settings.subscription_retry_cap_s
        )
        self._ttl = timedelta(seconds=self._settings.subscription_ttl_s)
        self._margin = timedelta(seconds=self._settings.subscription_renew_margin_s)
        self._retry_cap = timedelta(seconds=self._settings.subscription_retry_cap_s)
        self._base_url = runtime.settings.webhook_base_url
        self._wake = asyncio.Event()

    # what the event handlers call ---------------------------------------------------------

    async def cover(self, connection_id: str) -> None:
        """Make sure every synced calendar of an active connection gets a subscription."""
        connection = await self._connection(connection_id)
        if connection is None or connection["status"] != ConnectionStatus.ACTIVE:
            return
        provider = self._push(connection["provider"])
        if provider is not None:
            calendars = await self._synced_calendars(connection_id)
            await self._records.ensure(connection_id, provider.name, calendars)
            self._wake.set()
        await self.update_coverage(connection_id)

    async def release(self, connection_id: str) -> None:
        """The connection was disconnected: stop and delete its subscriptions (while its
        credentials still exist); when none is left, ``connection.subscriptions_released``
        lets the token refresher revoke the grant."""
        await self._records.mark_all_deleting(connection_id)
        self._wake.set()
        await self._released_if_done(connection_id)

    async def _released_if_done(self, connection_id: str) -> None:
        if await self._records.count(connection_id):
            return
        connection = await self._connection(connection_id)
        if (
            connection is not None
            and connection["status"] == ConnectionStatus.DISCONNECTED
            and await self._runtime.connections.subscriptions_released(connection_id, stopped=0, failed=[])
        ):
            log.info("subscriptions.released", connection_id=connection_id)

    async def lifecycle_notified(self, event: SubscriptionLifecycleNotified) -> None:
        record = await self._records.by_channel(event.subscription_id)
        if record is None:
            return
        if event.lifecycle_event == LifecycleEvent.REAUTHORIZATION_REQUIRED:
            await self._records.request(record.id, force_renew=True)
        elif event.lifecycle_event == LifecycleEvent.SUBSCRIPTION_REMOVED:
            self._directory.forget(record.provider, event.subscription_id)
            await self._records.request(record.id, drop_channel=event.subscription_id)
        else:
            return  # missed: the request path asked for a sync already
        self._wake.set()

    # the scheduler ------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Claim due subscriptions in leased batches and work on them, until ``stopping``."""
        batch = self._settings.subscription_batch_size
        while not stopping.is_set():
            claimed: list[SubscriptionRecord] = []
            try:
                claimed = await self._records.claim_due(batch)
                await asyncio.gather(*(self._work(record) for record in claimed))
            except ChronaPilotError as exc:
                log.warning("subscriptions.scan_failed", error=str(exc))
            except Exception:  # a bug in one batch must not stop every renewal
                log.exception("subscriptions.scan_crashed")
            if len(claimed) < batch:
                await self._sleep(stopping)

    async def _sleep(self, stopping: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stopping.wait())]
        await asyncio.wait(
            waits, timeout=self._settings.subscription_scan_interval_s, return_when="FIRST_COMPLETED"
        )
        for waiting in waits:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        self._wake.clear()

    async def _work(self, record: SubscriptionRecord) -> None:
        try:
            connection = await self._connection(record.connection_id)
            provider = self._push(record.provider)
            calendars = await self._synced_calendars(record.connection_id)
            situation = Situation(
                status=None if connection is None else connection["status"],
                retryable_error=connection is not None and retryable_error(connection),
                push=provider is not None,
                calendar_synced=record.calendar_id in calendars,
            )
            step = next_step(
                record, situation, self._clock.now(), renew_margin=self._margin, retry_cap=self._retry_cap
            )
            if step.action is Action.STOP:
                await self._stop(record, provider, reason=step.reason or "not_synced")
            elif step.action is Action.WAIT:
                await self._records.settle(
                    record.id,
                    due_at=step.due_at,
                    status=record.status,
                    channels=list(record.channels),
                    attempts=record.attempts,
                )
            else:
                assert provider is not None  # the step stops a record whose provider has no push
                await self._keep(record, provider, step)
                await self._cover_new_calendars(record.connection_id, provider, calendars)
            await self.update_coverage(record.connection_id)
        except ChronaPilotError as exc:
            retry_at = self._clock.now() + timedelta(seconds=self._backoff.delay(0))
            log.warning("subscription.work_failed", subscription=record.id, error=str(exc))
            with contextlib.suppress(ChronaPilotError):  # else: when the lease runs out
                await self._records.retry_soon(record.id, retry_at)
        except Exception:  # one subscription's bug must not stop the others
            log.exception("subscription.work_crashed", subscription=record.id)

    async def _cover_new_calendars(
        self, connection_id: str, provider: PushSubscriptions, calendars: list[str]
    ) -> None:
        """Calendars the sync worker found since activation get a subscription too (until then
        the connection is polled: it is not fully covered)."""
        known = {record.calendar_id for record in await self._records.for_connection(connection_id)}
        if set(calendars) - known:
            await self._records.ensure(connection_id, provider.name, calendars)
            self._wake.set()

    async def _keep(self, record: SubscriptionRecord, provider: PushSubscriptions, step: Step) -> None:
        if step.action is Action.CREATE:
            await self._create(record, provider)
        elif step.action is Action.RENEW and step.channel is not None:
            await self._renew(record, provider, step.channel)
        else:
            channels = [] if step.channel is None else [step.channel]
            await self._records.settle(record.id, due_at=step.due_at, status="active", channels=channels)

    # provider work ------------------------------------------------------------------------

    async def _create(self, record: SubscriptionRecord, provider: PushSubscriptions) -> None:
        secret = secrets.token_urlsafe(32)
        started = self._clock.now()
        try:
            created = await provider.create_subscription(
                self._token(record),
                record.calendar_id,
                notification_url=f"{self._base_url}/webhooks/{provider.name}",
                lifecycle_url=f"{self._base_url}/webhooks/{provider.name}/lifecycle",
                secret=secret,
                ttl=self._ttl,
            )
        except ProviderError as exc:
            await self._failed(record, "create", exc, current=None)
            return
        channel = LiveSubscription.of(created, hash_secret(secret), since=started)
        self._accept(record, channel)

        fact = SubscriptionCreated(
            subscription_id=channel.id, calendar_id=record.calendar_id, expires_at=channel.expires_at
        )
        try:
            if not await self._record_live(record, provider, channel, fact):
                return
        except ChronaPilotError:
            # not recorded, and the retry creates another: it must not stay live at the provider
            self._directory.forget(record.provider, channel.id)
            await self._stop_channel(record, provider, channel)
            raise
        SUBSCRIPTION_ACTIONS.labels(provider.name, "create", "ok").inc()
        log.info(
            "subscription.created", subscription_id=channel.id, expires_at=channel.expires_at.isoformat()
        )

    async def _renew(
        self, record: SubscriptionRecord, provider: PushSubscriptions, current: LiveSubscription
    ) -> None:
        secret = secrets.token_urlsafe(32)
        started = self._clock.now()
        adopted: list[LiveSubscription] = []

        async def switch_to(renewed: Subscription) -> None:
            if renewed.id == current.id:
                channel = LiveSubscription(
                    current.id, current.resource_id, current.secret_hash, renewed.expires_at, started
                )
                await self._records.extend_channel(record.id, current.id, renewed.expires_at)
            else:
                channel = LiveSubscription.of(renewed, hash_secret(secret), since=started)
                await self._records.add_channel(record.id, channel)
            self._accept(record, channel)
            adopted.append(channel)

        try:
            renewed = await provider.renew_subscription(
                self._token(record),
                current.subscription(record.calendar_id),
                notification_url=f"{self._base_url}/webhooks/{provider.name}",
                lifecycle_url=f"{self._base_url}/webhooks/{provider.name}/lifecycle",
                secret=secret,
                ttl=self._ttl,
                switch_to=switch_to,
            )
        except ProviderError as exc:
            if adopted:  # the new one is live; only stopping the old one failed
                renewed = adopted[0].subscription(record.calendar_id)
            elif exc.status == 404:  # the provider dropped it: a new one, now
                self._directory.forget(provider.name, current.id)
                await self._create(record, provider)
                return
            else:
                await self._failed(record, "renew", exc, current=current)
                return
        channel = adopted[0] if adopted else LiveSubscription.of(renewed, hash_secret(secret), since=started)
        if channel.id != current.id:
            self._directory.forget(provider.name, current.id)

        fact = SubscriptionRenewed(
            subscription_id=channel.id, calendar_id=record.calendar_id, expires_at=channel.expires_at
        )
        if not await self._record_live(record, provider, channel, fact):
            return
        SUBSCRIPTION_ACTIONS.labels(provider.name, "renew", "ok").inc()
        log.info(
            "subscription.renewed", subscription_id=channel.id, expires_at=channel.expires_at.isoformat()
        )

    async def _record_live(
        self, record: SubscriptionRecord, provider: PushSubscriptions, channel: LiveSubscription, fact: Event
    ) -> bool:
        """Store ``channel`` as the record's live one and emit ``fact``, in one transaction. False
        when the record was marked for deletion while the provider call was in flight (the
        connection was disconnected): the channel is then stopped at once and the record made
        due, so the deletion runs now rather than when its lease ends."""

        async def save(session: Session) -> None:
            if not await self._records.settle(
                record.id,
                due_at=renew_at(channel, self._margin),
                status="active",
                channels=[channel],
                session=session,
                fenced=True,
            ):
                raise Fenced("marked for deletion while the provider call was in flight")
            await self._runtime.emit(session, fact, connection_id=record.connection_id)

        try:
            await self._runtime.store.in_transaction(save)
            return True
        except Fenced:
            self._directory.forget(record.provider, channel.id)
            await self._stop_channel(record, provider, channel)
            await self._records.retry_soon(record.id, self._clock.now())
            self._wake.set()
            log.info("subscription.stopped_after_disconnect", subscription_id=channel.id)
            return False

    async def _stop_channel(
        self, record: SubscriptionRecord, provider: PushSubscriptions, channel: LiveSubscription
    ) -> ProviderError | None:
        """Stop one channel at the provider; the error when it could not (404/410: gone already)."""
        try:
            await provider.delete_subscription(self._token(record), channel.subscription(record.calendar_id))
            SUBSCRIPTION_ACTIONS.labels(provider.name, "delete", "ok").inc()
            return None
        except ProviderError as exc:
            if exc.status in (404, 410):
                return None
            SUBSCRIPTION_ACTIONS.labels(provider.name, "delete", "failed").inc()
            log.warning("subscription.stop_failed", subscription_id=channel.id, error=exc.code)
            return exc

    async def _stop(
        self, record: SubscriptionRecord, provider: PushSubscriptions | None, *, reason: str
    ) -> None:
        """Stop every channel of ``record`` and delete it. A stop that fails for a retryable
        reason is retried with backoff (``STOP_ATTEMPTS``), then given up and recorded on the
        connection with its reason (the provider lets it run out by itself)."""
        now = self._clock.now()
        failed: list[dict[str, object]] = []
        for channel in record.channels:
            if provider is not None and channel.expires_at > now:
                error = await self._stop_channel(record, provider, channel)
                if error is not None and error.retryable and record.attempts + 1 < STOP_ATTEMPTS:
                    delay = self._backoff.delay(record.attempts, retry_after=error.retry_after)
                    await self._records.settle(
                        record.id,
                        due_at=now + timedelta(seconds=delay),
                        status="deleting",
                        channels=list(record.channels),
                        attempts=record.attempts + 1,
                        last_error=error.code,
                    )
                    return
                if error is not None:
                    failed.append({"subscription_id": channel.id, "error": error.code, "at": now})
            self._directory.forget(record.provider, channel.id)

        async def delete(session: Session) -> None:
            await self._records.delete(record.id, session=session)
            for channel in record.channels:
                fact = SubscriptionRemoved(
                    subscription_id=channel.id, calendar_id=record.calendar_id, reason=reason
                )
                await self._runtime.emit(session, fact, connection_id=record.connection_id)

        await self._runtime.store.in_transaction(delete)
        log.info("subscription.removed", subscription=record.id, reason=reason)
        if reason == "disconnected" and not await self._records.count(record.connection_id):
            stopped = len(record.channels) - len(failed)
            if await self._runtime.connections.subscriptions_released(
                record.connection_id, stopped=stopped, failed=failed
            ):
                log.info("subscriptions.released", connection_id=record.connection_id, failed=len(failed))
        elif failed:
            log.warning("subscription.given_up", subscription=record.id, failed=failed)

    async def _failed(
        self, record: SubscriptionRecord, action: str, exc: ProviderError, *, current: LiveSubscription | None
    ) -> None:
        attempts = record.attempts + 1
        delay = self._backoff.delay(min(attempts - 1, 20), retry_after=exc.retry_after)
        due_at = retry_at(self._clock.now(), timedelta(seconds=delay), current)
        await self._records.settle(
            record.id,
            due_at=due_at,
            status="failing",
            channels=[current] if current is not None else [],
            attempts=attempts,
            last_error=exc.code,
        )
        SUBSCRIPTION_ACTIONS.labels(record.provider, action, "failed").inc()
        log.warning(
            "subscription.failed",
            action=action,
            subscription=record.id,
            error=exc.code,
            status=exc.status,
            attempts=attempts,
            retry_in_s=round(delay, 1),
        )

    def _accept(self, record: SubscriptionRecord, channel: LiveSubscription) -> None:
        target = SubscriptionTarget(
            record.connection_id, record.calendar_id, channel.secret_hash, channel.expires_at
        )
        self._directory.put(record.provider, channel.id, target)

    # lookups ------------------------------------------------------------------------------

    async def update_coverage(self, connection_id: str) -> None:
        await update_coverage(self._runtime, self._records, connection_id)

    def _push(self, name: str) -> PushSubscriptions | None:
        return push_provider(self._runtime, name)

    def _token(self, record: SubscriptionRecord) -> TokenSource:
        return self._runtime.tokens.token_source(record.connection_id)

    async def _connection(self, connection_id: str) -> Document | None:
        return await find_connection(self._runtime, connection_id)

    async def _synced_calendars(self, connection_id: str) -> list[str]:
        return await synced_calendars(self._runtime, connection_id)
