"""Issue 14's fault suite: the connection's lifecycle under provider faults, one test per scenario.

The API, the sync worker, the webhook gateway and the token refresher run in this process, on
the test's own database and topics, against this module's own sandbox (Google and Microsoft
emulators, Radicale): its accounts are changed here (a 2,000-event calendar, revoked grants),
so no other file sees them. Faults come from the emulators' admin API (``/_admin/faults``:
route faults with ``status`` / ``latency_ms`` / ``times`` / ``path_contains``, notification
faults). What the services do is read through the public API and the emulators' admin API, and
from MongoDB where neither shows it (credentials, the outbox, leases, mirror write times).

Every asynchronous outcome is awaited with ``helpers.eventually``; an absence is asserted only
after a positive marker that the system had its chance (a consumer group caught up with a
topic, a message handled, the late provider answer counted by the emulator).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY
from pymongo.asynchronous.client_session import AsyncClientSession

from chronapilot.common.bus import Topic, topic_name
from chronapilot.common.bus.catalogue import SyncKind, SyncReason, SyncRequested
from chronapilot.common.clock import SystemClock
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.tenancy import create_application
from chronapilot.sandbox.launcher import Sandbox, SandboxConfig
from chronapilot.webhook_gateway.app import GROUP_ID as GATEWAY_GROUP

from api_harness import Api, Browser, running_refresher, running_worker
from helpers import RETURN_PREFIX, eventually
from realtime_harness import Emulator, Gateway, record_sync_requests, start_gateway

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),
]

PUSH = ["google", "microsoft"]
GOOGLE_EVENTS = "/calendar/v3/calendars/{calendarId}/events"
GOOGLE_TOKEN = "/token"
#: The route that creates a subscription: Google's ``events.record``, Graph's ``POST /subscriptions``.
CREATE_SUBSCRIPTION = {
    "google": ("/calendar/v3/calendars/{calendarId}/events/watch", "POST"),
    "microsoft": ("/v1.0/subscriptions", "POST"),
}
GRAPH_DELTA = "/v1.0/me/calendars/{calendar_id}/calendarView/{delta}"
#: How long the provider is unavailable in the outage test (the issue's 30 s).
OUTAGE_S = 30.0
#: The sync worker's poll interval in the outage test: retries of connections in ``error`` are
#: backed off at most this long, so the recovery is bounded by a few of them.
POLL_INTERVAL_S = 2.0
#: The realtime safety net's interval in the dropped-notification test (default 6 h).
SAFETY_NET_S = 5.0
BIG_CALENDAR_EVENTS = 2000


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    """This module's own emulators: its tests revoke grants and add a 2,000-event calendar."""
    config = SandboxConfig(google_port=0, microsoft_port=0, radicale_port=0, seed=20261414)
    async with Sandbox(config) as started:
        yield started


@pytest.fixture
async def emulators(http, sandbox) -> AsyncIterator[dict[str, Emulator]]:
    made = {name: Emulator(http, sandbox.urls[name], name) for name in PUSH}
    yield made
    for emulator in made.values():
        await emulator.clear_faults()


@pytest.fixture
async def gateway(api) -> AsyncIterator[Gateway]:
    runner, started = await start_gateway(api)
    try:
        yield started
    finally:
        await runner.cleanup()


@pytest.fixture
async def refresher(api) -> AsyncIterator[web.Application]:
    async with running_refresher(api, refresh_tick_interval_s=0.3) as app:
        yield app


@pytest.fixture
async def sync_requests(api):
    async for recorder in record_sync_requests(api.settings):
        yield recorder


# -- helpers -----------------------------------------------------------------------------------


async def until(probe: Any, *, timeout_s: float, state: Any, interval_s: float = 0.1) -> Any:
    """``eventually(probe)``; on timeout the failure also shows ``await state()`` (what the
    system shows instead)."""
    try:
        return await eventually(probe, timeout_s=timeout_s, interval_s=interval_s)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; instead: {await state()!r}") from None


def db_of(browser: Browser) -> Any:
    return browser.api.app[RUNTIME].store.db


async def link(browser: Browser, provider: str) -> str:
    user_id = await browser.create_user(f"ext-{provider}-{uuid.uuid4().hex[:8]}")
    return (await browser.connect(provider, user_id))["connection_id"][0]


