"""What customers are told (``public_events``), from the internal events the real writers queue
(the connection's owner, the mirror's page and listing writes) against the real MongoDB-protocol
server: one public event per change, to the stored object's application, with the object as
the REST API's renderers show it now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from chronapilot.common.bus.catalogue import (
    MirrorEventsChanged,
    SubscriptionCreated,
    SyncCompleted,
    SyncFailed,
    SyncKind,
    SyncReason,
    SyncRequested,
    TokenRefreshed,
    wrap,
)
from chronapilot.common.bus.envelope import Envelope
from chronapilot.common.clock import FixedClock, isoformat_z
from chronapilot.common.connections import Connections
from chronapilot.common.ids import new_id
from chronapilot.common.mirror.writes import CalendarRef, apply_listing, apply_page
from chronapilot.common.models import SyncMode
from chronapilot.common.objects import (
    dump,
    recurring_masters,
    render_calendar,
    render_connection,
    render_event,
)
from chronapilot.common.providers.base import CalendarInfo
from chronapilot.common.providers.sync import EventPage
from chronapilot.common.store import Store, ensure_indexes
from chronapilot.common.store.repositories import Repositories
from chronapilot.common.webhooks import PublicEvent
from chronapilot.common.webhooks.public import public_events

from helpers import SAMPLE_T0, QueuedOutbox, sample_event

pytestmark = pytest.mark.integration

APP = "app_public"
T0 = SAMPLE_T0


class FindsOnEvents(monitoring.CommandListener):
    """Counts the ``find`` commands sent for the ``events`` collection."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += event.command_name == "find" and event.command.get("find") == "events"

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class World:
    """One application's connection, written by the real writers, and what they queued."""

    def __init__(self, store: Store, finds: FindsOnEvents) -> None:
        self.store = store
        self.finds = finds
        self.clock = FixedClock(T0)
        self.outbox = QueuedOutbox(store)
        self.repos = Repositories.open(store)
        self.connections = Connections(store, self.outbox, self.clock)
        self.connection_id = new_id("con")
        self._read = 0

    async def link(self, account: str = "acct-1") -> None:
        key = {
            "application_id": APP,
            "user_id": "usr_1",
            "provider": "google",
            "provider_account_id": account,
        }
        await self.store.in_transaction(
            lambda session: self.connections.activate(
                session,
                key=key,
                email="a@example.com",
                calendar_ids=[],
                connection_id=self.connection_id,
                token_next_at=None,
            )
        )

    async def list_calendars(self, *names: str) -> dict[str, str]:
        """The provider lists calendars named ``names`` (ids ``p-<name>``); cal_ id by name."""
        listed = [CalendarInfo(f"p-{name}", name, name == names[0], False, "UTC", None) for name in names]
        connection = await self.connections.get(self.connection_id)
        assert connection is not None
        await self.store.in_transaction(
            lambda session: apply_listing(
                self.repos.calendars,
                connection,
                listed,
                self.clock.now(),
                outbox=self.outbox,
                session=session,
            )
        )
        found = await self.repos.calendars.of_connections([self.connection_id])
        return {doc["name"]: doc["_id"] for doc in found}

    async def apply(self, calendar: CalendarRef, *upserts: Any, deletions: tuple[str, ...] = ()) -> None:
        self.clock.advance(timedelta(minutes=1))
        page = EventPage(upserts=upserts, deletions=deletions, next_cursor=None)
        await self.store.in_transaction(
            lambda session: apply_page(
                self.repos.events,
                calendar,
                page,
                self.clock.now(),
                raw_max_bytes=32768,
                outbox=self.outbox,
                session=session,
            )
        )

    async def told(self) -> list[PublicEvent]:
        """The public events of what was queued since the last call."""
        queued = await self.outbox.queued()
        fresh, self._read = queued[self._read :], len(queued)
        return [told for envelope in fresh for told in await self.public(envelope)]

    async def public(self, envelope: Envelope) -> list[PublicEvent]:
        return await public_events(envelope, self.repos, self.connections)

    async def connection(self) -> dict[str, Any]:
        found = await self.connections.get(self.connection_id)
        assert found is not None
        return found


@pytest.fixture
async def world(store: Store, isolated) -> AsyncIterator[World]:
    await ensure_indexes(store.db)
    finds = FindsOnEvents()
    client: AsyncMongoClient = AsyncMongoClient(
        isolated.infra.mongodb_uri, tz_aware=True, event_listeners=[finds]
    )
    try:
        yield World(Store(client, isolated.database), finds)
    finally:
        await client.close()


def types(told: list[PublicEvent]) -> list[str]:
    return [t.type for t in told]


