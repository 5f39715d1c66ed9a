"""Google's own Python clients against the Google emulator, unpatched.

google-api-python-client (bundled discovery document) is pointed at the emulator only through
``client_options={"api_endpoint": ...}``, google-auth only through ``token_uri``, and authlib only
through the emulator's OpenID Connect discovery document. The Google clients are synchronous:
they run in a worker thread while the emulator serves on the test's event loop. Where a client
disagrees with the emulator, the emulator is fixed, never these tests.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from sandbox.google_harness import GoogleSandbox, WebhookReceiver, start_google, start_webhook_receiver

from chronapilot.sandbox.google import DEMO_EMAIL, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
HOLIDAYS = "en.german#holiday@group.v.calendar.google.com"


@pytest.fixture
async def emulator() -> AsyncIterator[GoogleSandbox]:
    sandbox, server = await start_google()
    yield sandbox
    await sandbox.http.close()
    await server.runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hooks, server = await start_webhook_receiver()
    yield hooks
    await server.runner.cleanup()


def credentials(base_url: str, refresh_token: str) -> Credentials:
    """google-auth credentials refreshed at the emulator's token endpoint."""
    return Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=f"{base_url}/token",
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        scopes=[CALENDAR_SCOPE],
    )


def calendar_service(base_url: str, creds: Credentials) -> Any:
    """The Calendar client with its bundled discovery document, pointed at the emulator."""
    return build(
        "calendar",
        "v3",
        credentials=creds,
        static_discovery=True,
        client_options={"api_endpoint": f"{base_url}/calendar/v3/"},
    )


async def signed_in_service(emulator: GoogleSandbox) -> tuple[Any, Credentials]:
    token = await emulator.sign_in()
    creds = credentials(emulator.base_url, token["refresh_token"])
    await asyncio.to_thread(creds.refresh, Request())
    return calendar_service(emulator.base_url, creds), creds


def run(request: Any) -> Any:
    """Execute a googleapiclient request in a worker thread."""
    return asyncio.to_thread(request.execute)


async def list_everything(service: Any, calendar_id: str, **params: Any) -> tuple[list[Any], str]:
    """events.list paged with list_next down to nextSyncToken."""
    events = service.events()
    request = events.list(calendarId=calendar_id, **params)
    items: list[Any] = []
    response: dict[str, Any] = {}
    while request is not None:
        response = await run(request)
        items += response["items"]
        request = events.list_next(request, response)
    return items, response["nextSyncToken"]


async def test_google_auth_refreshes_at_the_emulator(emulator: GoogleSandbox) -> None:
    token = await emulator.sign_in()
    creds = credentials(emulator.base_url, token["refresh_token"])
    await asyncio.to_thread(creds.refresh, Request())
    assert creds.valid and creds.token and creds.token.startswith("ya29.")
    assert creds.expiry is not None
    assert creds.refresh_token == token["refresh_token"]


async def test_google_auth_refresh_of_a_revoked_token_raises_refresh_error(emulator: GoogleSandbox) -> None:
    from google.auth.exceptions import RefreshError

    token = await emulator.sign_in()
    await emulator.admin("POST", "grants/revoke", {"email": DEMO_EMAIL})
    creds = credentials(emulator.base_url, token["refresh_token"])
    with pytest.raises(RefreshError, match="invalid_grant"):
        await asyncio.to_thread(creds.refresh, Request())


async def test_calendar_list(emulator: GoogleSandbox) -> None:
    service, _ = await signed_in_service(emulator)
    listed = await run(service.calendarList().list())
    assert listed["items"][0]["id"] == DEMO_EMAIL
    assert listed["items"][0]["primary"] is True
    assert len(listed["items"]) == 3


async def test_events_paged_with_list_next_down_to_a_sync_token(emulator: GoogleSandbox) -> None:
    service, _ = await signed_in_service(emulator)
    items, sync_token = await list_everything(service, DEMO_EMAIL, maxResults=2)
    assert sync_token
    whole = await run(service.events().list(calendarId="primary"))
    assert [item["id"] for item in items] == [item["id"] for item in whole["items"]]


