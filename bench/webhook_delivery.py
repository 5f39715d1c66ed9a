"""How fast customer webhooks are delivered (a script, not a test).

Starts the embedded Kafka-protocol broker and MongoDB-protocol server (or uses
``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URI``) and, as child processes on free ports:

- a receiver: a bare aiohttp endpoint that answers 200 and notes, per request, how long after
  the object's ``updated_at`` (the mirror write) it arrived;
- the webhook dispatcher (``python -m chronapilot.webhook_dispatcher``).

This process plays the sync worker: one connection with one endpoint subscribed to ``*``, and
``--events`` new events written to the mirror by the worker's own page writer
(``apply_page``, in pages of ``--page``), each page one ``mirror.events_changed`` message in
the outbox. The dispatcher consumes them, renders each event as ``GET /v1/events/{id}`` shows
it, persists one delivery per event, signs and POSTs it. Printed: deliveries per second (first
mirror write to last receipt) and event-to-delivery latency p50 / p99 (mirror write to
receipt), beside the ceiling measured in the same run: a bare aiohttp POST loop from this
process to the same receiver, same bodies, same concurrency (``CHRONAPILOT_WEBHOOK_CONCURRENCY``).

    .venv/bin/python bench/webhook_delivery.py [--events 2000] [--page 100] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from chronapilot.common.clock import isoformat_z
from chronapilot.common.ids import new_id
from chronapilot.common.mirror.writes import CalendarRef, apply_listing, apply_page
from chronapilot.common.providers.base import CalendarInfo
from chronapilot.common.providers.sync import EventData, EventPage, EventTime
from chronapilot.common.runtime import Runtime, open_runtime
from chronapilot.common.settings import Settings
from chronapilot.common.store.webhook_deliveries import SUCCEEDED, Outcome, new_delivery
from chronapilot.common.webhooks.signing import new_secret, seal
from chronapilot.devstack.embedded import start_embedded
from chronapilot.devstack.processes import Child, free_port

APP = "app_bench"
#: BENCH_PROFILE=<file>: run the dispatcher under cProfile (stats written when it stops)
PROFILE = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []


# -- the receiver (run as a child: --serve-receiver PORT) -----------------------------------------


def serve_receiver(port: int) -> None:
    lags: list[float] = []
    arrivals: list[float] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        arrivals.append(now)
        updated = json.loads(body).get("data", {}).get("updated_at")
        if updated:
            lags.append(now - datetime.fromisoformat(updated.replace("Z", "+00:00")).timestamp())
        return web.Response(status=200)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "count": len(arrivals),
                "lags": lags,
                "first": min(arrivals, default=0),
                "last": max(arrivals, default=0),
            }
        )

    async def reset(_: web.Request) -> web.Response:
        lags.clear()
        arrivals.clear()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hooks", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- helpers --------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def wait_http(url: str, child: Child, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if not child.alive():
                raise SystemExit(f"{child.name} died:\n{child.tail()}")
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} never answered:\n{child.tail()}")


async def stats(http: aiohttp.ClientSession, receiver: str) -> dict:
    async with http.get(f"{receiver}/stats") as response:
        return dict(await response.json())


def event(n: int, start: datetime) -> EventData:
    begins = EventTime(start + timedelta(hours=n), None, "UTC")
    return EventData(
        provider_event_id=f"bench-{n}",
        ical_uid=f"bench-{n}@example.com",
        title=f"bench event {n}",
        description="a description long enough to look like a real one " * 3,
        location="Room 4",
        start=begins,
        end=EventTime(start + timedelta(hours=n, minutes=30), None, "UTC"),
        all_day=False,
        status="confirmed",
        recurrence=(),
        recurring_event_id=None,
        original_start=None,
        organizer=None,
        attendees=(),
        etag=f'"{n}"',
        updated_at=start,
        raw={"id": f"bench-{n}"},
    )


# -- the bare POST loop (the ceiling) ---------------------------------------------------------------


async def bare_loop(url: str, bodies: list[bytes], concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "per_s": len(bodies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 0.99),
    }


# -- the storage ceiling ---------------------------------------------------------------------------


async def storage_ceiling(runtime: Runtime, endpoint_id: str, count: int, page: int, batch: int) -> float:
    """Deliveries/s of the least storage work a delivery needs, on the same server: created in
    pages (one insert per page), their outcomes written in batches (one bulk write per batch)."""
    deliveries = runtime.repos.webhook_deliveries
    now = datetime.now(UTC)
    payload = {"type": "event.created", "timestamp": isoformat_z(now), "data": {"object": {"x": "y" * 1200}}}
    docs = [
        new_delivery(
            application_id=APP,
            endpoint_id=endpoint_id,
            event_type="event.created",
            connection_id="con_ceiling",
            payload=payload,
            source_id=f"ceiling/{n}",
            now=now,
            next_attempt_at=now + timedelta(seconds=60),
        )
        for n in range(count)
    ]
    started = time.perf_counter()
    for first in range(0, count, page):
        await deliveries.create_many(docs[first : first + page])
    for first in range(0, count, batch):
        await deliveries.record(
            [Outcome(d["_id"], now, 200, None, SUCCEEDED, None) for d in docs[first : first + batch]]
        )
    return count / (time.perf_counter() - started)


# -- the run ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    embedded = start_embedded(
        host="127.0.0.1",
        kafka_port=free_port(),
        mongodb_port=free_port(),
        mongodb_storage=None,
        log_dir=None,
        existing_kafka=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        existing_mongodb=os.environ.get("MONGODB_URI"),
    )
    children: list[Child] = []
    try:
        assert embedded.kafka_bootstrap_servers and embedded.mongodb_uri
        suffix = uuid.uuid4().hex[:8]
        run_dir = Path(tempfile.mkdtemp(prefix="chronapilot-bench-"))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CHRONAPILOT_")},
            "MONGODB_URI": embedded.mongodb_uri,
            "KAFKA_BOOTSTRAP_SERVERS": embedded.kafka_bootstrap_servers,
            "CHRONAPILOT_ENV": "test",
            "CHRONAPILOT_RUN_DIR": str(run_dir),
            "CHRONAPILOT_MONGODB_DATABASE": f"bench_{suffix}",
            "CHRONAPILOT_KAFKA_TOPIC_PREFIX": f"bench{suffix}",
            "CHRONAPILOT_LOG_LEVEL": "WARNING",
            "CHRONAPILOT_WEBHOOK_ALLOW_PRIVATE_DESTINATIONS": "true",
            "CHRONAPILOT_WEBHOOK_CONCURRENCY": str(args.concurrency),
        }
        receiver_port, dispatcher_port = free_port(), free_port()
        receiver = f"http://127.0.0.1:{receiver_port}"
        children.append(
            Child.start(
                "receiver",
                [sys.executable, __file__, "--serve-receiver", str(receiver_port)],
                env=env,
                log_path=run_dir / "receiver.log",
            )
        )
        await wait_http(f"{receiver}/stats", children[0])
        os.environ.update(
            {k: v for k, v in env.items() if k.startswith(("CHRONAPILOT_", "MONGODB", "KAFKA"))}
        )
        settings = Settings()
        async with open_runtime(settings, "bench") as runtime:
            now = datetime.now(UTC)
            endpoint_id, secret = new_id("we"), new_secret()
            await runtime.repos.webhook_endpoints.insert(
                {
                    "_id": endpoint_id,
                    "application_id": APP,
                    "url": f"{receiver}/hooks",
                    "description": "bench",
                    "enabled_events": ["*"],
                    "disabled": False,
                    "disabled_reason": None,
                    "secrets": [
                        {
                            "secret": seal(runtime.cipher, endpoint_id, secret),
                            "created_at": now,
                            "expires_at": None,
                        }
                    ],
                    "failing_since": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            connection_id = new_id("con")
            key = {
                "application_id": APP,
                "user_id": "usr_bench",
                "provider": "google",
                "provider_account_id": "b",
            }
            await runtime.store.in_transaction(
                lambda s: runtime.connections.activate(
                    s, key=key, email="bench@example.com", calendar_ids=[], connection_id=connection_id
                )
            )
            connection = await runtime.connections.get(connection_id)
            assert connection is not None
            listed = [CalendarInfo("p-bench", "bench", True, False, "UTC", None)]
            await runtime.store.in_transaction(
                lambda s: apply_listing(
                    runtime.repos.calendars,
                    connection,
                    listed,
                    runtime.clock.now(),
                    outbox=runtime.outbox,
                    session=s,
                )
            )
            [calendar] = await runtime.repos.calendars.of_connections([connection_id])

            def start_dispatcher() -> Child:
                child = Child.start(
                    "dispatcher",
                    [sys.executable, *PROFILE, "-m", "chronapilot.webhook_dispatcher"],
                    env={**env, "CHRONAPILOT_WEBHOOK_DISPATCHER_PORT": str(dispatcher_port)},
                    log_path=run_dir / "dispatcher.log",
                )
                children.append(child)
                return child

            async def write(first: int, count: int) -> None:
                upserts = tuple(event(n, start) for n in range(first, first + count))
                page = EventPage(upserts=upserts, deletions=(), next_cursor=None)
                await runtime.store.in_transaction(
                    lambda s: apply_page(
                        runtime.repos.events,
                        ref,
                        page,
                        runtime.clock.now(),
                        raw_max_bytes=32768,
                        outbox=runtime.outbox,
                        session=s,
                    )
                )

            async def delivered(count: int, http: aiohttp.ClientSession) -> dict:
                deadline = time.monotonic() + 300
                while (got := await stats(http, receiver))["count"] < count:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"only {got['count']} of {count} delivered")
                    await asyncio.sleep(0.05)
                return got

            ref = CalendarRef(calendar["_id"], connection_id, APP, calendar["provider_calendar_id"])
            start = datetime(2027, 1, 4, tzinfo=UTC)
            dispatcher = start_dispatcher()
            await wait_http(f"http://127.0.0.1:{dispatcher_port}/readyz", dispatcher)
            async with aiohttp.ClientSession() as http:
                await delivered(2, http)  # the link's connection.created and calendar.created
                await http.post(f"{receiver}/reset")

                # 1. latency at a steady pace: one changed event at a time, as a sync page
                for n in range(args.latency_events):
                    await write(n, 1)
                    await asyncio.sleep(args.pace)
                lags = (await delivered(args.latency_events, http))["lags"]
                await http.post(f"{receiver}/reset")

                # 2. throughput: a backlog of --events (written while the dispatcher is stopped)
                dispatcher.stop(20)
                first = args.latency_events
                for offset in range(0, args.events, args.page):
                    await write(first + offset, min(args.page, args.events - offset))
                dispatcher = start_dispatcher()
                await wait_http(f"http://127.0.0.1:{dispatcher_port}/readyz", dispatcher)
                got = await delivered(args.events, http)
                # from the first delivery (the consumer has joined its group) to the last
                drained_in = got["last"] - got["first"]
                retried = await runtime.store.db.webhook_deliveries.count_documents({"attempts": {"$gt": 1}})
                errors = await runtime.store.db.webhook_deliveries.distinct("last_error")
                sample = json.dumps(
                    {
                        "type": "event.created",
                        "timestamp": isoformat_z(now),
                        "data": {"updated_at": isoformat_z(now)},
                    }
                ).encode()
                bodies = [sample.ljust(len(sample) + 1200) for _ in range(args.events)]
                await http.post(f"{receiver}/reset")
            storage = await storage_ceiling(runtime, endpoint_id, args.events, args.page, args.concurrency)
            bare = await bare_loop(f"{receiver}/hooks", bodies, args.concurrency)
        print(
            f"webhook delivery: one receiver, concurrency {args.concurrency}; "
            f"latency over {args.latency_events} events mirrored {args.pace:g}s apart, "
            f"throughput over a backlog of {args.events} events (pages of {args.page}; first to last receipt)"
        )
        print(f"{'':<22} | {'deliveries/s':>12} | {'p50 ms':>8} | {'p99 ms':>8}")
        print(
            f"{'dispatcher':<22} | {args.events / drained_in:>12.0f} | "
            f"{1000 * statistics.median(lags):>8.1f} | {1000 * percentile(lags, 0.99):>8.1f}"
            "   (latency: mirror write to receipt)"
        )
        print(f"{'storage alone':<22} | {storage:>12.0f} |          |            (create + outcome writes)")
        print(
            f"{'bare aiohttp POST loop':<22} | {bare['per_s']:>12.0f} | {bare['p50_ms']:>8.1f} | "
            f"{bare['p99_ms']:>8.1f}   (latency: one request)"
        )
        print(f"deliveries attempted more than once: {retried}; errors seen: {errors}")
        print(f"dispatcher / ceiling (deliveries/s): {args.events / drained_in / bare['per_s']:.2f}")
    finally:
        for child in reversed(children):
            child.stop(10)
        embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve-receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--latency-events", type=int, default=100)
    parser.add_argument("--pace", type=float, default=0.1, help="seconds between latency-phase writes")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if args.serve_receiver:
        serve_receiver(args.serve_receiver)
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
