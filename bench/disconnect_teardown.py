"""How long a disconnect takes to tear down the webhook subscriptions (a script, not a test).

Issue 14's measure: the time from ``DELETE /v1/connections/{id}`` to zero live subscriptions of
that connection at the emulator, p50 and max over ``--rounds`` disconnects per provider (Google
channels, Graph subscriptions; iCloud has none: it is polled).

The whole system runs in this process on the test suite's infrastructure (the embedded
Kafka-protocol broker and MongoDB-protocol server, or ``KAFKA_BOOTSTRAP_SERVERS`` /
``MONGODB_URI``): the sandbox, the API, a sync worker, a webhook gateway (default settings:
its scheduler is woken by the disconnect, not polled) and a token refresher. Each round links a
new user through the consent page, waits until every calendar's subscription is live and
settled, then:

- ``direct stop`` (the ceiling, measured in the same run): as many subscriptions as the
  connection has, created at the emulator from this process with the connection's token, then
  stopped there concurrently; the time of the stops is what the provider side alone costs;
- ``teardown``: ``DELETE``, then the emulator's admin API read every few milliseconds until
  none of the connection's subscriptions is live (a round that does not get there within
  ``--timeout`` counts as ``left live``, and as longer than the timeout in p50 and max);
- ``saga``: from ``DELETE`` until the credentials are deleted and the teardown recorded
  (``revoked_at``), for context.

    .venv/bin/python bench/disconnect_teardown.py [--rounds 20] [--providers google,microsoft]
        [--timeout 15]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
PUSH = ("google", "microsoft")


@dataclass
class Results:
    subscriptions: list[int] = field(default_factory=list)
    teardown: list[float] = field(default_factory=list)
    left_live: int = 0
    saga: list[float] = field(default_factory=list)
    saga_unfinished: int = 0
    direct: list[float] = field(default_factory=list)


def summary(values: list[float], timeout_s: float) -> tuple[str, str]:
    """p50 and max in ms; a round that never got there counts as longer than ``timeout_s``."""
    if not values:
        return "n/a", "n/a"

    def shown(value: float) -> str:
        return f">{timeout_s:g}s" if math.isinf(value) else f"{1000 * value:.0f}ms"

    return shown(statistics.median_high(values)), shown(max(values))


async def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
    sys.path.insert(0, str(HERE.parent / "tests"))  # first: its conftest holds Isolated
    from conftest import Isolated

    from chronapilot.common.settings import RealtimeSettings
    from chronapilot.sandbox.launcher import Sandbox, SandboxConfig

    from api_harness import Browser, running_refresher, running_worker, start_api
    from infrastructure import session_infrastructure
    from realtime_harness import start_gateway

    gateway_defaults = RealtimeSettings().model_dump()  # start_gateway's FAST values overridden
    with session_infrastructure() as infra:
        isolated = Isolated(infra, Path(tempfile.mkdtemp(prefix="chronapilot-bench-")))
        config = SandboxConfig(google_port=0, microsoft_port=0, radicale_port=0, seed=20261414)
        async with Sandbox(config) as sandbox:
            api_runner, api = await start_api(isolated, sandbox)
            gateway_runner, gateway = await start_gateway(api, **gateway_defaults)
            try:
                async with (
                    running_worker(api),
                    running_refresher(api),
                    aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
                ):
                    browser = Browser(http, api, sandbox)
                    results = {}
                    for provider in args.providers:
                        results[provider] = await bench_provider(browser, gateway, http, provider, args)
            finally:
                await gateway_runner.cleanup()
                await api_runner.cleanup()
    print(
        f"\ndisconnect teardown: DELETE /v1/connections/{{id}} -> zero live subscriptions at the "
        f"emulator, {args.rounds} disconnects per provider (API, sync worker, webhook gateway and "
        f"token refresher in this process; gateway settings: defaults)"
    )
    print(
        f"{'provider':>9} | {'subs':>4} | {'teardown p50':>12} | {'max':>8} | {'left live':>9} | "
        f"{'direct stop p50':>15} | {'max':>8} | {'saga p50':>8} | {'max':>8}"
    )
    for provider, result in results.items():
        subs = statistics.median(result.subscriptions) if result.subscriptions else 0
        teardown_p50, teardown_max = summary(result.teardown, args.timeout)
        direct_p50, direct_max = summary(result.direct, args.timeout)
        saga_p50, saga_max = summary(result.saga, args.timeout)
        print(
            f"{provider:>9} | {subs:>4.0f} | {teardown_p50:>12} | {teardown_max:>8} | "
            f"{result.left_live:>9} | {direct_p50:>15} | {direct_max:>8} | {saga_p50:>8} | {saga_max:>8}"
        )
        if result.saga_unfinished:
            print(f"{'':>9}   saga not finished within {args.timeout:g}s in {result.saga_unfinished} rounds")
    print("icloud: no subscriptions (CalDAV has no push; its connections are polled)")


async def bench_provider(
    browser: Any, gateway: Any, http: aiohttp.ClientSession, provider: str, args: argparse.Namespace
) -> Results:
    from helpers import eventually
    from realtime_harness import Emulator

    emulator = Emulator(http, browser.sandbox.urls[provider], provider)
    db = gateway.db
    result = Results()
    for round_ in range(args.rounds):
        user_id = await browser.create_user(f"bench-{provider}-{uuid.uuid4().hex[:8]}")
        connection_id = (await browser.connect(provider, user_id))["connection_id"][0]
        ids = await eventually(lambda c=connection_id: settled(db, c), timeout_s=60)
        result.subscriptions.append(len(ids))
        result.direct.append(await direct_stops(browser, gateway, http, provider, connection_id, len(ids)))

        started = time.perf_counter()
        async with http.delete(
            f"{browser.api.url}/v1/connections/{connection_id}", headers=browser.api.headers()
        ) as response:
            assert response.status == 200, await response.text()
        deadline = started + args.timeout

        teardown, saga = await asyncio.gather(
            timed(functools.partial(none_live, emulator, ids), started, deadline),
            timed(functools.partial(torn_down, db, connection_id), started, deadline),
        )
        result.teardown.append(math.inf if teardown is None else teardown)
        result.saga.append(math.inf if saga is None else saga)
        if teardown is None:
            result.left_live += 1
            outcome = f"{len(ids & await live_ids(emulator))} still live after {args.timeout:g}s"
        else:
            outcome = f"zero live after {1000 * teardown:.0f} ms"
        if saga is None:
            result.saga_unfinished += 1
        print(
            f"[{provider}] round {round_ + 1}/{args.rounds}: {len(ids)} subscriptions, {outcome}", flush=True
        )
    return result


async def timed(done: Callable[[], Awaitable[bool]], started: float, deadline: float) -> float | None:
    """Seconds from ``started`` until ``done()`` (read every 5 ms), or None past ``deadline``."""
    while not await done():
        if time.perf_counter() > deadline:
            return None
        await asyncio.sleep(0.005)
    return time.perf_counter() - started


async def none_live(emulator: Any, ids: set[str]) -> bool:
    return not ids & await live_ids(emulator)


async def torn_down(db: Any, connection_id: str) -> bool:
    """The disconnect saga is over: credentials deleted, the teardown recorded."""
    if await db.credentials.count_documents({"_id": connection_id}):
        return False
    found = await db.connections.find_one({"_id": connection_id}, {"revoked_at": 1})
    return found is not None and found.get("revoked_at") is not None


async def live_ids(emulator: Any) -> set[str]:
    return {item["id"] for item in await emulator.subscriptions()}


async def settled(db: Any, connection_id: str) -> set[str] | None:
    """The connection's live subscription ids once it is realtime and none is being worked on."""
    connection = await db.connections.find_one({"_id": connection_id})
    watches = await db.webhook_subscriptions.find({"connection_id": connection_id}).to_list()
    now = datetime.now(UTC)
    if connection["sync_mode"] != "realtime" or not watches:
        return None
    if not all(w["status"] == "active" and w["due_at"].replace(tzinfo=UTC) > now for w in watches):
        return None
    return {channel["id"] for watch in watches for channel in watch["channels"]}


