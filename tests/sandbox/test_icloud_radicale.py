"""The iCloud stand-in, driven as a real client drives iCloud: the caldav library against Radicale.

One Radicale process for the module, seeded like the sandbox's demo account. Tests that change
data make their own calendar or user first.
"""

from __future__ import annotations

import os
import random
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import aiohttp
import caldav.lib.error as caldav_error
import icalendar
import pytest
from caldav import aio

from chronapilot.sandbox.icloud import (
    DEMO_EMAIL,
    AppleIdCredentials,
    ICloudAccount,
    RadicaleConfig,
    RadicaleServer,
    new_app_specific_password,
    seed_account,
)
from chronapilot.sandbox.icloud.demo_data import build_demo_dataset

ANCHOR = date(2026, 11, 23)
SEED = 20260
DEPTH_0 = {"Depth": "0"}
APP_PASSWORD_SHAPE = r"^[a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4}$"


@pytest.fixture(scope="module")
async def radicale() -> AsyncIterator[RadicaleServer]:
    # A short failed-login delay keeps the 401 tests fast; the launcher keeps Radicale's 1 s.
    async with RadicaleServer(RadicaleConfig(port=0, auth_delay=0.05)) as server:
        yield server


@pytest.fixture(scope="module")
async def account(radicale: RadicaleServer) -> ICloudAccount:
    return await seed_account(radicale, seed=SEED, anchor=ANCHOR)


@pytest.fixture
async def client(radicale: RadicaleServer, account: ICloudAccount) -> AsyncIterator[aio.AsyncDAVClient]:
    async with aio.AsyncDAVClient(
        url=radicale.url, username=account.email, password=account.app_password
    ) as dav_client:
        yield dav_client


async def new_user(radicale: RadicaleServer) -> AppleIdCredentials:
    credentials = AppleIdCredentials(
        f"user-{uuid.uuid4().hex[:8]}@sandbox.chronapilot.dev", new_app_specific_password(random.Random())
    )
    radicale.users.set_password(credentials)
    return credentials


def event_ical(uid: str, summary: str, start: datetime) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ChronaPilot//tests//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nSUMMARY:{summary}\r\n"
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def path(url: object) -> str:
    """A URL's decoded path: servers and clients differ in host spelling and in quoting `@`."""
    return unquote(urlsplit(str(url)).path)


def vevents(calendar_data: str) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(calendar_data).walk("VEVENT"))


# -- the demo account ------------------------------------------------------------------------


def test_the_demo_account_has_an_apple_id_and_an_app_specific_password(account: ICloudAccount) -> None:
    assert account.email == DEMO_EMAIL
    assert re.match(APP_PASSWORD_SHAPE, account.app_password)


def test_the_same_seed_builds_the_same_data_and_another_seed_other_data() -> None:
    def build(seed: int) -> list[bytes]:
        dataset = build_demo_dataset(owner_email=DEMO_EMAIL, owner_name="Demo", seed=seed, anchor=ANCHOR)
        return [resource.ical for resource in dataset.resources]

    assert build(SEED) == build(SEED)
    assert build(SEED) != build(SEED + 1)


# -- discovery and listing -------------------------------------------------------------------


async def test_discovery_goes_from_the_root_to_the_principal(
    client: aio.AsyncDAVClient, account: ICloudAccount
) -> None:
    principal = await client.get_principal()

    assert path(principal.url) == f"/{account.email}/"


async def test_the_calendar_home_set_is_the_principal_itself(
    radicale: RadicaleServer, account: ICloudAccount
) -> None:
    """providers.md 3.2 step 2; on iCloud the home is a partition-host URL instead."""
    body = (
        '<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        "<d:prop><c:calendar-home-set/></d:prop></d:propfind>"
    )
    auth = {"Authorization": aiohttp.encode_basic_auth(account.email, account.app_password)}
    async with (
        aiohttp.ClientSession(headers=auth) as session,
        session.request("PROPFIND", account.principal_url, data=body, headers=DEPTH_0) as response,
    ):
        text = await response.text()
    assert response.status == 207
    home = re.search(r"calendar-home-set[^>]*>\s*<[^>]*href[^>]*>([^<]+)<", text)
    assert home is not None, text
    assert path(home.group(1)) == f"/{account.email}/"


async def test_well_known_caldav_redirects_to_the_root(radicale: RadicaleServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(radicale.url + ".well-known/caldav", allow_redirects=False) as response,
    ):
        assert response.status == 301
        assert response.headers["Location"] == "/"