async def test_a_first_link_is_connection_created_with_the_connection_as_the_api_shows_it(world):
    await world.link()
    [created] = await world.told()
    stored = await world.connection()
    assert created.type == "connection.created"
    assert (created.application_id, created.connection_id) == (APP, world.connection_id)
    assert created.object == render_connection(stored)
    assert created.object["id"] == world.connection_id and created.object["status"] == "active"
    assert created.updated_at == stored["updated_at"] and created.previous is None
    envelope = (await world.outbox.queued("connection.activated"))[0]
    assert created.occurred_at == envelope.occurred_at


async def test_reauth_required_is_connection_updated_with_the_old_values_and_connection_reauth_required(
    world,
):
    await world.link()
    await world.told()
    world.clock.advance(timedelta(minutes=1))
    assert await world.connections.reauth_required(world.connection_id, "the grant was revoked")
    updated, reauth = await world.told()
    assert (updated.type, reauth.type) == ("connection.updated", "connection.reauth_required")
    assert updated.previous == {"status": "active", "error": None}
    assert updated.object == reauth.object == render_connection(await world.connection())
    assert updated.object["error"]["code"] == "reauth_required"
    assert updated.updated_at == T0 + timedelta(minutes=1)


async def test_a_relink_is_connection_updated_with_the_status_and_error_it_came_back_from(world):
    await world.link()
    world.clock.advance(timedelta(minutes=1))
    await world.connections.reauth_required(world.connection_id, "the grant was revoked")
    await world.told()
    await world.link()
    [relinked] = await world.told()
    assert relinked.type == "connection.updated"
    assert relinked.previous == {
        "status": "error",
        "error": {
            "code": "reauth_required",
            "message": "the grant was revoked",
            "at": isoformat_z(T0 + timedelta(minutes=1)),
        },
    }
    assert relinked.object["status"] == "active" and relinked.object["error"] is None


async def test_a_change_of_sync_mode_alone_is_connection_updated_with_the_previous_sync_mode(world):
    await world.link()
    await world.told()
    subscription = {"id": "sub_1", "expires_at": T0 + timedelta(days=1)}
    changed = await world.store.in_transaction(
        lambda session: world.connections.set_coverage(
            session, world.connection_id, SyncMode.REALTIME, subscription
        )
    )
    assert changed
    assert [e.data["previous_sync_mode"] for e in await world.outbox.queued("connection.status_changed")] == [
        "polling"
    ]
    [updated] = await world.told()
    assert (updated.type, updated.previous) == ("connection.updated", {"sync_mode": "polling"})
    assert updated.object["sync_mode"] == "realtime"
    assert updated.object["webhook_subscription"] == {
        "id": "sub_1",
        "expires_at": isoformat_z(T0 + timedelta(days=1)),
    }


async def test_a_failed_sync_is_sync_failed_and_its_recovery_is_connection_updated(world):
    await world.link()
    calendar_id = (await world.list_calendars("Work"))["Work"]
    await world.told()
    failed = SyncFailed(
        mode=SyncKind.FULL,
        reason=SyncReason.POLL,
        error_code="sync_failed",
        error_message="provider_unavailable (HTTP 503)",
        retryable=True,
        calendar_id=calendar_id,
    )
    await world.connections.sync_failed(
        world.connection_id, failed.error_message, failed, backoff=lambda attempt: 1.0, cap_s=60
    )
    updated, sync_failed = await world.told()
    assert (updated.type, updated.previous) == ("connection.updated", {"status": "active", "error": None})
    envelope = (await world.outbox.queued(SyncFailed.TYPE))[0]
    assert (sync_failed.type, sync_failed.application_id) == ("sync.failed", APP)
    assert sync_failed.object == {
        "object": "sync_failure",
        "connection_id": world.connection_id,
        "calendar_id": calendar_id,
        "mode": "full",
        "reason": "poll",
        "error": {"code": "sync_failed", "message": "provider_unavailable (HTTP 503)"},
        "retryable": True,
        "failed_at": isoformat_z(envelope.occurred_at),
    }
    assert sync_failed.updated_at == envelope.occurred_at

    completed = SyncCompleted(
        mode=SyncKind.FULL, reason=SyncReason.POLL, synced_at=T0, calendars=1, upserted=0, deleted=0
    )
    assert await world.connections.sync_succeeded(world.connection_id, completed)
    [recovered] = await world.told()  # sync.completed tells customers nothing
    assert recovered.type == "connection.updated"
    assert recovered.previous == {
        "status": "error",
        "error": {"code": "sync_failed", "message": "provider_unavailable (HTTP 503)", "at": isoformat_z(T0)},
    }


async def test_a_disconnect_is_connection_disconnected(world):
    await world.link()
    await world.told()
    assert await world.connections.disconnect(world.connection_id, APP)
    [disconnected] = await world.told()
    assert disconnected.type == "connection.disconnected"
    assert disconnected.object == render_connection(await world.connection())
    assert disconnected.object["status"] == "disconnected"


