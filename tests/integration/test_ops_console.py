"""The ops console in-process against the real embedded MongoDB and broker: its overview and
fleet gauges count data seeded through the real writers, its token gate, the connection
search and page, and both operator actions (the teardown one carried through by a real token
refresher)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from chronapilot.common.bus.outbox import outbox_status
from chronapilot.common.ids import new_id
from chronapilot.common.providers.base import CalendarInfo
from chronapilot.common.runtime import RUNTIME, Runtime
from chronapilot.common.settings import OpsSettings, Settings
from chronapilot.common.store.webhook_deliveries import new_delivery
from chronapilot.devstack.processes import free_port
from chronapilot.ops.console.app import create_app
from chronapilot.ops.console.consumer_lag import LagUnavailable, consumer_lag

from helpers import eventually

pytestmark = pytest.mark.integration

TOKEN = "ops-console-test-token-4242"
APP = "app_ops"


def console_settings(isolated: Any, **ops: Any) -> Settings:
    base = isolated.settings()
    service = base.service.model_copy(update={"ops_port": free_port(), "ops_token": SecretStr(TOKEN)})
    # scrape a target that does not answer: the overview must say so
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    options = {
        "scrape_targets": f"sync-worker={dead}",
        "sample_interval_s": 0.5,
        "gauges_interval_s": 0.5,
        **ops,
    }
    return base.model_copy(update={"service": service, "ops": OpsSettings(**options)})


@asynccontextmanager
async def running(app: web.Application, port: int) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Seed:
    """Connections and their parts, written by the real writers of a running service."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def connection(self, provider: str, email: str, calendars: int = 1) -> str:
        connection_id = new_id("con")
        key = {
            "application_id": APP,
            "user_id": "usr_ops",
            "provider": provider,
            "provider_account_id": email,
        }
        runtime = self.runtime
        listed = [
            CalendarInfo(f"{email}-cal-{n}", f"Calendar {n}", n == 0, False, "UTC", None)
            for n in range(calendars)
        ]

        async def write(session: Any) -> None:
            listing = await runtime.repos.calendars.upsert_listed(
                connection_id=connection_id,
                application_id=APP,
                calendars=listed,
                now=runtime.clock.now(),
                session=session,
            )
            await runtime.connections.activate(
                session,
                key=key,
                email=email,
                calendar_ids=listing.ids,
                connection_id=connection_id,
                token_next_at=None,
            )

        await runtime.store.in_transaction(write)
        return connection_id

    async def credentials(self, connection_id: str, provider: str, secret: str) -> None:
        sealed = self.runtime.cipher.encrypt(secret, associated_data=connection_id)
        await self.runtime.repos.credentials.save_grant(
            None,
            connection_id,
            provider=provider,
            fields={"kind": "oauth", "access_token": sealed, "refresh_token": sealed, "scopes": ["calendar"]},
            stale=(),
            now=self.runtime.clock.now(),
        )

    async def synced(self, connection_id: str) -> None:
        connection = await self.runtime.connections.get(connection_id)
        assert connection is not None
        for calendar_id in connection["calendar_ids"]:
            await self.runtime.repos.calendars.record_outcome(
                calendar_id, now=self.runtime.clock.now(), error=None
            )

    async def failing_subscription(self, connection_id: str, provider: str) -> None:
        subscriptions = self.runtime.repos.webhook_subscriptions
        now = self.runtime.clock.now()
        await subscriptions.ensure(connection_id, provider, ["cal-failing"], now=now)
        record = (await subscriptions.for_connection(connection_id))[0]
        await subscriptions.settle(
            record.id,
            due_at=now + timedelta(minutes=5),
            status="failing",
            now=now,
            attempts=2,
            last_error="server_error",
        )

    async def delivery(self, connection_id: str) -> None:
        now = self.runtime.clock.now()
        await self.runtime.repos.webhook_deliveries.create_many(
            [
                new_delivery(
                    application_id=APP,
                    endpoint_id="we_ops",
                    event_type="connection.updated",
                    connection_id=connection_id,
                    payload={},
                    source_id=new_id("evt"),
                    now=now,
                    next_attempt_at=now + timedelta(hours=1),
                )
            ]
        )


