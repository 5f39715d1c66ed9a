"""The repositories the API reads and writes through, against the real MongoDB-protocol server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from chronapilot.common.errors import Conflict
from chronapilot.common.models import Application
from chronapilot.common.store import Session, ensure_indexes
from chronapilot.common.store.repositories import Repositories

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


async def test_a_duplicate_application_is_a_conflict(store):
    await ensure_indexes(store)
    applications = Repositories.open(store).applications
    application = Application(id="app_1", name="one", created_at=NOW)
    await applications.create(application)
    with pytest.raises(Conflict):
        await applications.create(application)


async def test_a_consent_session_is_consumed_once_and_only_while_fresh(store):
    states = Repositories.open(store).oauth_states
    for session_id, state in (("cst_1", "fresh"), ("cst_2", "stale")):
        expires_at = NOW + timedelta(minutes=10 if state == "fresh" else -1)
        await states.create(
            {
                "_id": session_id,
                "state": state,
                "provider": "google",
                "used_at": None,
                "expires_at": expires_at,
            }
        )
    assert await states.find_open("fresh", "microsoft", NOW) is None
    assert await states.find_open("stale", "google", NOW) is None
    consumed = await asyncio.gather(*(states.consume("fresh", "google", NOW) for _ in range(5)))
    assert [c["_id"] for c in consumed if c is not None] == ["cst_1"]
    assert await states.find_open("fresh", "google", NOW) is None


async def test_an_idempotency_key_is_claimed_once_until_released(store):
    keys = Repositories.open(store).idempotency_keys
    claim = {"fingerprint": "f", "now": NOW, "lock": timedelta(seconds=60), "ttl": timedelta(hours=24)}
    assert await keys.reserve("app_1:k", owner="a", **claim) is None
    held = await keys.reserve("app_1:k", owner="b", **claim)
    assert held is not None and held["owner"] == "a" and held["status"] is None
    await keys.complete("app_1:k", owner="b", status=500, body=b"{}")  # not the holder: no effect
    await keys.complete("app_1:k", owner="a", status=201, body=b"{}")
    record = await keys.get("app_1:k")
    assert record is not None and (record["status"], record["body"]) == (201, b"{}")
    await keys.release("app_1:k", owner="a")
    assert await keys.reserve("app_1:k", owner="c", **claim) is None


async def test_a_write_conflict_inside_a_transaction_is_retried_not_translated(store):
    """A repository write in a transaction leaves a transient error to the transaction's retry:
    the second of two transactions writing one document waits for the first, then succeeds."""
    credentials = Repositories.open(store).credentials
    first_wrote = asyncio.Event()
    attempts = 0

    async def grant(session: Session, token: str) -> None:
        await credentials.save_grant(
            session,
            "con_1",
            provider="google",
            fields={"access_token": token, "refresh_token": None, "scopes": []},
            stale=(),
            now=NOW,
        )

    async def first(session: Session) -> None:
        await grant(session, "first")
        first_wrote.set()
        await asyncio.sleep(0.3)  # hold the uncommitted write while the second one tries

    async def second(session: Session) -> None:
        nonlocal attempts
        attempts += 1
        await grant(session, "second")

    async def run_second() -> None:
        await first_wrote.wait()
        await store.in_transaction(second)

    await asyncio.gather(store.in_transaction(first), run_second())
    assert attempts > 1
    saved = await credentials.get("con_1")
    assert saved is not None and (saved["access_token"], saved["version"]) == ("second", 2)
