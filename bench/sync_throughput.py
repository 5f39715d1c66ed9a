"""Full-sync throughput and incremental-sync latency, per provider (a benchmark, not a test).

For a 10,000-event calendar on each provider (Google and Microsoft emulators, Radicale for
iCloud), measured in one run on this machine:

- ``serving``: how fast the provider side alone delivers the calendar (the provider client
  paging through a full sync, parsing included, writing nothing): the emulator's ceiling;
- ``bulk write``: the raw upsert rate of the same MongoDB-protocol server for 10,000 mirror-sized
  documents in bulk: the storage ceiling;
- ``full sync``: the sync worker's pipeline (``sync_calendar``: provider pages → idempotent
  mirror writes → cursor), end to end;
- ``incremental``: one event changed at the provider → an incremental sync applied, p50 of 5;
- ``server REPORT`` (iCloud): Radicale's own part of that, in the same 5 rounds: the raw
  ``sync-collection`` REPORT with the sync-token the incremental started from, sent right after
  the incremental (Radicale has then stored the new token's state, so this REPORT is the cheaper
  of the two and the ratio errs against the sync), and ``incremental / REPORT``.

Usage: ``.venv/bin/python bench/sync_throughput.py [--events 10000] [--providers google,microsoft,icloud]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import aiohttp
from pymongo import UpdateOne

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from contract.providers_fixtures import google_world, icloud_world, microsoft_world  # noqa: E402
from contract.random_events import hourly_slots  # noqa: E402
from contract.sync_drivers import GoogleDriver, ICloudDriver, MicrosoftDriver  # noqa: E402

from chronapilot.common.clock import SystemClock  # noqa: E402
from chronapilot.common.mirror.writes import CalendarRef  # noqa: E402
from chronapilot.common.models.event import capped_raw, mirror_fields  # noqa: E402
from chronapilot.common.providers.icloud.sync import DAV_PREFIX  # noqa: E402
from chronapilot.common.settings import MongoSettings  # noqa: E402
from chronapilot.common.store import Store, ensure_indexes  # noqa: E402
from chronapilot.common.store.repositories import Repositories  # noqa: E402
from chronapilot.devstack.embedded import mongodb_uri, start_mongodb  # noqa: E402
from chronapilot.devstack.processes import free_port  # noqa: E402
from chronapilot.sync_worker.calendar_sync import sync_calendar  # noqa: E402

from helpers import InTransaction, QueuedOutbox  # noqa: E402

WORLDS = {
    "google": (google_world, GoogleDriver),
    "microsoft": (microsoft_world, MicrosoftDriver),
    "icloud": (icloud_world, ICloudDriver),
}


async def fill(driver, total: int) -> None:
    slots = hourly_slots(datetime.now(UTC), total)
    if isinstance(driver, ICloudDriver):
        events = [
            driver._event(f"bench-{n}@chronapilot.test", f"event {n}", slot.start, slot.end)
            for n, slot in enumerate(slots)
        ]
        status, _, text = await driver._dav(
            "PUT",
            driver.calendar_id,
            driver._calendar(*events).to_ical(),
            {"Content-Type": "text/calendar; charset=utf-8"},
        )
        assert status in (201, 204), text
        return
    for first in range(0, total, 16):
        await asyncio.gather(
            *(
                driver.create(f"event {n}", slots[n].start, slots[n].minutes)
                for n in range(first, min(total, first + 16))
            )
        )


async def serving_rate(connection, calendar_id: str) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    async for page in connection.provider.sync_events(connection.token, calendar_id, None):
        count += len(page.upserts)
    return count, time.perf_counter() - started


async def bulk_write_rate(store: Store, connection, calendar_id: str) -> tuple[int, float]:
    docs = []
    async for page in connection.provider.sync_events(connection.token, calendar_id, None):
        docs += [
            mirror_fields(event) | {"provider_event_id": event.provider_event_id} for event in page.upserts
        ]
    scratch = store.db["bench_bulk"]
    await scratch.drop()
    await scratch.create_index([("provider_event_id", 1)], unique=True)
    started = time.perf_counter()
    await scratch.bulk_write(
        [UpdateOne({"provider_event_id": d["provider_event_id"]}, {"$set": d}, upsert=True) for d in docs],
        ordered=False,
    )
    return len(docs), time.perf_counter() - started


async def bulk_insert_rate(store: Store, connection, calendar_id: str) -> tuple[int, float]:
    """The stricter storage ceiling: plain inserts of the documents a sync writes (``raw``
    included) into a collection with every index of ``events`` (the sync inserts what the mirror
    lacks; the embedded server inserts about three times faster than it upserts)."""
    docs = []
    async for page in connection.provider.sync_events(connection.token, calendar_id, None):
        docs += [
            mirror_fields(event)
            | {
                "_id": f"evt_bench_{n}_{event.provider_event_id}",
                "connection_id": "con_bench_insert",
                "provider_calendar_id": calendar_id,
                "calendar_id": "cal_bench_insert",
                "application_id": "app_bench",
                "provider_event_id": event.provider_event_id,
                "deleted": False,
                "raw": capped_raw(dict(event.raw), 32768),
            }
            for n, event in enumerate(page.upserts)
        ]
    scratch = store.db["bench_insert"]
    await scratch.drop()
    for spec in (await store.db.events.index_information()).values():
        if spec["key"] != [("_id", 1)]:
            await scratch.create_index(spec["key"], unique=spec.get("unique", False))
    started = time.perf_counter()
    await scratch.insert_many(docs, ordered=False)
    return len(docs), time.perf_counter() - started


async def server_report_s(driver: ICloudDriver, sync_token: str) -> float:
    """Radicale alone: the raw sync-collection REPORT from ``sync_token``, which must name one
    changed member."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:sync-collection xmlns:d="DAV:"><d:sync-token>{escape(sync_token)}</d:sync-token>'
        "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
    )
    headers = {"Content-Type": "application/xml; charset=utf-8", "Depth": "0"}
    started = time.perf_counter()
    status, _, answer = await driver._dav("REPORT", driver.calendar_id, body, headers)
    elapsed = time.perf_counter() - started
    assert status == 207, answer
    assert len(ET.fromstring(answer).findall("{DAV:}response")) == 1, answer
    return elapsed


