"""iCloud: CalDAV with the Apple ID e-mail and an app-specific password (HTTP Basic).

There is no OAuth: the user types the Apple ID and an app-specific password (an
:class:`~chronapilot.common.providers.base.AppPassword`) into ChronaPilot's hosted page, which
:data:`PASSWORD_FORM` describes, and ``provider.password_sign_in.verify`` checks them by CalDAV
discovery before a connection is created. Afterwards the credentials travel like a token: **the
token source returns** ``"<apple id>:<app-specific password>"``
(:meth:`~chronapilot.common.providers.base.AppPassword.token`; the Apple ID holds no ``:``, the
password may). ``force_refresh=True`` just asks for the stored credentials again. There is no
push (``provider.push`` is None): iCloud connections are polled.

Discovery (RFC 6764/5397/4791, as iCloud answers it): ``PROPFIND`` the server root for
``current-user-principal``, the principal for ``calendar-home-set`` (an absolute URL on a
partition host for iCloud: later requests go there), then the home with ``Depth: 1``. Only
calendar collections supporting ``VEVENT`` are calendars (iCloud keeps one component type per
collection; legacy VTODO lists, inbox/outbox and notifications are left out). A collection is
read-only without ``DAV:write``/``write-content``/``all`` in ``current-user-privilege-set``.

- account id: the principal URL (it carries iCloud's DSID); e-mail: the Apple ID;
- calendar id: the collection's absolute URL; CalDAV has no primary calendar (``primary`` is
  False), colours are Apple's ``calendar-color`` (``#RRGGBBAA``);
- :meth:`revoke` and the OAuth methods raise ``NotSupported``: the user revokes the password
  at account.apple.com.

Requests go through the caldav library's async client (caldav 3.6), one client per operation,
each request bounded by ``ProviderSettings.http_timeout_s``. Its errors and the HTTP statuses
are translated by :func:`translate_error` (401 → ``InvalidCredentials``), and each request is
counted like every provider request (:mod:`~chronapilot.common.providers.telemetry`).

Event sync (:meth:`ICloudProvider.sync_events`, :mod:`chronapilot.common.providers.icloud.sync`)
sends its own WebDAV requests over the service's aiohttp session (sync-collection, multiget,
the ctag/etag fallback), through the same :func:`translate_error`. Write-back
(:meth:`ICloudProvider.create_event`, ``update_event``, ``delete_event``,
:mod:`chronapilot.common.providers.icloud.writes`) goes the same way: ``PUT``/``DELETE`` with
``If-None-Match``/``If-Match``, its statuses read by ``writes.write_error``.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
from caldav.async_davclient import AsyncDAVClient
from caldav.lib import error as dav_error
from caldav.lib.url import URL

from chronapilot.common.errors import ProviderError
from chronapilot.common.providers.base import (
    SCOPES,
    Account,
    AppPassword,
    CalendarInfo,
    Capabilities,
    PasswordForm,
    TokenSet,
    TokenSource,
    check_scopes,
)
from chronapilot.common.providers.errors import (
    CursorExpired,
    InvalidCredentials,
    NotSupported,
    Throttled,
    Unavailable,
    retry_after_seconds,
)
from chronapilot.common.providers.http import ProviderHttp, header
from chronapilot.common.providers.icloud import sync as event_sync
from chronapilot.common.providers.icloud import writes as event_writes
from chronapilot.common.providers.sync import EventData, EventPage, EventTime
from chronapilot.common.providers.telemetry import Operation, observe_call
from chronapilot.common.providers.writes import EventDraft
from chronapilot.common.settings import ProviderSettings

T = TypeVar("T")

_DAV = "{DAV:}"
_CALDAV = "{urn:ietf:params:xml:ns:caldav}"
_APPLE = "{http://apple.com/ns/ical/}"
_WRITE_PRIVILEGES = frozenset({f"{_DAV}write", f"{_DAV}write-content", f"{_DAV}all"})
_CALENDAR_LIST_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" '
    'xmlns:cs="http://calendarserver.org/ns/" xmlns:ic="http://apple.com/ns/ical/">'
    "<d:prop><d:displayname/><d:resourcetype/><c:supported-calendar-component-set/>"
    "<cs:getctag/><d:sync-token/><ic:calendar-color/><ic:calendar-order/>"
    "<d:current-user-privilege-set/><c:calendar-timezone/></d:prop></d:propfind>"
)
_TZID = re.compile(r"^TZID:(.+)$", re.MULTILINE)
#: Discovery is three requests; its overall budget is that many request timeouts.
_DISCOVERY_REQUESTS = 3

#: What ChronaPilot's hosted page asks an iCloud user for.
PASSWORD_FORM = PasswordForm(
    provider_label="iCloud",
    account_label="Apple Account e-mail",
    account_is_email=True,
    password_label="App-specific password",
    password_term="app-specific password",
    password_help="(not your Apple Account password). Create one at appleid.apple.com under "
    "“Sign-In and Security” → “App-Specific Passwords”.",
    password_hint="Four groups of four letters, like xxxx-xxxx-xxxx-xxxx.",
)


def translate_error(status: int, headers: Mapping[str, str], body: bytes = b"") -> ProviderError:
    """A CalDAV answer ``status``/``headers``/``body`` as the ChronaPilot error it means."""
    retry_after = retry_after_seconds(header(headers, "Retry-After"))
    message = f"icloud: CalDAV answered {status}"
    if status == 401:
        return InvalidCredentials("icloud: the Apple ID or app-specific password was refused")
    if status in (403, 409) and b"valid-sync-token" in body:
        return CursorExpired(message + " (valid-sync-token)", status=status)
    if status == 429 or (status == 503 and retry_after is not None):
        return Throttled(message, status=status, retry_after=retry_after)
    if status >= 500:
        return Unavailable(message, status=status)
    return ProviderError(message, status=status)


def _from_dav_error(exc: dav_error.DAVError) -> ProviderError:
    if isinstance(exc, dav_error.RateLimitError):
        return Throttled(
            "icloud: rate limited", status=exc.status or 429, retry_after=exc.retry_after_seconds
        )
    body = exc.body if isinstance(exc.body, bytes) else str(exc.body or "").encode()
    if exc.status is None:
        return ProviderError(f"icloud: CalDAV request failed: {type(exc).__name__}")
    return translate_error(exc.status, {}, body)


class ICloudPasswordSignIn:
    """iCloud's :class:`~chronapilot.common.providers.base.PasswordSignIn`: the Apple ID and an
    app-specific password, checked by CalDAV discovery."""

    form = PASSWORD_FORM

    def __init__(self, provider: ICloudProvider) -> None:
        self._provider = provider

    async def verify(self, credential: AppPassword) -> tuple[Account, list[CalendarInfo]]:
        """Discover the account and its calendars; wrong credentials raise ``InvalidCredentials``."""
        return await self._provider._discover(credential, calendars=True)


class ICloudProvider:
    """iCloud calendars over CalDAV, behind the ``CalendarProvider`` protocol."""

    name = "icloud"
    capabilities = Capabilities(oauth=False, revocation=False)
    #: No webhooks: iCloud connections are polled.
    push = None

    #: hrefs per calendar-multiget during a sync (one page each; tests make it small).
    sync_batch_size = event_sync.BATCH_SIZE
    #: Use sync-collection where the server offers it (False: always compare ctag/etags).
    sync_collection = True

    def __init__(self, settings: ProviderSettings, session: aiohttp.ClientSession | None = None) -> None:
        self._root = settings.icloud_caldav_url.rstrip("/") + "/"
        self._timeout_s = settings.http_timeout_s
        self._session = session
        self.password_sign_in = ICloudPasswordSignIn(self)

    # consent: none, credentials instead ----------------------------------------------------

    def provider_scopes(self, scopes: Sequence[str]) -> list[str]:
        """No scopes: an app-specific password opens the whole account."""
        check_scopes(scopes)
        return []

    def granted_scopes(self, tokens: TokenSet) -> tuple[str, ...]:
        return SCOPES

    def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        code_verifier: str,
        scopes: Sequence[str],
        login_hint: str | None = None,
    ) -> str:
        raise NotSupported("icloud: no OAuth; the user enters an app-specific password (verify)")

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        raise NotSupported("icloud: no OAuth")

    async def refresh(self, refresh_token: str, *, scopes: Sequence[str] | None = None) -> TokenSet:
        raise NotSupported("icloud: app-specific passwords do not expire and cannot be refreshed")

    async def revoke(self, token: str) -> None:
        raise NotSupported("icloud: the user revokes the app-specific password at account.apple.com")

    # account -------------------------------------------------------------------------------

    async def account(self, token: TokenSource) -> Account:
        """The principal URL and the Apple ID."""
        account, _ = await self._with_credentials(token, lambda creds: self._discover(creds, calendars=False))
        return account

    async def list_calendars(self, token: TokenSource) -> list[CalendarInfo]:
        """The VEVENT calendar collections of the calendar home."""
        _, calendars = await self._with_credentials(
            token, lambda creds: self._discover(creds, calendars=True)
        )
        return calendars

    async def sync_events(
        self, token: TokenSource, calendar_id: str, cursor: str | None
    ) -> AsyncIterator[EventPage]:
        """Full or incremental event sync; see :mod:`chronapilot.common.providers.icloud.sync`."""
        if self._session is not None:
            async for page in self._sync(self._session, token, calendar_id, cursor):
                yield page
            return
        async with aiohttp.ClientSession() as session:
            async for page in self._sync(session, token, calendar_id, cursor):
                yield page

    # write-back (EventWrites; see chronapilot.common.providers.icloud.writes) ------------------

    async def create_event(
        self, token: TokenSource, calendar_id: str, draft: EventDraft, *, write_id: str
    ) -> EventData:
        """``PUT <calendar>/<write_id>.ics`` with ``If-None-Match: *`` (a retry reads it back)."""
        async with self._writes(token, calendar_id) as writes:
            return await writes.create(draft, write_id=write_id)

    async def update_event(
        self,
        token: TokenSource,
        calendar_id: str,
        event_id: str,
        draft: EventDraft,
        *,
        if_match: str | None = None,
        original_start: EventTime | None = None,
    ) -> EventData:
        """The resource read, changed (one occurrence: its override) and ``PUT`` with ``If-Match``."""
        async with self._writes(token, calendar_id) as writes:
            return await writes.update(event_id, draft, if_match=if_match, original_start=original_start)

    async def delete_event(
        self,
        token: TokenSource,
        calendar_id: str,
        event_id: str,
        *,
        if_match: str | None = None,
        original_start: EventTime | None = None,
    ) -> None:
        """``DELETE`` the resource (one occurrence: an ``EXDATE`` on the master)."""
        async with self._writes(token, calendar_id) as writes:
            await writes.delete(event_id, if_match=if_match, original_start=original_start)

    @asynccontextmanager
    async def _writes(self, token: TokenSource, calendar_id: str) -> AsyncIterator[event_writes.ICloudWrites]:
        if self._session is not None:
            yield event_writes.ICloudWrites(
                self._requests(self._session, token, Operation.WRITE_EVENT), calendar_id
            )
            return
        async with aiohttp.ClientSession() as session:
            yield event_writes.ICloudWrites(
                self._requests(session, token, Operation.WRITE_EVENT), calendar_id
            )

    def _requests(
        self, session: aiohttp.ClientSession, token: TokenSource, operation: Operation
    ) -> event_sync.DavRequests:
        http = ProviderHttp(session, timeout_s=self._timeout_s, translate=translate_error, provider=self.name)
        return event_sync.DavRequests(http, token, operation)

    def _sync(
        self, session: aiohttp.ClientSession, token: TokenSource, calendar_id: str, cursor: str | None
    ) -> AsyncIterator[EventPage]:
        sync = event_sync.ICloudSync(
            self._requests(session, token, Operation.SYNC_EVENTS),
            calendar_id,
            batch_size=self.sync_batch_size,
            use_sync_collection=self.sync_collection,
        )
        return sync.pages(cursor)

    async def _with_credentials(
        self, token: TokenSource, operation: Callable[[AppPassword], Awaitable[T]]
    ) -> T:
        """Run ``operation``; after a 401, once more with credentials asked again (force_refresh)."""
        try:
            return await operation(AppPassword.from_token(await token(False)))
        except InvalidCredentials:
            return await operation(AppPassword.from_token(await token(True)))

    async def _discover(
        self, credential: AppPassword, *, calendars: bool
    ) -> tuple[Account, list[CalendarInfo]]:
        username, password = credential.username, credential.password
        try:
            async with asyncio.timeout(self._timeout_s * _DISCOVERY_REQUESTS):
                async with AsyncDAVClient(
                    url=self._root,
                    username=username,
                    password=password,
                    auth_type="basic",
                    timeout=math.ceil(self._timeout_s),
                    enable_rfc6764=False,
                    rate_limit_handle=False,
                    features={"http.multiplexing": {"support": "unsupported"}},
                ) as client:
                    principal = await _principal_url(client, self._root)
                    account = Account(id=principal, email=username)
                    if not calendars:
                        return account, []
                    home = await _calendar_home_url(client, principal)
                    return account, await _calendars(client, home)
        except dav_error.DAVError as exc:
            raise _from_dav_error(exc) from exc
        except TimeoutError:
            raise Unavailable("icloud: CalDAV discovery timed out") from None
        except OSError as exc:  # niquests' connection errors and timeouts are OSErrors
            raise Unavailable(f"icloud: CalDAV request failed: {type(exc).__name__}") from None


async def _propfind(
    client: AsyncDAVClient,
    url: str,
    *,
    operation: Operation,
    depth: int,
    props: list[str] | None = None,
    body: str = "",
) -> list[Any]:
    with observe_call(ICloudProvider.name, operation) as call:
        try:
            response = await client.propfind(url, body=body, depth=depth, props=props)
        except dav_error.DAVError as exc:
            raise _from_dav_error(exc) from exc
        failure = None
        if response.status not in (200, 207):
            failure = translate_error(
                response.status, dict(response.headers or {}), bytes(response._raw_body or b"")
            )
        call.answered(response.status, failure)
    if failure is not None:
        raise failure
    return list(response.results or [])


async def _principal_url(client: AsyncDAVClient, root: str) -> str:
    """RFC 5397 ``current-user-principal`` of the server root, as an absolute URL."""
    results = await _propfind(
        client, root, operation=Operation.ACCOUNT, depth=0, props=[f"{_DAV}current-user-principal"]
    )
    for result in results:
        href = result.properties.get(f"{_DAV}current-user-principal")
        if isinstance(href, str) and href:
            return str(URL.objectify(root).join(href))
    raise ProviderError("icloud: the server named no current-user-principal")


async def _calendar_home_url(client: AsyncDAVClient, principal: str) -> str:
    """RFC 4791 ``calendar-home-set`` of the principal (iCloud: on a partition host)."""
    results = await _propfind(
        client, principal, operation=Operation.ACCOUNT, depth=0, props=[f"{_CALDAV}calendar-home-set"]
    )
    for result in results:
        home = result.properties.get(f"{_CALDAV}calendar-home-set")
        if isinstance(home, list):
            home = home[0] if home else None
        if isinstance(home, str) and home:
            return str(URL.objectify(principal).join(home))
    raise ProviderError("icloud: the principal named no calendar-home-set")


async def _calendars(client: AsyncDAVClient, home: str) -> list[CalendarInfo]:
    """The home's members that are calendars holding events, in the user's order."""
    results = await _propfind(
        client, home, operation=Operation.LIST_CALENDARS, depth=1, body=_CALENDAR_LIST_BODY
    )
    found: list[tuple[int, CalendarInfo]] = []
    base = URL.objectify(home)
    for result in results:
        props: dict[str, Any] = result.properties
        if f"{_CALDAV}calendar" not in (props.get(f"{_DAV}resourcetype") or []):
            continue
        components = props.get(f"{_CALDAV}supported-calendar-component-set")
        if components is not None and "VEVENT" not in _as_list(components):
            continue
        privileges = props.get(f"{_DAV}current-user-privilege-set")
        url = str(base.join(result.href))
        found.append(
            (
                _as_int(props.get(f"{_APPLE}calendar-order")),
                CalendarInfo(
                    provider_calendar_id=url,
                    name=str(props.get(f"{_DAV}displayname") or url.rstrip("/").rsplit("/", 1)[-1]),
                    primary=False,
                    read_only=privileges is not None and not (_WRITE_PRIVILEGES & set(_as_list(privileges))),
                    timezone=_tzid(props.get(f"{_CALDAV}calendar-timezone")),
                    color=str(props[f"{_APPLE}calendar-color"])
                    if props.get(f"{_APPLE}calendar-color")
                    else None,
                ),
            )
        )
    return [calendar for _, calendar in sorted(found, key=lambda pair: (pair[0], pair[1].name))]


def _as_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)] if value else []


def _as_int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 1 << 30


def _tzid(value: object) -> str | None:
    match = _TZID.search(str(value)) if isinstance(value, str) else None
    return match.group(1).strip() if match else None
