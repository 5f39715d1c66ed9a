"""The objects customers are told of are the REST API's: a Google account linked through the
consent flow and synced by a running worker, then changed at the emulator, read back both
through ``public_events`` (from the outbox the services wrote) and ``GET /v1/...``; a full
resync that changes nothing tells no ``event.*``."""

from __future__ import annotations

from typing import Any

import pytest

from chronapilot.common.bus import Envelope
from chronapilot.common.bus.catalogue import (
    MirrorEventsChanged,
    SyncCompleted,
    SyncKind,
    SyncReason,
    SyncRequested,
)
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.webhooks import PublicEvent
from chronapilot.common.webhooks.public import public_events

from helpers import eventually
from realtime_harness import Emulator

pytestmark = pytest.mark.e2e


async def api_get(browser, path: str) -> dict[str, Any]:
    async with browser.http.get(browser.api.url + path, headers=browser.api.headers()) as response:
        assert response.status == 200, await response.text()
        return dict(await response.json())


class Told:
    """The connection's messages in the outbox, in order, and their public events."""

    def __init__(self, browser, connection_id: str) -> None:
        self.runtime = browser.api.app[RUNTIME]
        self.connection_id = connection_id
        self.read = 0

    async def envelopes(self) -> list[Envelope]:
        records = self.runtime.store.db.outbox.find({"envelope.connection_id": self.connection_id})
        return [Envelope.model_validate(r["envelope"]) for r in await records.sort("_id", 1).to_list()]

    async def since_last(self) -> list[Envelope]:
        every = await self.envelopes()
        fresh, self.read = every[self.read :], len(every)
        return fresh

    async def public(self, envelopes: list[Envelope]) -> list[PublicEvent]:
        repos, connections = self.runtime.repos, self.runtime.connections
        return [told for e in envelopes for told in await public_events(e, repos, connections)]

    async def resync(self) -> list[Envelope]:
        """A full resync, run by the worker; what it queued."""
        completed = len([e for e in await self.envelopes() if e.type == SyncCompleted.TYPE])
        resync = SyncRequested(mode=SyncKind.FULL, reason=SyncReason.RESYNC)
        await self.runtime.emit(None, resync, connection_id=self.connection_id)

        async def done() -> bool:
            return len([e for e in await self.envelopes() if e.type == SyncCompleted.TYPE]) > completed

        await eventually(done, timeout_s=60)
        return await self.since_last()


async def test_public_events_carry_the_objects_the_api_shows_and_an_unchanged_resync_tells_none(
    browser, worker, sandbox, http
):
    connection_id = await browser.link_and_sync("google")
    told = Told(browser, connection_id)
    first = await told.public(await told.since_last())
    by_type: dict[str, list[PublicEvent]] = {}
    for each in first:
        by_type.setdefault(each.type, []).append(each)
    assert set(by_type) == {"connection.created", "calendar.created", "event.created"}
    [created] = by_type["connection.created"]
    assert created.object == await api_get(browser, f"/v1/connections/{connection_id}")
    for calendar in by_type["calendar.created"]:
        assert calendar.object == await api_get(browser, f"/v1/calendars/{calendar.object['id']}")
    for event in by_type["event.created"][:25]:
        assert event.object == await api_get(browser, f"/v1/events/{event.object['id']}")
    assert all(e.application_id == browser.api.application_id for e in first)

    unchanged = await told.resync()
    assert SyncCompleted.TYPE in [e.type for e in unchanged]
    assert [e for e in unchanged if e.type == MirrorEventsChanged.TYPE] == [], "nothing changed"

    db = told.runtime.store.db
    chosen = await db.events.find_one(
        {"connection_id": connection_id, "deleted": False, "recurrence": [], "recurring_event_id": None}
    )
    renamed = f"{chosen['title']} (renamed)"
    emulator = Emulator(http, sandbox.urls["google"], "google")
    await emulator.rename_event(chosen["provider_calendar_id"], chosen["provider_event_id"], renamed)
    changed = [e for e in await told.resync() if e.type == MirrorEventsChanged.TYPE]
    assert [(e.data["created"], e.data["updated"], e.data["deleted"]) for e in changed] == [
        ([], [chosen["_id"]], [])
    ]
    [updated] = await told.public(changed)
    assert updated.type == "event.updated" and updated.object["title"] == renamed
    assert updated.object == await api_get(browser, f"/v1/events/{chosen['_id']}")
