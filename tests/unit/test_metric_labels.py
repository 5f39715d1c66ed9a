"""Metric labels stay bounded: provider outcomes read from statuses and exceptions, HTTP routes
as templates, methods from a fixed set."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from chronapilot.common.health import SERVICE_NAME
from chronapilot.common.http_metrics import http_metrics, method_label
from chronapilot.common.providers.errors import Throttled, Unavailable
from chronapilot.common.providers.google.client import translate_error as google_error
from chronapilot.common.providers.icloud.caldav import translate_error as caldav_error
from chronapilot.common.providers.microsoft.client import translate_error as microsoft_error
from chronapilot.common.providers.telemetry import (
    Operation,
    Outcome,
    observe_call,
    outcome_of_exception,
    outcome_of_status,
)


def google_body(reason: str) -> bytes:
    return json.dumps({"error": {"code": 403, "message": "no", "errors": [{"reason": reason}]}}).encode()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Outcome.OK),
        (201, Outcome.OK),
        (204, Outcome.OK),
        (207, Outcome.OK),
        (304, Outcome.OK),
        (400, Outcome.CLIENT_ERROR),
        (401, Outcome.UNAUTHORIZED),
        (403, Outcome.CLIENT_ERROR),
        (404, Outcome.NOT_FOUND),
        (410, Outcome.NOT_FOUND),
        (412, Outcome.CLIENT_ERROR),
        (429, Outcome.THROTTLED),
        (500, Outcome.SERVER_ERROR),
        (503, Outcome.SERVER_ERROR),
    ],
)
def test_a_status_alone_maps_to_its_outcome(status, expected):
    assert outcome_of_status(status) is expected


def test_provider_throttling_told_by_the_providers_translation_is_throttled():
    rate_limited = google_error(403, {}, google_body("rateLimitExceeded"))
    assert outcome_of_status(403, rate_limited) is Outcome.THROTTLED
    assert outcome_of_status(403, google_error(403, {}, google_body("forbidden"))) is Outcome.CLIENT_ERROR
    assert outcome_of_status(503, caldav_error(503, {"Retry-After": "5"})) is Outcome.THROTTLED
    assert outcome_of_status(503, caldav_error(503, {})) is Outcome.SERVER_ERROR
    assert outcome_of_status(429, microsoft_error(429, {}, b"")) is Outcome.THROTTLED


def test_a_request_without_an_answer_is_a_timeout_or_a_network_error():
    assert outcome_of_exception(TimeoutError()) is Outcome.TIMEOUT
    assert outcome_of_exception(aiohttp.ServerTimeoutError()) is Outcome.TIMEOUT
    assert outcome_of_exception(aiohttp.ClientConnectionError()) is Outcome.NETWORK_ERROR
    assert outcome_of_exception(OSError("connection refused")) is Outcome.NETWORK_ERROR
    assert outcome_of_exception(Unavailable("no status")) is Outcome.NETWORK_ERROR
    assert outcome_of_exception(Throttled("rate limited", status=429)) is Outcome.THROTTLED
    assert outcome_of_exception(Throttled("rate limited", status=None)) is Outcome.THROTTLED


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_observe_call_counts_the_answer_or_the_failure_and_times_both():
    labels = {"provider": "google", "operation": "list_calendars"}
    ok_before = sample("chronapilot_provider_requests_total", **labels, outcome="ok")
    timeouts_before = sample("chronapilot_provider_requests_total", **labels, outcome="timeout")
    timed_before = sample("chronapilot_provider_request_seconds_count", **labels)
    with observe_call("google", Operation.LIST_CALENDARS) as call:
        call.answered(200)
    with pytest.raises(TimeoutError), observe_call("google", Operation.LIST_CALENDARS):
        raise TimeoutError
    assert sample("chronapilot_provider_requests_total", **labels, outcome="ok") == ok_before + 1
    assert sample("chronapilot_provider_requests_total", **labels, outcome="timeout") == timeouts_before + 1
    assert sample("chronapilot_provider_request_seconds_count", **labels) == timed_before + 2


def test_an_answer_recorded_before_the_caller_raised_keeps_its_outcome():
    labels = {"provider": "icloud", "operation": "account"}
    before = sample("chronapilot_provider_requests_total", **labels, outcome="unauthorized")

    def read_after_answer() -> None:
        with observe_call("icloud", Operation.ACCOUNT) as call:
            call.answered(401)
            raise ValueError("the caller's own reading failed")

    with pytest.raises(ValueError):
        read_after_answer()
    assert sample("chronapilot_provider_requests_total", **labels, outcome="unauthorized") == before + 1


def test_methods_outside_the_standard_set_are_other():
    assert method_label("GET") == "GET"
    assert method_label("PATCH") == "PATCH"
    assert method_label("PROPFIND") == "other"
    assert method_label("X" * 500) == "other"


async def boom(_: web.Request) -> web.Response:
    raise RuntimeError("handler bug")


async def thing(request: web.Request) -> web.Response:
    return web.json_response({"id": request.match_info["id"]})


async def test_requests_are_counted_by_route_template_never_by_path():
    app = web.Application(middlewares=[http_metrics])
    app[SERVICE_NAME] = "unit_http"
    app.router.add_get("/v1/things/{id}", thing)
    app.router.add_get("/boom", boom)
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            for path, method in [
                ("/v1/things/thg_secret123", "GET"),
                ("/v1/things/thg_other456", "GET"),
                ("/nowhere/usr_private789", "GET"),
                ("/v1/things/thg_secret123", "PROPFIND"),
                ("/boom", "GET"),
            ]:
                async with http.request(method, str(server.make_url(path))) as response:
                    await response.read()
    finally:
        await server.close()
    text = generate_latest(REGISTRY).decode()
    for private in ("thg_secret123", "thg_other456", "usr_private789", "/nowhere"):
        assert private not in text
    counted = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "chronapilot_http_requests"
        for s in family.samples
        if s.name == "chronapilot_http_requests_total" and s.labels["service"] == "unit_http"
    }
    assert counted == {
        ("/v1/things/{id}", "GET", "200"): 2,
        ("unmatched", "GET", "404"): 1,
        ("unmatched", "other", "405"): 1,
        ("/boom", "GET", "500"): 1,
    }
    timed = REGISTRY.get_sample_value(
        "chronapilot_http_request_seconds_count",
        {"service": "unit_http", "route": "/v1/things/{id}", "method": "GET"},
    )
    assert timed == 2