async def test_the_home_lists_two_event_calendars_and_a_reminders_list_to_skip(
    client: aio.AsyncDAVClient,
) -> None:
    principal = await client.get_principal()
    calendars = await principal.get_calendars()

    components = {
        await calendar.get_display_name(): await calendar.get_supported_components() for calendar in calendars
    }
    assert components == {"Home": ["VEVENT"], "Work": ["VEVENT"], "Reminders": ["VTODO"]}
    event_calendars = [name for name, kinds in components.items() if "VEVENT" in kinds]
    assert sorted(event_calendars) == ["Home", "Work"]


async def test_calendars_carry_apple_colour_and_order_properties(
    radicale: RadicaleServer, account: ICloudAccount
) -> None:
    body = (
        '<d:propfind xmlns:d="DAV:" xmlns:ic="http://apple.com/ns/ical/" xmlns:cs="http://calendarserver.org/ns/">'
        "<d:prop><ic:calendar-color/><ic:calendar-order/><cs:getctag/><d:sync-token/></d:prop></d:propfind>"
    )
    auth = {"Authorization": aiohttp.encode_basic_auth(account.email, account.app_password)}
    async with (
        aiohttp.ClientSession(headers=auth) as session,
        session.request("PROPFIND", account.calendar_urls["work"], data=body, headers=DEPTH_0) as response,
    ):
        text = await response.text()
    assert response.status == 207
    assert "#FF2968FF" in text
    assert ">2<" in text
    assert "getctag" in text
    assert "sync-token" in text


# -- the events ------------------------------------------------------------------------------


async def calendar_named(client: aio.AsyncDAVClient, name: str) -> aio.Calendar:
    principal = await client.get_principal()
    for calendar in await principal.get_calendars():
        if await calendar.get_display_name() == name:
            return calendar
    raise AssertionError(f"no calendar {name!r}")


async def all_vevents(client: aio.AsyncDAVClient, name: str) -> list[icalendar.Event]:
    calendar = await calendar_named(client, name)
    found: list[icalendar.Event] = []
    for event in await calendar.get_events():
        await event.load()
        found.extend(vevents(event.data))
    return found


async def test_the_standup_series_has_exclusions_and_overrides_in_one_resource(
    client: aio.AsyncDAVClient,
) -> None:
    work = await all_vevents(client, "Work")
    standup = [e for e in work if str(e["SUMMARY"]).startswith("Daily standup")]

    uids = {str(e["UID"]) for e in standup}
    assert len(uids) == 1
    master = next(e for e in standup if "RRULE" in e)
    overrides = [e for e in standup if "RECURRENCE-ID" in e]
    assert master["RRULE"]["FREQ"] == ["WEEKLY"]
    assert len(master["EXDATE"]) == 2
    assert len(overrides) == 2
    moved = next(e for e in overrides if e["SUMMARY"] == "Daily standup")
    assert moved.start.hour == 11
    assert moved["RECURRENCE-ID"].dt.hour == 9
    assert str(moved.start.tzinfo) == "America/New_York"


async def test_the_berlin_series_crosses_a_daylight_saving_change(client: aio.AsyncDAVClient) -> None:
    work = await all_vevents(client, "Work")
    series = next(e for e in work if e["SUMMARY"] == "Team sync (Berlin)")

    first = series.start
    last = first + timedelta(weeks=series["RRULE"]["COUNT"][0] - 1)
    assert first.hour == last.hour == 10
    assert first.utcoffset() != last.utcoffset()
    assert first.astimezone(UTC).hour != last.astimezone(UTC).hour


async def test_every_event_has_an_end_and_a_vtimezone_for_its_zone(client: aio.AsyncDAVClient) -> None:
    zones_seen: set[str] = set()
    for name in ("Home", "Work"):
        calendar = await calendar_named(client, name)
        for event in await calendar.get_events():
            await event.load()
            document = icalendar.Calendar.from_ical(event.data)
            defined = {str(tz["TZID"]) for tz in document.walk("VTIMEZONE")}
            for vevent in document.walk("VEVENT"):
                assert "DTEND" in vevent, vevent["SUMMARY"]
                tzid = vevent["DTSTART"].params.get("TZID")
                if tzid:
                    assert tzid in defined
                    zones_seen.add(tzid)
    assert {
        "America/New_York",
        "Europe/Berlin",
        "Asia/Tokyo",
        "Asia/Kolkata",
        "Australia/Sydney",
    } <= zones_seen


async def test_all_day_events_use_dates_with_an_exclusive_end(client: aio.AsyncDAVClient) -> None:
    everything = await all_vevents(client, "Home") + await all_vevents(client, "Work")
    all_day = [e for e in everything if not isinstance(e["DTSTART"].dt, datetime)]

    assert {str(e["SUMMARY"]) for e in all_day} >= {"Team offsite", "Alex's birthday", "Public holiday"}
    offsite = next(e for e in all_day if e["SUMMARY"] == "Team offsite")
    assert offsite["DTEND"].dt - offsite["DTSTART"].dt == timedelta(days=2)
    birthday = next(e for e in all_day if e["SUMMARY"] == "Alex's birthday")
    assert birthday["RRULE"]["FREQ"] == ["YEARLY"]