async def connection(db: Any, connection_id: str) -> dict[str, Any]:
    found = await db.connections.find_one({"_id": connection_id})
    assert found is not None
    return dict(found)


async def shown(browser: Browser, connection_id: str, *expand: str) -> dict[str, Any]:
    """``GET /v1/connections/{id}`` with ``expand[]`` values, as the application sees it."""
    query = "&".join(f"expand[]={item}" for item in expand)
    url = f"{browser.api.url}/v1/connections/{connection_id}" + (f"?{query}" if query else "")
    async with browser.http.get(url, headers=browser.api.headers()) as response:
        assert response.status == 200, await response.text()
        return dict(await response.json())


async def disconnect(browser: Browser, connection_id: str) -> dict[str, Any]:
    async with browser.http.delete(
        f"{browser.api.url}/v1/connections/{connection_id}", headers=browser.api.headers()
    ) as response:
        assert response.status == 200, await response.text()
        return dict(await response.json())


def at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def synced_and_idle(db: Any, connection_id: str, *, timeout_s: float = 60) -> dict[str, Any]:
    """The initial sync is over: ``last_synced_at`` set and no worker holds the sync lease."""

    async def done() -> dict[str, Any] | None:
        found = await connection(db, connection_id)
        idle = await db.leases.find_one({"_id": f"sync:{connection_id}"}) is None
        return found if found["last_synced_at"] and idle else None

    return await eventually(done, timeout_s=timeout_s)


async def settled_realtime(db: Any, connection_id: str, *, timeout_s: float = 30) -> list[dict[str, Any]]:
    """``sync_mode: realtime`` and every subscription settled (active, due only at its renewal):
    no create or renewal is in progress."""

    async def settled() -> list[dict[str, Any]] | None:
        found = await connection(db, connection_id)
        records = await db.webhook_subscriptions.find({"connection_id": connection_id}).to_list()
        now = datetime.now(UTC)
        ready = (
            found["sync_mode"] == "realtime"
            and records
            and all(w["status"] == "active" and w["due_at"].replace(tzinfo=UTC) > now for w in records)
        )
        return records if ready else None

    return await eventually(settled, timeout_s=timeout_s)


def channel_ids(records: list[dict[str, Any]]) -> set[str]:
    return {channel["id"] for record in records for channel in record.get("channels") or []}


async def live_at(emulator: Emulator, gateway: Gateway) -> list[dict[str, Any]]:
    """The subscriptions live at the emulator that notify this test's gateway."""
    key = "address" if emulator.provider == "google" else "notificationUrl"
    return [item for item in await emulator.subscriptions() if str(item[key]).startswith(gateway.url)]


async def counters(emulator: Emulator) -> dict[str, Any]:
    return dict(await emulator.admin("GET", "counters"))


async def served(emulator: Emulator, route: str, method: str) -> int:
    """Requests the emulator answered on ``route`` (counted once the answer is sent)."""
    return int((await counters(emulator))["requests"].get(f"{method} {route}", 0))


async def route_fault(emulator: Emulator, route: str, method: str, **fault: Any) -> None:
    await emulator.admin("POST", "faults", {"route": route, "method": method, **fault})


async def route_faults_left(emulator: Emulator, route: str) -> list[dict[str, Any]]:
    return [f for f in (await emulator.admin("GET", "faults"))["routes"] if f["route"] == route]


async def request_sync(browser: Browser, connection_id: str, mode: SyncKind = SyncKind.INCREMENTAL) -> None:
    """A ``sync.requested`` for the connection, as the schedule or a webhook would emit it."""
    runtime = browser.api.app[RUNTIME]

    async def emit(session: AsyncClientSession) -> None:
        await runtime.emit(
            session, SyncRequested(mode=mode, reason=SyncReason.RESYNC), connection_id=connection_id
        )

    await runtime.store.in_transaction(emit)


async def outbox(db: Any, event_type: str, connection_id: str | None = None) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"envelope.type": event_type}
    if connection_id is not None:
        query["envelope.connection_id"] = connection_id
    return [record["envelope"] async for record in db.outbox.find(query).sort("_id", 1)]


def handled(group: str, event_type: str) -> float:
    value = REGISTRY.get_sample_value(
        "chronapilot_messages_handled_total", {"group": group, "type": event_type, "outcome": "ok"}
    )
    return value or 0.0


