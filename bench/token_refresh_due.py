"""The token refresher's tick query at 10,000 and 100,000 connections (a script, not a test).

Fills ``credentials`` with ``--sizes`` connections of which ``--due`` have an access token
expiring within the refresh margin (the rest expire later), creates ChronaPilot's indexes, then
prints the tick query's ``explain`` (the ``by_access_expiry`` index, and how many keys and documents
it examined) and the median time of the query (one full batch of ``--batch`` ids, as a tick
reads it, plus reading every due id) at each size, with the ratios. Uses
``MONGODB_URI`` when set, else starts the embedded MongoDB-protocol server on a free port.

    .venv/bin/python bench/token_refresh_due.py [--sizes 10000 100000] [--due 1000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from pymongo import AsyncMongoClient

from chronapilot.common.settings import TokenSettings
from chronapilot.common.store import Store
from chronapilot.common.store.credentials import Credentials
from chronapilot.common.store.indexes import ensure_indexes
from chronapilot.devstack.embedded import mongodb_uri, start_mongodb
from chronapilot.devstack.processes import free_port
from chronapilot.token_refresher.telemetry import record_fleet_health

MARGIN = timedelta(minutes=10)


def credentials(count: int, due: int, now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """``count`` credentials documents, ``due`` of them expiring within the margin."""
    docs = []
    for i in range(count):
        if i < due:
            expires = now + timedelta(seconds=rng.uniform(0, MARGIN.total_seconds() - 1))
        else:
            expires = now + MARGIN + timedelta(seconds=rng.uniform(60, 3600 * 24))
        docs.append(
            {
                "_id": f"con_bench{i:08d}",
                "provider": "google" if i % 2 else "microsoft",
                "access_token": "v1.bench.x.y",
                "refresh_token": "v1.bench.x.z",
                "access_expires_at": expires,
                "scopes": [],
                "updated_at": now,
                "version": 1,
            }
        )
    rng.shuffle(docs)
    return docs


def summarize_plan(plan: dict[str, Any]) -> dict[str, Any]:
    stats = plan.get("executionStats", {})
    winning = plan.get("queryPlanner", {}).get("winningPlan", {})
    return {
        "winningPlan": winning,
        "nReturned": stats.get("nReturned"),
        "totalKeysExamined": stats.get("totalKeysExamined"),
        "totalDocsExamined": stats.get("totalDocsExamined"),
        "executionTimeMillis": stats.get("executionTimeMillis"),
    }


async def measure(db: Any, size: int, due: int, batch: int, rounds: int) -> dict[str, Any]:
    collection = db.credentials
    await collection.drop()
    await ensure_indexes(db)
    now = datetime.now(UTC)
    docs = credentials(size, due, now, random.Random(size))
    for start in range(0, len(docs), 5000):
        await collection.insert_many(docs[start : start + 5000], ordered=False)

    repository = Credentials(Store(db.client, db.name))
    plan = await repository.explain_due_for_refresh(now + MARGIN, batch)
    batch_times, all_times = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        first = await repository.due_for_refresh(before=now + MARGIN, now=now, limit=batch)
        batch_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        every = await repository.due_for_refresh(before=now + MARGIN, now=now, limit=due)
        all_times.append(time.perf_counter() - started)
        assert len(first) == min(batch, due) and len(every) == due, (len(first), len(every))
    gauge_times = []
    service = SimpleNamespace(credentials=repository)
    for _ in range(rounds):
        started = time.perf_counter()
        await record_fleet_health(service, TokenSettings(), now)  # type: ignore[arg-type]
        gauge_times.append(time.perf_counter() - started)
    return {
        "size": size,
        "gauges_ms": statistics.median(gauge_times) * 1000,
        "plan": summarize_plan(plan),
        "batch_ms": statistics.median(batch_times) * 1000,
        "all_due_ms": statistics.median(all_times) * 1000,
    }


async def main(args: argparse.Namespace) -> None:
    uri = os.environ.get("MONGODB_URI")
    child = None
    if uri is None:
        port = free_port()
        child = start_mongodb("127.0.0.1", port, storage=None, log_path=None)
        uri = mongodb_uri("127.0.0.1", port)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    try:
        db = client[f"bench_refresh_due_{os.getpid()}"]
        results = []
        for size in args.sizes:
            result = await measure(db, size, args.due, args.batch, args.rounds)
            results.append(result)
            print(f"\n== {size:,} connections, {args.due:,} due ==")
            print("explain (tick query, one batch):")
            print(json.dumps(result["plan"], indent=2, default=str))
            print(f"one batch of {args.batch}: {result['batch_ms']:.2f} ms (median of {args.rounds})")
            print(f"all {args.due:,} due ids:  {result['all_due_ms']:.2f} ms (median of {args.rounds})")
            print(f"fleet gauges (count expiring within the hour, soonest due): {result['gauges_ms']:.2f} ms")
        await client.drop_database(db.name)
        base = results[0]
        print("\n== scaling ==")
        print("connections | one batch ms | all due ms | keys examined | docs examined")
        for result in results:
            plan = result["plan"]
            print(
                f"{result['size']:>11,} | {result['batch_ms']:>12.2f} | {result['all_due_ms']:>10.2f} | "
                f"{plan['totalKeysExamined']!s:>13} | {plan['totalDocsExamined']!s:>13}"
            )
        for result in results[1:]:
            print(
                f"{result['size']:,} vs {base['size']:,} connections ({result['size'] / base['size']:.0f}x): "
                f"one batch {result['batch_ms'] / base['batch_ms']:.2f}x, "
                f"all due {result['all_due_ms'] / base['all_due_ms']:.2f}x, "
                f"fleet gauges {result['gauges_ms'] / base['gauges_ms']:.2f}x"
            )
    finally:
        await client.close()
        if child is not None:
            child.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    asyncio.run(main(parser.parse_args()))
