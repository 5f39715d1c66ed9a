"""What the console's loops last saw (each replica keeps its own), and the reads behind them:
the fleet from MongoDB and Kafka, and one chart sample."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web

from chronapilot.common.runtime import Runtime
from chronapilot.common.settings import Settings
from chronapilot.ops.console.consumer_lag import consumer_lag
from chronapilot.ops.console.fleet_metrics import FleetReading
from chronapilot.ops.console.scrape import scrape


@dataclass
class ConsoleState:
    """What the loops last saw, for the pages (each replica keeps its own)."""

    reading: FleetReading | None = None
    targets_up: dict[str, bool] = field(default_factory=dict)


STATE = web.AppKey("ops_state", ConsoleState)


async def read_fleet(runtime: Runtime) -> FleetReading:
    """MongoDB's and Kafka's view of the fleet, now."""
    snapshot = await runtime.repos.fleet.snapshot(
        runtime.clock.now(), poll_interval=_poll_interval(runtime.settings)
    )
    lag = await consumer_lag(runtime.settings.kafka)
    return FleetReading(snapshot, lag, await runtime.repos.dead_letters.held_counts())


def _poll_interval(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.sync.poll_interval_s)


async def record_sample(runtime: Runtime, state: ConsoleState, every: timedelta) -> None:
    """Scrape the services and read MongoDB; record one chart sample."""
    settings = runtime.settings
    scraped = await scrape(runtime.http, settings.ops.targets(settings.service))
    state.targets_up = scraped.up
    now = runtime.clock.now()
    snapshot = await runtime.repos.fleet.snapshot(now, poll_interval=_poll_interval(settings))
    values: dict[str, float] = dict(scraped.totals)
    values["staleness_s"] = max((s.age_s(now) for s in snapshot.staleness), default=0.0)
    values["connections_error"] = float(
        sum(n for (_, status, _), n in snapshot.connections.items() if status == "error")
    )
    values["outbox_oldest_s"] = snapshot.outbox.age_s(now)
    await runtime.repos.ops_samples.record(now, every, values)
