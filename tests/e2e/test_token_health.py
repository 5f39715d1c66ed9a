"""Token health end to end: token refresher processes against the emulators, with 60-second
access tokens, accounts linked through the API's consent flow, and a "worker" in the test
process using the shared TokenService as the sync worker does."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import REGISTRY
from token_harness import Linked, short_token_sandbox, token_requests

from chronapilot.common.clock import aware
from chronapilot.devstack.processes import Child, free_port
from chronapilot.sandbox.launcher import Sandbox

from helpers import eventually

pytestmark = pytest.mark.e2e

#: How long the 60-second tokens are exercised: past one lifetime and a refresh in `make test`,
#: several minutes (150 s, four refreshes) in `make soak`.
ACTIVITY_S = float(os.environ.get("CHRONAPILOT_TEST_TOKEN_ACTIVITY_S", "75"))


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with short_token_sandbox(ttl_s=60) as started:
        yield started


@pytest.fixture
def env(api, browser, sandbox, http) -> Linked:
    return Linked(api, browser, sandbox, http)


@dataclass
class Refresher:
    child: Child
    port: int


@asynccontextmanager
async def refreshers(
    isolated, sandbox: Sandbox, log_dir: Path, count: int, **settings: str
) -> AsyncIterator[list[Refresher]]:
    """``count`` real ``python -m chronapilot.token_refresher`` processes on this test's
    database and topics, pointed at the sandbox; ``settings`` are ``CHRONAPILOT_TOKEN_*``.

    They are stopped (SIGTERM, graceful) off the event loop: the emulators run on this loop,
    and a refresher finishing its last refresh needs them to answer."""
    started: list[Refresher] = []
    try:
        for n in range(count):
            port = free_port()
            env = isolated.env(
                **sandbox.env(),
                CHRONAPILOT_TOKEN_REFRESHER_PORT=str(port),
                **{f"CHRONAPILOT_TOKEN_{key.upper()}": value for key, value in settings.items()},
            )
            child = Child.start(
                f"refresher-{n}",
                [sys.executable, "-m", "chronapilot.token_refresher"],
                env=env,
                log_path=log_dir / f"refresher-{n}.log",
            )
            started.append(Refresher(child, port))
        yield started
    finally:
        await asyncio.gather(*(asyncio.to_thread(r.child.stop, 20) for r in started))


async def wait_ready(started: list[Refresher], http: aiohttp.ClientSession) -> None:
    for refresher in started:

        async def ready(refresher: Refresher = refresher) -> bool:
            assert refresher.child.alive(), refresher.child.tail()
            try:
                async with http.get(f"http://127.0.0.1:{refresher.port}/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, timeout_s=60)


def logs(log_dir: Path) -> str:
    return "".join(path.read_text() for path in sorted(log_dir.glob("refresher-*.log")))


def on_demand_refreshes() -> float:
    return sum(
        REGISTRY.get_sample_value(
            "chronapilot_token_refreshes_total", {"provider": provider, "trigger": "on_demand"}
        )
        or 0.0
        for provider in ("google", "microsoft")
    )


async def test_sixty_second_tokens_never_reach_an_emulator_expired_during_minutes_of_activity(
    env, isolated, tmp_path
):
    connections = {provider: await env.link(provider) for provider in ("google", "microsoft")}
    worker = env.token_service(min_validity_s=5)
    for provider in connections:
        await env.reset_counters(provider)
    before = on_demand_refreshes()
    async with refreshers(
        isolated, env.sandbox, tmp_path, 2, refresh_margin_s="30", refresh_tick_interval_s="1"
    ) as children:
        await wait_ready(children, env.http)
        calls = {provider: 0 for provider in connections}

        async def activity(provider: str, connection_id: str) -> None:
            client = worker.providers[provider]
            source = worker.token_source(connection_id)
            deadline = time.monotonic() + ACTIVITY_S
            while time.monotonic() < deadline:
                assert await client.list_calendars(source)
                calls[provider] += 1
                await asyncio.sleep(0.25)

        await asyncio.gather(*(activity(p, c) for p, c in connections.items()))
        for refresher in children:
            assert refresher.child.alive(), refresher.child.tail()

    expected_refreshes = int(ACTIVITY_S // 30) - 1
    for provider, connection_id in connections.items():
        counters = await env.counters(provider)
        assert counters["unauthorized"] == 0, (provider, counters)
        assert calls[provider] > ACTIVITY_S, calls
        refreshed = await env.events("token.refreshed", connection_id)
        assert len(refreshed) >= expected_refreshes, (provider, len(refreshed))
        assert token_requests(counters, provider) == len(refreshed), "no token request was wasted"
        connection = await env.connection(connection_id)
        assert connection["status"] == "active"
        assert connection["token_refresh"]["failures_count"] == 0
        assert connection["token_refresh"]["last_at"] > datetime.now(UTC) - timedelta(seconds=40)
    assert on_demand_refreshes() == before, "the refresher processes did every refresh"
    assert not await env.events("token.refresh_failed")
    text = logs(tmp_path)
    assert "token.refreshed" in text and "Traceback" not in text
    assert "ya29." not in text, "no token in the logs"


async def test_microsoft_rotation_with_two_refreshers_and_a_racing_worker_never_hits_invalid_grant(
    env, isolated, tmp_path
):
    connection_id = await env.link("microsoft")
    worker = env.token_service(min_validity_s=5)
    await env.reset_counters("microsoft")
    before = on_demand_refreshes()
    async with refreshers(
        isolated,
        env.sandbox,
        tmp_path,
        2,
        refresh_margin_s="60",  # = the token lifetime: always due, refreshed every tick
        refresh_tick_interval_s="0.2",
        refresh_lease_s="10",
    ) as children:
        await wait_ready(children, env.http)
        client = worker.providers["microsoft"]
        deadline = time.monotonic() + 20

        async def race(forced: bool) -> int:
            source, rounds = worker.token_source(connection_id), 0
            while time.monotonic() < deadline:
                await source(forced)
                assert await client.list_calendars(source)
                rounds += 1
            return rounds

        rounds = await asyncio.gather(race(True), race(True), race(False))
        assert min(rounds) > 5
        for refresher in children:
            assert refresher.child.alive(), refresher.child.tail()

    assert not await env.events("token.refresh_failed", connection_id), "no invalid_grant"
    refreshed = await env.events("token.refreshed", connection_id)
    counters = await env.counters("microsoft")
    assert len(refreshed) > 10
    assert all(event["data"]["rotated"] for event in refreshed)
    assert token_requests(counters, "microsoft") == len(refreshed), "every token request succeeded"
    assert counters["unauthorized"] == 0
    connection = await env.connection(connection_id)
    assert connection["status"] == "active"
    assert connection["token_refresh"]["failures_count"] == 0
    outcome = await worker.refresh(connection_id)
    assert outcome.result == "refreshed", "the stored refresh token is the live one"
    text = logs(tmp_path)
    assert "invalid_grant" not in text
    by_refresher = [path.read_text().count('"token.refreshed"') for path in tmp_path.glob("refresher-*.log")]
    assert len(by_refresher) == 2 and min(by_refresher) >= 3, by_refresher
    assert on_demand_refreshes() - before >= 3, "the worker's forced refreshes raced them"
    stored = await env.credentials(connection_id)
    for field in ("access_token", "refresh_token"):
        secret = env.runtime.cipher.decrypt(stored[field], associated_data=connection_id)
        assert secret not in text, f"the {field} leaked into the logs"


async def test_a_revoked_grant_is_reauth_required_within_one_tick_and_relinking_restores_it(
    env, isolated, tmp_path
):
    user_id = await env.browser.create_user("ext-revoked")
    connection_id = await env.link("google", user_id)
    tick_s = 2.0
    async with refreshers(
        isolated, env.sandbox, tmp_path, 1, refresh_margin_s="30", refresh_tick_interval_s=str(tick_s)
    ) as children:
        await wait_ready(children, env.http)
        await env.revoke_grant("google")
        await env.make_due(connection_id, in_s=20)
        started = time.monotonic()

        async def in_error() -> bool:
            return (await env.connection(connection_id))["status"] == "error"

        await eventually(in_error, timeout_s=tick_s + 3, interval_s=0.05)
        took = time.monotonic() - started
        connection = await env.connection(connection_id)
        assert connection["error"]["code"] == "reauth_required"
        assert took <= tick_s + 1.0, took
        status, shown = await _get(env, connection_id)
        assert status == 200 and shown["status"] == "error"
        assert shown["error"]["code"] == "reauth_required"
        assert [e["data"]["permanent"] for e in await env.events("token.refresh_failed", connection_id)] == [
            True
        ]

        assert await env.link("google", user_id) == connection_id
        _, relinked = await _get(env, connection_id)
        assert relinked["status"] == "active" and relinked["id"] == connection_id
        await env.make_due(connection_id, in_s=20)

        async def refreshed_again() -> bool:
            return bool(await env.events("token.refreshed", connection_id))

        await eventually(refreshed_again, timeout_s=tick_s + 5)
        assert (await env.connection(connection_id))["status"] == "active"


async def test_delete_revokes_at_the_provider_removes_the_credentials_and_keeps_the_mirror(
    env, isolated, tmp_path
):
    connection_id = await env.link("google")
    calendar = await env.db.calendars.find_one({"connection_id": connection_id})
    await env.db.events.insert_one(  # as the sync worker's mirror would hold it
        {
            "_id": "evt_tokenhealth0001",
            "connection_id": connection_id,
            "calendar_id": calendar["_id"],
            "provider_calendar_id": calendar["provider_calendar_id"],
            "provider_event_id": "mirrored-1",
            "summary": "kept after disconnect",
        }
    )
    await env.reset_counters("google")
    async with refreshers(isolated, env.sandbox, tmp_path, 1, refresh_tick_interval_s="1") as children:
        await wait_ready(children, env.http)
        async with env.http.delete(
            f"{env.api.url}/v1/connections/{connection_id}", headers=env.api.headers()
        ) as response:
            assert response.status == 200

        async def torn_down() -> bool:
            return (await env.connection(connection_id)).get("revoked_at") is not None

        await eventually(torn_down, timeout_s=30)

    assert (await env.counters("google"))["requests"].get("POST /revoke") == 1
    assert await env.db.credentials.count_documents({"_id": connection_id}) == 0
    connection = await env.connection(connection_id)
    assert connection["revocation"]["outcome"] == "revoked"
    status, shown = await _get(env, connection_id, expand=True)
    assert status == 200 and shown["status"] == "disconnected" and shown["revoked_at"]
    assert [c["id"] for c in shown["calendars"]] == connection["calendar_ids"], "calendars stay"
    assert await env.db.events.find_one({"_id": "evt_tokenhealth0001"}), "mirrored events stay"


async def _get(env: Linked, connection_id: str, expand: bool = False) -> tuple[int, dict]:
    suffix = "?expand[]=calendars" if expand else ""
    async with env.http.get(
        f"{env.api.url}/v1/connections/{connection_id}{suffix}", headers=env.api.headers()
    ) as response:
        return response.status, await response.json()


async def shown_next_refresh(env: Linked, connection_id: str) -> datetime | None:
    """``token_refresh.next_at`` as GET /v1/connections/{id} shows it."""
    async with env.http.get(
        f"{env.api.url}/v1/connections/{connection_id}", headers=env.api.headers()
    ) as response:
        assert response.status == 200
        shown = (await response.json())["token_refresh"]["next_at"]
    return None if shown is None else datetime.fromisoformat(shown)


async def stored_expiry(env: Linked, connection_id: str) -> datetime:
    credentials = await env.credentials(connection_id)
    assert credentials is not None and credentials["access_expires_at"] is not None
    return aware(credentials["access_expires_at"])


@pytest.mark.parametrize("provider", ["google", "microsoft"])
async def test_the_next_refresh_is_shown_from_consent_moves_with_each_refresh_and_clears_on_disconnect(
    env, provider
):
    connection_id = await env.link(provider)
    api_margin = timedelta(seconds=env.api.settings.tokens.refresh_margin_s)
    first = await shown_next_refresh(env, connection_id)
    assert first is not None, "set right after consent"
    assert abs(first - (await stored_expiry(env, connection_id) - api_margin)) < timedelta(milliseconds=2)

    worker = env.token_service(refresh_margin_s=30)
    assert (await worker.refresh(connection_id)).result == "refreshed"
    moved = await shown_next_refresh(env, connection_id)
    assert moved is not None and moved != first
    assert abs(moved - (await stored_expiry(env, connection_id) - timedelta(seconds=30))) < timedelta(
        milliseconds=2
    )

    async with env.http.delete(
        f"{env.api.url}/v1/connections/{connection_id}", headers=env.api.headers()
    ) as response:
        assert response.status == 200
        assert (await response.json())["token_refresh"]["next_at"] is None
    assert await shown_next_refresh(env, connection_id) is None


async def test_an_icloud_app_password_has_no_next_refresh(env):
    connection_id = await env.link("icloud")
    assert await shown_next_refresh(env, connection_id) is None
    assert (await env.token_service().refresh(connection_id)).result == "skipped"
