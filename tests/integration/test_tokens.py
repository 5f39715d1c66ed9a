"""TokenService and the refresher's pieces, in process, against the emulators and Radicale.

Accounts are linked through the real consent flow (the API in process); the sandbox issues
60-second access tokens. Time is not slept on: a test makes a token due by moving its stored
expiry, as time passing would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from token_harness import Linked, linked, short_token_sandbox, token_requests

from chronapilot.common.providers import InvalidCredentials
from chronapilot.common.settings import TokenSettings
from chronapilot.common.store.credentials import DUE_INDEX
from chronapilot.common.tokens import ReauthRequired
from chronapilot.sandbox.icloud.users import AppleIdCredentials
from chronapilot.sandbox.launcher import Sandbox
from chronapilot.token_refresher.refresh_due import refresh_due_tokens
from chronapilot.token_refresher.revoke import revoke_credentials
from chronapilot.token_refresher.telemetry import (
    EXPIRING_WITHIN_HOUR,
    OLDEST_OVERDUE_SECONDS,
    record_fleet_health,
)

pytestmark = pytest.mark.integration

TICK = TokenSettings(refresh_margin_s=30, refresh_batch_size=10, refresh_concurrency=4)


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with short_token_sandbox() as started:
        yield started


@pytest.fixture
async def env(isolated, sandbox) -> AsyncIterator[Linked]:
    async with linked(isolated, sandbox) as started:
        yield started


async def test_a_due_token_is_refreshed_by_a_tick_with_telemetry_and_an_event(env):
    connection_id = await env.link("google")
    before = await env.credentials(connection_id)
    tokens = env.token_service()
    quiet = await refresh_due_tokens(tokens, TICK, datetime.now(UTC))
    assert quiet.outcomes["refreshed"] == 0, "a fresh 60 s token is not due with a 30 s margin"

    await env.make_due(connection_id, in_s=20)
    result = await refresh_due_tokens(tokens, TICK, datetime.now(UTC))

    assert result.outcomes["refreshed"] == 1
    after = await env.credentials(connection_id)
    assert after["version"] == before["version"] + 1
    assert after["access_token"] != before["access_token"]
    assert after["access_expires_at"] > datetime.now(UTC) + timedelta(seconds=45)
    assert "refreshing_until" not in after
    telemetry = (await env.connection(connection_id))["token_refresh"]
    assert telemetry["failures_count"] == 0
    assert telemetry["last_at"] is not None
    assert telemetry["next_at"] == after["access_expires_at"] - tokens.refresh_margin
    refreshed = await env.events("token.refreshed", connection_id)
    assert len(refreshed) == 1 and refreshed[0]["data"]["rotated"] is False
    # the provider accepts the new token
    provider = tokens.providers["google"]
    assert (await provider.account(tokens.token_source(connection_id))).email == env.sandbox.accounts[
        "google"
    ].email


async def test_microsoft_rotated_refresh_tokens_are_kept_so_refresh_after_refresh_works(env):
    connection_id = await env.link("microsoft")
    tokens = env.token_service()
    seen = set()
    for _ in range(3):
        outcome = await tokens.refresh(connection_id)
        assert outcome.result == "refreshed", outcome
        seen.add((await env.credentials(connection_id))["refresh_token"])
    assert len(seen) == 3
    assert all(e["data"]["rotated"] for e in await env.events("token.refreshed", connection_id))
    assert (await env.connection(connection_id))["status"] == "active"


async def test_racing_forced_refreshes_in_several_processes_spend_the_refresh_token_once_each(env):
    """Three TokenServices (as three processes: each its own lease owner) force refreshes at
    once, over and over: the lease lets one spend Microsoft's rotating token while the others
    wait and take its result; the emulator rejects a reused one, so a race would show."""
    connection_id = await env.link("microsoft")
    services = [env.token_service() for _ in range(3)]
    await env.reset_counters("microsoft")

    async def hammer(service):
        source = service.token_source(connection_id)
        for _ in range(5):
            await source(False)
            await source(True)

    await asyncio.gather(*(hammer(service) for service in services for _ in range(3)))

    counters = await env.counters("microsoft")
    stored = await env.events("token.refreshed", connection_id)
    assert token_requests(counters, "microsoft") == len(stored), "every token request succeeded"
    assert not await env.events("token.refresh_failed", connection_id)
    assert (await env.connection(connection_id))["status"] == "active"
    await services[0].providers["microsoft"].account(services[0].token_source(connection_id))


async def test_transient_failures_back_off_then_error_at_the_threshold_then_recover(env):
    connection_id = await env.link("microsoft")
    tokens = env.token_service(failure_threshold=2)
    await env.admin("microsoft", "POST", "faults", {"route": "/{tenant}/oauth2/v2.0/token", "status": 503})
    try:
        await env.make_due(connection_id, in_s=20)
        first = await refresh_due_tokens(tokens, TICK, datetime.now(UTC))
        assert first.outcomes["failed"] == 1
        connection = await env.connection(connection_id)
        assert connection["status"] == "active"
        assert connection["token_refresh"]["failures_count"] == 1
        assert connection["token_refresh"]["last_error"] == "provider_unavailable"
        retry_at = (await env.credentials(connection_id))["refresh_retry_at"]
        assert connection["token_refresh"]["next_at"] == retry_at > datetime.now(UTC)

        backing_off = await refresh_due_tokens(tokens, TICK, datetime.now(UTC))
        assert sum(backing_off.outcomes.values()) == 0, "in backoff: not taken"

        second = await refresh_due_tokens(tokens, TICK, retry_at + timedelta(milliseconds=1))
        assert second.outcomes["failed"] == 1
        connection = await env.connection(connection_id)
        assert connection["status"] == "error"
        assert connection["error"]["code"] == "token_refresh_failed"
        assert connection["token_refresh"]["failures_count"] == 2
        failed = await env.events("token.refresh_failed", connection_id)
        assert [e["data"]["permanent"] for e in failed] == [False, False]
        # a still-valid token is served on demand despite the failures
        assert await tokens.access_token(connection_id)
    finally:
        await env.admin("microsoft", "DELETE", "faults")

    recovered = await tokens.refresh(connection_id)
    assert recovered.result == "refreshed"
    connection = await env.connection(connection_id)
    assert connection["status"] == "active" and connection["error"] is None
    assert connection["token_refresh"]["failures_count"] == 0
    changes = await env.events("connection.status_changed", connection_id)
    assert [e["data"]["status"] for e in changes] == ["error", "active"]


@pytest.mark.parametrize("provider", ["google", "microsoft"])
async def test_a_revoked_grant_means_reauth_required_then_relinking_restores_the_same_connection(
    env, provider
):
    user_id = await env.browser.create_user(f"ext-{provider}")
    connection_id = await env.link(provider, user_id)
    tokens = env.token_service()
    await env.revoke_grant(provider)
    await env.make_due(connection_id, in_s=20)

    result = await refresh_due_tokens(tokens, TICK, datetime.now(UTC))

    assert result.outcomes["reauth_required"] == 1
    connection = await env.connection(connection_id)
    assert connection["status"] == "error"
    assert connection["error"]["code"] == "reauth_required"
    assert connection["token_refresh"]["failures_count"] == 1
    changed = await env.events("connection.status_changed", connection_id)
    assert [(e["data"]["status"], e["data"]["error_code"]) for e in changed] == [("error", "reauth_required")]
    failed = await env.events("token.refresh_failed", connection_id)
    assert [e["data"]["permanent"] for e in failed] == [True]
    with pytest.raises(ReauthRequired):
        await tokens.access_token(connection_id)
    now = datetime.now(UTC)
    assert not await tokens.credentials.due_for_refresh(before=now + timedelta(hours=2), now=now, limit=10)
    flat = str(await env.connection(connection_id)) + str(failed)
    assert "ya29." not in flat and "refresh_token" not in flat

    assert await env.link(provider, user_id) == connection_id
    connection = await env.connection(connection_id)
    assert connection["status"] == "active" and connection["error"] is None
    assert await tokens.access_token(connection_id)
    assert (await tokens.refresh(connection_id)).result == "refreshed"


async def test_icloud_returns_basic_credentials_and_a_refused_password_means_reauth_required(env):
    connection_id = await env.link("icloud")
    tokens = env.token_service()
    account = env.sandbox.accounts["icloud"]
    assert await tokens.access_token(connection_id) == f"{account.email}:{account.password}"
    assert (await tokens.refresh(connection_id)).result == "skipped"

    users = env.sandbox.radicale.users
    users.set_password(AppleIdCredentials(account.email, "abcd-efgh-ijkl-mnop"))
    try:
        provider = tokens.providers["icloud"]
        with pytest.raises((ReauthRequired, InvalidCredentials)):
            await provider.list_calendars(tokens.token_source(connection_id))
        connection = await env.connection(connection_id)
        assert connection["status"] == "error"
        assert connection["error"]["code"] == "reauth_required"
        with pytest.raises(ReauthRequired):
            await tokens.access_token(connection_id)
    finally:
        users.set_password(AppleIdCredentials(account.email, account.password))


async def test_an_icloud_credential_stored_in_the_old_shape_still_works(env):
    """Documents written before ``kind`` kept the app password in ``refresh_token``."""
    connection_id = await env.link("icloud")
    stored = await env.credentials(connection_id)
    assert stored["kind"] == "app_password" and "refresh_token" not in stored
    await env.db.credentials.update_one(
        {"_id": connection_id},
        {"$set": {"refresh_token": stored["password"]}, "$unset": {"kind": "", "password": ""}},
    )
    tokens = env.token_service()
    account = env.sandbox.accounts["icloud"]
    assert await tokens.access_token(connection_id) == f"{account.email}:{account.password}"
    assert (
        await tokens.access_token(connection_id, force_refresh=True) == f"{account.email}:{account.password}"
    )
    assert await tokens.providers["icloud"].list_calendars(tokens.token_source(connection_id))


async def test_disconnect_revokes_at_google_deletes_credentials_and_records_it(env):
    connection_id = await env.link("google")
    await env.reset_counters("google")
    await env.db.connections.update_one({"_id": connection_id}, {"$set": {"status": "disconnected"}})

    assert await revoke_credentials(env.runtime_with_providers(), connection_id) == "revoked"

    assert (await env.counters("google"))["requests"].get("POST /revoke") == 1
    assert await env.credentials(connection_id) is None
    connection = await env.connection(connection_id)
    assert connection["revoked_at"] is not None
    assert connection["revocation"]["outcome"] == "revoked"
    assert await env.db.calendars.count_documents({"connection_id": connection_id}) > 0
    assert await revoke_credentials(env.runtime_with_providers(), connection_id) is None, "idempotent"


async def test_disconnect_when_google_is_down_retries_then_records_the_failure_and_still_deletes(env):
    connection_id = await env.link("google")
    await env.reset_counters("google")
    await env.db.connections.update_one({"_id": connection_id}, {"$set": {"status": "disconnected"}})
    await env.admin("google", "POST", "faults", {"route": "/revoke", "status": 503})
    try:
        outcome = await revoke_credentials(env.runtime_with_providers(revoke_backoff_s=0.05), connection_id)
    finally:
        await env.admin("google", "DELETE", "faults")
    assert outcome == "failed"
    assert (await env.counters("google"))["requests"].get("POST /revoke") == 4
    assert await env.credentials(connection_id) is None
    revocation = (await env.connection(connection_id))["revocation"]
    assert revocation["outcome"] == "failed" and revocation["error"] == "provider_unavailable"


async def test_microsoft_has_no_revocation_so_it_is_recorded_as_not_supported(env):
    connection_id = await env.link("microsoft")
    await env.db.connections.update_one({"_id": connection_id}, {"$set": {"status": "disconnected"}})
    assert await revoke_credentials(env.runtime_with_providers(), connection_id) == "not_supported"
    assert await env.credentials(connection_id) is None


async def test_a_stale_disconnect_after_a_relink_keeps_the_new_credentials(env):
    connection_id = await env.link("google")
    assert await revoke_credentials(env.runtime_with_providers(), connection_id) is None
    assert await env.credentials(connection_id) is not None


async def test_the_tick_query_is_one_range_on_the_expiry_index(env):
    now = datetime.now(UTC)
    plan = await env.runtime.repos.credentials.explain_due_for_refresh(now + timedelta(minutes=10), 100)
    winning = str(plan["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in winning and "COLLSCAN" not in winning
    assert DUE_INDEX in winning


async def test_on_demand_access_refreshes_a_token_about_to_expire(env):
    connection_id = await env.link("google")
    tokens = env.token_service(min_validity_s=5)
    first = await tokens.access_token(connection_id)
    assert await tokens.access_token(connection_id) == first, "a valid token is reused"
    await env.make_due(connection_id, in_s=2)
    second = await tokens.access_token(connection_id)
    assert second != first
    assert (await env.credentials(connection_id))["access_expires_at"] > datetime.now(UTC) + timedelta(
        seconds=30
    )


async def test_fleet_gauges_count_tokens_expiring_within_the_hour_and_the_oldest_overdue_refresh(env):
    overdue_id = await env.link("google")
    await env.link("microsoft")
    await env.link("icloud")  # no expiry: not counted
    await env.make_due(overdue_id, in_s=-5)
    tokens = env.token_service()

    await record_fleet_health(tokens, TICK, datetime.now(UTC))

    assert EXPIRING_WITHIN_HOUR._value.get() == 2
    assert 34 <= OLDEST_OVERDUE_SECONDS._value.get() <= 40, "due 30 s before expiry, expired 5 s ago"
    await tokens.refresh(overdue_id)
    await record_fleet_health(tokens, TICK, datetime.now(UTC))
    assert OLDEST_OVERDUE_SECONDS._value.get() == 0


async def test_a_tick_works_through_every_batch_and_ends_even_when_some_tokens_cannot_be_refreshed(env):
    user_id = await env.browser.create_user("ext-batches")
    ids = [await env.link(provider, user_id) for provider in ("google", "microsoft")]
    stuck = await env.link("google", await env.browser.create_user("ext-stuck"))
    await env.db.connections.update_one({"_id": stuck}, {"$set": {"status": "disconnected"}})
    for connection_id in [*ids, stuck]:
        await env.make_due(connection_id, in_s=20)
    one_at_a_time = TokenSettings(refresh_margin_s=30, refresh_batch_size=1, refresh_concurrency=1)

    result = await refresh_due_tokens(env.token_service(), one_at_a_time, datetime.now(UTC))

    assert result.outcomes == {"refreshed": 2, "skipped": 1}
    assert result.batches == 4
    for connection_id in ids:
        assert len(await env.events("token.refreshed", connection_id)) == 1
