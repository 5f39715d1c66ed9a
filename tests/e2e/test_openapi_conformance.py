"""schemathesis (`run --checks all`, every phase) against /v1/openapi.json of a running API
holding real data: no 5xx, every answer as documented (status, headers, body, content type),
valid data accepted, invalid data refused, undocumented methods answered 405 with `Allow`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from api_harness import running_worker
from helpers import RETURN_PREFIX

pytestmark = pytest.mark.e2e
EXAMPLES_PER_OPERATION = 10
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
WEBHOOK_URL = "http://127.0.0.1:9/hooks"  # nothing listens: deliveries fail and are retried


async def run_schemathesis(url: str, key: str, report: Path, config: Path) -> tuple[int, str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{url}/v1/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {key}",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        "20",
        "--generation-deterministic",
        "--suppress-health-check",
        "all",
        "--workers",
        "1",  # Python 3.11's ast.parse is not thread-safe, and hypothesis calls it
        "--request-timeout",
        "20",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": HOOKS.stem,
        "PYTHONPATH": str(HOOKS.parent),
        "CHRONAPILOT_TEST_RETURN_URL": RETURN_PREFIX + "done",
        "CHRONAPILOT_TEST_WEBHOOK_URL": WEBHOOK_URL,
    }
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        cwd=report.parent,  # its cache (.schemathesis/) goes there, not into the checkout
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode("utf-8", "replace")


#: schemathesis' own list, and 412: a valid `If-Match` that is not the event's current etag
#: fails the precondition, as 409 a request the object's state refuses.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]


def configuration(events: list[str]) -> str:
    """schemathesis.toml: the statuses that accept valid data, and the event writes aimed at
    mirrored events (a drawn id is never found)."""
    lines = ["[checks.positive_data_acceptance]", f"expected-statuses = {ACCEPTED!r}", ""]
    for operation, event in zip(("updateEvent", "deleteEvent"), events, strict=True):
        lines += ["[[operations]]", f'include-operation-id = "{operation}"']
        lines += [f'parameters = {{ "path.id" = "{event}" }}']
        if operation == "updateEvent":
            # the coverage phase walks every value of the body's enums (740 time zones, in three
            # places): ~10,000 writes to a real event; the fuzzing phase writes to it instead
            lines += ["phases.coverage.enabled = false"]
        lines += [""]
    return "\n".join(lines).replace("'", '"')


async def test_schemathesis_checks_all_pass_against_an_api_with_real_data(browser, api, tmp_path):
    async with running_worker(api):
        await browser.link_and_sync("google")  # a connection, its calendars and events
    async with browser.http.post(
        f"{api.url}/v1/webhook_endpoints",
        json={"url": WEBHOOK_URL, "enabled_events": ["*"]},
        headers=api.headers(),
    ) as response:
        assert response.status == 201, await response.text()
    async with browser.http.get(f"{api.url}/v1/calendars", headers=api.headers()) as response:
        calendar_id = (await response.json())["data"][0]["id"]
    async with browser.http.get(
        f"{api.url}/v1/events", params={"calendar_id": calendar_id}, headers=api.headers()
    ) as response:
        events = [e["id"] for e in (await response.json())["data"] if not e["recurrence"]]
    config = tmp_path / "schemathesis.toml"
    config.write_text(configuration(events[:2]), encoding="utf-8")
    async with browser.http.get(f"{api.url}/v1/openapi.json") as response:
        operations = sum(len(item) for item in (await response.json())["paths"].values())
    code, output = await run_schemathesis(api.url, api.key, tmp_path / "events.ndjson", config)
    assert code == 0, output[-20000:]
    summary = output[output.index("SUMMARY") :]
    assert f"Tested: {operations}" in summary, summary
    for pinned in ("PATCH /v1/events/{id}", "DELETE /v1/events/{id}"):  # they reached real events
        assert f"- {pinned}" not in summary and f"- {pinned}" not in output, output[-5000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):  # every phase ran, and passed
        assert f"✅ {phase}" in summary, summary