async def test_mirror_writes_are_one_public_event_per_event_as_the_api_shows_it(world):
    await world.link()
    calendar_id = (await world.list_calendars("Work"))["Work"]
    calendar = CalendarRef(calendar_id, world.connection_id, APP, "p-Work")
    await world.told()
    master, moved, single = sample_event("m"), sample_event("m_1", "moved", series="m"), sample_event("a")
    await world.apply(calendar, master, moved, single)
    finds_before = world.finds.count
    created = await world.told()
    assert world.finds.count - finds_before == 2, "the message's events in one query, the masters in one more"
    stored = await world.repos.events.with_ids([t.object["id"] for t in created])
    masters = await recurring_masters(world.repos, stored.values())
    assert types(created) == ["event.created"] * 3
    assert [t.object for t in created] == [render_event(stored[t.object["id"]], masters) for t in created]
    by_provider_id = {t.object["provider_event_id"]: t.object for t in created}
    assert by_provider_id["m_1"]["recurring_event_id"] == by_provider_id["m"]["id"]
    assert all(t.application_id == APP and t.connection_id == world.connection_id for t in created)

    renamed = sample_event("a", "renamed", updated=T0 + timedelta(minutes=5))
    await world.apply(calendar, renamed, deletions=("m",))
    told = await world.told()
    assert [(t.type, t.object["provider_event_id"]) for t in told] == [
        ("event.updated", "a"),
        ("event.deleted", "m"),
        ("event.deleted", "m_1"),
    ]
    assert told[0].object["title"] == "renamed"
    assert told[0].updated_at == T0 + timedelta(minutes=2)
    assert [t.object["deleted"] for t in told] == [False, True, True]


async def test_calendar_listings_are_calendar_created_updated_and_removed(world):
    await world.link()
    await world.told()
    ids = await world.list_calendars("Work", "Home")
    created = await world.told()
    assert types(created) == ["calendar.created", "calendar.created"]
    docs = {doc["_id"]: doc for doc in await world.repos.calendars.of_connections([world.connection_id])}
    assert [t.object for t in created] == [
        dump(render_calendar(docs[ids[name]])) for name in ("Work", "Home")
    ]
    assert all(t.updated_at == docs[t.object["id"]]["updated_at"] for t in created)

    world.clock.advance(timedelta(minutes=1))
    await world.list_calendars("Work", "Home")
    assert await world.told() == []  # listed again as it was: nothing changed, nothing told
    again = {doc["_id"]: doc for doc in await world.repos.calendars.of_connections([world.connection_id])}
    assert again == docs, "an unchanged calendar is not written (its updated_at stays)"

    world.clock.advance(timedelta(minutes=1))
    await world.list_calendars("Home", "Travel")  # Home is primary now, Travel is new, Work is gone
    told = await world.told()
    assert [(t.type, t.object["name"]) for t in told] == [
        ("calendar.created", "Travel"),
        ("calendar.updated", "Home"),
        ("calendar.removed", "Work"),
    ]
    assert [t.object["primary"] for t in told] == [False, True, True]
    assert told[2].object["removed"] is True
    assert all(t.updated_at == T0 + timedelta(minutes=2) for t in told)

    await world.list_calendars("Home", "Travel", "Work")  # Work is listed again
    [back] = await world.told()
    assert (back.type, back.object["id"], back.object["removed"]) == ("calendar.created", ids["Work"], False)


async def test_an_object_of_another_connection_or_gone_is_never_told_and_the_application_is_the_stored_one(
    world,
):
    await world.link()
    calendar_id = (await world.list_calendars("Work"))["Work"]
    await world.apply(CalendarRef(calendar_id, world.connection_id, APP, "p-Work"), sample_event("a"))
    [event_id] = (await world.outbox.queued(MirrorEventsChanged.TYPE))[0].data["created"]

    def changed(connection_id: str, *ids: str) -> Envelope:
        claim = MirrorEventsChanged(application_id="app_other", calendar_id=calendar_id, updated=list(ids))
        return wrap(claim, connection_id)

    [told] = await world.public(changed(world.connection_id, event_id, "evt_gone"))
    assert (told.type, told.application_id, told.object["id"]) == ("event.updated", APP, event_id)
    assert await world.public(changed(new_id("con"), event_id)) == []
    assert await world.public(wrap(SyncRequested(mode="full", reason="poll"), new_id("con"))) == []
    gone = wrap(
        SyncFailed(mode="full", reason="poll", error_code="x", error_message="y", retryable=False), "con_x"
    )
    assert await world.public(gone) == []


async def test_internal_events_tell_customers_nothing(world):
    await world.link()
    internal = [
        SyncRequested(mode=SyncKind.FULL, reason=SyncReason.MANUAL),
        TokenRefreshed(expires_at=T0, rotated=False),
        SubscriptionCreated(subscription_id="sub_1", calendar_id="p-Work", expires_at=T0),
    ]
    for event in internal:
        assert await world.public(wrap(event, world.connection_id)) == []
    unknown = Envelope(type="something.happened", version=1, connection_id=world.connection_id)
    assert await world.public(unknown) == []
