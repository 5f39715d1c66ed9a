"""Microsoft's own Python SDK (msgraph-sdk) and authlib against the Microsoft emulator, unpatched.

The SDK is pointed at the emulator only through `GraphRequestAdapter.base_url`; authlib only
through the emulator's OpenID Connect discovery document. Where they disagree with the emulator,
the emulator is fixed, never these tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.event import Event
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.users.item.calendars.item.calendar_view.delta.delta_request_builder import (
    DeltaRequestBuilder,
)
from sandbox.test_microsoft_harness import (
    REDIRECT_URI,
    SCOPES,
    Emulator,
    Receiver,
    running_emulator,
    running_receiver,
)

from chronapilot.sandbox.microsoft.seed import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET


class StaticTokenProvider(AccessTokenProvider):
    """Hands the SDK the access token the emulator issued."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
        return self.token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator([])


def graph_client(base_url: str, token: str) -> GraphServiceClient:
    """The README's example: msgraph-sdk against the emulator."""
    auth = BaseBearerTokenAuthenticationProvider(StaticTokenProvider(token))
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{base_url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with running_emulator() as emu:
        yield emu


@pytest.fixture
async def client(emulator: Emulator) -> GraphServiceClient:
    token = await emulator.sign_in()
    return graph_client(emulator.base_url, token["access_token"])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as rec:
        yield rec


def _delta_config(page: int, start: str | None = None, end: str | None = None) -> RequestConfiguration[Any]:
    query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        start_date_time=start, end_date_time=end
    )
    config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=query)
    config.headers.add("Prefer", f"odata.maxpagesize={page}")
    return config


def _day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).strftime("%Y-%m-%d")


async def _delta_round(
    client: GraphServiceClient, calendar_id: str, link: str | None, page: int = 20
) -> tuple[list[Event], str, int]:
    builder = client.me.calendars.by_calendar_id(calendar_id).calendar_view.delta
    if link is None:
        response = await builder.get(_delta_config(page, _day(-60) + "T00:00:00Z", _day(60) + "T00:00:00Z"))
    else:
        response = await builder.with_url(link).get(_delta_config(page))
    items: list[Event] = []
    pages = 1
    while True:
        assert response is not None
        items += response.value or []
        if response.odata_delta_link:
            return items, response.odata_delta_link, pages
        assert response.odata_next_link
        response = await builder.with_url(response.odata_next_link).get(_delta_config(page))
        pages += 1


async def test_me_and_calendars(client: GraphServiceClient) -> None:
    me = await client.me.get()
    assert me is not None
    assert me.mail == "demo.microsoft@sandbox.chronapilot.dev"
    assert me.user_principal_name == "demo.microsoft@sandbox.chronapilot.dev"
    calendars = await client.me.calendars.get()
    assert calendars is not None
    assert calendars.value
    assert [c.name for c in calendars.value] == ["Calendar", "Family", "Work"]
    assert calendars.value[0].is_default_calendar is True


async def test_delta_paged_then_create_patch_delete_show_up(client: GraphServiceClient) -> None:
    calendars = await client.me.calendars.get()
    assert calendars is not None
    assert calendars.value
    work = next(c for c in calendars.value if c.name == "Work")
    assert work.id
    items, delta_link, pages = await _delta_round(client, work.id, None)
    assert pages > 1
    assert items
    assert {str(i.type) for i in items} <= {
        "EventType.SingleInstance",
        "EventType.Occurrence",
        "EventType.Exception",
    }

    event = Event(
        subject="From the SDK",
        start=DateTimeTimeZone(date_time=f"{_day(7)}T09:00:00", time_zone="Europe/Berlin"),
        end=DateTimeTimeZone(date_time=f"{_day(7)}T10:00:00", time_zone="Europe/Berlin"),
    )
    created = await client.me.calendars.by_calendar_id(work.id).events.post(event)
    assert created is not None
    assert created.id
    patched = await client.me.events.by_event_id(created.id).patch(Event(subject="Patched by the SDK"))
    assert patched is not None
    assert patched.subject == "Patched by the SDK"
    changes, delta_link, _ = await _delta_round(client, work.id, delta_link)
    assert [(c.id, c.subject) for c in changes] == [(created.id, "Patched by the SDK")]

    await client.me.events.by_event_id(created.id).delete()
    changes, _, _ = await _delta_round(client, work.id, delta_link)
    assert [c.id for c in changes] == [created.id]
    assert changes[0].additional_data["@removed"] == {"reason": "deleted"}


async def test_unknown_delta_token_raises_odata_error_410(client: GraphServiceClient) -> None:
    calendars = await client.me.calendars.get()
    assert calendars is not None
    assert calendars.value
    assert calendars.value[0].id
    calendar_id = calendars.value[0].id
    builder = client.me.calendars.by_calendar_id(calendar_id).calendar_view.delta
    base = client.request_adapter.base_url
    with pytest.raises(ODataError) as failure:
        await builder.with_url(f"{base}/me/calendars/{calendar_id}/calendarView/delta?$deltatoken=nope").get()
    assert failure.value.response_status_code == 410
    assert failure.value.error is not None
    assert (failure.value.error.code or "").lower() == "syncstatenotfound"


