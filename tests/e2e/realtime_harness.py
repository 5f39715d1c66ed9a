"""Driving the webhook gateway against the sandbox: in-process gateways on free ports, a
recorder of the sync requests on Kafka, and the emulators' admin API per provider."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer

from chronapilot.common.bus import Envelope, Topic, topic_name
from chronapilot.common.clock import Clock
from chronapilot.common.runtime import RUNTIME, Overrides
from chronapilot.common.settings import RealtimeSettings, Settings
from chronapilot.devstack.processes import free_port
from chronapilot.webhook_gateway.app import GROUP_ID, create_app

from helpers import eventually

#: Fast schedules for tests: scans every 0.2 s, retries within 2 s, a short debounce window.
FAST = {
    "subscription_scan_interval_s": 0.2,
    "subscription_retry_base_s": 0.3,
    "subscription_retry_cap_s": 2.0,
    "webhook_debounce_s": 0.2,
}


@dataclass
class Gateway:
    url: str
    app: web.Application
    settings: Settings

    @property
    def db(self) -> Any:
        return self.app[RUNTIME].store.db


async def start_gateway(
    api: Any,
    *,
    clock: Clock | None = None,
    webhook_base_url: str | None = None,
    group_id: str = GROUP_ID,
    **realtime: Any,
) -> tuple[web.AppRunner, Gateway]:
    port = free_port()
    base = api.settings
    settings = Settings(
        env=base.env,
        run_dir=base.run_dir,
        mongo=base.mongo,
        kafka=base.kafka,
        providers=base.providers,
        service=base.service.model_copy(
            update={"webhook_gateway_port": port, "webhook_base_url": webhook_base_url}
        ),
        realtime=RealtimeSettings(**{**FAST, **realtime}),
    )
    app = create_app(settings, overrides=Overrides(clock=clock, group_id=group_id))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, Gateway(f"http://127.0.0.1:{port}", app, settings)


@dataclass
class SyncRequestRecorder:
    """Every message on the sync-requests topic, with the (monotonic) time it was read."""

    consumer: AIOKafkaConsumer
    seen: list[tuple[float, Envelope]] = field(default_factory=list)

    def webhook(
        self, connection_id: str, calendar_id: str | None = None, *, after: float = 0.0
    ) -> list[Envelope]:
        return [
            envelope
            for at, envelope in self.seen
            if at >= after
            and envelope.connection_id == connection_id
            and envelope.data.get("reason") == "webhook"
            and (calendar_id is None or envelope.data.get("calendar_id") == calendar_id)
        ]

    def times(self, connection_id: str, calendar_id: str) -> list[float]:
        return [
            at
            for at, envelope in self.seen
            if envelope.connection_id == connection_id
            and envelope.data.get("reason") == "webhook"
            and envelope.data.get("calendar_id") == calendar_id
        ]

    async def caught_up(self, timeout_s: float = 30.0) -> None:
        """Wait until every sync request published so far has been read (and is in ``seen``):
        the recorder's position on each partition reaches the end offset taken now. The
        barrier before asserting that a request was *not* made."""
        partitions = await eventually(self.consumer.assignment, timeout_s=timeout_s)
        ends = await self.consumer.end_offsets(list(partitions))

        async def read_to_the_end() -> bool:
            # ``getmany`` advances the position and ``run`` appends its records in one step
            return all([await self.consumer.position(tp) >= end for tp, end in ends.items()])

        await eventually(read_to_the_end, timeout_s=timeout_s, interval_s=0.02)

    async def run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=50)
            for records in batches.values():
                for record in records:
                    self.seen.append((time.monotonic(), Envelope.from_bytes(record.value)))


async def record_sync_requests(settings: Settings) -> AsyncIterator[SyncRequestRecorder]:
    consumer = AIOKafkaConsumer(
        topic_name(settings.kafka.topic_prefix, Topic.SYNC_REQUESTS),
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    recorder = SyncRequestRecorder(consumer)
    task = asyncio.create_task(recorder.run())
    try:
        yield recorder
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()


class Emulator:
    """One emulator's admin API, the same verbs for Google and Microsoft."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, provider: str) -> None:
        self.http, self.base, self.provider = http, base_url, provider

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.base}/_admin/{path}", json=body) as response:
            assert response.status < 300, f"{method} {path}: {response.status} {await response.text()}"
            return None if response.status == 204 else await response.json(content_type=None)

    async def insert_event(self, calendar_id: str, title: str, day: str) -> str:
        if self.provider == "google":
            body = {
                "summary": title,
                "start": {"dateTime": f"{day}T10:00:00Z"},
                "end": {"dateTime": f"{day}T11:00:00Z"},
            }
            return str(
                (await self.admin("POST", f"calendars/{quote(calendar_id, safe='')}/events", body))["id"]
            )
        body = {
            "subject": title,
            "start": {"dateTime": f"{day}T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{day}T11:00:00", "timeZone": "UTC"},
        }
        return str((await self.admin("POST", f"calendars/{calendar_id}/events", body))["id"])

    async def rename_event(self, calendar_id: str, event_id: str, title: str) -> None:
        if self.provider == "google":
            await self.admin(
                "PATCH", f"calendars/{quote(calendar_id, safe='')}/events/{event_id}", {"summary": title}
            )
        else:
            await self.admin("PATCH", f"events/{event_id}", {"subject": title})

    async def subscriptions(self) -> list[dict[str, Any]]:
        """Live channels (Google, ``token`` = the secret) or subscriptions (Microsoft, ``clientState``)."""
        return list(await self.admin("GET", "channels" if self.provider == "google" else "subscriptions"))

    async def secret_of(self, subscription_id: str) -> str:
        for item in await self.subscriptions():
            if item["id"] == subscription_id:
                return str(item["token"] if self.provider == "google" else item["clientState"])
        raise AssertionError(f"{subscription_id} is not live at the {self.provider} emulator")

    async def fail_subscribing(self, *, times: int | None, renewals_too: bool = False) -> None:
        """The provider refuses to create (and, with ``renewals_too``, to renew) subscriptions."""
        if self.provider == "google":  # renewing a channel is creating one
            routes = [("/calendar/v3/calendars/{calendarId}/events/watch", "POST")]
        else:
            routes = [("/v1.0/subscriptions", "POST")]
            if renewals_too:
                routes.append(("/v1.0/subscriptions/{subscription_id}", "PATCH"))
        for route, method in routes:
            await self.admin(
                "POST", "faults", {"route": route, "method": method, "status": 503, "times": times}
            )

    async def clear_faults(self) -> None:
        await self.admin("DELETE", "faults")

    async def set_max_lifetime(self, seconds: float) -> None:
        """Microsoft only: the longest subscription the emulator grants."""
        await self.admin("PATCH", "settings", {"max_subscription_seconds": seconds})
