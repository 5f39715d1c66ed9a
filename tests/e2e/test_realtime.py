"""Realtime: the webhook gateway subscribes linked calendars, turns the emulators' notifications
into sync requests, keeps subscriptions alive, and falls back to polling (and back)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from chronapilot.common.providers.push import hash_secret

from helpers import eventually
from realtime_harness import Emulator, Gateway, record_sync_requests, start_gateway

pytestmark = pytest.mark.e2e
PUSH = ["google", "microsoft"]


@pytest.fixture
async def gateways(api) -> AsyncIterator:
    runners = []

    async def start(**options) -> Gateway:
        runner, gateway = await start_gateway(api, **options)
        runners.append(runner)
        return gateway

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


@pytest.fixture
async def sync_requests(api):
    async for recorder in record_sync_requests(api.settings):
        yield recorder


@pytest.fixture
async def emulators(http, sandbox) -> AsyncIterator[dict[str, Emulator]]:
    made = {name: Emulator(http, sandbox.urls[name], name) for name in PUSH}
    yield made
    for emulator in made.values():
        await emulator.clear_faults()
    await made["microsoft"].set_max_lifetime(10080 * 60)


async def connection(db, connection_id: str) -> dict:
    return await db.connections.find_one({"_id": connection_id})


async def synced_calendars(db, connection_id: str) -> list[str]:
    docs = await db.calendars.find({"connection_id": connection_id, "removed": False}).to_list()
    return [doc["provider_calendar_id"] for doc in docs]


async def primary_calendar(db, connection_id: str) -> str:
    doc = await db.calendars.find_one({"connection_id": connection_id, "primary": True})
    return str(doc["provider_calendar_id"])


async def wait_realtime(db, connection_id: str, timeout_s: float = 30) -> dict:
    async def realtime():
        found = await connection(db, connection_id)
        return found if found["sync_mode"] == "realtime" else None

    return await eventually(realtime, timeout_s=timeout_s)


async def watches(db, connection_id: str) -> list[dict]:
    return await db.webhook_subscriptions.find({"connection_id": connection_id}).to_list()


async def outbox_types(db, connection_id: str, event_type: str) -> list[dict]:
    return await db.outbox.find(
        {"envelope.connection_id": connection_id, "envelope.type": event_type}
    ).to_list()


def counted(provider: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "chronapilot_webhook_notifications_total", {"provider": provider, "outcome": outcome}
    )
    return value or 0.0


async def link(browser, provider: str) -> str:
    user_id = await browser.create_user(f"ext-{provider}-{time.monotonic_ns()}")
    return (await browser.connect(provider, user_id))["connection_id"][0]


# -- subscription lifecycle ---------------------------------------------------------------------


@pytest.mark.parametrize("provider", PUSH)
async def test_activation_subscribes_every_calendar_and_changes_become_webhook_sync_requests(
    browser, gateways, sync_requests, emulators, provider
):
    gateway = await gateways()
    connection_id = await link(browser, provider)
    linked = await wait_realtime(gateway.db, connection_id)

    calendars = await synced_calendars(gateway.db, connection_id)
    stored = await watches(gateway.db, connection_id)
    assert sorted(w["calendar_id"] for w in stored) == sorted(calendars)
    assert all(w["status"] == "active" and len(w["channels"]) == 1 for w in stored)
    assert all("secret" not in channel for w in stored for channel in w["channels"])
    channels = {w["channels"][0]["id"]: w["channels"][0]["expires_at"] for w in stored}
    earliest = min(channels, key=channels.__getitem__)
    assert linked["webhook_subscription"] == {"id": earliest, "expires_at": channels[earliest]}
    live = {item["id"] for item in await emulators[provider].subscriptions()}
    assert set(channels) <= live
    api_view = await browser.http.get(
        f"{browser.api.url}/v1/connections/{connection_id}", headers=browser.api.headers()
    )
    assert (await api_view.json())["sync_mode"] == "realtime"

    calendar = await primary_calendar(gateway.db, connection_id)
    before = time.monotonic()
    await emulators[provider].insert_event(calendar, "pushed", "2031-03-03")
    requested = await eventually(lambda: _async(sync_requests.webhook(connection_id, calendar, after=before)))
    assert requested[0].data["mode"] == "incremental"
    assert requested[0].type == "sync.requested"


async def _async(value):
    return value


async def test_icloud_has_no_push_and_stays_polling(browser, gateways, sync_requests):
    gateway = await gateways()
    connection_id = await link(browser, "icloud")
    await asyncio.sleep(2)
    assert (await connection(gateway.db, connection_id))["sync_mode"] == "polling"
    assert await watches(gateway.db, connection_id) == []


@pytest.mark.parametrize("provider", PUSH)
async def test_disconnecting_stops_the_subscriptions_at_the_provider_and_here(
    browser, gateways, emulators, provider
):
    gateway = await gateways()
    connection_id = await link(browser, provider)
    await wait_realtime(gateway.db, connection_id)
    ids = {w["channels"][0]["id"] for w in await watches(gateway.db, connection_id)}

    async with browser.http.delete(
        f"{browser.api.url}/v1/connections/{connection_id}", headers=browser.api.headers()
    ) as response:
        assert response.status == 200, await response.text()

    async def gone():
        return not await watches(gateway.db, connection_id)

    await eventually(gone, timeout_s=20)
    live = {item["id"] for item in await emulators[provider].subscriptions()}
    assert not ids & live
    removed = await outbox_types(gateway.db, connection_id, "subscription.removed")
    assert {r["envelope"]["data"]["subscription_id"] for r in removed} == ids


@pytest.mark.parametrize("provider", PUSH)
async def test_with_20s_lifetimes_the_connection_stays_realtime_across_renewals_and_misses_no_change(
    browser, gateways, sync_requests, emulators, provider
):
    if provider == "microsoft":
        await emulators[provider].set_max_lifetime(20)
    gateway = await gateways(subscription_ttl_s=20)
    connection_id = await link(browser, provider)
    await wait_realtime(gateway.db, connection_id)
    calendar = await primary_calendar(gateway.db, connection_id)
    event_id = await emulators[provider].insert_event(calendar, "renewals", "2031-04-04")

    changes: list[float] = []
    modes: set[str] = set()
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        changes.append(time.monotonic())
        await emulators[provider].rename_event(calendar, event_id, f"change {len(changes)}")
        for _ in range(4):
            modes.add((await connection(gateway.db, connection_id))["sync_mode"])
            await asyncio.sleep(0.25)

    assert modes == {"realtime"}
    renewed = await outbox_types(gateway.db, connection_id, "subscription.renewed")
    calendars = await synced_calendars(gateway.db, connection_id)
    assert len(renewed) >= 3 * len(calendars), f"{len(renewed)} renewals for {len(calendars)} calendars"
    await asyncio.sleep(3)
    requested = sync_requests.times(connection_id, calendar)
    missed = [at for at in changes if not any(at <= seen <= at + 3 for seen in requested)]
    assert not missed, f"{len(missed)} of {len(changes)} changes got no sync request"


# -- lifecycle notifications (Microsoft) --------------------------------------------------------


async def _linked_microsoft(browser, gateways, emulators):
    gateway = await gateways()
    connection_id = await link(browser, "microsoft")
    await wait_realtime(gateway.db, connection_id)
    calendar = await primary_calendar(gateway.db, connection_id)
    (watch,) = [w for w in await watches(gateway.db, connection_id) if w["calendar_id"] == calendar]
    return gateway, connection_id, calendar, watch["channels"][0]


async def test_reauthorization_required_renews_the_subscription(browser, gateways, emulators):
    gateway, connection_id, _, channel = await _linked_microsoft(browser, gateways, emulators)
    await emulators["microsoft"].admin(
        "POST", f"subscriptions/{channel['id']}/lifecycle", {"lifecycleEvent": "reauthorizationRequired"}
    )

    async def renewed():
        found = await outbox_types(gateway.db, connection_id, "subscription.renewed")
        return [r for r in found if r["envelope"]["data"]["subscription_id"] == channel["id"]]

    await eventually(renewed, timeout_s=15)
    assert (await connection(gateway.db, connection_id))["sync_mode"] == "realtime"


async def test_subscription_removed_recreates_it_and_syncs_the_gap(
    browser, gateways, emulators, sync_requests
):
    gateway, connection_id, calendar, channel = await _linked_microsoft(browser, gateways, emulators)
    before = time.monotonic()
    await emulators["microsoft"].admin(
        "POST", f"subscriptions/{channel['id']}/lifecycle", {"lifecycleEvent": "subscriptionRemoved"}
    )

    async def replaced():
        found = await gateway.db.webhook_subscriptions.find_one(
            {"connection_id": connection_id, "calendar_id": calendar}
        )
        ids = [c["id"] for c in found["channels"]]
        return ids if ids and channel["id"] not in ids else None

    (new_id,) = await eventually(replaced, timeout_s=15)
    assert new_id in {item["id"] for item in await emulators["microsoft"].subscriptions()}
    assert sync_requests.webhook(connection_id, calendar, after=before)
    await wait_realtime(gateway.db, connection_id)


async def test_missed_notifications_trigger_an_incremental_sync(browser, gateways, emulators, sync_requests):
    _, connection_id, calendar, channel = await _linked_microsoft(browser, gateways, emulators)
    await asyncio.sleep(0.5)  # past the debounce window of the subscription's creation
    before = time.monotonic()
    await emulators["microsoft"].admin(
        "POST", f"subscriptions/{channel['id']}/lifecycle", {"lifecycleEvent": "missed"}
    )
    requested = await eventually(lambda: _async(sync_requests.webhook(connection_id, calendar, after=before)))
    assert requested[0].data["mode"] == "incremental"
    assert counted("microsoft", "lifecycle") >= 1


# -- what the request path refuses --------------------------------------------------------------


async def post(browser, url: str, *, headers=None, body: bytes = b"", params=None):
    async with browser.http.post(url, headers=headers or {}, data=body, params=params) as response:
        return response.status, await response.text()


async def expired_channel(db, provider: str, secret: str) -> dict:
    """A subscription that ran out an hour ago (stored as the gateway would have stored it, due
    for work only in a month, so the scheduler leaves it alone)."""
    now = datetime.now(UTC)
    channel = {
        "id": f"expired-{uuid.uuid4()}",
        "resource_id": "r",
        "secret_hash": hash_secret(secret),
        "expires_at": now - timedelta(hours=1),
        "since": now - timedelta(days=1),
    }
    await db.webhook_subscriptions.insert_one(
        {
            "_id": f"sub_expired{uuid.uuid4().hex[:12]}",
            "connection_id": "con_expired",
            "provider": provider,
            "calendar_id": "expired-calendar",
            "channels": [channel],
            "status": "active",
            "due_at": now + timedelta(days=30),
            "lease_until": now,
            "attempts": 0,
        }
    )
    return channel


def google_headers(channel: dict, token: str, number: int, state: str = "exists") -> dict[str, str]:
    return {
        "X-Goog-Channel-ID": channel["id"],
        "X-Goog-Channel-Token": token,
        "X-Goog-Channel-Expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
        "X-Goog-Resource-ID": channel["resource_id"] or "r",
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/x/events?alt=json",
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
    }


async def test_google_forged_replayed_unknown_expired_and_malformed_notifications(
    browser, gateways, emulators, sync_requests
):
    gateway = await gateways(webhook_debounce_s=0)
    connection_id = await link(browser, "google")
    await wait_realtime(gateway.db, connection_id)
    calendar = await primary_calendar(gateway.db, connection_id)
    (watch,) = [w for w in await watches(gateway.db, connection_id) if w["calendar_id"] == calendar]
    channel = watch["channels"][0]
    token = await emulators["google"].secret_of(channel["id"])
    assert hash_secret(token) == channel["secret_hash"]
    url = f"{gateway.url}/webhooks/google"
    await asyncio.sleep(0.5)
    before = time.monotonic()

    assert await post(browser, url, headers=google_headers(channel, token, 9001)) == (200, "")
    await eventually(lambda: _async(sync_requests.webhook(connection_id, calendar, after=before)))
    replayed = counted("google", "duplicate")
    assert (await post(browser, url, headers=google_headers(channel, token, 9001)))[0] == 200
    assert counted("google", "duplicate") == replayed + 1

    forged = counted("google", "forged")
    assert (await post(browser, url, headers=google_headers(channel, token + "x", 9002)))[0] == 403
    assert (
        await post(browser, url, headers={**google_headers(channel, token, 9003), "X-Goog-Channel-Token": ""})
    )[0] == 403
    assert counted("google", "forged") == forged + 2

    unknown = {**channel, "id": "not-a-channel-of-ours"}
    assert (await post(browser, url, headers=google_headers(unknown, token, 1)))[0] == 404
    malformed = {
        k: v for k, v in google_headers(channel, token, 9004).items() if k != "X-Goog-Resource-State"
    }
    assert (await post(browser, url, headers=malformed))[0] == 400
    assert (await post(browser, f"{gateway.url}/webhooks/icloud", headers=malformed))[0] == 404

    expired = counted("google", "expired")
    old = await expired_channel(gateway.db, "google", "old-token")
    assert (await post(browser, url, headers=google_headers(old, "old-token", 5)))[0] == 410
    assert counted("google", "expired") == expired + 1

    await asyncio.sleep(1)
    assert len(sync_requests.webhook(connection_id, calendar, after=before)) == 1


def graph_item(channel: dict, secret: str, event_id: str, etag: str = 'W/"1"') -> dict:
    return {
        "subscriptionId": channel["id"],
        "subscriptionExpirationDateTime": "2030-01-07T10:00:00+00:00",
        "changeType": "updated",
        "resource": f"Users/u/Events/{event_id}",
        "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "id": event_id, "@odata.etag": etag},
        "clientState": secret,
        "tenantId": "t",
    }


async def test_microsoft_handshake_forged_replayed_unknown_expired_and_malformed_notifications(
    browser, gateways, emulators, sync_requests
):
    import json

    gateway = await gateways(webhook_debounce_s=0)
    connection_id = await link(browser, "microsoft")
    await wait_realtime(gateway.db, connection_id)
    calendar = await primary_calendar(gateway.db, connection_id)
    (watch,) = [w for w in await watches(gateway.db, connection_id) if w["calendar_id"] == calendar]
    channel = watch["channels"][0]
    secret = await emulators["microsoft"].secret_of(channel["id"])
    url = f"{gateway.url}/webhooks/microsoft"
    json_headers = {"Content-Type": "application/json"}

    token = "Validation: Testing client application reachability for subscription Request-Id: 42 <b>"
    async with browser.http.post(url + "/lifecycle", params={"validationToken": token}) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        assert await response.text() == token

    await asyncio.sleep(0.5)
    before = time.monotonic()
    batch = json.dumps(
        {"value": [graph_item(channel, secret, "e1"), graph_item(channel, secret, "e2")]}
    ).encode()
    assert (await post(browser, url, headers=json_headers, body=batch))[0] == 202
    await eventually(lambda: _async(sync_requests.webhook(connection_id, calendar, after=before)))
    replayed = counted("microsoft", "duplicate")
    assert (await post(browser, url, headers=json_headers, body=batch))[0] == 202
    assert counted("microsoft", "duplicate") == replayed + 2

    forged = counted("microsoft", "forged")
    one_forged = json.dumps({"value": [graph_item(channel, "guess", "e3")]}).encode()
    assert (await post(browser, url, headers=json_headers, body=one_forged))[0] == 403
    mixed = json.dumps(
        {"value": [graph_item(channel, "guess", "e4"), graph_item(channel, secret, "e5")]}
    ).encode()
    assert (await post(browser, url, headers=json_headers, body=mixed))[0] == 202
    assert counted("microsoft", "forged") == forged + 2

    unknown = counted("microsoft", "unknown")
    stranger = json.dumps({"value": [graph_item({"id": "11111111-2222"}, secret, "e6")]}).encode()
    assert (await post(browser, url, headers=json_headers, body=stranger))[0] == 202  # Graph would retry 4 h
    assert counted("microsoft", "unknown") == unknown + 1
    for body in (b"not json", b'{"value": []}', b'{"value": [{"changeType": "updated"}]}'):
        assert (await post(browser, url, headers=json_headers, body=body))[0] == 400

    expired = counted("microsoft", "expired")
    old = await expired_channel(gateway.db, "microsoft", "old-state")
    late = json.dumps({"value": [graph_item(old, "old-state", "e7")]}).encode()
    assert (await post(browser, url, headers=json_headers, body=late))[0] == 202  # Graph would retry 4 h
    assert counted("microsoft", "expired") == expired + 1

    await asyncio.sleep(1)
    # the batch (one calendar: one request) and the genuine item of the mixed batch
    assert len(sync_requests.webhook(connection_id, calendar, after=before)) == 2


async def test_a_burst_of_changes_to_one_calendar_yields_a_few_sync_requests(
    browser, gateways, emulators, sync_requests
):
    gateway = await gateways(webhook_debounce_s=1.0)
    connection_id = await link(browser, "google")
    await wait_realtime(gateway.db, connection_id)
    calendar = await primary_calendar(gateway.db, connection_id)
    await asyncio.sleep(1.5)
    before = time.monotonic()
    event_id = await emulators["google"].insert_event(calendar, "burst", "2031-05-05")
    for n in range(30):
        await emulators["google"].rename_event(calendar, event_id, f"burst {n}")
    await emulators["google"].admin("POST", "notifications/drain")
    await asyncio.sleep(2.5)
    requested = sync_requests.webhook(connection_id, calendar, after=before)
    assert 1 <= len(requested) <= 4, len(requested)
    assert counted("google", "folded") > 0


# -- fallback to polling ------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PUSH)
async def test_refused_subscriptions_mean_polling_until_they_succeed_and_expiry_without_renewal_too(
    browser, gateways, emulators, provider
):
    emulator = emulators[provider]
    if provider == "microsoft":
        await emulator.set_max_lifetime(8)
    await emulator.fail_subscribing(times=4)
    gateway = await gateways(subscription_ttl_s=8)
    connection_id = await link(browser, provider)

    async def failing():
        found = [w for w in await watches(gateway.db, connection_id) if w["status"] == "failing"]
        return found if found and found[0]["last_error"] else None

    await eventually(failing, timeout_s=20)
    assert (await connection(gateway.db, connection_id))["sync_mode"] == "polling"
    await wait_realtime(gateway.db, connection_id, timeout_s=30)  # retried with backoff, then covered

    await emulator.fail_subscribing(times=None, renewals_too=True)

    async def polling():
        found = await connection(gateway.db, connection_id)
        return found if found["sync_mode"] == "polling" else None

    await eventually(polling, timeout_s=20)
    await emulator.clear_faults()
    await wait_realtime(gateway.db, connection_id, timeout_s=20)
    changes = await outbox_types(gateway.db, connection_id, "connection.status_changed")
    modes = [c["envelope"]["data"]["sync_mode"] for c in changes]
    assert modes[-3:] == ["realtime", "polling", "realtime"], modes


async def test_a_failed_validation_handshake_means_polling(browser, gateways, api):
    from chronapilot.devstack.processes import free_port

    gateway = await gateways(webhook_base_url=f"http://127.0.0.1:{free_port()}")  # nobody answers there
    connection_id = await link(browser, "microsoft")

    async def failing():
        found = await watches(gateway.db, connection_id)
        return found if found and all(w["status"] == "failing" for w in found) else None

    stored = await eventually(failing, timeout_s=20)
    assert all(w["channels"] == [] for w in stored)
    assert (await connection(gateway.db, connection_id))["sync_mode"] == "polling"
