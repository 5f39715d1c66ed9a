"""Realtime: the webhook gateway subscribes linked calendars, turns the emulators' notifications
into sync requests, keeps subscriptions alive, and falls back to polling (and back)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from chronapilot.common.providers.push import hash_secret
from chronapilot.webhook_gateway.app import GROUP_ID

from helpers import eventually
from realtime_harness import Emulator, Gateway, record_sync_requests, start_gateway

pytestmark = pytest.mark.e2e
#: How long the 20-second subscriptions are exercised (`make soak`: 45 s).
RENEWAL_RUN_S = float(os.environ.get("CHRONAPILOT_TEST_RENEWAL_RUN_S", "30"))
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


async def records(db, connection_id: str) -> list[dict]:
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


def handled(group: str, event_type: str) -> float:
    """Messages of ``event_type`` a gateway's consumer group handled (and committed)."""
    value = REGISTRY.get_sample_value(
        "chronapilot_messages_handled_total", {"group": group, "type": event_type, "outcome": "ok"}
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
    initial = counted(provider, "initial")
    connection_id = await link(browser, provider)
    linked = await wait_realtime(gateway.db, connection_id)

    calendars = await synced_calendars(gateway.db, connection_id)
    stored = await records(gateway.db, connection_id)
    assert sorted(w["calendar_id"] for w in stored) == sorted(calendars)
    assert all(w["status"] == "active" and len(w["channels"]) == 1 for w in stored)
    assert all("secret" not in channel for w in stored for channel in w["channels"])
    channels = {w["channels"][0]["id"]: w["channels"][0]["expires_at"] for w in stored}
    earliest = min(channels, key=channels.__getitem__)
    assert linked["webhook_subscription"] == {"id": earliest, "expires_at": channels[earliest]}
    live = {item["id"] for item in await emulators[provider].subscriptions()}
    assert set(channels) <= live
    if provider == "google":  # each new channel's `sync` message: acknowledged, nothing requested
        await emulators[provider].admin("POST", "notifications/drain")
        assert counted(provider, "initial") == initial + len(calendars)
    api_view = await browser.http.get(
        f"{browser.api.url}/v1/connections/{connection_id}", headers=browser.api.headers()
    )
    assert (await api_view.json())["sync_mode"] == "realtime"

    calendar = await primary_calendar(gateway.db, connection_id)
    before = time.monotonic()
    await emulators[provider].insert_event(calendar, "pushed", "2031-03-03")
    requested = await eventually(lambda: sync_requests.webhook(connection_id, calendar, after=before))
    assert requested[0].data["mode"] == "incremental"
    assert requested[0].type == "sync.requested"


async def test_two_gateway_processes_share_the_work_and_subscribe_each_calendar_once(
    browser, gateways, emulators
):
    # its own consumer group too: both handle the activation, both schedulers race for the work
    second_group = "chronapilot.webhook-gateway.second"
    first, second = await gateways(), await gateways(group_id=second_group)
    groups = (GROUP_ID, second_group)
    activations = {group: handled(group, "connection.activated") for group in groups}
    connection_id = await link(browser, "google")
    await wait_realtime(first.db, connection_id)

    async def both_had_their_chance() -> bool:
        """Both gateways handled the activation, and no subscription is left for any scheduler
        to work on (each settled active, due again only at its renewal)."""
        if any(handled(group, "connection.activated") <= n for group, n in activations.items()):
            return False
        stored, now = await records(first.db, connection_id), datetime.now(UTC)
        return bool(stored) and all(w["status"] == "active" and w["due_at"] > now for w in stored)

    await eventually(both_had_their_chance, timeout_s=30)
    calendars = await synced_calendars(first.db, connection_id)
    ours = (first.url, second.url)
    channels = [c for c in await emulators["google"].subscriptions() if c["address"].startswith(ours)]
    recorded = sorted(c["watched"].removeprefix("events:") for c in channels)
    assert recorded == sorted(calendars)


async def test_icloud_has_no_push_and_stays_polling(browser, gateways, sync_requests):
    gateway = await gateways()
    activations = handled(GROUP_ID, "connection.activated")
    connection_id = await link(browser, "icloud")
    await eventually(lambda: handled(GROUP_ID, "connection.activated") > activations)  # the gateway's turn
    assert (await connection(gateway.db, connection_id))["sync_mode"] == "polling"
    assert await records(gateway.db, connection_id) == []


@pytest.mark.parametrize("provider", PUSH)
async def test_disconnecting_stops_the_subscriptions_at_the_provider_and_here(
    browser, gateways, emulators, provider
):
    gateway = await gateways()
    connection_id = await link(browser, provider)
    await wait_realtime(gateway.db, connection_id)
    ids = {w["channels"][0]["id"] for w in await records(gateway.db, connection_id)}

    async with browser.http.delete(
        f"{browser.api.url}/v1/connections/{connection_id}", headers=browser.api.headers()
    ) as response:
        assert response.status == 200, await response.text()

    async def gone():
        return not await records(gateway.db, connection_id)

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
    deadline = time.monotonic() + RENEWAL_RUN_S
    while time.monotonic() < deadline:
        changes.append(time.monotonic())
        await emulators[provider].rename_event(calendar, event_id, f"change {len(changes)}")
        for _ in range(4):
            modes.add((await connection(gateway.db, connection_id))["sync_mode"])
            await asyncio.sleep(0.25)

    assert modes == {"realtime"}
    renewed = await outbox_types(gateway.db, connection_id, "subscription.renewed")
    calendars = await synced_calendars(gateway.db, connection_id)
    expected = int(RENEWAL_RUN_S // 10) - 1  # renewed at half the 20-s lifetime; the first at ~10 s
    assert len(renewed) >= expected * len(calendars), (
        f"{len(renewed)} renewals for {len(calendars)} calendars"
    )

    def missed() -> list[float]:
        """Changes without a sync request read within 3 s of them."""
        requested = sync_requests.times(connection_id, calendar)
        return [at for at in changes if not any(at <= seen <= at + 3 for seen in requested)]

    # until every change has its request, or the last one's 3 s are over (the verdict is final)
    await eventually(lambda: not missed() or time.monotonic() > changes[-1] + 3.1)
    assert not missed(), f"{len(missed())} of {len(changes)} changes got no sync request"


async def quiet(emulator: Emulator, gateway: Gateway, sync_requests) -> None:
    """Every notification sent so far answered, the debounce window it may have opened closed
    and every sync request published so far read: a request from now on is new."""
    await emulator.admin("POST", "notifications/drain")
    await past_the_window(gateway, sync_requests)


# -- lifecycle notifications (Microsoft) --------------------------------------------------------


async def _linked_microsoft(browser, gateways, emulators):
    gateway = await gateways()
    connection_id = await link(browser, "microsoft")
    await wait_realtime(gateway.db, connection_id)
    calendar = await primary_calendar(gateway.db, connection_id)
    (record,) = [w for w in await records(gateway.db, connection_id) if w["calendar_id"] == calendar]
    return gateway, connection_id, calendar, record["channels"][0]


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
    await eventually(lambda: sync_requests.webhook(connection_id, calendar, after=before), timeout_s=15)
    await wait_realtime(gateway.db, connection_id)


async def test_missed_notifications_trigger_an_incremental_sync(browser, gateways, emulators, sync_requests):
    gateway, connection_id, calendar, channel = await _linked_microsoft(browser, gateways, emulators)
    await quiet(emulators["microsoft"], gateway, sync_requests)
    before = time.monotonic()
    await emulators["microsoft"].admin(
        "POST", f"subscriptions/{channel['id']}/lifecycle", {"lifecycleEvent": "missed"}
    )
    requested = await eventually(lambda: sync_requests.webhook(connection_id, calendar, after=before))
    assert requested[0].data["mode"] == "incremental"
    assert counted("microsoft", "lifecycle") >= 1


# -- what the request path refuses --------------------------------------------------------------


async def post(browser, url: str, *, headers=None, body: bytes = b"", params=None):
    async with browser.http.post(url, headers=headers or {}, data=body, params=params) as response:
        return response.status, await response.text()


async def stored_channel(db, provider: str, secret: str, *, expired: bool = False) -> dict:
    """A subscription stored as the gateway stores one (for a connection of its own, due for
    work only in a month, so the scheduler leaves it alone); ``expired``: it ran out an hour ago."""
    now = datetime.now(UTC)
    channel = {
        "id": f"{'expired' if expired else 'live'}-{uuid.uuid4()}",
        "resource_id": "r",
        "secret_hash": hash_secret(secret),
        "expires_at": now + (timedelta(hours=-1) if expired else timedelta(days=7)),
        "since": now - timedelta(days=1),
    }
    await db.webhook_subscriptions.insert_one(
        {
            "_id": f"sub_test{uuid.uuid4().hex[:12]}",
            "connection_id": f"con_{channel['id']}",
            "provider": provider,
            "calendar_id": f"calendar-{channel['id']}",
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


def notification(provider: str, channel: dict, secret: str, n: int) -> dict:
    """``post`` arguments for the ``n``-th genuine-looking notification on ``channel``."""
    if provider == "google":
        return {"headers": google_headers(channel, secret, n)}
    body = json.dumps({"value": [graph_item(channel, secret, f"e{n}")]}).encode()
    return {"headers": {"Content-Type": "application/json"}, "body": body}


def requests_for(recorder, channel: dict) -> list:
    return recorder.webhook(f"con_{channel['id']}", f"calendar-{channel['id']}")


async def past_the_window(gateway: Gateway, recorder) -> None:
    """Wait out, on purpose, the debounce window the last accepted notification opened (its
    close publishes one more request if a notification was folded into it; the gateway's
    timers run on this loop, so it closes before this sleep ends), then read everything
    published so far."""
    await asyncio.sleep(gateway.settings.realtime.webhook_debounce_s + 0.1)
    await recorder.caught_up()


@pytest.mark.parametrize("provider", PUSH)
async def test_a_genuine_notification_becomes_one_sync_request_and_its_replay_nothing(
    browser, gateways, sync_requests, provider
):
    gateway = await gateways()
    channel = await stored_channel(gateway.db, provider, "the-secret")
    url = f"{gateway.url}/webhooks/{provider}"
    accepted = 200 if provider == "google" else 202

    assert (await post(browser, url, **notification(provider, channel, "the-secret", 7)))[0] == accepted
    await eventually(lambda: requests_for(sync_requests, channel))
    duplicates = counted(provider, "duplicate")
    for _ in range(3):
        assert (await post(browser, url, **notification(provider, channel, "the-secret", 7)))[0] == accepted
    assert counted(provider, "duplicate") == duplicates + 3
    await past_the_window(gateway, sync_requests)  # a replay that marked it would be a request now
    (requested,) = requests_for(sync_requests, channel)
    assert requested.data == {
        "mode": "incremental",
        "reason": "webhook",
        "calendar_id": f"calendar-{channel['id']}",
    }


@pytest.mark.parametrize("provider", PUSH)
async def test_a_forged_notification_is_refused_counted_logged_without_secrets_and_emits_nothing(
    browser, gateways, sync_requests, provider, capfd
):
    gateway = await gateways()
    channel = await stored_channel(gateway.db, provider, "the-secret")
    url = f"{gateway.url}/webhooks/{provider}"
    forged = counted(provider, "forged")
    for n, guess in enumerate(["a-guess", "the-secreT", "the-secret-", ""]):
        assert (await post(browser, url, **notification(provider, channel, guess, n)))[0] == 403
    if provider == "google":
        no_token = {k: v for k, v in google_headers(channel, "x", 9).items() if k != "X-Goog-Channel-Token"}
        assert (await post(browser, url, headers=no_token))[0] == 403
    assert counted(provider, "forged") == forged + (5 if provider == "google" else 4)
    await sync_requests.caught_up()  # a request is published before the notification is answered
    assert requests_for(sync_requests, channel) == []
    logged = capfd.readouterr()
    assert "webhook.rejected" in logged.out + logged.err
    for guess in ("a-guess", "the-secreT", "the-secret-"):
        assert guess not in logged.out + logged.err


async def test_a_graph_batch_with_a_forged_item_still_syncs_the_genuine_one(browser, gateways, sync_requests):
    gateway = await gateways()
    channel = await stored_channel(gateway.db, "microsoft", "the-secret")
    items = [
        graph_item(channel, "a-guess", "e1"),
        graph_item(channel, "the-secret", "e2"),
        graph_item(channel, "the-secret", "e3"),
    ]
    body = json.dumps({"value": items}).encode()
    headers = {"Content-Type": "application/json"}
    assert (await post(browser, f"{gateway.url}/webhooks/microsoft", headers=headers, body=body))[0] == 202
    await past_the_window(gateway, sync_requests)  # a second item folded into it would be a request now
    assert len(requests_for(sync_requests, channel)) == 1  # one calendar: one request for the batch


@pytest.mark.parametrize("provider", PUSH)
async def test_unknown_and_expired_subscriptions_are_refused_or_acknowledged_as_documented(
    browser, gateways, sync_requests, provider
):
    gateway = await gateways()
    url = f"{gateway.url}/webhooks/{provider}"
    stranger = {"id": f"unknown-{uuid.uuid4()}", "resource_id": "r"}
    old = await stored_channel(gateway.db, provider, "old-secret", expired=True)
    unknown, expired = counted(provider, "unknown"), counted(provider, "expired")
    google = provider == "google"  # Graph retries anything but 2xx for 4 hours: acknowledged
    assert (await post(browser, url, **notification(provider, stranger, "s", 1)))[0] == (
        404 if google else 202
    )
    assert (await post(browser, url, **notification(provider, old, "old-secret", 1)))[0] == (
        410 if google else 202
    )
    assert counted(provider, "unknown") == unknown + 1
    assert counted(provider, "expired") == expired + 1
    await sync_requests.caught_up()  # a request is published before the notification is answered
    assert requests_for(sync_requests, old) == []
    assert requests_for(sync_requests, stranger) == []


@pytest.mark.parametrize("provider", PUSH)
async def test_malformed_notifications_are_refused(browser, gateways, provider):
    gateway = await gateways()
    url = f"{gateway.url}/webhooks/{provider}"
    malformed = counted(provider, "malformed")
    if provider == "google":
        channel = await stored_channel(gateway.db, provider, "s")
        complete = google_headers(channel, "s", 1)
        cases = [
            {"headers": {k: v for k, v in complete.items() if k != name}}
            for name in (
                "X-Goog-Channel-ID",
                "X-Goog-Resource-ID",
                "X-Goog-Resource-State",
                "X-Goog-Message-Number",
            )
        ]
        cases += [{"headers": {**complete, "X-Goog-Resource-State": "gone"}}, {"headers": {}}]
        cases += [  # a non-ASCII digit, and more digits than int() reads: 400, never 500
            {"headers": {**complete, "X-Goog-Message-Number": number}} for number in ("\u00b2", "7" * 4301)
        ]
    else:
        cases = [
            {"headers": {"Content-Type": "application/json"}, "body": body}
            for body in (b"", b"not json", b"[]", b'{"value": []}', b'{"value": [{"changeType": "updated"}]}')
        ]
        cases.append({"params": {"validationToken": "x" * 5000}})
    for case in cases:
        assert (await post(browser, url, **case))[0] == 400, case
    assert counted(provider, "malformed") == malformed + len(cases)
    assert (await post(browser, f"{gateway.url}/webhooks/icloud", headers={}))[0] == 404


def subscription_reads(provider: str) -> float:
    value = REGISTRY.get_sample_value("chronapilot_webhook_subscription_reads_total", {"provider": provider})
    return value or 0.0


def rejection_lines(capfd) -> int:
    logged = capfd.readouterr()
    return sum("webhook.rejected" in line for line in (logged.out + logged.err).splitlines())


async def test_a_graph_batch_costs_one_read_per_subscription_id_and_a_huge_one_is_refused_unread(
    browser, gateways, capfd
):
    # nothing is remembered as unknown: every lookup the gateway does not fold is a read
    gateway = await gateways(webhook_unknown_cache_s=0)
    url = f"{gateway.url}/webhooks/microsoft"
    headers = {"Content-Type": "application/json"}
    capfd.readouterr()

    # one unauthenticated ~1 MB body naming 24,000 made-up subscriptions
    made_up = [{"subscriptionId": f"{n:x}", "changeType": "u"} for n in range(24_000)]
    huge = json.dumps({"value": made_up}, separators=(",", ":")).encode()
    assert 900_000 < len(huge) < 1024 * 1024  # under the body limit: the gateway reads it
    reads, malformed = subscription_reads("microsoft"), counted("microsoft", "malformed")
    status, _ = await post(browser, url, headers=headers, body=huge)
    assert status == 400  # documented: more than MAX_BATCH_ITEMS items is refused whole
    assert subscription_reads("microsoft") == reads
    assert counted("microsoft", "malformed") == malformed + 1
    assert rejection_lines(capfd) == 1

    # a batch at the cap: 1,000 items over 10 unknown subscriptions
    prefix = uuid.uuid4().hex[:8]
    items = [graph_item({"id": f"unknown-{prefix}-{n % 10}"}, "s", f"e{n}") for n in range(1000)]
    assert len({item["subscriptionId"] for item in items}) == 10
    reads, unknown = subscription_reads("microsoft"), counted("microsoft", "unknown")
    status, _ = await post(browser, url, headers=headers, body=json.dumps({"value": items}).encode())
    assert status == 202  # Graph retries any other answer for hours: unknown ones are acknowledged
    assert subscription_reads("microsoft") == reads + 10
    assert counted("microsoft", "unknown") == unknown + 1000
    assert rejection_lines(capfd) == 1


async def test_the_microsoft_validation_handshake_echoes_the_token_as_plain_text(browser, gateways):
    gateway = await gateways()
    token = "Validation: Testing client application reachability for subscription Request-Id: 42 <b>"
    for path in ("/webhooks/microsoft", "/webhooks/microsoft/lifecycle"):
        async with browser.http.post(gateway.url + path, params={"validationToken": token}) as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert await response.text() == token


async def test_a_burst_of_changes_to_one_calendar_yields_a_few_sync_requests(
    browser, gateways, emulators, sync_requests
):
    gateway = await gateways(webhook_debounce_s=1.0)
    connection_id = await link(browser, "google")
    await wait_realtime(gateway.db, connection_id)
    calendar = await primary_calendar(gateway.db, connection_id)
    await quiet(emulators["google"], gateway, sync_requests)
    before = time.monotonic()
    event_id = await emulators["google"].insert_event(calendar, "burst", "2031-05-05")
    for n in range(30):
        await emulators["google"].rename_event(calendar, event_id, f"burst {n}")
    await quiet(emulators["google"], gateway, sync_requests)  # the last window's trailing request is read
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
        found = [w for w in await records(gateway.db, connection_id) if w["status"] == "failing"]
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
        found = await records(gateway.db, connection_id)
        return found if found and all(w["status"] == "failing" for w in found) else None

    stored = await eventually(failing, timeout_s=20)
    assert all(w["channels"] == [] for w in stored)
    assert (await connection(gateway.db, connection_id))["sync_mode"] == "polling"
