"""Google emulator, push notifications: events.watch, notifications to a real receiver, channels.stop."""

from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from google_harness import GoogleSandbox, ReceivedRequest, WebhookReceiver

from chronapilot.sandbox.google import DEMO_EMAIL

EVENTS = f"/calendars/{quote(DEMO_EMAIL)}/events"
GOOG_HEADERS = {
    "X-Goog-Channel-ID",
    "X-Goog-Channel-Token",
    "X-Goog-Channel-Expiration",
    "X-Goog-Resource-ID",
    "X-Goog-Resource-URI",
    "X-Goog-Resource-State",
    "X-Goog-Message-Number",
}


async def watch(
    google: GoogleSandbox, token: str, receiver: WebhookReceiver, channel_id: str = "chan-1", **extra: Any
) -> dict[str, Any]:
    body = {"id": channel_id, "type": "web_hook", "address": receiver.url, "token": "secret-123", **extra}
    answer = await google.api("POST", f"{EVENTS}/watch", token, body=body)
    assert answer.status == 200, answer.body
    return dict(answer.body)


async def change_something(google: GoogleSandbox, token: str) -> dict[str, Any]:
    answer = await google.api(
        "POST",
        EVENTS,
        token,
        body={"summary": "Ping", "start": {"date": "2026-11-30"}, "end": {"date": "2026-12-01"}},
    )
    assert answer.status == 200
    return dict(answer.body)


def goog_headers(request: ReceivedRequest) -> dict[str, str]:
    return {name: value for name, value in request.headers.items() if name.lower().startswith("x-goog-")}


