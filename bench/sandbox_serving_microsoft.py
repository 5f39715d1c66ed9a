"""How fast the Microsoft emulator serves calendar-view delta pages.

Seeds one calendar with N single events (default 20,000) plus a few recurring series, then times
full delta rounds of 1,000-event pages (`Prefer: odata.maxpagesize=1000`) over HTTP, and an
incremental round after 1,000 changes. Prints events/s and ms per 1,000-event page.

    .venv/bin/python bench/sandbox_serving_microsoft.py [--events 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import time
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp.test_utils import TestServer

from chronapilot.sandbox.microsoft import build_app
from chronapilot.sandbox.microsoft.credentials import Grant
from chronapilot.sandbox.microsoft.seed import SANDBOX_CLIENT_ID
from chronapilot.sandbox.microsoft.state import state_key

PAGE = 1000


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _slot(start: datetime, minutes: int) -> dict[str, object]:
    end = start + timedelta(minutes=minutes)
    return {
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
    }


async def _round(http: aiohttp.ClientSession, url: str, token: str) -> tuple[int, list[float], str]:
    headers = {"Authorization": f"Bearer {token}", "Prefer": f"odata.maxpagesize={PAGE}"}
    count, timings = 0, []
    while True:
        began = time.perf_counter()
        async with http.get(url, headers=headers) as response:
            raw = await response.read()
        timings.append((time.perf_counter() - began) * 1000)
        # Parsing 1,000 events here would time the client, not the emulator: count and find the link.
        count += raw.count(b'"@odata.etag"') + raw.count(b'"@removed"')
        tail = json.loads(b"{" + raw[raw.rindex(b'"@odata.') :])
        if "@odata.deltaLink" in tail:
            return count, timings, tail["@odata.deltaLink"]
        url = tail["@odata.nextLink"]


async def main(events: int, rounds: int) -> None:
    port = _port()
    base = f"http://127.0.0.1:{port}"
    app = build_app(base_url=base, seed=1)
    state = app[state_key]
    store = state.store
    user = store.add_user("bench@sandbox.chronapilot.dev", "Bench User", "pw")
    cal = store.default_calendar(user.id)
    origin = datetime(2026, 1, 1, 8, tzinfo=UTC)
    for index in range(events):
        store.create_event(
            cal.id, {"subject": f"Event {index}", **_slot(origin + timedelta(hours=index % 8000), 30)}
        )
    grant = Grant("bench", user.id, SANDBOX_CLIENT_ID, ["Calendars.ReadWrite"])
    state.identity.grants[grant.id] = grant
    token = state.identity.issue_tokens(grant, "common", state.clock.now(), {}, state.issuer("common"))[
        "access_token"
    ]
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    window = "startDateTime=2025-12-01T00:00:00Z&endDateTime=2027-06-01T00:00:00Z"
    url = f"{base}/v1.0/me/calendars/{cal.id}/calendarView/delta?{window}"
    try:
        async with aiohttp.ClientSession() as http:
            for number in range(1, rounds + 1):
                began = time.perf_counter()
                count, timings, delta_link = await _round(http, url, token)
                elapsed = time.perf_counter() - began
                print(
                    f"full round {number}: {count} events in {len(timings)} pages, "
                    f"{count / elapsed:,.0f} events/s, ms per {PAGE}-event page: "
                    f"median {statistics.median(timings):.1f}, max {max(timings):.1f} "
                    f"(first page: {timings[0]:.1f})"
                )
            for ev in list(store.live_events(cal.id))[:PAGE]:
                store.update_event(ev.id, {"subject": ev.fields["subject"] + " (changed)"})
            began = time.perf_counter()
            count, timings, _ = await _round(http, delta_link, token)
            elapsed = time.perf_counter() - began
            print(
                f"incremental round: {count} changes in {len(timings)} pages, "
                f"{count / elapsed:,.0f} events/s, "
                f"ms per page: median {statistics.median(timings):.1f}"
            )
    finally:
        await server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.rounds))
