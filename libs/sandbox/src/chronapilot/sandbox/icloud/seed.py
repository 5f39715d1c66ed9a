"""Seed the iCloud stand-in: an Apple-ID-like user with an app-specific password, and their data.

The user goes into Radicale's users file (live: no restart); the calendars and events go in over
CalDAV as a client would write them: `MKCALENDAR` with one component type per collection (as
iCloud requires), then `PUT` with `If-None-Match: *`. Seeding is idempotent: a collection that
already exists (`409`) keeps its content, whatever the seed, so a persistent data directory can
be seeded again on every start without duplicating events; only the password is re-keyed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote
from xml.sax.saxutils import escape

import aiohttp

from chronapilot.sandbox.icloud.demo_data import DemoCalendar, DemoDataset, build_demo_dataset
from chronapilot.sandbox.icloud.server import RadicaleServer
from chronapilot.sandbox.icloud.users import AppleIdCredentials, new_app_specific_password

DEMO_EMAIL = "demo.icloud@sandbox.chronapilot.dev"
DEMO_NAME = "Demo iCloud User"
_TIMEOUT = aiohttp.ClientTimeout(total=30)


class SeedError(RuntimeError):
    """Radicale refused a seeding request."""


@dataclass(frozen=True)
class ICloudAccount:
    """A seeded account: what to type into ChronaPilot, and where its collections live."""

    credentials: AppleIdCredentials
    caldav_url: str
    principal_url: str
    calendar_urls: dict[str, str]
    dataset: DemoDataset

    @property
    def email(self) -> str:
        return self.credentials.email

    @property
    def app_password(self) -> str:
        return self.credentials.app_password


def app_password_for(seed: int, email: str) -> str:
    """The app-specific password a given seed gives a given user."""
    return new_app_specific_password(random.Random(f"app-password:{seed}:{email}"))


async def seed_account(
    server: RadicaleServer,
    *,
    seed: int,
    anchor: date,
    email: str = DEMO_EMAIL,
    name: str = DEMO_NAME,
    app_password: str | None = None,
) -> ICloudAccount:
    """Create (or re-key) the user and write the demo calendars and events; return the account."""
    credentials = AppleIdCredentials(email, app_password or app_password_for(seed, email))
    server.users.set_password(credentials)
    dataset = build_demo_dataset(owner_email=email, owner_name=name, seed=seed, anchor=anchor)
    principal_url = f"{server.url}{quote(email, safe='')}/"
    calendar_urls = {calendar.slug: f"{principal_url}{calendar.slug}/" for calendar in dataset.calendars}
    headers = {"Authorization": aiohttp.encode_basic_auth(credentials.email, credentials.app_password)}
    async with aiohttp.ClientSession(headers=headers, timeout=_TIMEOUT) as session:
        created = {
            calendar.slug
            for calendar in dataset.calendars
            if await _make_calendar(session, calendar_urls[calendar.slug], calendar)
        }
        for resource in dataset.resources:
            if resource.calendar_slug in created:
                await _put_new(session, calendar_urls[resource.calendar_slug] + resource.name, resource.ical)
    return ICloudAccount(
        credentials=credentials,
        caldav_url=server.url,
        principal_url=principal_url,
        calendar_urls=calendar_urls,
        dataset=dataset,
    )


async def _make_calendar(session: aiohttp.ClientSession, url: str, calendar: DemoCalendar) -> bool:
    """MKCALENDAR; False when the collection already exists (its content is then left alone)."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"'
        ' xmlns:ic="http://apple.com/ns/ical/"><d:set><d:prop>'
        f"<d:displayname>{escape(calendar.display_name)}</d:displayname>"
        f'<c:supported-calendar-component-set><c:comp name="{calendar.component}"/>'
        "</c:supported-calendar-component-set>"
        f"<ic:calendar-color>{calendar.color}</ic:calendar-color>"
        f"<ic:calendar-order>{calendar.order}</ic:calendar-order>"
        "</d:prop></d:set></c:mkcalendar>"
    )
    headers = {"Content-Type": "application/xml; charset=utf-8"}
    async with session.request("MKCALENDAR", url, data=body, headers=headers) as response:
        if response.status not in (201, 409):
            raise SeedError(f"MKCALENDAR {url}: {response.status} {await response.text()}")
        return response.status == 201


async def _put_new(session: aiohttp.ClientSession, url: str, ical: bytes) -> None:
    headers = {"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"}
    async with session.put(url, data=ical, headers=headers) as response:
        if response.status not in (201, 204, 412):
            raise SeedError(f"PUT {url}: {response.status} {await response.text()}")