async def test_watch_answers_with_a_channel(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    now_ms = google.emulator.clock.now_ms()
    channel = await watch(google, google_token, webhook_receiver, params={"ttl": "3600"})
    assert channel["kind"] == "api#channel"
    assert channel["id"] == "chan-1"
    assert channel["token"] == "secret-123"
    assert channel["resourceId"]
    calendar_path = f"/calendar/v3/calendars/{quote(DEMO_EMAIL, safe='')}/events"
    assert channel["resourceUri"] == f"{google.base_url}{calendar_path}?alt=json"
    assert isinstance(channel["expiration"], str)
    assert abs(int(channel["expiration"]) - (now_ms + 3_600_000)) < 5_000


async def test_default_channel_lifetime_is_a_week(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    now_ms = google.emulator.clock.now_ms()
    channel = await watch(google, google_token, webhook_receiver)
    assert abs(int(channel["expiration"]) - (now_ms + 604_800_000)) < 5_000


async def test_sync_then_exists_notifications_carry_every_goog_header(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    channel = await watch(google, google_token, webhook_receiver)
    sync = await webhook_receiver.next()
    assert sync.method == "POST" and sync.body == b""
    assert sync.headers["User-Agent"].startswith("APIs-Google;")
    assert sync.headers["Content-Length"] == "0" and "Content-Type" not in sync.headers
    assert set(goog_headers(sync)) == GOOG_HEADERS
    assert sync.headers["X-Goog-Resource-State"] == "sync"
    assert sync.headers["X-Goog-Message-Number"] == "1"
    await change_something(google, google_token)
    exists = await webhook_receiver.next()
    assert exists.body == b""
    assert goog_headers(exists) == {
        "X-Goog-Channel-ID": "chan-1",
        "X-Goog-Channel-Token": "secret-123",
        "X-Goog-Channel-Expiration": exists.headers["X-Goog-Channel-Expiration"],
        "X-Goog-Resource-ID": channel["resourceId"],
        "X-Goog-Resource-URI": channel["resourceUri"],
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": "2",
    }
    expiration = parsedate_to_datetime(exists.headers["X-Goog-Channel-Expiration"])
    assert int(expiration.timestamp()) == int(channel["expiration"]) // 1000
    assert exists.headers["X-Goog-Channel-Expiration"].endswith(" GMT")


async def test_a_channel_without_token_sends_no_token_header(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    body = {"id": "no-token", "type": "web_hook", "address": webhook_receiver.url}
    assert (await google.api("POST", f"{EVENTS}/watch", google_token, body=body)).status == 200
    sync = await webhook_receiver.next()
    assert "X-Goog-Channel-Token" not in sync.headers


async def test_message_numbers_increase_per_channel(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    await watch(google, google_token, webhook_receiver)
    for _ in range(3):
        await change_something(google, google_token)
    numbers = [int((await webhook_receiver.next()).headers["X-Goog-Message-Number"]) for _ in range(4)]
    assert numbers == [1, 2, 3, 4]


async def test_admin_changes_notify_too(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    await watch(google, google_token, webhook_receiver)
    await webhook_receiver.next()
    await google.admin(
        "POST",
        f"calendars/{quote(DEMO_EMAIL)}/events",
        {"summary": "From the web UI", "start": {"date": "2026-12-02"}, "end": {"date": "2026-12-03"}},
        expect=201,
    )
    assert (await webhook_receiver.next()).headers["X-Goog-Resource-State"] == "exists"


async def test_a_slow_receiver_never_delays_the_api_response(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.gate = asyncio.Event()
    await watch(google, google_token, webhook_receiver)
    await webhook_receiver.next()
    await change_something(google, google_token)
    assert webhook_receiver.gate is not None and not webhook_receiver.gate.is_set()
    webhook_receiver.gate.set()
    assert (await webhook_receiver.next()).headers["X-Goog-Resource-State"] == "exists"


async def test_nothing_arrives_after_channels_stop(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    channel = await watch(google, google_token, webhook_receiver)
    await webhook_receiver.next()
    stopped = await google.api(
        "POST",
        "/channels/stop",
        google_token,
        body={"id": channel["id"], "resourceId": channel["resourceId"]},
    )
    assert stopped.status == 204 and stopped.body is None
    await change_something(google, google_token)
    await google.drain()
    assert webhook_receiver.pending() == 0


async def test_stopping_an_unknown_channel_is_404(google: GoogleSandbox, google_token: str) -> None:
    answer = await google.api("POST", "/channels/stop", google_token, body={"id": "nope", "resourceId": "x"})
    assert answer.status == 404


async def test_nothing_arrives_after_expiry(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    await watch(google, google_token, webhook_receiver, params={"ttl": "60"})
    await webhook_receiver.next()
    await google.admin("POST", "clock/advance", {"seconds": 61})
    await change_something(google, google_token)
    await google.drain()
    assert webhook_receiver.pending() == 0
    assert await google.admin("GET", "channels") == []


async def test_channel_ids_are_unique(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    await watch(google, google_token, webhook_receiver)
    body = {"id": "chan-1", "type": "web_hook", "address": webhook_receiver.url}
    again = await google.api("POST", f"{EVENTS}/watch", google_token, body=body)
    assert again.status == 400
    assert again.body["error"]["errors"][0]["reason"] == "channelIdNotUnique"


async def test_dropped_notifications_never_arrive(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    await watch(google, google_token, webhook_receiver)
    await webhook_receiver.next()
    await google.admin("POST", "faults/notifications", {"mode": "drop", "times": 1}, expect=201)
    await change_something(google, google_token)
    await change_something(google, google_token)
    assert (await webhook_receiver.next()).headers["X-Goog-Message-Number"] == "3"
    counters = await google.admin("GET", "counters")
    assert counters["notifications_dropped"] == 1 and counters["notifications_sent"] == 2


async def test_duplicated_notifications_arrive_twice(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    await watch(google, google_token, webhook_receiver)
    await webhook_receiver.next()
    await google.admin("POST", "faults/notifications", {"mode": "duplicate", "times": 1}, expect=201)
    await change_something(google, google_token)
    numbers = [(await webhook_receiver.next()).headers["X-Goog-Message-Number"] for _ in range(2)]
    assert numbers == ["2", "2"]


async def test_reordered_notifications_arrive_swapped(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    await watch(google, google_token, webhook_receiver)
    await webhook_receiver.next()
    await google.admin("POST", "faults/notifications", {"mode": "reorder", "times": 1}, expect=201)
    await change_something(google, google_token)
    await change_something(google, google_token)
    numbers = [(await webhook_receiver.next()).headers["X-Goog-Message-Number"] for _ in range(2)]
    assert numbers == ["3", "2"]


async def test_failing_receivers_are_retried_with_backoff(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.status = 503
    await watch(google, google_token, webhook_receiver)
    first = await webhook_receiver.next()
    retried = await webhook_receiver.next()
    assert first.headers["X-Goog-Message-Number"] == retried.headers["X-Goog-Message-Number"] == "1"


async def test_calendar_list_watch_reports_added_and_removed_calendars(
    google: GoogleSandbox, google_token: str, webhook_receiver: WebhookReceiver
) -> None:
    list_body = {"id": "list-1", "type": "web_hook", "address": webhook_receiver.url}
    listed = await google.api("POST", "/users/me/calendarList/watch", google_token, body=list_body)
    assert listed.status == 200
    assert listed.body["resourceUri"] == f"{google.base_url}/calendar/v3/users/me/calendarList?alt=json"
    assert (await webhook_receiver.next()).headers["X-Goog-Resource-State"] == "sync"
    _, list_token = await calendar_list(google, google_token)
    created = await google.admin(
        "POST", f"users/{DEMO_EMAIL}/calendars", {"summary": "Side project"}, expect=201
    )
    added = await webhook_receiver.next()
    assert (added.headers["X-Goog-Channel-ID"], added.headers["X-Goog-Resource-State"]) == (
        "list-1",
        "exists",
    )
    events_path = f"/calendars/{quote(created['id'], safe='')}/events"
    events_body = {"id": "events-1", "type": "web_hook", "address": webhook_receiver.url}
    assert (await google.api("POST", f"{events_path}/watch", google_token, body=events_body)).status == 200
    assert (await webhook_receiver.next()).headers["X-Goog-Channel-ID"] == "events-1"
    await google.admin("DELETE", f"calendars/{quote(created['id'], safe='')}", expect=204)
    gone = [await webhook_receiver.next() for _ in range(2)]
    states = {(r.headers["X-Goog-Channel-ID"], r.headers["X-Goog-Resource-State"]) for r in gone}
    assert states == {("events-1", "not_exists"), ("list-1", "exists")}
    assert (await google.api("GET", events_path, google_token)).status == 404
    changes, _ = await calendar_list(google, google_token, syncToken=list_token)
    assert changes == [
        {
            "kind": "calendar#calendarListEntry",
            "etag": changes[0]["etag"],
            "id": created["id"],
            "deleted": True,
        }
    ]


async def calendar_list(google: GoogleSandbox, token: str, **params: str) -> tuple[list[Any], str]:
    answer = await google.api("GET", "/users/me/calendarList", token, params=params)
    assert answer.status == 200
    return answer.body["items"], answer.body["nextSyncToken"]
