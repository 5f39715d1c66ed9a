"""The MongoDB layer against the real MongoDB-protocol server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chronapilot.common.clock import FixedClock
from chronapilot.common.store import INDEXES, Lease, ensure_indexes

pytestmark = pytest.mark.integration


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