async def test_insert_patch_delete_and_incremental_sync(emulator: GoogleSandbox) -> None:
    service, _ = await signed_in_service(emulator)
    events = service.events()
    _, sync_token = await list_everything(service, DEMO_EMAIL)
    created = await run(
        events.insert(
            calendarId=DEMO_EMAIL,
            body={
                "summary": "SDK event",
                "start": {"dateTime": "2026-11-20T10:00:00+01:00", "timeZone": "Europe/Berlin"},
                "end": {"dateTime": "2026-11-20T11:00:00+01:00", "timeZone": "Europe/Berlin"},
            },
        )
    )
    assert created["status"] == "confirmed"
    changes, sync_token = await list_everything(service, DEMO_EMAIL, syncToken=sync_token)
    assert [(item["id"], item["summary"]) for item in changes] == [(created["id"], "SDK event")]
    patched = await run(
        events.patch(calendarId=DEMO_EMAIL, eventId=created["id"], body={"summary": "Renamed"})
    )
    assert patched["summary"] == "Renamed" and patched["etag"] != created["etag"]
    changes, sync_token = await list_everything(service, DEMO_EMAIL, syncToken=sync_token)
    assert [item["summary"] for item in changes] == ["Renamed"]
    assert await run(events.delete(calendarId=DEMO_EMAIL, eventId=created["id"])) == ""
    changes, _ = await list_everything(service, DEMO_EMAIL, syncToken=sync_token)
    assert [(item["id"], item["status"]) for item in changes] == [(created["id"], "cancelled")]


async def test_an_unknown_sync_token_is_http_error_410_full_sync_required(emulator: GoogleSandbox) -> None:
    service, _ = await signed_in_service(emulator)
    with pytest.raises(HttpError) as raised:
        await run(service.events().list(calendarId=DEMO_EMAIL, syncToken="CPDAlvWDx70CEPDAlvWDx70CGAU="))
    assert raised.value.resp.status == 410
    assert raised.value.error_details[0]["reason"] == "fullSyncRequired"
    assert raised.value.reason == "Sync token is no longer valid, a full sync is required."


async def test_sync_token_with_time_min_is_http_error_400(emulator: GoogleSandbox) -> None:
    service, _ = await signed_in_service(emulator)
    _, sync_token = await list_everything(service, DEMO_EMAIL)
    with pytest.raises(HttpError) as raised:
        await run(
            service.events().list(calendarId=DEMO_EMAIL, syncToken=sync_token, timeMin="2026-01-01T00:00:00Z")
        )
    assert raised.value.resp.status == 400


async def test_calendar_ids_with_at_and_hash(emulator: GoogleSandbox) -> None:
    service, _ = await signed_in_service(emulator)
    await emulator.admin(
        "POST", f"users/{DEMO_EMAIL}/calendars", {"id": HOLIDAYS, "summary": "Holidays"}, expect=201
    )
    created = await run(
        service.events().insert(
            calendarId=HOLIDAYS,
            body={
                "summary": "Tag der Einheit",
                "start": {"date": "2026-10-03"},
                "end": {"date": "2026-10-04"},
            },
        )
    )
    items, _ = await list_everything(service, HOLIDAYS)
    assert [item["id"] for item in items] == [created["id"]]
    fetched = await run(service.events().get(calendarId=HOLIDAYS, eventId=created["id"]))
    assert fetched["summary"] == "Tag der Einheit"


async def test_watch_notify_and_stop(emulator: GoogleSandbox, receiver: WebhookReceiver) -> None:
    service, _ = await signed_in_service(emulator)
    channel = await run(
        service.events().watch(
            calendarId=DEMO_EMAIL,
            body={
                "id": "sdk-channel-1",
                "type": "web_hook",
                "address": receiver.url,
                "token": "sdk-token",
                "params": {"ttl": "3600"},
            },
        )
    )
    assert channel["resourceId"] and isinstance(channel["expiration"], str)
    sync = await receiver.next()
    assert sync.headers["X-Goog-Resource-State"] == "sync"
    await run(
        service.events().insert(
            calendarId=DEMO_EMAIL, body={"start": {"date": "2026-12-01"}, "end": {"date": "2026-12-02"}}
        )
    )
    exists = await receiver.next()
    assert exists.body == b""
    assert {name: value for name, value in exists.headers.items() if name.startswith("X-Goog-")} == {
        "X-Goog-Channel-ID": "sdk-channel-1",
        "X-Goog-Channel-Token": "sdk-token",
        "X-Goog-Channel-Expiration": exists.headers["X-Goog-Channel-Expiration"],
        "X-Goog-Resource-ID": channel["resourceId"],
        "X-Goog-Resource-URI": channel["resourceUri"],
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": "2",
    }
    stop = service.channels().stop(body={"id": channel["id"], "resourceId": channel["resourceId"]})
    assert await run(stop) == ""
    await run(
        service.events().insert(
            calendarId=DEMO_EMAIL, body={"start": {"date": "2026-12-03"}, "end": {"date": "2026-12-04"}}
        )
    )
    await emulator.drain()
    assert receiver.pending() == 0


