"""Account discovery's PROPFIND answers, as iCloud writes them (providers.md 3.2, 3.3).

The principal and home-set answers are the ones providers.md quotes; the home's listing
(tests/fixtures/icloud/propfind_home_icloud.xml) is built after what it reports of iCloud: the
home among its members, absolute-URL and absolute-path hrefs, ``404`` propstats for unknown
properties, an empty ``<prop>``, a VTODO list, the scheduling inbox and a notification
collection, Apple's colour and order properties.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chronapilot.common.errors import ProviderError
from chronapilot.common.providers.icloud.caldav import redirect_keeps_credentials
from chronapilot.common.providers.icloud.parse import (
    calendar_collections,
    calendar_home_href,
    join_href,
    member_href,
    principal_href,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "icloud"
ROOT = "https://caldav.icloud.com/"
HOME = "https://p62-caldav.icloud.com:443/17149682/calendars/"

PRINCIPAL_ANSWER = b"""<?xml version="1.0" encoding="UTF-8"?>
<multistatus xmlns="DAV:"><response><href>/</href><propstat><prop>
  <current-user-principal><href>/17149682/principal/</href></current-user-principal>
</prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"""

HOME_SET_ANSWER = b"""<?xml version="1.0" encoding="UTF-8"?>
<multistatus xmlns="DAV:"><response><href>/principal/</href><propstat><prop>
  <calendar-home-set xmlns="urn:ietf:params:xml:ns:caldav">
    <href xmlns="DAV:">https://p62-caldav.icloud.com:443/17149682/calendars/</href>
  </calendar-home-set></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"""


def test_the_principal_is_read_from_the_root_and_joined_to_it() -> None:
    href = principal_href(PRINCIPAL_ANSWER)

    assert href == "/17149682/principal/"
    assert join_href(ROOT, href) == "https://caldav.icloud.com/17149682/principal/"


def test_the_home_is_on_the_partition_host_whatever_href_the_principal_answers_with() -> None:
    """iCloud has answered `/principal/` for `/<dsid>/principal/` (providers.md 3.2)."""
    href = calendar_home_href(HOME_SET_ANSWER)

    assert href == HOME
    assert join_href("https://caldav.icloud.com/17149682/principal/", href) == HOME


def test_an_unauthenticated_principal_or_a_missing_home_is_none() -> None:
    unauthenticated = (
        b'<multistatus xmlns="DAV:"><response><href>/</href><propstat><prop><current-user-principal>'
        b"<unauthenticated/></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat>"
        b"</response></multistatus>"
    )
    not_found = HOME_SET_ANSWER.replace(b"200 OK", b"404 Not Found")

    assert principal_href(unauthenticated) is None
    assert calendar_home_href(not_found) is None


def test_an_answer_that_is_not_xml_is_a_provider_error() -> None:
    with pytest.raises(ProviderError):
        principal_href(b"<html><body>Bad Gateway")


def test_the_listing_keeps_the_event_calendars_in_the_users_order() -> None:
    calendars = calendar_collections((FIXTURES / "propfind_home_icloud.xml").read_bytes(), HOME)

    assert [(c.name, c.provider_calendar_id) for c in calendars] == [
        ("Work", HOME + "8D4A1E0C-4B5A-4C09-9E07-2A1B3C4D5E6F/"),
        ("Home", HOME + "home/"),
        ("Family", HOME + "shared@family/"),  # ids have always been the decoded path
    ]
    work, home, family = calendars
    assert (work.color, work.read_only, work.timezone, work.primary) == ("#FF2968FF", False, None, False)
    assert (home.color, home.read_only, home.timezone) == ("#1BADF8FF", False, "Europe/Berlin")
    assert (family.color, family.read_only) == (None, True)


def test_a_member_without_a_component_set_or_privileges_is_a_writable_calendar() -> None:
    body = (
        b'<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><response><href>/u/cal/</href>'
        b"<propstat><prop><resourcetype><collection/><C:calendar/></resourcetype></prop>"
        b"<status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"
    )

    [calendar] = calendar_collections(body, "http://dav.example/u/")

    assert (calendar.provider_calendar_id, calendar.name, calendar.read_only) == (
        "http://dav.example/u/cal/",
        "cal",
        False,
    )


@pytest.mark.parametrize(
    ("base", "href", "joined"),
    [
        ("https://caldav.icloud.com/", "/1/principal/", "https://caldav.icloud.com/1/principal/"),
        ("https://caldav.icloud.com/", "https://caldav.icloud.com:443/1/", "https://caldav.icloud.com/1/"),
        (
            "https://caldav.icloud.com/1/",
            "https://p62-caldav.icloud.com:443/1/",
            "https://p62-caldav.icloud.com:443/1/",
        ),
        ("http://dav.example/u/", "cal/", "http://dav.example/u/cal/"),
        ("http://dav.example/u", "cal/", "http://dav.example/u/cal/"),
    ],
)
def test_hrefs_join_like_discovery_always_did(base: str, href: str, joined: str) -> None:
    assert join_href(base, href) == joined


@pytest.mark.parametrize(
    ("href", "path"),
    [
        ("/u%40example.com/cal/", "/u@example.com/cal/"),
        ("/u%2540example.com/cal/", "/u@example.com/cal/"),
        ("https://p62-caldav.icloud.com:443/1/cal%20x/", "/1/cal x/"),
    ],
)
def test_member_hrefs_are_decoded_paths(href: str, path: str) -> None:
    assert member_href(href) == path


@pytest.mark.parametrize(
    ("origin", "target", "kept"),
    [
        ("http://dav.example/.well-known/caldav", "http://dav.example/", True),
        ("http://dav.example:5232/", "http://dav.example:5232/u/", True),
        ("http://dav.example/", "https://dav.example/", True),
        ("https://dav.example/", "http://dav.example/", False),
        ("http://dav.example:5232/", "http://dav.example:5233/", False),
        ("https://caldav.icloud.com/", "https://p62-caldav.icloud.com/", False),
    ],
)
def test_credentials_follow_a_redirect_only_on_the_same_host(origin: str, target: str, kept: bool) -> None:
    assert redirect_keeps_credentials(origin, target) is kept