async def test_meetings_carry_an_organizer_and_attendees_with_their_replies(
    client: aio.AsyncDAVClient, account: ICloudAccount
) -> None:
    work = await all_vevents(client, "Work")
    planning = next(e for e in work if e["SUMMARY"] == "Quarterly planning")

    assert str(planning["ORGANIZER"]) != f"mailto:{account.email}"
    attendees = {str(a): a.params["PARTSTAT"] for a in planning["ATTENDEE"]}
    assert attendees[f"mailto:{account.email}"] == "ACCEPTED"
    standup = next(e for e in work if "RRULE" in e and str(e["SUMMARY"]) == "Daily standup")
    assert str(standup["ORGANIZER"]) == f"mailto:{account.email}"
    assert {a.params["PARTSTAT"] for a in standup["ATTENDEE"]} == {
        "ACCEPTED",
        "TENTATIVE",
        "DECLINED",
        "NEEDS-ACTION",
    }


async def test_resource_names_are_not_derived_from_uids(client: aio.AsyncDAVClient) -> None:
    calendar = await calendar_named(client, "Home")
    for event in await calendar.get_events():
        await event.load()
        uid = str(vevents(event.data)[0]["UID"])
        assert uid not in str(event.url)


# -- incremental sync (RFC 6578) -------------------------------------------------------------


async def test_sync_collection_reports_a_change_and_a_deletion_since_a_token(
    client: aio.AsyncDAVClient,
) -> None:
    principal = await client.get_principal()
    calendar = await principal.make_calendar(
        name="Sync test", cal_id=f"sync-{uuid.uuid4().hex[:8]}", supported_calendar_component_set=["VEVENT"]
    )
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    kept = await calendar.add_event(event_ical("kept@test", "Kept", start))
    doomed = await calendar.add_event(event_ical("doomed@test", "Doomed", start + timedelta(days=1)))

    first = await calendar.get_objects_by_sync_token(disable_fallback=True)
    assert {str(o.url) for o in first} == {str(kept.url), str(doomed.url)}
    assert first.sync_token
    assert not str(first.sync_token).startswith("fake")

    await kept.load()
    kept.icalendar_component["SUMMARY"] = "Kept, renamed"
    await kept.save()
    await doomed.delete()

    response = await client.sync_collection(
        str(calendar.url), sync_token=first.sync_token, props=["getetag"], depth=0
    )
    result = response.parse_sync_collection()
    assert [path(c.href) for c in result.changed] == [path(kept.url)]
    assert [path(h) for h in result.deleted] == [path(doomed.url)]
    assert result.sync_token
    assert result.sync_token != first.sync_token
    # Radicale does not list the collection's own href among the changes (iCloud does).
    assert path(calendar.url) not in {path(c.href) for c in result.changed}

    again = await calendar.get_objects_by_sync_token(sync_token=first.sync_token, disable_fallback=True)
    deleted = {path(u) for u in again.deleted_urls}
    assert deleted == {path(doomed.url)}
    assert [path(o.url) for o in again if path(o.url) not in deleted] == [path(kept.url)]


async def test_an_unknown_sync_token_is_refused_with_valid_sync_token(
    client: aio.AsyncDAVClient, account: ICloudAccount
) -> None:
    calendar = await calendar_named(client, "Home")
    bogus = "http://radicale.org/ns/sync/" + "0" * 64

    with pytest.raises(caldav_error.AuthorizationError) as raised:
        await calendar.get_objects_by_sync_token(sync_token=bogus, disable_fallback=True)

    assert raised.value.status == 403
    assert raised.value.preconditions == ["{DAV:}valid-sync-token"]
    body = (
        '<d:sync-collection xmlns:d="DAV:"><d:sync-token>' + bogus + "</d:sync-token>"
        "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
    )
    auth = {"Authorization": aiohttp.encode_basic_auth(account.email, account.app_password)}
    async with (
        aiohttp.ClientSession(headers=auth) as session,
        session.request("REPORT", str(calendar.url), data=body, headers=DEPTH_0) as response,
    ):
        assert response.status == 403
        assert "valid-sync-token" in await response.text()


# -- writing ---------------------------------------------------------------------------------


