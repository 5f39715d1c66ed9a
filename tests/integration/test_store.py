"""The MongoDB layer against the real MongoDB-protocol server."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.errors import OperationFailure

from chronapilot.common.clock import FixedClock
from chronapilot.common.errors import StoreError
from chronapilot.common.store import INDEXES, Lease, Store, ensure_indexes, translate_errors

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


async def test_an_operation_past_the_operation_timeout_fails_as_a_store_timeout(isolated, store):
    """The client carries ``timeoutMS``: a server that stalls a command (a ``failCommand``
    failpoint blocking the next ``find`` for 3 s) costs the caller the operation timeout, not
    the stall, and the caller sees a ``store_timeout``."""
    settings = isolated.settings().mongo.model_copy(update={"operation_timeout_s": 0.5})
    short = await Store.connect(settings, budget_s=20)
    stall = {"failCommands": ["find"], "blockConnection": True, "blockTimeMS": 3000}
    try:
        await store.client.admin.command("configureFailPoint", "failCommand", mode={"times": 1}, data=stall)
    except OperationFailure:
        await short.close()
        pytest.skip("this MongoDB server has no failCommand failpoint (test commands disabled)")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as caught, translate_errors():
            await short.db.things.find_one({})
        assert caught.value.code == "store_timeout"
        assert time.monotonic() - started < 2.5
    finally:
        await store.client.admin.command("configureFailPoint", "failCommand", mode="off")
        await short.close()