def worker_group(api: Api) -> str:
    return f"{api.settings.kafka.topic_prefix}.sync-worker"


async def worker_handled_every_sync_request(browser: Browser) -> None:
    """Marker: the sync worker has handled every ``sync.requested`` emitted so far (this test's
    topics are its own, and so is the worker's consumer group)."""
    db = db_of(browser)
    emitted = len(await outbox(db, SyncRequested.TYPE))
    await eventually(lambda: handled(worker_group(browser.api), SyncRequested.TYPE) >= emitted, timeout_s=60)


async def consumer_caught_up(api: Api, group_id: str, topic: Topic, *, timeout_s: float = 30) -> None:
    """Marker: every event of ``topic`` queued in the outbox so far is published and
    ``group_id`` has handled (committed) all of it."""
    db = api.app[RUNTIME].store.db
    name = topic_name(api.settings.kafka.topic_prefix, topic)

    async def published() -> bool:
        return await db.outbox.count_documents({"topic": name, "sent_at": None}) == 0

    await eventually(published, timeout_s=timeout_s)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=api.settings.kafka.bootstrap_servers, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()  # metadata
        partitions = await eventually(lambda: consumer.partitions_for_topic(name), timeout_s=timeout_s)
        ends = await consumer.end_offsets([TopicPartition(name, p) for p in partitions])

        async def committed() -> bool:
            return all([(await consumer.committed(tp) or 0) >= end for tp, end in ends.items()])

        await eventually(committed, timeout_s=timeout_s, interval_s=0.1)
    finally:
        await consumer.stop()


@asynccontextmanager
async def statuses_seen(db: Any, connection_id: str) -> AsyncIterator[list[str]]:
    """Every ``status`` the connection document shows while the block runs (read every 20 ms)."""
    seen: list[str] = []

    async def record() -> None:
        while True:
            seen.append((await connection(db, connection_id))["status"])
            await asyncio.sleep(0.02)

    task = asyncio.create_task(record())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        seen.append((await connection(db, connection_id))["status"])


def runs(values: list[str]) -> list[tuple[str, int]]:
    """``values`` as (value, repeats) runs, for a readable failure message."""
    out: list[tuple[str, int]] = []
    for value in values:
        if out and out[-1][0] == value:
            out[-1] = (value, out[-1][1] + 1)
        else:
            out.append((value, 1))
    return out


async def _status(db: Any, connection_id: str) -> dict[str, Any]:
    found = await connection(db, connection_id)
    return {key: found.get(key) for key in ("status", "error", "sync_mode", "last_synced_at")}


async def make_due(db: Any, connection_id: str, *, in_s: float) -> None:
    """Move the stored access-token expiry so the refresher finds it due (as time passing would);
    ``in_s`` above the on-demand minimum, so only the refresher refreshes it."""
    await db.credentials.update_one(
        {"_id": connection_id}, {"$set": {"access_expires_at": datetime.now(UTC) + timedelta(seconds=in_s)}}
    )


async def torn_down(db: Any, connection_id: str, *, timeout_s: float = 30) -> dict[str, Any]:
    """The disconnect saga finished: credentials deleted and the teardown recorded (``revoked_at``,
    or at least ``revocation`` when the grant was left alone for another connection)."""

    async def done() -> dict[str, Any] | None:
        gone = await db.credentials.count_documents({"_id": connection_id}) == 0
        found = await connection(db, connection_id)
        recorded = found.get("revoked_at") is not None or found.get("revocation") is not None
        return found if gone and recorded else None

    return await eventually(done, timeout_s=timeout_s)


async def titles(browser: Browser, calendar_id: str, day: datetime) -> set[str]:
    start, end = day.date(), day.date() + timedelta(days=1)
    url = (
        f"{browser.api.url}/v1/events?calendar_id={calendar_id}"
        f"&start={start.isoformat()}T00:00:00Z&end={end.isoformat()}T00:00:00Z"
    )
    async with browser.http.get(url, headers=browser.api.headers()) as response:
        assert response.status == 200, await response.text()
        return {event["title"] for event in (await response.json())["data"]}