async def test_conditional_writes_fail_with_412_on_a_stale_precondition(account: ICloudAccount) -> None:
    headers = {
        "Authorization": aiohttp.encode_basic_auth(account.email, account.app_password),
        "Content-Type": "text/calendar; charset=utf-8",
    }
    url = account.calendar_urls["home"] + f"{uuid.uuid4()}.ics"
    ical = event_ical(f"{uuid.uuid4()}@test", "Conditional", datetime(2026, 12, 2, 9, tzinfo=UTC))
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.put(url, data=ical, headers={"If-None-Match": "*"}) as created:
            assert created.status == 201
            etag = created.headers["ETag"]
        async with session.put(url, data=ical, headers={"If-None-Match": "*"}) as again:
            assert again.status == 412
        async with session.put(url, data=ical, headers={"If-Match": '"stale"'}) as stale:
            assert stale.status == 412
        changed = ical.replace("SUMMARY:Conditional", "SUMMARY:Changed")
        async with session.put(url, data=changed, headers={"If-Match": etag}) as updated:
            assert updated.status in (200, 201, 204)
            assert updated.headers["ETag"] != etag
        async with session.delete(url, headers={"If-Match": etag}) as stale_delete:
            assert stale_delete.status == 412


# -- credentials -----------------------------------------------------------------------------


async def test_a_wrong_app_password_gets_401(radicale: RadicaleServer, account: ICloudAccount) -> None:
    wrong = "aaaa-bbbb-cccc-dddd"
    async with aio.AsyncDAVClient(url=radicale.url, username=account.email, password=wrong) as bad:
        with pytest.raises(caldav_error.AuthorizationError) as raised:
            await bad.get_principal()
    assert raised.value.status == 401

    auth = {"Authorization": aiohttp.encode_basic_auth(account.email, wrong)}
    async with (
        aiohttp.ClientSession(headers=auth) as session,
        session.request("PROPFIND", radicale.url, headers=DEPTH_0) as response,
    ):
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


async def test_a_user_added_while_radicale_runs_signs_in_at_once_and_removal_revokes(
    radicale: RadicaleServer,
) -> None:
    credentials = await new_user(radicale)
    async with aio.AsyncDAVClient(
        url=radicale.url, username=credentials.email, password=credentials.app_password
    ) as dav_client:
        principal = await dav_client.get_principal()
        assert path(principal.url) == f"/{credentials.email}/"
        assert await principal.get_calendars() == []

    assert radicale.users.remove(credentials.email)
    async with aio.AsyncDAVClient(
        url=radicale.url, username=credentials.email, password=credentials.app_password
    ) as dav_client:
        with pytest.raises(caldav_error.AuthorizationError):
            await dav_client.get_principal()


async def test_seeding_again_keeps_existing_calendars_as_they_are(
    radicale: RadicaleServer, account: ICloudAccount, client: aio.AsyncDAVClient
) -> None:
    before = len(await (await calendar_named(client, "Work")).get_events())

    again = await seed_account(radicale, seed=SEED + 99, anchor=ANCHOR, app_password=account.app_password)

    assert again.app_password == account.app_password
    assert len(await (await calendar_named(client, "Work")).get_events()) == before


# -- what Radicale accepts that iCloud would not (documented gaps) ---------------------------


async def test_radicale_accepts_an_event_without_dtend_which_icloud_refuses(
    radicale: RadicaleServer,
) -> None:
    credentials = await new_user(radicale)
    async with aio.AsyncDAVClient(
        url=radicale.url, username=credentials.email, password=credentials.app_password
    ) as dav_client:
        principal = await dav_client.get_principal()
        calendar = await principal.make_calendar(name="No end", cal_id="no-end")
        ical = event_ical("no-end@test", "No end", datetime(2026, 12, 1, 9, tzinfo=UTC))
        ical = "".join(line + "\r\n" for line in ical.split("\r\n") if line and not line.startswith("DTEND"))
        event = await calendar.add_event(ical)
        await event.load()
        assert "DTEND" not in vevents(event.data)[0]


# -- the process -----------------------------------------------------------------------------


async def test_stopping_leaves_no_process_and_no_temporary_directory() -> None:
    server = RadicaleServer(RadicaleConfig(port=0))
    await server.start()
    pid, data_dir = server.pid, server.data_dir
    assert pid is not None

    await server.stop()

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not data_dir.exists()


async def test_a_given_data_directory_survives_a_restart(tmp_path: Path) -> None:
    config = RadicaleConfig(port=0, data_dir=tmp_path / "radicale", auth_delay=0.05)
    async with RadicaleServer(config) as server:
        account = await seed_account(server, seed=1, anchor=ANCHOR)
    async with (
        RadicaleServer(config) as server,
        aio.AsyncDAVClient(
            url=server.url, username=account.email, password=account.app_password
        ) as dav_client,
    ):
        principal = await dav_client.get_principal()
        assert len(await principal.get_calendars()) == 3
    assert (tmp_path / "radicale" / "users").exists()
    assert quote(account.email, safe="") in account.principal_url
