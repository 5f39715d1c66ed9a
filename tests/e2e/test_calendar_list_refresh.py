"""The calendar list is read on full syncs, when it is stale, and on the provider's signals,
not on every incremental sync of one calendar (issue 16). Google emulator, the whole worker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pymongo.asynchronous.client_session import AsyncClientSession

from chronapilot.common.bus.catalogue import SyncKind, SyncReason, SyncRequested
from chronapilot.common.runtime import RUNTIME

from helpers import eventually

pytestmark = pytest.mark.e2e


async def test_one_calendars_sync_reads_the_list_only_when_a_calendar_appears_or_goes(
    browser, worker, sandbox
):
    runtime = browser.api.app[RUNTIME]
    db = worker[RUNTIME].store.db
    user_id = await browser.create_user()
    connection_id = (await browser.connect("google", user_id))["connection_id"][0]

    async def connection_doc(field: str):
        doc = await db.connections.find_one({"_id": connection_id})
        return doc if doc and doc.get(field) else None

    first = await eventually(lambda: connection_doc("last_synced_at"), timeout_s=60)
    listed_at = first["calendars_listed_at"]  # the first (full) sync read the list
    primary = await db.calendars.find_one({"connection_id": connection_id, "primary": True})
    email = sandbox.accounts["google"].email
    admin = sandbox.urls["google"].rstrip("/") + "/_admin"

    async def sync(calendar_id: str) -> datetime:
        started = datetime.now(UTC)

        async def emit(session: AsyncClientSession) -> None:
            request = SyncRequested(
                mode=SyncKind.INCREMENTAL, reason=SyncReason.WEBHOOK, calendar_id=calendar_id
            )
            await runtime.emit(session, request, connection_id=connection_id)

        await runtime.store.in_transaction(emit)
        return started

    async def synced(calendar_id: str, after: datetime):
        calendar = await db.calendars.find_one(
            {"connection_id": connection_id, "provider_calendar_id": calendar_id}
        )
        state = calendar and await db.sync_state.find_one({"_id": calendar["_id"]})
        return calendar if state and state.get("last_sync_at") and state["last_sync_at"] >= after else None

    # A calendar is added at Google; a notification about the primary calendar does not list.
    async with browser.http.post(f"{admin}/users/{email}/calendars", json={"summary": "Added later"}) as made:
        assert made.status == 201, await made.text()
        added = (await made.json())["id"]
    after = await sync(primary["provider_calendar_id"])
    await eventually(lambda: synced(primary["provider_calendar_id"], after), timeout_s=60)
    assert (await db.connections.find_one({"_id": connection_id}))["calendars_listed_at"] == listed_at
    assert (
        await db.calendars.find_one({"connection_id": connection_id, "provider_calendar_id": added}) is None
    )

    # A notification names the new calendar (as Google's first `sync` message of a channel
    # would): the mirror does not know it, so the list is read and the calendar synced.
    after = await sync(added)
    new = await eventually(lambda: synced(added, after), timeout_s=60)
    doc = await db.connections.find_one({"_id": connection_id})
    assert doc["calendars_listed_at"] > listed_at
    assert new["_id"] in doc["calendar_ids"]

    # The calendar is deleted at Google (its channel says `not_exists`, the API 404): the sync
    # that meets the 404 reads the list again and the calendar leaves the connection.
    async with browser.http.delete(f"{admin}/calendars/{added}") as deleted:
        assert deleted.status == 204, await deleted.text()
    await sync(added)

    async def removed():
        calendar = await db.calendars.find_one({"_id": new["_id"]})
        return calendar if calendar.get("removed") else None

    await eventually(removed, timeout_s=60)
    doc = await db.connections.find_one({"_id": connection_id})
    assert new["_id"] not in doc["calendar_ids"]
    assert primary["_id"] in doc["calendar_ids"]
    url = f"{browser.api.url}/v1/connections/{connection_id}"
    async with browser.http.get(url, headers=browser.api.headers()) as shown:
        assert new["_id"] not in (await shown.json())["calendars"]
