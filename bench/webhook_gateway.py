"""How fast the webhook gateway acknowledges notifications (a script, not a test).

Starts the embedded Kafka-protocol broker and MongoDB-protocol server (or uses
``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URI``), stores ``--channels`` live Google watch channels
with known secrets, then runs two servers as child processes on free ports:

- the gateway (``python -m chronapilot.webhook_gateway``), which validates each notification
  (cached secret lookup, constant-time compare), drops duplicates, folds bursts per calendar
  and publishes sync requests to Kafka before answering;
- a bare aiohttp endpoint that answers 200 to everything: the ceiling of this machine, this
  client and aiohttp.

This process is the load: genuine ``X-Goog-*`` notifications (each channel's message numbers
increase, so none is a duplicate) at increasing concurrency, and prints per level the
acknowledgements per second and the p50 / p99 latency of both servers, measured in the same run.

With ``--mirror`` it also measures webhook-to-mirror latency: the sandbox, the API, the sync
worker and the gateway in-process, a Google and a Microsoft account linked through consent, and
``--changes`` event changes in the emulators, each timed until ``GET /v1/events`` shows it.

    .venv/bin/python bench/webhook_gateway.py [--channels 2000] [--requests 4000]
        [--levels 1,8,32,128] [--mirror] [--changes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from chronapilot.common.providers.push import hash_secret
from chronapilot.common.settings import MongoSettings
from chronapilot.common.store.client import Store
from chronapilot.devstack.embedded import start_embedded
from chronapilot.devstack.processes import Child, free_port, port_open

HERE = Path(__file__).resolve().parent


# -- the bare endpoint (run as a child: --serve-bare PORT) ---------------------------------------


def serve_bare(port: int) -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(status=200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- set-up ---------------------------------------------------------------------------------------


async def store_channels(mongodb_uri: str, database: str, count: int) -> list[tuple[str, str]]:
    """``count`` live channels on as many calendars of one connection; their (id, secret)."""
    store = await Store.connect(MongoSettings(uri=mongodb_uri, database=database), budget_s=30)
    now = datetime.now(UTC)
    channels, docs = [], []
    for n in range(count):
        channel_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(32)
        channels.append((channel_id, secret))
        docs.append(
            {
                "_id": f"sub_bench{n:08d}",
                "connection_id": f"con_bench{n % 50:04d}",
                "provider": "google",
                "calendar_id": f"calendar-{n}@bench",
                "channels": [
                    {
                        "id": channel_id,
                        "resource_id": "r",
                        "secret_hash": hash_secret(secret),
                        "expires_at": now + timedelta(days=7),
                        "since": now,
                    }
                ],
                "status": "active",
                "due_at": now + timedelta(days=6),  # the scheduler leaves them alone
                "lease_until": now,
                "attempts": 0,
            }
        )
    await store.db.webhook_subscriptions.insert_many(docs)
    await store.close()
    return channels


def start_gateway(env: dict[str, str], port: int, log_dir: Path) -> Child:
    child = Child.start(
        "gateway",
        [sys.executable, "-m", "chronapilot.webhook_gateway"],
        # the internal metrics listener on any free port: a `make run` may hold the default
        env={
            **env,
            "CHRONAPILOT_WEBHOOK_GATEWAY_PORT": str(port),
            "CHRONAPILOT_WEBHOOK_GATEWAY_METRICS_PORT": "0",
        },
        log_path=log_dir / "gateway.log",
    )
    return child


async def wait_ready(url: str, child: Child, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if not child.alive():
                raise SystemExit(f"{child.name} exited:\n{child.tail()}")
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"{child.name} not ready after {timeout_s}s:\n{child.tail()}")


# -- load -----------------------------------------------------------------------------------------


class Notifications:
    """Genuine Google notifications, round-robin over the channels, numbers increasing."""

    def __init__(self, channels: list[tuple[str, str]]) -> None:
        self._channels = channels
        self._next = 0
        self._numbers = [1] * len(channels)

    def headers(self) -> dict[str, str]:
        index = self._next % len(self._channels)
        self._next += 1
        self._numbers[index] += 1
        channel_id, secret = self._channels[index]
        return {
            "X-Goog-Channel-ID": channel_id,
            "X-Goog-Channel-Token": secret,
            "X-Goog-Channel-Expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
            "X-Goog-Resource-ID": "r",
            "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/x/events?alt=json",
            "X-Goog-Resource-State": "exists",
            "X-Goog-Message-Number": str(self._numbers[index]),
        }


async def run_level(
    url: str, notifications: Notifications, requests: int, concurrency: int
) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                headers = notifications.headers()
                started = time.perf_counter()
                async with http.post(url, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "ok": statuses.get(200, 0) / max(1, len(latencies)),
        "statuses": statuses,  # type: ignore[dict-item]
    }


async def acknowledgement_bench(args: argparse.Namespace) -> None:
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
        database, prefix = f"bench_{suffix}", f"bench{suffix}"
        channels = await store_channels(embedded.mongodb_uri, database, args.channels)
        run_dir = Path(tempfile.mkdtemp(prefix="chronapilot-bench-"))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CHRONAPILOT_")},
            "MONGODB_URI": embedded.mongodb_uri,
            "KAFKA_BOOTSTRAP_SERVERS": embedded.kafka_bootstrap_servers,
            "CHRONAPILOT_ENV": "test",
            "CHRONAPILOT_RUN_DIR": str(run_dir),
            "CHRONAPILOT_MONGODB_DATABASE": database,
            "CHRONAPILOT_KAFKA_TOPIC_PREFIX": prefix,
            "CHRONAPILOT_GOOGLE_CLIENT_ID": "bench",
            "CHRONAPILOT_GOOGLE_CLIENT_SECRET": "bench",
            "CHRONAPILOT_LOG_LEVEL": "WARNING",
            "CHRONAPILOT_WEBHOOK_DEBOUNCE_S": str(args.debounce),
        }
        gateway_port, bare_port = free_port(), free_port()
        children.append(start_gateway(env, gateway_port, run_dir))
        children.append(
            Child.start(
                "bare",
                [sys.executable, __file__, "--serve-bare", str(bare_port)],
                env=env,
                log_path=run_dir / "bare.log",
            )
        )
        await wait_ready(f"http://127.0.0.1:{gateway_port}/readyz", children[0])
        await wait_ready(f"http://127.0.0.1:{bare_port}/healthz", children[1])
        assert port_open("127.0.0.1", gateway_port)

        targets = {
            "gateway": f"http://127.0.0.1:{gateway_port}/webhooks/google",
            "bare aiohttp": f"http://127.0.0.1:{bare_port}/webhooks/google",
        }
        notifications = Notifications(channels)
        await run_level(targets["gateway"], notifications, min(2000, args.requests), 16)  # warm the cache
        print(
            f"webhook gateway acknowledgement: {args.channels} channels, {args.requests} notifications "
            f"per level, debounce {args.debounce:g}s, load from this process (pid {os.getpid()})"
        )
        print(f"{'concurrency':>11} | {'server':<12} | {'acks/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | 200s")
        for level in args.levels:
            for name, url in targets.items():
                result = await run_level(url, notifications, args.requests, level)
                print(
                    f"{level:>11} | {name:<12} | {result['rate']:>8.0f} | {result['p50_ms']:>7.2f} | "
                    f"{result['p99_ms']:>7.2f} | {result['ok']:.0%}"
                )
    finally:
        for child in reversed(children):
            child.stop()
        embedded.stop()


# -- webhook to mirror ----------------------------------------------------------------------------


async def mirror_bench(args: argparse.Namespace) -> None:
    """Change events in the emulators; time each until ``GET /v1/events`` shows it."""
    sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
    sys.path.insert(0, str(HERE.parent / "tests"))  # first: its conftest holds Isolated
    # the test suite's harness, only for --mirror
    from conftest import Isolated

    from chronapilot.common.settings import Settings, SyncSettings
    from chronapilot.sandbox.launcher import Sandbox, SandboxConfig
    from chronapilot.sync_worker.app import create_app as create_worker

    from api_harness import Browser, start_api
    from infrastructure import session_infrastructure
    from realtime_harness import start_gateway as start_test_gateway

    with session_infrastructure() as infra:
        isolated = Isolated(infra, Path(tempfile.mkdtemp(prefix="chronapilot-bench-")))
        config = SandboxConfig(google_port=0, microsoft_port=0, radicale_port=0, seed=20261125)
        async with Sandbox(config) as sandbox:
            api_runner, api = await start_api(isolated, sandbox)
            base = api.settings
            worker_settings = Settings(
                env=base.env,
                run_dir=base.run_dir,
                mongo=base.mongo,
                kafka=base.kafka,
                providers=base.providers,
                service=base.service.model_copy(update={"sync_worker_port": free_port()}),
                sync=SyncSettings(polling_enabled=False),
            )
            worker = web.AppRunner(create_worker(worker_settings))
            await worker.setup()
            gateway_runner, gateway = await start_test_gateway(api, webhook_debounce_s=args.debounce)
            try:
                async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                    browser = Browser(http, api, sandbox)
                    print(f"webhook to mirror: {args.changes} changes per provider, polling off")
                    for provider in ("google", "microsoft"):
                        latencies = await _mirror_latencies(browser, gateway, http, sandbox, provider, args)
                        print(f"{provider:>10}: {_summary(latencies)}")
            finally:
                await gateway_runner.cleanup()
                await worker.cleanup()
                await api_runner.cleanup()


def _summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {1000 * statistics.median(ordered):.0f} ms, p99 {1000 * p99:.0f} ms, "
        f"max {1000 * ordered[-1]:.0f} ms"
    )


async def _mirror_latencies(browser, gateway, http, sandbox, provider, args) -> list[float]:  # type: ignore[no-untyped-def]
    from helpers import eventually
    from realtime_harness import Emulator

    emulator = Emulator(http, sandbox.urls[provider], provider)
    user_id = await browser.create_user(f"bench-{provider}-{uuid.uuid4().hex[:6]}")
    connection_id = (await browser.connect(provider, user_id))["connection_id"][0]
    db = gateway.db

    async def realtime_and_synced() -> bool:
        found = await db.connections.find_one({"_id": connection_id})
        return bool(
            found["sync_mode"] == "realtime"
            and found["last_synced_at"]
            and not await db.leases.find_one({"_id": f"sync:{connection_id}"})
        )

    await eventually(realtime_and_synced, timeout_s=60)  # else there is nothing to measure
    calendar = await db.calendars.find_one({"connection_id": connection_id, "primary": True})
    event_id = await emulator.insert_event(calendar["provider_calendar_id"], "bench", "2027-07-07")
    window = "start=2027-07-07T00:00:00Z&end=2027-07-08T00:00:00Z"
    url = f"{browser.api.url}/v1/events?calendar_id={calendar['_id']}&{window}"
    latencies = []
    for n in range(args.changes):
        title = f"bench {n} {uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        await emulator.rename_event(calendar["provider_calendar_id"], event_id, title)

        async def visible(title: str = title) -> bool:
            async with http.get(url, headers=browser.api.headers()) as response:
                return any(e["title"] == title for e in (await response.json())["data"])

        await eventually(visible, timeout_s=30, interval_s=0.005)  # a change never seen fails the run
        latencies.append(time.monotonic() - started)
        await asyncio.sleep(args.debounce + 0.2)  # pacing: each change in its own debounce window
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--channels", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=4000, help="notifications per level and server")
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32, 128])
    parser.add_argument("--debounce", type=float, default=1.0, help="CHRONAPILOT_WEBHOOK_DEBOUNCE_S")
    parser.add_argument("--mirror", action="store_true", help="also measure webhook-to-mirror latency")
    parser.add_argument("--changes", type=int, default=30)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    asyncio.run(acknowledgement_bench(args))
    if args.mirror:
        asyncio.run(mirror_bench(args))


if __name__ == "__main__":
    main()
