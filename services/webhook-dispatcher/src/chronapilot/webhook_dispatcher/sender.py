"""Sending deliveries: one signed POST per attempt, many at once, outcomes written in batches.

A delivery reaches :meth:`Sender.submit` two ways: at once from the fan-out (it was created
with ``next_attempt_at`` a lease ahead, so nobody else sends it meanwhile), or from
:meth:`Sender.poll_due` when it fell due (a retry, a test ping, a customer's retry, or one whose
sender died: its lease ran out). Each attempt runs in its own task under a bound of
``CHRONAPILOT_WEBHOOK_CONCURRENCY``, so a slow or failing endpoint never holds back another
delivery; outcomes are queued and written by one bulk write per batch.

Per attempt: the stored payload is serialised (the same bytes every time) and signed with every
live secret of the endpoint (Standard Webhooks; the same ``webhook-id`` on every attempt); the
destination must still be safe (https and public addresses, checked again on the addresses the
name resolves to now, so a DNS answer changed since the endpoint was created cannot point at
a private network); redirects are not followed; the answer is read up to
``CHRONAPILOT_WEBHOOK_RESPONSE_MAX_BYTES``. Then:

- 2xx: ``succeeded`` (and the endpoint's failure streak ends);
- 410: ``failed``, the endpoint is disabled (``endpoint_gone``) and its other pending
  deliveries fail with it;
- anything else (another status, a timeout, a refused connection, an unsafe address): the
  next attempt is scheduled after the next delay of ``CHRONAPILOT_WEBHOOK_RETRY_SCHEDULE``, or
  the delivery fails when the schedule has run out; an endpoint that has failed every attempt
  for ``CHRONAPILOT_WEBHOOK_DISABLE_AFTER_S`` is disabled (``failing``).

A ``kill -9`` loses nothing: an attempt whose outcome was not written leaves its delivery
pending, due when its lease runs out, and it is sent again with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import aiohttp

from chronapilot.common.clock import aware
from chronapilot.common.crypto import TokenCipher
from chronapilot.common.errors import CryptoError
from chronapilot.common.logging import get_logger
from chronapilot.common.runtime import Runtime
from chronapilot.common.store import Document
from chronapilot.common.store.webhook_deliveries import (
    CANCELLED,
    FAILED,
    PENDING,
    SUCCEEDED,
    Outcome,
    WebhookDeliveries,
    message_id,
)
from chronapilot.common.store.webhook_endpoints import FAILING, GONE, WebhookEndpoints, live_secrets
from chronapilot.common.webhooks.signing import signed_headers, unseal
from chronapilot.webhook_dispatcher.destinations import UnsafeDestination, check_url
from chronapilot.webhook_dispatcher.telemetry import ATTEMPT_SECONDS, ATTEMPTS, DELIVERY_LAG_SECONDS

log = get_logger(__name__)

USER_AGENT = "ChronaPilot-Webhooks/1.0"
_ERROR_EXCERPT = 200
_BATCH = 500


class Sender:
    """The sending half of one dispatcher process."""

    def __init__(self, runtime: Runtime, http: aiohttp.ClientSession, *, allow_private: bool) -> None:
        self._runtime = runtime
        self._settings = runtime.settings.webhooks
        self._http = http
        self._allow_private = allow_private
        self._slots = asyncio.Semaphore(self._settings.webhook_concurrency)
        self._waiting = 0
        self._sending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._outcomes: list[Outcome] = []
        self._outcome_ready = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._secrets: dict[str, str] = {}

    @property
    def _deliveries(self) -> WebhookDeliveries:
        return self._runtime.repos.webhook_deliveries

    @property
    def _endpoints(self) -> WebhookEndpoints:
        return self._runtime.repos.webhook_endpoints

    # -- taking work ---------------------------------------------------------------------------

    def submit(self, deliveries: Sequence[Document], endpoints: dict[str, Document]) -> None:
        """Send each of ``deliveries`` (which this process holds the lease of) in a task."""
        for delivery in deliveries:
            if delivery["_id"] in self._sending:
                continue
            self._sending.add(delivery["_id"])
            task = asyncio.create_task(self._send(delivery, endpoints.get(delivery["endpoint_id"])))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @property
    def room(self) -> int:
        """How many new deliveries the fan-out may hand this process at once: a short queue
        (four rounds of its concurrency) beyond what it sends, drained well within a lease."""
        return max(0, 4 * self._settings.webhook_concurrency - len(self._sending))

    @property
    def free(self) -> int:
        """How many more deliveries this process would start sending now."""
        return max(0, self._settings.webhook_concurrency - len(self._sending))

    async def poll_due(self, stopping: asyncio.Event) -> None:
        """Claim and send deliveries that fell due, every ``CHRONAPILOT_WEBHOOK_POLL_INTERVAL_S``."""
        interval = self._settings.webhook_poll_interval_s
        while not stopping.is_set():
            try:
                claimed = await self.claim_once()
            except Exception:
                log.exception("webhooks.poll_failed")
                claimed = 0
            if claimed == 0:
                # all slots busy: look again as soon as one frees (a backlog keeps flowing);
                # else after the interval
                wake = self._slot_freed if self.free == 0 else stopping
                self._slot_freed.clear()
                waits = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopping.wait())}
                _, pending = await asyncio.wait(waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
                for waiter in pending | waits:
                    waiter.cancel()

    async def claim_once(self) -> int:
        free = self.free
        if free == 0:
            return 0
        now = self._runtime.clock.now()
        lease_until = now + timedelta(seconds=self._settings.lease_s)
        claimed = await self._deliveries.claim_due(now=now, lease_until=lease_until, limit=min(free, 100))
        if claimed:
            endpoints = await self._endpoints.in_order(sorted({d["endpoint_id"] for d in claimed}))
            self.submit(claimed, endpoints)
        return len(claimed)

    # -- one attempt ---------------------------------------------------------------------------

    async def _send(self, delivery: Document, endpoint: Document | None) -> None:
        try:
            async with self._slots:
                if not self._still_held(delivery):
                    return  # waited past its lease for a slot: it is due again, for any dispatcher
                outcome = await self._attempt(delivery, endpoint)
                await self._conclude(delivery, endpoint, outcome)
        except Exception:
            # the lease runs out and the delivery is sent again: nothing is lost
            log.exception("webhooks.attempt_crashed", delivery_id=delivery["_id"])
        finally:
            self._sending.discard(delivery["_id"])
            self._slot_freed.set()

    def _still_held(self, delivery: Document) -> bool:
        """Whether the lease leaves time for a whole attempt."""
        left = aware(delivery["next_attempt_at"]) - self._runtime.clock.now()
        return left.total_seconds() > self._settings.webhook_delivery_timeout_s + 1.0

    async def _attempt(self, delivery: Document, endpoint: Document | None) -> Outcome:
        now = self._runtime.clock.now()
        if endpoint is None:
            return self._ended(delivery, now, CANCELLED, "endpoint_deleted")
        if endpoint.get("disabled"):
            return self._ended(delivery, now, FAILED, "endpoint_disabled")
        body = json.dumps(delivery["payload"], separators=(",", ":"), ensure_ascii=False).encode()
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            check_url(endpoint["url"], allow_private=self._allow_private)
            headers = signed_headers(
                message_id(delivery["_id"]), now, body, self._live_secrets(endpoint, now)
            )
            headers |= {"Content-Type": "application/json", "User-Agent": USER_AGENT}
            async with self._http.post(
                endpoint["url"], data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                excerpt = await response.content.read(self._settings.webhook_response_max_bytes)
                if not 200 <= status < 300:
                    error = f"HTTP {status}" + _excerpt(excerpt)
            kind = "succeeded" if error is None else "gone" if status == 410 else "http_error"
        except UnsafeDestination as exc:
            error, kind = f"unsafe_destination: {exc}", "blocked"
        except aiohttp.ClientConnectorError as exc:
            unsafe = exc.os_error if isinstance(exc.os_error, UnsafeDestination) else None
            if unsafe is not None:
                error, kind = f"unsafe_destination: {unsafe}", "blocked"
            else:
                error, kind = (
                    f"connection_failed: {exc.os_error.strerror or type(exc.os_error).__name__}",
                    "network",
                )
        except TimeoutError:
            error, kind = f"timeout after {self._settings.webhook_delivery_timeout_s:g}s", "timeout"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error, kind = f"request_failed: {type(exc).__name__}", "network"
        except CryptoError:
            error, kind = "secret_unreadable", "blocked"
        ATTEMPTS.labels(kind).inc()
        ATTEMPT_SECONDS.observe(time.monotonic() - started)
        attempted = self._runtime.clock.now()
        if error is None:
            if delivery.get("attempts", 0) == 0:
                DELIVERY_LAG_SECONDS.observe(
                    max(0.0, (attempted - aware(delivery["created_at"])).total_seconds())
                )
            return Outcome(delivery["_id"], attempted, status, None, SUCCEEDED, None)
        if status == 410:
            return Outcome(delivery["_id"], attempted, status, error, FAILED, None)
        made = delivery.get("attempts", 0) + 1
        delays = self._settings.retry_delays_s
        if made > len(delays):
            return Outcome(delivery["_id"], attempted, status, error, FAILED, None)
        return Outcome(
            delivery["_id"],
            attempted,
            status,
            error,
            PENDING,
            attempted + timedelta(seconds=delays[made - 1]),
        )

    async def _conclude(self, delivery: Document, endpoint: Document | None, outcome: Outcome) -> None:
        """Queue the outcome; act on the endpoint (a success ends its streak, a 410 or days of
        failures disable it, and its other pending deliveries end with it)."""
        if endpoint is None or outcome.error in {"endpoint_deleted", "endpoint_disabled"}:
            self._queue(outcome)
            return
        now = outcome.attempted_at
        if outcome.status == SUCCEEDED:
            self._queue(outcome)
            if endpoint.get("failing_since") is not None:
                await self._endpoints.record_success(endpoint["_id"], now=now)
            return
        reason: str | None = None
        if outcome.response_status == 410:
            reason = GONE if await self._endpoints.disable(endpoint["_id"], GONE, now=now) else None
        else:
            disable_after = timedelta(seconds=self._settings.webhook_disable_after_s)
            if await self._endpoints.record_failure(endpoint["_id"], now=now, disable_after=disable_after):
                reason = FAILING
        if reason is None:
            self._queue(outcome)
            return
        await self._deliveries.record([outcome])
        ended = await self._deliveries.end_pending(
            endpoint["_id"], FAILED, now=now, error=f"endpoint_disabled: {reason}"
        )
        log.warning("webhooks.endpoint_disabled", endpoint_id=endpoint["_id"], reason=reason, ended=ended)

    def _ended(self, delivery: Document, now: datetime, status: str, error: str) -> Outcome:
        return Outcome(delivery["_id"], now, None, error, status, None)

    def _live_secrets(self, endpoint: Document, now: datetime) -> list[str]:
        cipher: TokenCipher = self._runtime.cipher
        opened: list[str] = []
        for sealed in live_secrets(endpoint, now):
            key = sealed["secret"]
            if key not in self._secrets:
                if len(self._secrets) > 10_000:
                    self._secrets.clear()
                self._secrets[key] = unseal(cipher, endpoint["_id"], key)
            opened.append(self._secrets[key])
        if not opened:
            raise CryptoError("the endpoint has no live signing secret")
        return opened

    # -- outcomes ------------------------------------------------------------------------------

    def _queue(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._outcome_ready.set()

    async def write_outcomes(self, stopping: asyncio.Event) -> None:
        """Write queued outcomes in bulk as they come, until stopped (then once more)."""
        while not stopping.is_set():
            waiter = asyncio.ensure_future(self._outcome_ready.wait())
            stop = asyncio.ensure_future(stopping.wait())
            await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stop.cancel()
            await self.flush()

    async def flush(self) -> None:
        while self._outcomes:
            self._outcome_ready.clear()
            batch, self._outcomes = self._outcomes[:_BATCH], self._outcomes[_BATCH:]
            try:
                await self._deliveries.record(batch)
            except Exception:
                # unwritten outcomes: those deliveries stay pending and are sent again
                log.exception("webhooks.outcomes_not_written", count=len(batch))
                return
        self._outcome_ready.clear()

    async def drain(self, timeout_s: float) -> None:
        """Let in-flight attempts finish (up to ``timeout_s``), then write their outcomes."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
        await self.flush()


def _excerpt(body: bytes) -> str:
    text = body[:_ERROR_EXCERPT].decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return f": {text}" if text else ""
