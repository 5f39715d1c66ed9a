"""Zone names from outside (requests, stored calendars, providers) are opened only when they
name a zone: a directory of the tz database (``America``), a path or an unknown name is no
zone, whatever ``ZoneInfo`` would make of it; Windows names are mapped."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chronapilot.api.errors import from_validation
from chronapilot.api.schemas import FreeBusyQuery
from chronapilot.common.providers.zones import open_zone

NOT_ZONES = ["America", "Europe", "Etc", "../../etc/passwd", "/etc/localtime", "Mars/Olympus", "", "right"]
WINDOW = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}


@pytest.mark.parametrize("name", NOT_ZONES)
def test_a_name_that_is_no_zone_opens_nothing(name):
    assert open_zone(name) is None


@pytest.mark.parametrize(
    ("name", "key"),
    [("Europe/Berlin", "Europe/Berlin"), ("W. Europe Standard Time", "Europe/Berlin"), ("Etc/UTC", "UTC")],
)
def test_iana_and_windows_names_open_their_zone(name, key):
    zone = open_zone(name)
    assert zone is not None and zone.key == key


@pytest.mark.parametrize("name", NOT_ZONES)
def test_a_free_busy_timezone_that_is_no_zone_is_a_400_on_timezone(name):
    with pytest.raises(ValidationError) as raised:
        FreeBusyQuery.model_validate({**WINDOW, "timezone": name})
    error = from_validation(raised.value, location="query")
    assert (error.status, error.code, error.param) == (400, "parameter_invalid", "timezone")