async def test_subscription_notification_renewal_and_deletion(
    emulator: Emulator, client: GraphServiceClient, receiver: Receiver
) -> None:
    expiration = datetime.now(UTC) + timedelta(minutes=30)
    created = await client.subscriptions.post(
        Subscription(
            change_type="created,updated,deleted",
            notification_url=f"{receiver.url}/notify",
            lifecycle_notification_url=f"{receiver.url}/lifecycle",
            resource="me/events",
            expiration_date_time=expiration,
            client_state="sdk-client-state",
        )
    )
    assert created is not None
    assert created.id
    assert receiver.handshakes
    event = await client.me.events.post(
        Event(
            subject="Notify the SDK",
            start=DateTimeTimeZone(date_time=f"{_day(8)}T09:00:00", time_zone="UTC"),
            end=DateTimeTimeZone(date_time=f"{_day(8)}T09:30:00", time_zone="UTC"),
        )
    )
    assert event is not None
    item = (await receiver.next())["value"][0]
    assert item["clientState"] == "sdk-client-state"
    assert item["resourceData"]["id"] == event.id

    later = datetime.now(UTC) + timedelta(hours=2)
    renewed = await client.subscriptions.by_subscription_id(created.id).patch(
        Subscription(expiration_date_time=later)
    )
    assert renewed is not None
    assert renewed.expiration_date_time is not None
    assert abs((renewed.expiration_date_time - later).total_seconds()) < 1
    await client.subscriptions.by_subscription_id(created.id).delete()
    with pytest.raises(ODataError) as gone:
        await client.subscriptions.by_subscription_id(created.id).get()
    assert gone.value.response_status_code == 404


async def test_a_refusing_receiver_makes_creation_fail_with_400(client: GraphServiceClient) -> None:
    async with running_receiver("wrong-body") as bad:
        with pytest.raises(ODataError) as refused:
            await client.subscriptions.post(
                Subscription(
                    change_type="created",
                    notification_url=f"{bad.url}/notify",
                    resource="me/events",
                    expiration_date_time=datetime.now(UTC) + timedelta(minutes=30),
                    client_state="x",
                )
            )
    assert refused.value.response_status_code == 400
    assert refused.value.error is not None
    assert refused.value.error.code == "ValidationError"


async def test_authlib_from_the_discovery_document_pkce_refresh_rotation(emulator: Emulator) -> None:
    async with httpx.AsyncClient() as http:
        meta = (await http.get(f"{emulator.base_url}/common/v2.0/.well-known/openid-configuration")).json()
    assert meta["authorization_endpoint"].startswith(emulator.base_url)
    assert meta["token_endpoint"].startswith(emulator.base_url)
    async with AsyncOAuth2Client(
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        redirect_uri=REDIRECT_URI,
        scope=SCOPES,
        code_challenge_method="S256",
        token_endpoint=meta["token_endpoint"],
        token_endpoint_auth_method="client_secret_post",
    ) as oauth:
        location, verifier = await emulator.consent(oauth, "allow")
        first = await oauth.fetch_token(
            meta["token_endpoint"], authorization_response=location, code_verifier=verifier
        )
        second = await oauth.refresh_token(meta["token_endpoint"])
        assert second["refresh_token"] != first["refresh_token"]
        with pytest.raises(OAuthError) as stale:
            await oauth.refresh_token(meta["token_endpoint"], refresh_token=first["refresh_token"])
        assert stale.value.error == "invalid_grant"
    me = await graph_client(emulator.base_url, second["access_token"]).me.get()
    assert me is not None
    assert me.mail == "demo.microsoft@sandbox.chronapilot.dev"


README = Path(__file__).resolve().parents[2] / "libs" / "sandbox" / "README.md"


def _readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    after = text.split("<!-- microsoft-sdk-example -->", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


async def test_the_readme_example_runs_against_the_emulator(emulator: Emulator) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(_readme_example(), str(README), "exec"), namespace)
    token = await emulator.sign_in()
    names = await namespace["calendar_names"](emulator.base_url, token["access_token"])
    assert names == ["Calendar", "Family", "Work"]


async def test_the_sdk_waits_out_a_429_and_retries(emulator: Emulator, client: GraphServiceClient) -> None:
    await emulator.admin("POST", "faults", {"route": "/v1.0/me", "status": 429, "retry_after": 1, "times": 1})
    me = await client.me.get()
    assert me is not None and me.mail == "demo.microsoft@sandbox.chronapilot.dev"
    counters = await emulator.admin("GET", "counters")
    assert counters["requests"]["GET /v1.0/me"] == 2


async def test_an_expired_token_raises_odata_error_401(
    emulator: Emulator, client: GraphServiceClient
) -> None:
    await emulator.admin("POST", "tokens/expire", {"kind": "access"})
    with pytest.raises(ODataError) as failure:
        await client.me.get()
    assert failure.value.response_status_code == 401
    assert failure.value.error is not None and failure.value.error.code == "InvalidAuthenticationToken"
