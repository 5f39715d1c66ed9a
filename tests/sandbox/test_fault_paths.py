"""Route faults narrowed to one path (``path_contains``): one calendar of a route template fails,
the others on the same template answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from test_microsoft_harness import Emulator, calendar_id, running_emulator

from chronapilot.sandbox.shared.faults import FaultRegistry, InvalidFault, RouteFault

DELTA_ROUTE = "/v1.0/me/calendars/{calendar_id}/calendarView/{delta}"


def test_a_path_fault_applies_only_to_requests_whose_path_contains_it() -> None:
    faults = FaultRegistry()
    fault_json = {"route": "/c/{id}", "status": 403, "path_contains": "cal-b"}
    faults.add_route_fault(RouteFault.from_json(fault_json))
    assert faults.take_route_fault("GET", "/c/{id}", "/c/cal-a") is None
    assert faults.take_route_fault("GET", "/c/{id}") is None, "no path known: a path fault does not apply"
    assert faults.take_route_fault("GET", "/other/{id}", "/other/cal-b") is None, "the route still counts"
    fault = faults.take_route_fault("GET", "/c/{id}", "/c/cal-b/events")
    assert fault is not None and fault.status == 403
    assert faults.to_json()["routes"][0]["path_contains"] == "cal-b"


def test_a_fault_without_a_path_applies_to_every_path_as_before() -> None:
    faults = FaultRegistry()
    faults.add_route_fault(RouteFault(route="/c/{id}", status=503, times=2))
    assert faults.take_route_fault("GET", "/c/{id}", "/c/cal-a") is not None
    assert faults.take_route_fault("GET", "/c/{id}") is not None
    assert faults.take_route_fault("GET", "/c/{id}", "/c/cal-b") is None  # used up
    assert RouteFault(route="/x", status=503).to_json()["path_contains"] is None


@pytest.mark.parametrize("value", ["", 7, ["cal"]])
def test_path_contains_is_validated(value: object) -> None:
    with pytest.raises(InvalidFault, match="path_contains"):
        RouteFault.from_json({"route": "/x", "status": 503, "path_contains": value})


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with running_emulator() as emu:
        yield emu


async def test_graph_refuses_one_calendars_delta_and_serves_the_others(emulator: Emulator) -> None:
    token = str((await emulator.sign_in())["access_token"])
    work, family = [await calendar_id(emulator, token, name) for name in ("Work", "Family")]
    created = await emulator.admin(
        "POST", "faults", {"route": DELTA_ROUTE, "method": "GET", "status": 403, "path_contains": work}
    )
    assert created["path_contains"] == work
    now = datetime.now(UTC).replace(microsecond=0)
    window = (
        f"startDateTime={(now - timedelta(days=30)).isoformat().replace('+00:00', 'Z')}"
        f"&endDateTime={(now + timedelta(days=90)).isoformat().replace('+00:00', 'Z')}"
    )

    def delta(calendar: str) -> str:
        return f"/me/calendars/{calendar}/calendarView/delta?{window}"

    status, body, _ = await emulator.graph("GET", delta(work), token)
    assert status == 403, body
    assert body["error"]["code"]
    status, body, _ = await emulator.graph("GET", delta(family), token)
    assert status == 200, body
    assert "@odata.deltaLink" in body or "@odata.nextLink" in body
    status, _, _ = await emulator.graph("GET", delta(work), token)
    assert status == 403, "no times: until cleared"
    listed = await emulator.admin("GET", "faults")
    assert [fault["path_contains"] for fault in listed["routes"]] == [work]
