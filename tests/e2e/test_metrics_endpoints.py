"""Metrics as an operator scrapes them: only on the API's internal listener, requests by route
template (never an id), provider calls by operation and outcome (a 429 is ``throttled``), syncs
by provider and kind, and the process's build and readiness."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_sync_faults import clear_faults, fault
from test_sync_mirror import request_sync

from chronapilot.common.bus.catalogue import SyncKind
from chronapilot.common.runtime import RUNTIME

from helpers import eventually

pytestmark = pytest.mark.e2e


class Scrape:
    """One scrape of ``/metrics``: samples by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of ``name`` that has ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)


async def scrape(api) -> Scrape:
    async with aiohttp.ClientSession() as http, http.get(f"{api.internal_url}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        return Scrape(await response.text())


async def grown(api, before: Scrape, name: str, by: float = 1, **labels: str) -> Scrape:
    """The first scrape where ``name{labels}`` (summed) grew by at least ``by`` since ``before``."""

    async def probe() -> Scrape | None:
        now = await scrape(api)
        return now if now.total(name, **labels) - before.total(name, **labels) >= by else None

    return await eventually(probe, timeout_s=60)


async def test_the_api_serves_metrics_only_internally_and_counts_requests_by_route_template(browser, api):
    user_id = await browser.create_user("ext-metrics")
    connection_id = (await browser.connect("google", user_id))["connection_id"][0]
    before = await scrape(api)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{api.url}/v1/connections/{connection_id}", headers=api.headers()) as response:
            assert response.status == 200
        async with http.get(f"{api.url}/metrics") as response:
            assert response.status == 404, "the public port serves no /metrics"
        for path in ("/healthz", "/readyz"):
            async with http.get(f"{api.internal_url}{path}") as response:
                assert response.status == 200, path
    after = await scrape(api)
    route = {"service": "api", "route": "/v1/connections/{id}", "method": "GET"}
    counted = "chronapilot_http_requests_total"
    assert after.value(counted, **route, status="200") - before.value(counted, **route, status="200") == 1
    assert (
        after.value("chronapilot_http_request_seconds_count", **route)
        - before.value("chronapilot_http_request_seconds_count", **route)
        == 1
    )
    unmatched = {"service": "api", "route": "unmatched", "method": "GET", "status": "404"}
    assert after.value(counted, **unmatched) - before.value(counted, **unmatched) == 1
    for private in (connection_id, user_id, "ext-metrics"):
        assert private not in after.text
    versions = [
        dict(labels)["version"]
        for (name, labels), value in after.samples.items()
        if name == "chronapilot_build_info" and dict(labels)["service"] == "api" and value == 1
    ]
    assert versions and all(versions)
    assert (await grown(api, Scrape(""), "chronapilot_ready", service="api")).value(
        "chronapilot_ready", service="api"
    ) == 1


async def test_provider_calls_and_syncs_are_counted_and_a_429_is_throttled(browser, api, worker, sandbox):
    google = {"provider": "google"}
    before = await scrape(api)
    connection_id = await browser.link_and_sync("google")
    db = api.app[RUNTIME].store.db
    mirrored = await db.events.count_documents({"connection_id": connection_id})
    assert mirrored > 0
    linked = await grown(api, before, "chronapilot_sync_seconds_count", **google)
    for operation in ("token", "account", "list_calendars", "sync_events"):
        labels = {**google, "operation": operation, "outcome": "ok"}
        assert linked.value("chronapilot_provider_requests_total", **labels) > before.value(
            "chronapilot_provider_requests_total", **labels
        ), operation
    written = "chronapilot_sync_events_written_total"
    assert linked.value(written, **google) - before.value(written, **google) == mirrored

    last_synced = (await db.connections.find_one({"_id": connection_id}))["last_synced_at"]
    await fault(sandbox, status=429, times=1)
    try:
        await request_sync(browser, connection_id, SyncKind.INCREMENTAL, None)

        async def synced_again() -> bool:
            connection = await db.connections.find_one({"_id": connection_id})
            return connection["last_synced_at"] > last_synced

        await eventually(synced_again, timeout_s=60)
    finally:
        await clear_faults(sandbox)
    resynced = await grown(api, linked, "chronapilot_sync_seconds_count", **google, kind="incremental")
    throttled = {**google, "operation": "sync_events", "outcome": "throttled"}
    calls = "chronapilot_provider_requests_total"
    assert resynced.value(calls, **throttled) - linked.value(calls, **throttled) == 1
    assert resynced.value("chronapilot_provider_request_seconds_count", **google, operation="sync_events") > (
        linked.value("chronapilot_provider_request_seconds_count", **google, operation="sync_events")
    )
    assert resynced.total("chronapilot_sync_failures_total", **google) == linked.total(
        "chronapilot_sync_failures_total", **google
    ), "a throttled sync that recovered in place did not fail"


async def test_a_failed_sync_is_counted_by_its_connection_error_code(browser, api, worker, sandbox):
    connection_id = await browser.link_and_sync("google")
    db = api.app[RUNTIME].store.db
    before = await scrape(api)
    await fault(sandbox, status=500)
    try:
        await request_sync(browser, connection_id, SyncKind.INCREMENTAL, None)

        async def failed() -> bool:
            connection = await db.connections.find_one({"_id": connection_id})
            return connection["status"] == "error"

        await eventually(failed, timeout_s=90)
    finally:
        await clear_faults(sandbox)
    after = await grown(api, before, "chronapilot_sync_failures_total", provider="google", code="sync_failed")
    server_errors = {"provider": "google", "operation": "sync_events", "outcome": "server_error"}
    assert after.value("chronapilot_provider_requests_total", **server_errors) > before.value(
        "chronapilot_provider_requests_total", **server_errors
    )


async def test_caldav_discovery_is_counted_with_a_refused_password_as_unauthorized(browser, api):
    icloud = {"provider": "icloud"}
    calls = "chronapilot_provider_requests_total"
    before = await scrape(api)
    user_id = await browser.create_user("ext-icloud-metrics")
    started = await browser.start("icloud", user_id)
    refused = await browser.consent(started["redirect_url"], "icloud", password="not-the-password")
    assert refused.startswith("page:"), refused
    after_refusal = await grown(api, before, calls, **icloud, operation="account", outcome="unauthorized")
    await browser.connect("icloud", user_id)
    linked = await grown(api, after_refusal, calls, **icloud, operation="list_calendars", outcome="ok")
    assert linked.value(calls, **icloud, operation="account", outcome="ok") > before.value(
        calls, **icloud, operation="account", outcome="ok"
    )
    assert sandbox_free(linked.text, browser.sandbox.accounts["icloud"])


def sandbox_free(text: str, account) -> bool:
    """No account detail (the Apple ID, the password) reached a label."""
    return account.email not in text and account.password not in text
