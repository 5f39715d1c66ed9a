"""Scraping the services' ``/metrics`` for the console's charts (``prometheus_client.parser``).

A target that does not answer is reported as down (its numbers are absent, never zero)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

TIMEOUT_S = 3.0

#: The summed series a chart needs: (metric family, sample name) → key in a sample.
SUMMED = {
    "webhook_notifications_total": (
        "chronapilot_webhook_notifications",
        "chronapilot_webhook_notifications_total",
    ),
    "sync_seconds_sum": ("chronapilot_sync_seconds", "chronapilot_sync_seconds_sum"),
    "sync_seconds_count": ("chronapilot_sync_seconds", "chronapilot_sync_seconds_count"),
    "messages_handled_total": ("chronapilot_messages_handled", "chronapilot_messages_handled_total"),
    "dead_lettered_total": ("chronapilot_dead_lettered", "chronapilot_dead_lettered_total"),
}


@dataclass
class Scrape:
    """What the targets said: per-target up/down and the summed series of those up."""

    up: dict[str, bool] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)


async def scrape(http: aiohttp.ClientSession, targets: dict[str, str]) -> Scrape:
    result = Scrape()
    texts = await asyncio.gather(*(_fetch(http, url) for url in targets.values()))
    for name, text in zip(targets, texts, strict=True):
        result.up[name] = text is not None
        if text is None:
            continue
        for key, value in sum_series(text).items():
            result.totals[key] = result.totals.get(key, 0.0) + value
    return result


def sum_series(text: str) -> dict[str, float]:
    """The :data:`SUMMED` series of one exposition, summed over their labels."""
    wanted = {sample: key for key, (_, sample) in SUMMED.items()}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = wanted.get(sample.name)
            if key is not None:
                totals[key] = totals.get(key, 0.0) + float(sample.value)
    return totals


async def _fetch(http: aiohttp.ClientSession, url: str) -> str | None:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as response:
            if response.status != 200:
                return None
            return await response.text()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