@pytest.fixture
async def console(isolated: Any) -> AsyncIterator[tuple[str, web.Application, Seed]]:
    settings = console_settings(isolated)
    app = create_app(settings)
    async with running(app, settings.service.ops_port) as url:
        yield url, app, Seed(app[RUNTIME])


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def gauges(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_the_overview_and_the_fleet_gauges_count_what_the_writers_wrote(console, http):
    url, app, seed = console
    runtime = app[RUNTIME]
    healthy = await seed.connection("google", "healthy@example.com", calendars=2)
    await seed.synced(healthy)
    revoked = await seed.connection("google", "revoked@example.com")
    await runtime.connections.reauth_required(revoked, "the grant was revoked")
    gone = await seed.connection("microsoft", "gone@example.com")
    await runtime.connections.disconnect(gone, APP)
    await seed.failing_subscription(healthy, "google")
    await seed.delivery(healthy)
    for offset in (7, 8):  # two messages the sync worker's group gave up on, as its runner records them
        await runtime.repos.dead_letters.record(
            group_id="t.sync-worker",
            topic="t.sync.requests.v1",
            partition=0,
            offset=offset,
            key=healthy,
            value="{}",
            event_type="sync.requested",
            envelope_id=None,
            error_type="KeyError",
            error_message="'provider'",
            attempts=3,
            failed_at=runtime.clock.now(),
        )

    async def published() -> dict[Any, float] | None:
        async with http.get(f"{url}/metrics", headers=BEARER) as response:
            assert response.status == 200
            values = gauges(await response.text())
        key = (
            "chronapilot_connections",
            (("provider", "google"), ("status", "error"), ("sync_mode", "polling")),
        )
        return values if values.get(key) == 1.0 else None

    values = await eventually(published, timeout_s=20)
    connections = {labels: v for (name, labels), v in values.items() if name == "chronapilot_connections"}
    assert connections == {
        (("provider", "google"), ("status", "active"), ("sync_mode", "polling")): 1.0,
        (("provider", "google"), ("status", "error"), ("sync_mode", "polling")): 1.0,
        (("provider", "microsoft"), ("status", "disconnected"), ("sync_mode", "polling")): 1.0,
    }
    assert values[("chronapilot_subscription_renewals_failing", (("provider", "google"),))] == 1.0
    assert values[("chronapilot_webhook_deliveries", (("status", "pending"),))] == 1.0
    # the one active connection synced just now: not stale, a few seconds old at most
    assert values[("chronapilot_connections_stale", (("provider", "google"),))] == 0.0
    assert values[("chronapilot_sync_staleness_seconds", (("provider", "google"),))] < 60
    dead = (("group", "t.sync-worker"), ("topic", "t.sync.requests.v1"))
    assert values[("chronapilot_dead_letters", dead)] == 2.0

    async with http.get(f"{url}/", headers=BEARER) as response:
        assert response.status == 200
        html = await response.text()
        csp = response.headers["Content-Security-Policy"]
    assert re.search(r"<td>t\.sync\.requests\.v1</td><td>t\.sync-worker</td><td[^>]*>2</td>", html)
    assert "script-src" not in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "<script" not in html
    assert re.search(r"google</td><td class=\"bad\">reauth_required</td><td class=\"num\">1<", html), html
    assert revoked in html and "revoked@example.com" in html  # in the "connections in error" panel
    assert gone in html  # its teardown has not finished (no refresher ran)
    assert "not answering" in html  # the scrape target that does not answer
    assert "<svg" in html


async def test_the_gate_refuses_without_or_with_a_wrong_token_and_a_login_opens_it(console, http):
    url, app, seed = console
    connection_id = await seed.connection("google", "gate@example.com")
    async with http.get(f"{url}/metrics") as response:
        assert response.status == 401
    async with http.get(f"{url}/metrics", headers={"Authorization": "Bearer wrong"}) as response:
        assert response.status == 401
        assert "chronapilot_" not in await response.text()
    async with http.get(f"{url}/", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/login"
    async with http.get(f"{url}/healthz") as response:
        assert response.status == 200
    async with http.post(f"{url}/connections/{connection_id}/resync", allow_redirects=False) as response:
        assert response.status == 401
    async with http.post(f"{url}/login", data={"token": "wrong"}) as response:
        assert response.status == 401
        assert "not the console" in await response.text()
    async with http.post(f"{url}/login", data={"token": TOKEN}, allow_redirects=False) as response:
        assert response.status == 303
        cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    async with http.get(f"{url}/") as response:
        assert response.status == 200
    # a signed-in browser's POST without the page's CSRF token is refused, and does nothing
    async with http.post(f"{url}/connections/{connection_id}/resync", data={}) as response:
        assert response.status == 403
    assert (await app[RUNTIME].connections.get(connection_id))["manual_refresh_at"] is None
    async with http.get(f"{url}/nowhere") as response:
        assert response.status == 404 and "Traceback" not in await response.text()


def test_the_console_refuses_to_start_outside_development_without_a_token(isolated):
    env = isolated.env(CHRONAPILOT_OPS_PORT=str(free_port()))
    result = subprocess.run(
        [sys.executable, "-m", "chronapilot.ops"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "configuration error" in lines[0] and "CHRONAPILOT_OPS_TOKEN" in lines[0]
    assert "Traceback" not in result.stderr


async def test_a_search_by_id_or_by_e_mail_opens_the_connection_with_its_story_and_no_secret(console, http):
    url, app, seed = console
    runtime = app[RUNTIME]
    connection_id = await seed.connection("google", "Story.Person@example.com", calendars=2)
    other = await seed.connection("microsoft", "someone.else@example.com")
    secret = "ya29.secret-access-token-never-shown"
    await seed.credentials(connection_id, "google", secret)
    await runtime.connections.reauth_required(connection_id, "the grant was revoked")
    sealed = (await runtime.repos.credentials.get(connection_id))["access_token"]

    for query in (connection_id, "story.person@EXAMPLE.com"):
        async with http.get(f"{url}/connections", params={"q": query}, headers=BEARER) as response:
            assert response.status == 200
            assert response.url.path == f"/connections/{connection_id}"
            html = await response.text()
        assert 'id="status">error<' in html and 'id="error-code">reauth_required<' in html
        assert html.count("<tr><td>") >= 2  # the history: activated, then reauth_required
        assert ">activated<" in html and ">reauth_required<" in html
        assert "Calendar 0" in html and "Calendar 1" in html
        assert "held (oauth)" in html
        assert secret not in html and sealed not in html
        assert other not in html
    async with http.get(f"{url}/connections", params={"q": "nobody@example.com"}, headers=BEARER) as response:
        assert response.status == 200 and "No connection has that id" in await response.text()
    async with http.get(f"{url}/connections/con_doesnotexist", headers=BEARER) as response:
        assert response.status == 404


async def test_force_resync_queues_the_apis_manual_full_sync_once_a_minute(console, http):
    url, app, seed = console
    runtime = app[RUNTIME]
    connection_id = await seed.connection("google", "resync@example.com")
    async with http.post(f"{url}/login", data={"token": TOKEN}) as response:
        assert response.status == 200
    async with http.get(f"{url}/connections/{connection_id}") as response:
        html = await response.text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf is not None
    async with http.post(
        f"{url}/connections/{connection_id}/resync", data={"csrf_token": csrf.group(1)}
    ) as response:
        assert response.status == 200 and response.url.path == f"/connections/{connection_id}"
        assert "A full sync was requested." in await response.text()
    queued = await runtime.store.db.outbox.find(
        {"envelope.type": "sync.requested", "envelope.connection_id": connection_id}
    ).to_list()
    assert [r["envelope"]["data"]["reason"] for r in queued] == ["manual"]
    assert [r["envelope"]["data"]["mode"] for r in queued] == ["full"]
    async with http.post(f"{url}/connections/{connection_id}/resync", headers=BEARER) as response:
        assert "less than a minute ago" in await response.text()
    assert len(await runtime.store.db.outbox.find({"envelope.type": "sync.requested"}).to_list()) == 1


async def test_retry_teardown_carries_an_unfinished_disconnect_through_the_token_refresher(
    console, http, isolated
):
    from chronapilot.token_refresher.app import create_app as create_refresher

    url, app, seed = console
    runtime = app[RUNTIME]
    subscriptions = runtime.repos.webhook_subscriptions
    connection_id = await seed.connection("microsoft", "teardown@example.com")
    await seed.credentials(connection_id, "microsoft", "refresh-secret")
    await subscriptions.ensure(connection_id, "microsoft", ["cal-teardown"], now=runtime.clock.now())

    refresher_settings = isolated.settings(token_refresher_port=free_port())
    refresher = create_refresher(refresher_settings)
    async with running(refresher, refresher_settings.service.token_refresher_port):
        await runtime.connections.disconnect(connection_id, APP)
        group = f"{isolated.topic_prefix}.token-refresher"

        async def refresher_caught_up() -> bool:
            if (await outbox_status(runtime.store)).unsent:  # connection.disconnected not on Kafka yet
                return False
            lag = await consumer_lag(runtime.settings.kafka)
            assert not isinstance(lag, LagUnavailable), lag
            return any(
                entry.group == group and entry.topic.endswith("connections.v1") and entry.lag == 0
                for entry in lag
            )

        # the refresher saw connection.disconnected and waits for the gateway's release; the
        # gateway stops the subscription (its record goes) but dies before recording that
        await eventually(refresher_caught_up, timeout_s=30)
        record = (await subscriptions.for_connection(connection_id))[0]
        await subscriptions.delete(record.id)
        assert (await runtime.connections.get(connection_id))["revoked_at"] is None
        async with http.get(f"{url}/connections/{connection_id}", headers=BEARER) as response:
            assert "Retry teardown</button>" in await response.text()
        async with http.get(f"{url}/", headers=BEARER) as response:
            assert connection_id in await response.text()  # among the unfinished teardowns

        async with http.post(f"{url}/connections/{connection_id}/teardown", headers=BEARER) as response:
            assert response.status == 200
            assert "the token refresher revokes next" in await response.text()

        async def torn_down() -> dict[str, Any] | None:
            connection = await runtime.connections.get(connection_id)
            return connection if connection and connection.get("revoked_at") else None

        connection = await eventually(torn_down, timeout_s=30)
    assert connection["revocation"]["outcome"] == "not_supported"  # Microsoft: no client revocation
    assert await runtime.repos.credentials.get(connection_id) is None
    async with http.post(f"{url}/connections/{connection_id}/teardown", headers=BEARER) as response:
        assert "The teardown is complete" in await response.text()


async def test_a_broker_that_cannot_answer_gives_an_unknown_lag_with_its_reason_not_a_zero(isolated):
    kafka = isolated.settings().kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    lag = await consumer_lag(kafka)
    assert isinstance(lag, LagUnavailable)
    assert "did not answer" in lag.reason


async def test_in_development_without_a_token_the_console_is_open_and_its_forms_still_carry_csrf(
    isolated, http
):
    from chronapilot.common.settings import Environment

    settings = console_settings(isolated).model_copy(update={"env": Environment.DEVELOPMENT})
    settings = settings.model_copy(
        update={"service": settings.service.model_copy(update={"ops_token": None})}
    )
    app = create_app(settings)
    async with running(app, settings.service.ops_port) as url:
        connection_id = await Seed(app[RUNTIME]).connection("google", "dev@example.com")
        async with http.get(f"{url}/metrics") as response:
            assert response.status == 200
        async with http.get(f"{url}/connections/{connection_id}") as response:
            assert response.status == 200
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', await response.text())
        assert csrf is not None
        async with http.post(
            f"{url}/connections/{connection_id}/resync", data={"csrf_token": "forged"}
        ) as response:
            assert response.status == 403
        async with http.post(
            f"{url}/connections/{connection_id}/resync", data={"csrf_token": csrf.group(1)}
        ) as response:
            assert "A full sync was requested." in await response.text()
