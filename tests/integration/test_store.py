"""The MongoDB layer against the real MongoDB-protocol server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from chronapilot.common.clock import FixedClock
from chronapilot.common.errors import NotFound, VersionConflict
from chronapilot.common.store import INDEXES, Lease, ensure_indexes, update_versioned

pytestmark = pytest.mark.integration


async def test_an_optimistic_update_wins_once_and_the_loser_gets_a_conflict(store):
    await store.db.things.insert_one({"_id": "t1", "version": 0, "n": 0})
    results = await asyncio.gather(
        *(update_versioned(store.db.things, "t1", 0, {"n": i}) for i in range(1, 6)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1
    assert all(isinstance(r, VersionConflict) for r in results if not isinstance(r, dict))
    current = await store.db.things.find_one({"_id": "t1"})
    assert current["version"] == 1
    assert current["n"] == winners[0]["n"]
    with pytest.raises(NotFound):
        await update_versioned(store.db.things, "missing", 0, {"n": 1})


async def test_a_lease_has_one_holder_until_it_expires(store):
    clock = FixedClock(datetime(2026, 11, 25, tzinfo=UTC))
    first = Lease(store.db, "job", "owner-a", clock)
    second = Lease(store.db, "job", "owner-b", clock)
    assert await first.acquire(10)
    assert not await second.acquire(10)
    assert await first.acquire(10)  # renewal by the holder
    clock.advance(timedelta(seconds=11))
    assert await second.acquire(10)  # the holder died: its lease ran out
    assert not await first.acquire(10)
    await second.release()
    assert await first.acquire(10)


async def test_every_index_is_created_and_serves_the_outbox_relays_query(store):
    await ensure_indexes(store.db)
    await ensure_indexes(store.db)  # idempotent
    for collection, models in INDEXES.items():
        names = {index["name"] async for index in await store.db[collection].list_indexes()}
        assert {m.document["name"] for m in models} <= names, collection
    plan = await store.db.outbox.find({"sent_at": None}).sort("_id", 1).limit(10).explain()
    assert "unsent_in_order" in str(plan)
