"""The six service processes as real processes: ready, graceful on SIGTERM, and clear when misconfigured."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chronapilot.devstack.processes import Child, free_port

pytestmark = pytest.mark.integration

SERVICES = {
    "chronapilot.api": "CHRONAPILOT_API_PORT",
    "chronapilot.webhook_gateway": "CHRONAPILOT_WEBHOOK_GATEWAY_PORT",
    "chronapilot.sync_worker": "CHRONAPILOT_SYNC_WORKER_PORT",
    "chronapilot.token_refresher": "CHRONAPILOT_TOKEN_REFRESHER_PORT",
    "chronapilot.webhook_dispatcher": "CHRONAPILOT_WEBHOOK_DISPATCHER_PORT",
    "chronapilot.ops": "CHRONAPILOT_OPS_PORT",
}
#: What a service needs besides its port outside development (the console: its token).
OPS_TOKEN = "ops-test-token-0123456789"
EXTRA_ENV = {"chronapilot.ops": {"CHRONAPILOT_OPS_TOKEN": OPS_TOKEN}}
METRICS_HEADERS = {"chronapilot.ops": {"Authorization": f"Bearer {OPS_TOKEN}"}}
#: The public services' internal listeners (the workers serve /metrics on their own port).
INTERNAL = {
    "chronapilot.api": "CHRONAPILOT_API_METRICS_PORT",
    "chronapilot.webhook_gateway": "CHRONAPILOT_WEBHOOK_GATEWAY_METRICS_PORT",
}
#: A request to each public service's templated route, with an id-like value in its path.
TEMPLATED = {
    "chronapilot.api": ("GET", "/v1/connections/con_private42", "/v1/connections/{id}"),
    "chronapilot.webhook_gateway": ("POST", "/webhooks/private42", "/webhooks/{provider}"),
}


def run_to_exit(module: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


async def wait_ready(url: str, child: Child, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert child.alive(), child.tail()
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return await response.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never ready:\n{child.tail()}")


async def read_metrics(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> dict:
    """The metric families at ``url`` once ``chronapilot_ready`` is 1 (its first evaluation
    runs beside the start-up)."""
    deadline = time.monotonic() + 20
    while True:
        async with http.get(url, headers=headers) as response:
            assert response.status == 200
            families = {f.name: f for f in text_string_to_metric_families(await response.text())}
        ready = families.get("chronapilot_ready")
        if (ready and ready.samples[0].value == 1) or time.monotonic() > deadline:
            return families
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("module", list(SERVICES))
async def test_each_service_becomes_ready_serves_metrics_internally_and_stops_cleanly_on_sigterm(
    module, isolated, tmp_path
):
    port = free_port()
    internal_port = free_port() if module in INTERNAL else port
    env = {SERVICES[module]: str(port)}
    if module in INTERNAL:
        env[INTERNAL[module]] = str(internal_port)
    child = Child.start(
        module,
        [sys.executable, "-m", module],
        env=isolated.env(**env, **EXTRA_ENV.get(module, {})),
        log_path=tmp_path / "service.log",
    )
    try:
        body = await wait_ready(f"http://127.0.0.1:{port}/readyz", child)
        assert body["checks"] == {"mongodb": "ok", "kafka": "ok"}
        internal = await wait_ready(f"http://127.0.0.1:{internal_port}/readyz", child)
        assert internal["checks"] == {"mongodb": "ok", "kafka": "ok"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
            if module in INTERNAL:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 404, "the public port serves no /metrics"
                method, path, _ = TEMPLATED[module]
                async with http.request(method, f"http://127.0.0.1:{port}{path}") as response:
                    templated_status = str(response.status)
            families = await read_metrics(
                http, f"http://127.0.0.1:{internal_port}/metrics", METRICS_HEADERS.get(module, {})
            )
        assert "chronapilot_outbox_relay_leader" in families
        service = module.removeprefix("chronapilot.")
        if module in INTERNAL:
            method, path, template = TEMPLATED[module]
            requests = {
                (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
                for s in families["chronapilot_http_requests"].samples
                if s.name == "chronapilot_http_requests_total" and s.labels["service"] == service
            }
            assert requests[template, method, templated_status] == 1
            assert requests["unmatched", "GET", "404"] == 1  # the public /metrics
            assert "private42" not in str(families)
        [build] = families["chronapilot_build_info"].samples
        assert build.labels["service"] == service and build.labels["version"] and build.value == 1
        [ready] = families["chronapilot_ready"].samples
        assert ready.labels == {"service": service} and ready.value == 1
        started = time.monotonic()
        child.process.send_signal(signal.SIGTERM)
        assert child.process.wait(30) == 0, child.tail()
        assert time.monotonic() - started < 25
        log = (tmp_path / "service.log").read_text()
        assert "service.stopped" in log
        assert "Traceback" not in log
    finally:
        child.stop(5)


def test_a_malformed_mongodb_uri_ends_with_one_clear_line(isolated):
    result = run_to_exit("chronapilot.api", isolated.env(MONGODB_URI="mongo://nowhere:notaport"))
    assert result.returncode == 2
    assert_one_clear_line(result, "configuration error", "MONGODB_URI")


def test_a_missing_encryption_key_outside_development_ends_with_one_clear_line(isolated):
    result = run_to_exit("chronapilot.sync_worker", isolated.env(CHRONAPILOT_ENV="production"))
    assert result.returncode == 2
    assert_one_clear_line(result, "configuration error", "CHRONAPILOT_ENCRYPTION_KEYS")


def test_a_malformed_encryption_key_ends_with_one_clear_line(isolated):
    result = run_to_exit("chronapilot.api", isolated.env(CHRONAPILOT_ENCRYPTION_KEYS="k1:not-base64!"))
    assert result.returncode == 2
    assert_one_clear_line(result, "configuration error", "encryption_keys")


def test_an_unreachable_broker_after_the_retry_budget_ends_with_one_clear_line(isolated):
    dead = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_to_exit(
        "chronapilot.token_refresher",
        isolated.env(KAFKA_BOOTSTRAP_SERVERS=dead, CHRONAPILOT_STARTUP_TIMEOUT_S="3"),
    )
    assert result.returncode == 1
    assert_one_clear_line(result, "start-up failed", "cannot reach Kafka", dead)
    assert time.monotonic() - started < 30


def test_an_unreachable_mongodb_after_the_retry_budget_ends_with_one_clear_line(isolated):
    dead = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    result = run_to_exit(
        "chronapilot.webhook_gateway",
        isolated.env(
            MONGODB_URI=dead, CHRONAPILOT_STARTUP_TIMEOUT_S="3", CHRONAPILOT_MONGODB_TIMEOUT_S="0.5"
        ),
    )
    assert result.returncode == 1
    assert_one_clear_line(result, "start-up failed", "cannot reach MongoDB")


def test_a_busy_port_ends_with_one_clear_line(isolated):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_exit("chronapilot.api", isolated.env(CHRONAPILOT_API_PORT=str(port)))
    assert result.returncode == 1
    assert_one_clear_line(result, "cannot listen", str(port))