async def direct_stops(
    browser: Any, gateway: Any, http: aiohttp.ClientSession, provider: str, connection_id: str, count: int
) -> float:
    """Create ``count`` subscriptions at the emulator with the connection's token, then time
    stopping them all concurrently: the provider side's share of a teardown."""
    from chronapilot.common.providers.registry import build_providers
    from chronapilot.common.runtime import RUNTIME

    runtime = browser.api.app[RUNTIME]
    stored = await runtime.store.db.credentials.find_one({"_id": connection_id})
    access = runtime.cipher.decrypt(stored["access_token"], associated_data=connection_id)

    async def token(force_refresh: bool) -> str:
        return access

    client = build_providers(browser.api.settings.providers, http)[provider].push
    assert client is not None, f"{provider} has no push"
    calendars = [
        doc["provider_calendar_id"]
        async for doc in runtime.store.db.calendars.find({"connection_id": connection_id, "removed": False})
    ]
    base = f"{gateway.url}/webhooks/{provider}"
    created = await asyncio.gather(
        *(
            client.create_subscription(
                token,
                calendars[n % len(calendars)],
                notification_url=base,
                lifecycle_url=f"{base}/lifecycle",
                secret=secrets.token_urlsafe(24),
                ttl=timedelta(hours=1),
            )
            for n in range(count)
        )
    )
    started = time.perf_counter()
    await asyncio.gather(*(client.delete_subscription(token, subscription) for subscription in created))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20, help="disconnects per provider")
    parser.add_argument(
        "--providers",
        type=lambda s: [p for p in s.split(",") if p],
        default=list(PUSH),
        help="google,microsoft (iCloud has no subscriptions)",
    )
    parser.add_argument(
        "--timeout", type=float, default=15.0, help="seconds a round waits for zero live subscriptions"
    )
    args = parser.parse_args()
    unknown = set(args.providers) - set(PUSH)
    if unknown:
        parser.error(f"no subscriptions to tear down for {', '.join(sorted(unknown))}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