async def bench_provider(name: str, store: Store, events: int) -> dict[str, float | None]:
    world_factory, driver_class = WORLDS[name]
    async with aiohttp.ClientSession() as http, world_factory(http) as world:
        # Radicale answers a PROPFIND over 10,000 items slowly: give every call time.
        world.settings = world.settings.model_copy(update={"http_timeout_s": 600.0})
        connection = await world.connect()
        driver = driver_class(world, connection)
        calendar_id = await driver.new_calendar()
        print(f"[{name}] writing {events} events at the provider…", flush=True)
        await fill(driver, events)
        served, serve_s = await serving_rate(connection, calendar_id)
        written, write_s = await bulk_write_rate(store, connection, calendar_id)
        inserted, insert_s = await bulk_insert_rate(store, connection, calendar_id)
        ref = CalendarRef(f"cal_bench_{name}", "con_bench", "app_bench", calendar_id)
        started = time.perf_counter()
        result = await sync_calendar(
            Repositories.open(store),
            connection.provider,
            connection.token,
            ref,
            full=True,
            clock=SystemClock(),
            raw_max_bytes=32768,
            guard=InTransaction(store),
            outbox=QueuedOutbox(store),
        )
        full_s = time.perf_counter() - started
        latencies, reports = [], []
        for n in range(5):
            cursor = await Repositories.open(store).sync_state.cursor(ref.id)
            await driver.create(f"incremental {n}", datetime.now(UTC) + timedelta(days=1, hours=n))
            started = time.perf_counter()
            changed = await sync_calendar(
                Repositories.open(store),
                connection.provider,
                connection.token,
                ref,
                full=False,
                clock=SystemClock(),
                raw_max_bytes=32768,
                guard=InTransaction(store),
                outbox=QueuedOutbox(store),
            )
            latencies.append(time.perf_counter() - started)
            assert changed.applied.upserted == 1, changed
            if isinstance(driver, ICloudDriver):
                assert cursor is not None and cursor.startswith(DAV_PREFIX), cursor
                reports.append(await server_report_s(driver, cursor.removeprefix(DAV_PREFIX)))
        return {
            "events": result.applied.upserted,
            "serving": served / serve_s,
            "bulk": written / write_s,
            "insert": inserted / insert_s,
            "full": result.applied.upserted / full_s,
            "incremental_ms": statistics.median(latencies) * 1000,
            "report_ms": statistics.median(reports) * 1000 if reports else None,
        }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--providers", default="google,microsoft,icloud")
    args = parser.parse_args()
    port = free_port()
    mongo = start_mongodb("127.0.0.1", port, storage=None, log_path=None)
    try:
        store = await Store.connect(
            MongoSettings(uri=mongodb_uri("127.0.0.1", port), database="bench"), budget_s=30
        )
        await ensure_indexes(store.db)
        rows = {}
        for name in args.providers.split(","):
            try:
                rows[name] = await bench_provider(name, store, args.events)
            except Exception as exc:  # report the others even when one provider fails
                print(f"[{name}] failed: {type(exc).__name__}: {exc}", flush=True)
        await store.close()
    finally:
        mongo.stop()
    print(
        f"\n{'provider':<10} {'events':>7} {'serving ev/s':>13} {'bulk write ev/s':>16} "
        f"{'full sync ev/s':>15} {'full/ceiling':>13} {'incremental p50':>16} "
        f"{'server REPORT p50':>18} {'incr/REPORT':>12} {'bulk insert ev/s':>17} {'full/insert ceiling':>20}"
    )
    for name, row in rows.items():
        ceiling = min(row["serving"], row["bulk"])
        report = (
            f"{row['report_ms']:>15.0f} ms {row['incremental_ms'] / row['report_ms']:>12.2f}"
            if row["report_ms"] is not None
            else f"{'-':>18} {'-':>12}"
        )
        print(
            f"{name:<10} {row['events']:>7.0f} {row['serving']:>13.0f} {row['bulk']:>16.0f} "
            f"{row['full']:>15.0f} {row['full'] / ceiling:>13.2f} {row['incremental_ms']:>13.0f} ms "
            + report
            + f" {row['insert']:>17.0f} {row['full'] / min(row['serving'], row['insert']):>20.2f}"
        )
    print(
        "\nceiling = the slower of serving (the provider side alone) and bulk write (MongoDB alone), "
        "measured in this run; full/ceiling is the share of it the whole pipeline reaches.\n"
        "server REPORT = Radicale's own sync-collection REPORT from the token each incremental "
        "started from (p50 of the same rounds); incr/REPORT = incremental p50 / server REPORT p50.\n"
        "full/insert ceiling = full sync over the slower of serving and bulk insert (plain inserts "
        "of the sync's documents into a collection indexed like events): stricter than the upsert "
        "ceiling, which the sync's inserts outrun."
    )


if __name__ == "__main__":
    asyncio.run(main())