async def test_the_client_refreshes_by_itself_after_a_401(emulator: GoogleSandbox) -> None:
    service, creds = await signed_in_service(emulator)
    await emulator.admin("POST", "tokens/expire", {"email": DEMO_EMAIL})
    old_token = creds.token
    listed = await run(service.calendarList().list())
    assert listed["items"] and creds.token != old_token


async def test_authlib_code_flow_with_pkce_and_refresh_from_the_discovery_document(
    emulator: GoogleSandbox,
) -> None:
    async with httpx.AsyncClient() as http:
        metadata = (await http.get(f"{emulator.base_url}/.well-known/openid-configuration")).json()
    client = AsyncOAuth2Client(
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        redirect_uri="http://127.0.0.1:9/oauth/callback",
        scope=f"openid email {CALENDAR_SCOPE}",
        code_challenge_method="S256",
    )
    async with client:
        verifier = "discovery-driven-pkce-verifier-0123456789-abcdefghijkl"
        url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, access_type="offline"
        )
        answer = await emulator.consent(url)
        assert answer["state"] == state
        token = await client.fetch_token(
            metadata["token_endpoint"], code=answer["code"], code_verifier=verifier
        )
        info = (await client.get(metadata["userinfo_endpoint"])).json()
        refreshed = await client.refresh_token(
            metadata["token_endpoint"], refresh_token=token["refresh_token"]
        )
    assert info["email"] == DEMO_EMAIL
    assert refreshed["access_token"] != token["access_token"]


def readme_examples() -> dict[str, Any]:
    """The Python blocks of the README's "Google's own clients" section, executed."""
    readme = (Path(__file__).resolve().parents[2] / "libs" / "sandbox" / "README.md").read_text()
    section = readme.split("### Google's own clients against the emulator", 1)[1].split("\n## ", 1)[0]
    namespace: dict[str, Any] = {}
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL):
        exec(compile(block, "libs/sandbox/README.md", "exec"), namespace)
    return namespace


async def test_the_readme_examples_work_as_written(emulator: GoogleSandbox) -> None:
    examples = readme_examples()
    token = await examples["sign_in"](emulator.base_url, emulator.consent)
    assert token["refresh_token"] and token["id_token"]
    items, sync_token = await asyncio.to_thread(
        examples["full_sync"], emulator.base_url, token["refresh_token"]
    )
    assert sync_token
    assert any(item.get("summary") == "Team stand-up" for item in items)
    assert any(item["status"] == "cancelled" for item in items)


async def test_instances_get_and_update_through_the_client(emulator: GoogleSandbox) -> None:
    service, _ = await signed_in_service(emulator)
    events = service.events()
    items, _ = await list_everything(service, DEMO_EMAIL)
    standup = next(item for item in items if item.get("summary") == "Team stand-up" and "recurrence" in item)
    instances = await run(
        events.instances(
            calendarId=DEMO_EMAIL,
            eventId=standup["id"],
            timeMin="2026-10-26T00:00:00Z",
            timeMax="2026-11-03T00:00:00Z",
        )
    )
    assert len(instances["items"]) == 3
    fetched = await run(events.get(calendarId=DEMO_EMAIL, eventId=instances["items"][0]["id"]))
    assert fetched["recurringEventId"] == standup["id"]
    replaced = await run(
        events.update(
            calendarId=DEMO_EMAIL,
            eventId=standup["id"],
            body={**standup, "summary": "Daily stand-up"},
        )
    )
    assert replaced["summary"] == "Daily stand-up" and replaced["recurrence"] == standup["recurrence"]
