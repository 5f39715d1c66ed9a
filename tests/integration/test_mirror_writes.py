"""Provider pages written into the mirror (``sync_calendar``) against the real MongoDB-protocol
server: new events are inserted, known ones updated, and the write rules hold across pages; each
write tells what it changed (``mirror.events_changed``) in its own transaction, and only that."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from chronapilot.common.bus.catalogue import MIRROR_IDS_PER_MESSAGE, MirrorEventsChanged
from chronapilot.common.clock import FixedClock
from chronapilot.common.mirror.writes import CalendarRef
from chronapilot.common.providers.base import Capabilities
from chronapilot.common.providers.sync import EventData, EventPage
from chronapilot.common.store import Store, ensure_indexes
from chronapilot.common.store.repositories import Repositories
from chronapilot.sync_worker.calendar_sync import CalendarResult, MirrorGuard, sync_calendar

from helpers import SAMPLE_T0, InTransaction, QueuedOutbox, sample_event

pytestmark = pytest.mark.integration

T0 = SAMPLE_T0
event = sample_event
CALENDAR = CalendarRef("cal_mirror", "con_mirror", "app_mirror", "provider-calendar")


def page(
    *upserts: EventData,
    deletions: tuple[str, ...] = (),
    replaced: tuple[str, ...] = (),
    cursor: str | None = None,
) -> EventPage:
    return EventPage(upserts=upserts, deletions=deletions, next_cursor=cursor, series_replaced=replaced)


class ScriptedProvider:
    """A provider whose sync returns the pages given for each cursor (None: a full sync)."""

    capabilities = Capabilities(oauth=True, revocation=True)

    def __init__(self) -> None:
        self.pages: dict[str | None, list[EventPage]] = {}

    async def sync_events(self, token: Any, calendar_id: str, cursor: str | None) -> AsyncIterator[EventPage]:
        for each in self.pages[cursor]:
            yield each


@pytest.fixture
def outbox(store: Store) -> QueuedOutbox:
    return QueuedOutbox(store)


@pytest.fixture
async def mirror(store: Store, outbox: QueuedOutbox) -> Callable[..., Awaitable[CalendarResult]]:
    await ensure_indexes(store.db)
    provider = ScriptedProvider()

    async def run(*pages: EventPage, full: bool, guard: MirrorGuard | None = None) -> CalendarResult:
        cursor = None if full else await Repositories.open(store).sync_state.cursor(CALENDAR.id)
        provider.pages[cursor] = list(pages)
        return await sync_calendar(
            Repositories.open(store),
            provider,  # type: ignore[arg-type]
            lambda force: _token(),
            CALENDAR,
            full=full,
            clock=FixedClock(T0 + timedelta(hours=1)),
            raw_max_bytes=32768,
            guard=guard or InTransaction(store),
            outbox=outbox,
        )

    return run


async def _token() -> str:
    return "token"


async def held(store: Store) -> dict[str, dict[str, Any]]:
    return {doc["provider_event_id"]: doc async for doc in store.db.events.find({})}


async def test_a_full_sync_creates_whole_mirror_documents_and_a_second_one_writes_nothing(store, mirror):
    first = await mirror(page(event("a"), event("b")), page(event("c"), cursor="c1"), full=True)
    assert (first.applied.upserted, first.applied.unchanged) == (3, 0)
    docs = await held(store)
    assert set(docs) == {"a", "b", "c"}
    for event_id, doc in docs.items():
        assert doc["_id"].startswith("evt_")
        assert (doc["connection_id"], doc["provider_calendar_id"], doc["calendar_id"]) == (
            CALENDAR.connection_id,
            CALENDAR.provider_calendar_id,
            CALENDAR.id,
        )
        assert (doc["application_id"], doc["deleted"], doc["deleted_at"]) == (
            CALENDAR.application_id,
            False,
            None,
        )
        assert doc["created_at"] == doc["updated_at"]
        assert doc["raw"] == {"id": event_id, "summary": "standup"}
    again = await mirror(page(event("a"), event("b")), page(event("c"), cursor="c2"), full=True)
    assert (again.applied.upserted, again.applied.unchanged, again.applied.deleted) == (0, 3, 0)
    assert await held(store) == docs


async def test_an_event_on_two_pages_of_one_full_sync_is_written_once_the_later_copy_winning(store, mirror):
    later = event("a", "moved", updated=T0 + timedelta(minutes=5))
    result = await mirror(page(event("a"), event("b")), page(later, cursor="c1"), full=True)
    assert result.applied.upserted == 3  # the first copy, then the second over it
    docs = await held(store)
    assert {i: d["title"] for i, d in docs.items()} == {"a": "moved", "b": "standup"}
    older = await mirror(page(event("a")), page(event("b"), cursor="c2"), full=True)
    assert older.applied.stale == 1  # an older copy does not win over the newer one
    assert (await held(store))["a"]["title"] == "moved"


async def test_a_page_that_writes_a_series_and_deletes_it_leaves_it_deleted(store, mirror):
    master, moved = event("m"), event("m_1", "moved", series="m")
    await mirror(page(master, moved, deletions=("m",), cursor="c1"), full=True)
    assert {i: d["deleted"] for i, d in (await held(store)).items()} == {"m": True, "m_1": True}


async def test_an_incremental_page_replacing_a_series_deletes_the_exceptions_it_no_longer_lists(
    store, mirror
):
    master, kept, dropped = event("m"), event("m#1", series="m"), event("m#2", series="m")
    await mirror(page(master, kept, dropped, event("other"), cursor="c1"), full=True)
    renamed = event("m", "renamed", updated=T0 + timedelta(minutes=5))
    result = await mirror(page(renamed, kept, replaced=("m",), cursor="c2"), full=False)
    assert result.mode == "incremental"
    assert (result.applied.upserted, result.applied.unchanged, result.applied.deleted) == (1, 1, 1)
    docs = await held(store)
    assert {i: d["deleted"] for i, d in docs.items()} == {
        "m": False,
        "m#1": False,
        "m#2": True,
        "other": False,
    }
    assert docs["m"]["title"] == "renamed"


async def test_a_full_sync_marks_deleted_what_it_no_longer_sees_and_a_deletion_is_stamped_once(store, mirror):
    await mirror(page(event("a"), event("b"), event("c"), cursor="c1"), full=True)
    result = await mirror(page(event("a"), cursor="c2"), full=True)
    assert (result.applied.unchanged, result.applied.deleted) == (1, 2)
    docs = await held(store)
    assert {i: d["deleted"] for i, d in docs.items()} == {"a": False, "b": True, "c": True}
    assert docs["b"]["deleted_at"] == docs["b"]["updated_at"] == T0 + timedelta(hours=1)
    events = Repositories.open(store).events
    later = T0 + timedelta(hours=2)
    assert await events.mark_deleted(CALENDAR, ["a", "b", "gone"], now=later) == 1  # b already was
    docs = await held(store)
    assert docs["a"]["deleted_at"] == docs["a"]["updated_at"] == later
    assert docs["b"]["deleted_at"] == docs["b"]["updated_at"] == T0 + timedelta(hours=1)
    assert "gone" not in docs


# -- what the writes tell ---------------------------------------------------------------------


async def told(store: Store, outbox: QueuedOutbox) -> list[dict[str, list[str]]]:
    """Each ``mirror.events_changed`` queued so far, its ids read back as provider event ids."""
    provider_ids = {doc["_id"]: i for i, doc in (await held(store)).items()}
    told = []
    for envelope in await outbox.queued(MirrorEventsChanged.TYPE):
        assert envelope.connection_id == CALENDAR.connection_id
        assert (envelope.data["application_id"], envelope.data["calendar_id"]) == (
            CALENDAR.application_id,
            CALENDAR.id,
        )
        told.append({kind: [provider_ids[i] for i in envelope.data[kind]] for kind in KINDS})
    return told


KINDS = ("created", "updated", "deleted")


def changes(**kinds: list[str]) -> dict[str, list[str]]:
    return {kind: kinds.get(kind, []) for kind in KINDS}


async def test_each_page_tells_the_events_it_created_and_a_resync_that_changes_nothing_tells_nothing(
    store, mirror, outbox
):
    await mirror(page(event("a"), event("b")), page(event("c"), cursor="c1"), full=True)
    assert await told(store, outbox) == [changes(created=["a", "b"]), changes(created=["c"])]
    queued = len(await outbox.queued())

    await mirror(page(event("a"), event("b")), page(event("c"), cursor="c2"), full=True)
    await mirror(page(event("a"), cursor="c3"), full=False)
    assert len(await outbox.queued()) == queued, "nothing changed, nothing told"


async def test_an_update_and_a_deletion_are_told_by_the_page_that_makes_them(store, mirror, outbox):
    await mirror(page(event("a"), event("b"), event("c"), cursor="c1"), full=True)
    renamed = event("a", "renamed", updated=T0 + timedelta(minutes=5))
    await mirror(page(renamed, event("c"), deletions=("b", "never-held"), cursor="c2"), full=False)
    assert (await told(store, outbox))[1:] == [changes(updated=["a"], deleted=["b"])]


async def test_deleting_a_series_tells_every_member_the_deletion_reaches(store, mirror, outbox):
    series = [event("m"), event("m_1", "moved", series="m"), event("m_2", "later", series="m")]
    await mirror(page(*series, event("other"), cursor="c1"), full=True)
    await mirror(page(deletions=("m",), cursor="c2"), full=False)
    assert (await told(store, outbox))[1:] == [changes(deleted=["m", "m_1", "m_2"])]


async def test_an_event_the_mirror_held_deleted_is_created_again_when_it_comes_back(store, mirror, outbox):
    await mirror(page(event("a"), cursor="c1"), full=True)
    first_id = (await held(store))["a"]["_id"]
    await mirror(page(deletions=("a",), cursor="c2"), full=False)
    await mirror(page(event("a", "back", updated=T0 + timedelta(minutes=5)), cursor="c3"), full=False)
    assert (await told(store, outbox))[1:] == [changes(deleted=["a"]), changes(created=["a"])]
    assert (await held(store))["a"]["_id"] == first_id, "the same evt_ id comes back"


async def test_an_event_a_page_writes_and_deletes_that_the_mirror_lacked_is_not_told(store, mirror, outbox):
    master, moved = event("m"), event("m_1", "moved", series="m")
    await mirror(page(master, moved, event("kept"), deletions=("m",), cursor="c1"), full=True)
    assert await told(store, outbox) == [changes(created=["kept"])]


async def test_a_full_sync_tells_what_it_no_longer_sees_once_after_its_pages(store, mirror, outbox):
    await mirror(page(event("a"), event("b"), event("c"), event("d"), cursor="c1"), full=True)
    renamed = event("a", "renamed", updated=T0 + timedelta(minutes=5))
    await mirror(page(renamed, deletions=("b",), cursor="c2"), full=True)  # c and d are gone too
    assert (await told(store, outbox))[1:] == [
        changes(updated=["a"], deleted=["b"]),  # the page
        changes(deleted=["c", "d"]),  # what the full sync did not see (b was told already)
    ]


async def test_a_write_that_fails_leaves_neither_the_events_nor_what_it_would_have_told(
    store, mirror, outbox
):
    class FailsAfterWriting:
        async def write(self, work):
            async def written_then_failed(session):
                await work(session)
                raise RuntimeError("the transaction fails after the write")

            return await store.in_transaction(written_then_failed)

    with pytest.raises(RuntimeError):
        await mirror(page(event("a"), cursor="c1"), full=True, guard=FailsAfterWriting())
    assert await held(store) == {}
    assert await outbox.queued() == []


async def test_a_big_write_is_told_in_messages_of_a_bounded_size(store, mirror, outbox):
    many = [event(f"e{n:04d}") for n in range(2 * MIRROR_IDS_PER_MESSAGE + 7)]
    await mirror(page(*many, cursor="c1"), full=True)
    messages = await told(store, outbox)
    assert [len(m["created"]) for m in messages] == [MIRROR_IDS_PER_MESSAGE, MIRROR_IDS_PER_MESSAGE, 7]
    assert [i for m in messages for i in m["created"]] == [e.provider_event_id for e in many]