def a_day_ahead(days: int) -> datetime:
    """A day ``days`` ahead of today (inside every provider's sync window)."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days)


# -- 1. DELETE while a token refresh is in flight ----------------------------------------------


async def test_delete_during_a_slow_token_refresh_stays_disconnected_and_tears_everything_down(
    browser, gateway, worker, refresher, emulators
):
    google = emulators["google"]
    db = db_of(browser)
    connection_id = await link(browser, "google")
    await synced_and_idle(db, connection_id)
    records = await settled_realtime(db, connection_id)
    assert channel_ids(records) == {c["id"] for c in await live_at(google, gateway)}
    create_route, create_method = CREATE_SUBSCRIPTION["google"]
    creates_before = await served(google, create_route, create_method)
    token_requests = await served(google, GOOGLE_TOKEN, "POST")

    await route_fault(google, GOOGLE_TOKEN, "POST", latency_ms=5000, times=1)
    await make_due(db, connection_id, in_s=120)
    # the refresher's token request has reached the emulator: the fault is used up, its answer
    # comes 5 s later
    await eventually(lambda: _no_fault_left(google, GOOGLE_TOKEN), timeout_s=15, interval_s=0.02)

    body = await disconnect(browser, connection_id)
    assert body["status"] == "disconnected"
    assert await served(google, GOOGLE_TOKEN, "POST") == token_requests, "the refresh is in flight"
    async with statuses_seen(db, connection_id) as statuses:  # from the DELETE's answer on
        await eventually(
            lambda: _served_more(google, GOOGLE_TOKEN, "POST", token_requests), timeout_s=20
        )  # the late refresh answered
        record = await torn_down(db, connection_id)
        await consumer_caught_up(browser.api, GATEWAY_GROUP, Topic.CONNECTIONS)
        await consumer_caught_up(
            browser.api, f"{browser.api.settings.kafka.topic_prefix}.token-refresher", Topic.CONNECTIONS
        )

    assert set(statuses) == {"disconnected"}, f"the late refresh moved it: {runs(statuses)}"
    assert await db.credentials.count_documents({"_id": connection_id}) == 0
    assert record["revocation"]["outcome"] == "revoked"
    assert await db.webhook_subscriptions.count_documents({"connection_id": connection_id}) == 0
    assert await live_at(google, gateway) == [], "no subscription outlives the disconnect"
    assert await served(google, create_route, create_method) == creates_before, "none was re-created"
    view = await shown(browser, connection_id)
    assert view["status"] == "disconnected"
    assert view["webhook_subscription"] is None
    assert view["disconnected_at"] and view["revoked_at"]
    reactivated = [
        e
        for e in await outbox(db, "connection.status_changed", connection_id)
        if e["data"]["status"] == "active"
    ]
    assert not [e for e in reactivated if at(e["occurred_at"]) > at(view["disconnected_at"])]


async def _no_fault_left(emulator: Emulator, route: str) -> bool:
    return not await route_faults_left(emulator, route)


async def _served_more(emulator: Emulator, route: str, method: str, than: int) -> bool:
    return await served(emulator, route, method) > than


# -- 2. DELETE while a subscription create is in flight ----------------------------------------


@pytest.mark.parametrize("provider", PUSH)
async def test_delete_during_a_slow_subscription_create_leaves_no_live_subscription(
    browser, gateway, refresher, emulators, provider
):
    emulator = emulators[provider]
    db = db_of(browser)
    route, method = CREATE_SUBSCRIPTION[provider]
    allowance = 50  # more creates than the account has calendars: each one is delayed 5 s
    answered_before = await served(emulator, route, method)
    await route_fault(emulator, route, method, latency_ms=5000, times=allowance)
    connection_id = await link(browser, provider)

    async def in_flight() -> int:
        left = await route_faults_left(emulator, route)
        return allowance - (left[0]["times"] if left else 0)

    started = await eventually(in_flight, timeout_s=20, interval_s=0.02)
    body = await disconnect(browser, connection_id)
    assert body["status"] == "disconnected"
    assert await served(emulator, route, method) == answered_before, "every create is in flight"
    assert started >= 1

    async def creates_answered() -> bool:
        """Every create that reached the emulator has been answered (none in flight now)."""
        return await served(emulator, route, method) - answered_before >= await in_flight()

    await eventually(creates_answered, timeout_s=30)
    await none_live(emulator, gateway, timeout_s=30)
    await consumer_caught_up(browser.api, GATEWAY_GROUP, Topic.CONNECTIONS)

    async def no_watch_left() -> bool:
        return await db.webhook_subscriptions.count_documents({"connection_id": connection_id}) == 0

    await eventually(no_watch_left, timeout_s=30)
    assert await live_at(emulator, gateway) == [], "a subscription outlived the disconnect"
    view = await shown(browser, connection_id)
    assert view["status"] == "disconnected"
    assert view["webhook_subscription"] is None


async def none_live(emulator: Emulator, gateway: Gateway, *, timeout_s: float) -> None:
    """Wait until no subscription notifying this gateway is live at the emulator; else fail
    naming the ones left."""

    async def gone() -> bool:
        return not await live_at(emulator, gateway)

    with contextlib.suppress(AssertionError):
        await eventually(gone, timeout_s=timeout_s)
    left = [item["id"] for item in await live_at(emulator, gateway)]
    assert left == [], (
        f"{len(left)} subscriptions outlived the disconnect at the {emulator.provider} emulator"
    )


# -- 3. DELETE during a 2,000-event full sync --------------------------------------------------


async def test_delete_during_a_2000_event_full_sync_writes_nothing_to_the_mirror_afterwards(
    browser, worker, emulators
):
    google = emulators["google"]
    db = db_of(browser)
    big = await _big_google_calendar(google, BIG_CALENDAR_EVENTS)
    try:
        provider = worker[RUNTIME].providers["google"]
        assert hasattr(provider, "sync_page_size")
        provider.sync_page_size = 200  # ten pages for the big calendar, as Google may well serve it
        await route_fault(google, GOOGLE_EVENTS, "GET", latency_ms=300)  # slow pages: time to land
        connection_id = await link(browser, "google")
        mirrored = {"connection_id": connection_id, "provider_calendar_id": big}

        async def mid_sync() -> int:
            count = await db.events.count_documents(mirrored)
            return count if count >= 400 else 0  # two pages of the big calendar are in

        await eventually(mid_sync, timeout_s=60, interval_s=0.02)
        before_delete = await db.events.count_documents(mirrored)
        await disconnect(browser, connection_id)
        disconnected_at = (await connection(db, connection_id))["disconnected_at"]
        assert before_delete < BIG_CALENDAR_EVENTS, "DELETE landed mid-sync"

        async def sync_over() -> bool:
            return await db.leases.find_one({"_id": f"sync:{connection_id}"}) is None

        await eventually(sync_over, timeout_s=60)
        await worker_handled_every_sync_request(browser)
        after = await db.events.count_documents(mirrored)
        late = await db.events.count_documents(
            {"connection_id": connection_id, "updated_at": {"$gt": disconnected_at}}
        )
        assert late == 0, f"{late} mirror writes after the disconnect"
        assert after < BIG_CALENDAR_EVENTS, "the sync stopped between pages"
        cursor_writes = await db.sync_state.count_documents(
            {"connection_id": connection_id, "last_sync_at": {"$gt": disconnected_at}}
        )
        assert cursor_writes == 0, "no calendar finished its sync after the disconnect"

        await request_sync(browser, connection_id, SyncKind.FULL)  # a request still queued somewhere
        await worker_handled_every_sync_request(browser)
        assert await db.events.count_documents(mirrored) == after, "the mirror stays as it was"
        assert (
            await db.events.count_documents(
                {"connection_id": connection_id, "updated_at": {"$gt": disconnected_at}}
            )
            == 0
        )
    finally:
        await google.clear_faults()
        await google.admin("DELETE", f"calendars/{quote(big, safe='')}")


async def _big_google_calendar(google: Emulator, count: int) -> str:
    """A new calendar of the sandbox account with ``count`` one-hour events, an hour apart from
    the next full hour on (UTC instants: one wall time each)."""
    accounts = await google.admin("GET", "users")
    email = accounts[0]["email"]
    created = await google.admin(
        "POST", f"users/{email}/calendars", {"summary": f"Big {uuid.uuid4().hex[:6]}"}
    )
    calendar_id = str(created["id"])
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    limit = asyncio.Semaphore(16)

    async def insert(n: int) -> None:
        start = first + timedelta(hours=n)
        body = {
            "summary": f"bulk {n}",
            "start": {"dateTime": start.isoformat().replace("+00:00", "Z")},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z")},
        }
        async with limit:
            await google.admin("POST", f"calendars/{quote(calendar_id, safe='')}/events", body)

    await asyncio.gather(*(insert(n) for n in range(count)))
    return calendar_id


# -- 4. Graph 403 on one calendar's delta ------------------------------------------------------


async def test_graph_403_on_one_calendars_delta_marks_that_calendar_and_the_others_still_sync(
    browser, worker, emulators
):
    microsoft = emulators["microsoft"]
    db = db_of(browser)
    connection_id = await link(browser, "microsoft")
    linked = await synced_and_idle(db, connection_id)
    order = linked["calendar_ids"]
    assert len(order) >= 2
    docs = {c["_id"]: c async for c in db.calendars.find({"_id": {"$in": order}})}
    # a secondary calendar fails (not the default one, which an account-wide check may read
    # first); the last calendar, synced after it, must not be held up by it
    refused = next((docs[i] for i in order[:-1] if not docs[i].get("primary")), docs[order[0]])
    last = docs[order[-1]]
    await route_fault(
        microsoft, GRAPH_DELTA, "GET", status=403, path_contains=refused["provider_calendar_id"]
    )
    day = a_day_ahead(30)
    title = f"after the refused one {uuid.uuid4().hex[:6]}"
    await microsoft.insert_event(last["provider_calendar_id"], title, day.date().isoformat())
    t1 = datetime.now(UTC)
    await request_sync(browser, connection_id)

    async def calendars_settled() -> list[dict[str, Any]] | None:
        calendars = (await shown(browser, connection_id, "calendars"))["calendars"]
        by_id = {c["id"]: c for c in calendars}
        failed = by_id[refused["_id"]]
        others = [c for c in calendars if c["id"] != refused["_id"]]
        done = (
            failed.get("sync_status") == "error"
            and failed.get("error")
            and at(failed["error"].get("at")) >= t1
            and all(
                c.get("sync_status") == "ok" and c.get("last_synced_at") and at(c["last_synced_at"]) >= t1
                for c in others
            )
        )
        return calendars if done else None

    async def sync_fields() -> list[tuple[Any, ...]]:
        calendars = (await shown(browser, connection_id, "calendars"))["calendars"]
        fields = ("id", "sync_status", "last_synced_at", "error")
        return [tuple(c.get(f) for f in fields) for c in calendars]

    calendars = await until(calendars_settled, timeout_s=30, state=sync_fields)
    failed = next(c for c in calendars if c["id"] == refused["_id"])
    assert failed["error"]["code"] and isinstance(failed["error"]["code"], str)
    assert failed["error"]["message"]
    assert all(c["error"] is None for c in calendars if c["id"] != refused["_id"])
    assert title in await titles(browser, last["_id"], day), "the calendar after the refused one synced"
    view = await shown(browser, connection_id)
    assert view["status"] == "active"
    assert view["error"] is None
    assert at(view["last_synced_at"]) >= t1


# -- 5. grant revoked at the provider, a data call answering 401 -------------------------------


@pytest.mark.parametrize(
    ("provider", "fault"),
    [("google", "grant_revoked"), ("microsoft", "grant_revoked"), ("google", "401_after_forced_refresh")],
)
async def test_a_refused_grant_is_reauth_required_within_one_sync_and_said_once(
    browser, worker, emulators, sandbox, provider, fault
):
    emulator = emulators[provider]
    db = db_of(browser)
    connection_id = await link(browser, provider)
    await synced_and_idle(db, connection_id)
    token_requests = await served(emulator, GOOGLE_TOKEN, "POST")
    if fault == "grant_revoked":  # the user removes the app's access: every token stops working
        email = sandbox.accounts[provider].email
        await emulator.admin(
            "POST", "grants/revoke", {"email": email} if provider == "google" else {"user": email}
        )
    else:  # the grant still refreshes, but the data call keeps answering 401
        await route_fault(emulator, GOOGLE_EVENTS, "GET", status=401)
    await request_sync(browser, connection_id)

    async def in_error() -> dict[str, Any] | None:
        found = await connection(db, connection_id)
        return found if found["status"] == "error" else None

    found = await until(in_error, timeout_s=30, state=lambda: _status(db, connection_id))
    assert found["error"]["code"] == "reauth_required"
    assert len(await outbox(db, SyncRequested.TYPE, connection_id)) == 2, "the initial sync and this one"
    if fault == "401_after_forced_refresh":
        assert await served(emulator, GOOGLE_TOKEN, "POST") > token_requests, "a forced refresh came first"

    await request_sync(browser, connection_id)  # another sync: it must not say it again
    await worker_handled_every_sync_request(browser)
    changes = [
        e
        for e in await outbox(db, "connection.status_changed", connection_id)
        if e["data"]["status"] == "error"
    ]
    assert [(e["data"]["error_code"], e["data"]["previous_status"]) for e in changes] == [
        ("reauth_required", "active")
    ]
    view = await shown(browser, connection_id, "status_history")
    assert view["status"] == "error"
    assert view["error"]["code"] == "reauth_required"
    assert view["error"]["message"] and view["error"]["at"]
    latest = view["status_history"][0]
    assert (latest["status"], latest["code"]) == ("error", "reauth_required")
    assert latest["message"] and latest["at"]


# -- 6. provider down for 30 s: sync_failed, then active again by itself -----------------------


async def test_a_30_second_outage_is_sync_failed_then_active_again_without_a_refresh(browser, api, emulators):
    google = emulators["google"]
    db = db_of(browser)
    async with running_worker(
        api, polling_enabled=True, poll_interval_s=POLL_INTERVAL_S, poll_tick_s=0.3, max_attempts=3
    ):
        connection_id = await link(browser, "google")
        linked = await synced_and_idle(db, connection_id)
        assert linked["sync_mode"] == "polling"
        outage_started = time.monotonic()
        await route_fault(google, GOOGLE_EVENTS, "GET", status=503)
        try:

            async def failed() -> dict[str, Any] | None:
                found = await connection(db, connection_id)
                return found if found["status"] == "error" else None

            found = await until(failed, timeout_s=OUTAGE_S - 5, state=lambda: _status(db, connection_id))
            assert found["error"]["code"] == "sync_failed"
            retried_from = await served(google, GOOGLE_EVENTS, "GET")
            # the outage lasts its 30 s on purpose; the schedule keeps trying meanwhile
            await asyncio.sleep(max(0.0, outage_started + OUTAGE_S - time.monotonic()))
            assert (await connection(db, connection_id))["status"] == "error", "no success while down"
            retries = await served(google, GOOGLE_EVENTS, "GET") - retried_from
        finally:
            await google.clear_faults()
        recovered_from = datetime.now(UTC)

        async def active_again() -> dict[str, Any] | None:
            found = await connection(db, connection_id)
            return found if found["status"] == "active" else None

        found = await until(
            active_again, timeout_s=3 * POLL_INTERVAL_S + 15, state=lambda: _status(db, connection_id)
        )
        assert found["error"] is None
        assert found["last_synced_at"].replace(tzinfo=UTC) >= recovered_from - timedelta(seconds=1)
        assert found.get("manual_refresh_at") is None, "nobody called POST /refresh"
        assert retries > 0, "the schedule retried the connection while it was in error"
        view = await shown(browser, connection_id, "status_history")
        assert view["status"] == "active" and view["error"] is None
        history = view["status_history"]
        assert history[0]["status"] == "active"
        assert any(e["status"] == "error" and e["code"] == "sync_failed" for e in history[1:])
        stamps = [at(e["at"]) for e in history]
        assert stamps == sorted(stamps, reverse=True), "newest first"


# -- 7. a dropped notification is reconciled by the safety net ---------------------------------


@pytest.mark.parametrize("provider", PUSH)
async def test_a_dropped_notification_is_reconciled_by_the_safety_net_sync(
    browser, api, gateway, emulators, sync_requests, provider
):
    emulator = emulators[provider]
    db = db_of(browser)
    async with running_worker(
        api,
        polling_enabled=True,
        poll_tick_s=0.3,
        poll_interval_s=300,  # polling-mode connections only; this one is realtime
        safety_net_interval_s=SAFETY_NET_S,
    ):
        connection_id = await link(browser, provider)
        await synced_and_idle(db, connection_id)
        records = await settled_realtime(db, connection_id)
        primary = await db.calendars.find_one({"connection_id": connection_id, "primary": True})
        (record,) = [w for w in records if w["calendar_id"] == primary["provider_calendar_id"]]
        (channel,) = record["channels"]
        await emulator.admin("POST", "notifications/drain")
        dropped = (await counters(emulator))["notifications_dropped"]
        await emulator.admin(
            "POST", "faults/notifications", {"mode": "drop", "times": 1, "stream": channel["id"]}
        )

        before = time.monotonic()
        day = a_day_ahead(40)
        title = f"never notified {uuid.uuid4().hex[:6]}"
        await emulator.insert_event(primary["provider_calendar_id"], title, day.date().isoformat())
        await emulator.admin("POST", "notifications/drain")
        assert (await counters(emulator))["notifications_dropped"] == dropped + 1
        assert (await emulator.admin("GET", "faults"))["notifications"] == []

        await eventually(lambda: _has(browser, primary["_id"], day, title), timeout_s=3 * SAFETY_NET_S + 15)

        def safety_net_requests() -> list:
            return [
                e
                for at, e in sync_requests.seen
                if at >= before and e.connection_id == connection_id and e.data["reason"] == "poll"
            ]

        # the schedule's request is what found it (awaited: the recorder reads the topic on its own)
        await eventually(safety_net_requests, timeout_s=15)
        # and no notification told the gateway: once every request published so far is read (the
        # barrier), none of them is a webhook's for this calendar
        await sync_requests.caught_up()
        webhook_requests = sync_requests.webhook(connection_id, primary["provider_calendar_id"], after=before)
        assert webhook_requests == [], "no notification told the gateway: the safety net found it"
        assert (await connection(db, connection_id))["sync_mode"] == "realtime"


async def _has(browser: Browser, calendar_id: str, day: datetime, title: str) -> bool:
    return title in await titles(browser, calendar_id, day)


# -- 8. two applications, one Google account: one disconnects ----------------------------------


async def test_two_applications_on_one_google_account_one_disconnects_the_other_keeps_syncing(
    browser, api, http, sandbox, gateway, worker, refresher, emulators
):
    google = emulators["google"]
    db = db_of(browser)
    other_app, other_key = await create_application(
        api.app[RUNTIME].repos.applications,
        name="second app",
        return_url_prefixes=[RETURN_PREFIX],
        live=False,
        clock=SystemClock(),
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other_http:
        other = Browser(
            other_http, dataclasses.replace(api, key=other_key, application_id=other_app.id), sandbox
        )
        leaving = await link(browser, "google")
        staying = await link(other, "google")
        for connection_id in (leaving, staying):
            await synced_and_idle(db, connection_id)
        kept_watches = await settled_realtime(db, staying)
        await settled_realtime(db, leaving)
        kept = channel_ids(kept_watches)
        revocations = await served(google, "/revoke", "POST")

        await disconnect(browser, leaving)
        record = await torn_down(db, leaving)
        assert record["revocation"]["outcome"] == "skipped_shared_grant"
        assert await served(google, "/revoke", "POST") == revocations, "Google's grant is shared: not revoked"
        live = {c["id"] for c in await live_at(google, gateway)}
        assert kept <= live, "the other connection's channels stay"

        # its refresh token still works ...
        await make_due(db, staying, in_s=120)
        since = datetime.now(UTC)

        async def refreshed() -> bool:
            return any(at(e["occurred_at"]) >= since for e in await outbox(db, "token.refreshed", staying))

        await until(refreshed, timeout_s=20, state=lambda: _status(db, staying))
        # ... and so do its data calls: a change at Google reaches its mirror
        primary = await db.calendars.find_one({"connection_id": staying, "primary": True})
        day = a_day_ahead(50)
        title = f"still syncing {uuid.uuid4().hex[:6]}"
        await google.insert_event(primary["provider_calendar_id"], title, day.date().isoformat())
        t1 = datetime.now(UTC)
        await request_sync(other, staying)

        async def mirrored() -> bool:
            return await _has(other, primary["_id"], day, title)

        await until(mirrored, timeout_s=30, state=lambda: _status(db, staying))
        await worker_handled_every_sync_request(browser)
        view = await shown(other, staying)
        assert view["status"] == "active" and view["error"] is None
        assert at(view["last_synced_at"]) >= t1
        assert not await outbox(db, "token.refresh_failed", staying)
        assert (await shown(browser, leaving))["status"] == "disconnected"
