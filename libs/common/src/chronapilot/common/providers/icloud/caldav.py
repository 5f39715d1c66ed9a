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

Discovery sends its three ``PROPFIND`` requests itself, over the service's aiohttp session
(:class:`~chronapilot.common.providers.http.ProviderHttp`), with ``Authorization: Basic`` up
front (Radicale delays every ``401``, iCloud's own delay is unknown), each request bounded by
``ProviderSettings.http_timeout_s`` and the whole by three of them. It follows redirects (RFC
6764 §5: ``/.well-known/caldav`` configured as the root answers ``301``), ``PROPFIND`` and its
body kept whatever the code, at most :data:`MAX_REDIRECTS`; a redirect carries the credentials
only to the same host (or from ``http`` to ``https`` on it), never to another one (the partition
host gets them because the principal names it, not because a redirect does). Hrefs are read
relative to the URL that answered. Statuses are translated by :func:`translate_error` (401 →
``InvalidCredentials``), and each request is counted like every provider request
(:mod:`~chronapilot.common.providers.telemetry`): ``operation="account"`` for the principal and
the home, ``"list_calendars"`` for the listing.

Event sync (:meth:`ICloudProvider.sync_events`, :mod:`chronapilot.common.providers.icloud.sync`)
sends its own WebDAV requests over the service's aiohttp session (sync-collection, multiget,
the ctag/etag fallback), through the same :func:`translate_error`. Write-back
(:meth:`ICloudProvider.create_event`, ``update_event``, ``delete_event``,
:mod:`chronapilot.common.providers.icloud.writes`) goes the same way: ``PUT``/``DELETE`` with
``If-None-Match``/``If-Match``, its statuses read by ``writes.write_error``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp

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
from chronapilot.common.providers.icloud import parse
from chronapilot.common.providers.icloud import sync as event_sync
from chronapilot.common.providers.icloud import writes as event_writes
from chronapilot.common.providers.sync import EventData, EventPage, EventTime
from chronapilot.common.providers.telemetry import Operation
from chronapilot.common.providers.writes import EventDraft
from chronapilot.common.settings import ProviderSettings

T = TypeVar("T")

_PRINCIPAL_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:current-user-principal/></d:prop></d:propfind>'
)
_HOME_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
    "<d:prop><c:calendar-home-set/></d:prop></d:propfind>"
)
_CALENDAR_LIST_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" '
    'xmlns:cs="http://calendarserver.org/ns/" xmlns:ic="http://apple.com/ns/ical/">'
    "<d:prop><d:displayname/><d:resourcetype/><c:supported-calendar-component-set/>"
    "<cs:getctag/><d:sync-token/><ic:calendar-color/><ic:calendar-order/>"
    "<d:current-user-privilege-set/><c:calendar-timezone/></d:prop></d:propfind>"
)
_XML = {"Content-Type": "application/xml; charset=utf-8", "Accept": "application/xml, text/xml"}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Discovery is three requests; its overall budget is that many request timeouts.
_DISCOVERY_REQUESTS = 3
#: Redirects followed per discovery request.
MAX_REDIRECTS = 5

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
        async with self._http_session() as session:
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
        async with self._http_session() as session:
            yield event_writes.ICloudWrites(
                self._requests(session, token, Operation.WRITE_EVENT), calendar_id
            )

    @asynccontextmanager
    async def _http_session(self) -> AsyncIterator[aiohttp.ClientSession]:
        """The service's session, or one for this operation when the provider was given none."""
        if self._session is not None:
            yield self._session
            return
        async with aiohttp.ClientSession() as session:
            yield session

    def _http(self, session: aiohttp.ClientSession) -> ProviderHttp:
        return ProviderHttp(session, timeout_s=self._timeout_s, translate=translate_error, provider=self.name)

    def _requests(
        self, session: aiohttp.ClientSession, token: TokenSource, operation: Operation
    ) -> event_sync.DavRequests:
        return event_sync.DavRequests(self._http(session), token, operation)

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
        """Root → ``current-user-principal`` → ``calendar-home-set`` → the home's calendars."""
        try:
            async with (
                asyncio.timeout(self._timeout_s * _DISCOVERY_REQUESTS),
                self._http_session() as session,
            ):
                dav = _Discovery(self._http(session), credential)
                root, body = await dav.propfind(self._root, _PRINCIPAL_BODY, Operation.ACCOUNT, depth="0")
                principal = parse.principal_href(body)
                if principal is None:
                    raise ProviderError("icloud: the server named no current-user-principal")
                account = Account(id=parse.join_href(root, principal), email=credential.username)
                if not calendars:
                    return account, []
                at, body = await dav.propfind(account.id, _HOME_BODY, Operation.ACCOUNT, depth="0")
                home = parse.calendar_home_href(body)
                if home is None:
                    raise ProviderError("icloud: the principal named no calendar-home-set")
                home_url, body = await dav.propfind(
                    parse.join_href(at, home), _CALENDAR_LIST_BODY, Operation.LIST_CALENDARS, depth="1"
                )
                return account, parse.calendar_collections(body, home_url)
        except TimeoutError:
            raise Unavailable("icloud: CalDAV discovery timed out") from None


class _Discovery:
    """Discovery's ``PROPFIND`` requests with one credential, redirects followed."""

    def __init__(self, http: ProviderHttp, credential: AppPassword) -> None:
        self._http = http
        self._authorization = aiohttp.encode_basic_auth(credential.username, credential.password)

    async def propfind(self, url: str, body: str, operation: Operation, *, depth: str) -> tuple[str, bytes]:
        """``(the URL that answered, its multistatus body)``; any other answer is an error."""
        origin = url
        for _ in range(MAX_REDIRECTS + 1):
            headers = {**_XML, "Depth": depth}
            if redirect_keeps_credentials(origin, url):
                headers["Authorization"] = self._authorization
            answer = await self._http.send("PROPFIND", url, operation=operation, data=body, headers=headers)
            location = header(answer.headers, "Location")
            if answer.status not in _REDIRECTS or not location:
                return url, self._http.check(answer, (200, 207)).body
            url = urljoin(url, location)
        raise Unavailable(f"icloud: CalDAV discovery was redirected more than {MAX_REDIRECTS} times")


def redirect_keeps_credentials(origin: str, target: str) -> bool:
    """Whether a redirect from ``origin`` to ``target`` may carry the credentials: the same host,
    scheme and port, or ``http`` → ``https`` on the same host with the default ports."""
    old, new = urlsplit(origin), urlsplit(target)
    if old.hostname != new.hostname:
        return False
    if (old.scheme, old.port or _DEFAULT_PORTS.get(old.scheme)) == (
        new.scheme,
        new.port or _DEFAULT_PORTS.get(new.scheme),
    ):
        return True
    return (
        old.scheme == "http" and old.port in (None, 80) and new.scheme == "https" and new.port in (None, 443)
    )
