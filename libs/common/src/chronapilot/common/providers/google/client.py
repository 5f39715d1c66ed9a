"""Google: OAuth 2.0 for web server apps, OpenID Connect userinfo, Calendar API v3.

Endpoints all come from settings (``google_auth_url``, ``google_token_url``,
``google_revoke_url``, ``google_userinfo_url``, ``google_api_url`` = the Calendar API base with
``/calendar/v3``), so the same client talks to Google or to the sandbox emulator.

Quirks kept here:

- offline access needs ``access_type=offline``; ``prompt=consent`` makes Google issue a refresh
  token on every consent, not only the first
  (developers.google.com/identity/protocols/oauth2/web-server);
- Google does not rotate refresh tokens: a refresh answer has none, so :meth:`refresh` hands
  back the one it was given;
- granular consent: the user may untick the calendar scope; :meth:`granted_scopes` tells;
- revoking an already revoked token answers ``400 invalid_token``: that counts as done;
- errors come flat from the OAuth endpoints (``{"error": "invalid_grant", …}``) and in an
  envelope from the Calendar API (``{"error": {"code", "errors": [{"reason"}]}}``);
  :func:`translate_error` reads both (developers.google.com/calendar/api/guides/errors).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp

from chronapilot.common.errors import ConfigurationError, ProviderError
from chronapilot.common.providers.base import (
    READ,
    SCOPES,
    WRITE,
    Account,
    CalendarInfo,
    Capabilities,
    TokenSet,
    TokenSource,
    check_scopes,
)
from chronapilot.common.providers.errors import (
    CursorExpired,
    InvalidCredentials,
    InvalidGrant,
    Throttled,
    Unavailable,
    retry_after_seconds,
)
from chronapilot.common.providers.google import sync as event_sync
from chronapilot.common.providers.google.push import GooglePush
from chronapilot.common.providers.google.writes import GoogleEventWrites
from chronapilot.common.providers.http import ProviderHttp, header, parse_json_object
from chronapilot.common.providers.oauth import OAuthClientConfig, OAuthCodeFlow
from chronapilot.common.providers.sync import EventData, EventPage, EventTime
from chronapilot.common.providers.telemetry import Operation
from chronapilot.common.providers.writes import EventDraft
from chronapilot.common.settings import ProviderSettings

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
CALENDAR_READONLY_SCOPE = f"{CALENDAR_SCOPE}.readonly"
#: What ChronaPilot asks for: the narrowest scopes that cover what it does. Events, read or
#: read and written (``calendar.events`` cannot share, delete calendars or read settings), and
#: the calendar list read-only (``calendar.calendarlist.readonly``: which calendars exist).
EVENTS_SCOPE = f"{CALENDAR_SCOPE}.events"
EVENTS_READONLY_SCOPE = f"{CALENDAR_SCOPE}.events.readonly"
CALENDAR_LIST_READONLY_SCOPE = f"{CALENDAR_SCOPE}.calendarlist.readonly"
_WRITE_SCOPES = frozenset({CALENDAR_SCOPE, EVENTS_SCOPE})
_READ_SCOPES = _WRITE_SCOPES | {CALENDAR_READONLY_SCOPE, EVENTS_READONLY_SCOPE}
#: Scopes that let the calendar list be read (a grant without one cannot be synced).
_LIST_SCOPES = frozenset(
    {CALENDAR_SCOPE, CALENDAR_READONLY_SCOPE, f"{CALENDAR_SCOPE}.calendarlist", CALENDAR_LIST_READONLY_SCOPE}
)
_THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
_WRITABLE_ROLES = frozenset({"writer", "owner"})
_MAX_PAGES = 100


def translate_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """Google's answer ``status``/``headers``/``body`` as the ChronaPilot error it means."""
    payload = parse_json_object(body)
    retry_after = retry_after_seconds(header(headers, "Retry-After"))
    error = payload.get("error")
    if isinstance(error, str):
        return _oauth_error(status, error, str(payload.get("error_description") or ""), retry_after)
    envelope: dict[str, Any] = error if isinstance(error, dict) else {}
    reasons = {str(item.get("reason")) for item in envelope.get("errors") or [] if isinstance(item, dict)}
    message = f"google: {status} {'/'.join(sorted(reasons)) or 'error'}: {envelope.get('message') or ''}"
    if status == 401:
        return InvalidCredentials(message, status=status)
    if status == 429 or (status == 403 and reasons & _THROTTLE_REASONS):
        return Throttled(message, status=status, retry_after=retry_after)
    if status == 503 and retry_after is not None:
        return Throttled(message, status=status, retry_after=retry_after)
    if status >= 500:
        return Unavailable(message, status=status)
    if status == 410 and "deleted" not in reasons:
        return CursorExpired(message, status=status)
    if status == 403 and "insufficientPermissions" in reasons:
        return ProviderError(message, status=status, reauth_required=True)
    return ProviderError(message, status=status)


def _oauth_error(status: int, error: str, description: str, retry_after: float | None) -> ProviderError:
    message = f"google: {error}: {description}".rstrip(": ")
    if error == "invalid_grant":
        return InvalidGrant(message, status=status, provider_code=error)
    if status == 401 and error != "invalid_client":  # userinfo: a refused access token
        return InvalidCredentials(message, status=status)
    if status == 429 or (status == 503 and retry_after is not None):
        return Throttled(message, status=status, retry_after=retry_after)
    if status >= 500 or error == "temporarily_unavailable":
        return Unavailable(message, status=status, retry_after=retry_after)
    return ProviderError(message, status=status)


class GoogleProvider:
    """Google Calendar behind the :class:`~chronapilot.common.providers.base.CalendarProvider` protocol."""

    name = "google"
    capabilities = Capabilities(oauth=True, revocation=True)
    #: No app-password sign-in: consent is OAuth.
    password_sign_in = None

    def __init__(self, settings: ProviderSettings, session: aiohttp.ClientSession) -> None:
        if not settings.google_client_id or settings.google_client_secret is None:
            raise ConfigurationError(
                "CHRONAPILOT_GOOGLE_CLIENT_ID and CHRONAPILOT_GOOGLE_CLIENT_SECRET are required"
            )
        self._http = ProviderHttp(
            session, timeout_s=settings.http_timeout_s, translate=translate_error, provider=self.name
        )
        self._oauth = OAuthCodeFlow(
            OAuthClientConfig(
                client_id=settings.google_client_id,
                client_secret=settings.google_client_secret.get_secret_value(),
                authorization_endpoint=settings.google_auth_url,
                token_endpoint=settings.google_token_url,
            ),
            self._http,
        )
        self._revoke_url = settings.google_revoke_url
        self._userinfo_url = settings.google_userinfo_url
        self._api_url = settings.google_api_url
        #: Watch channels (:mod:`chronapilot.common.providers.google.push`).
        self.push = GooglePush(self._http, self._api_url)
        self._writes = GoogleEventWrites(self._http, self._api_url, translate_error)

    # consent -----------------------------------------------------------------------------

    def provider_scopes(self, scopes: Sequence[str]) -> list[str]:
        events = EVENTS_SCOPE if WRITE in check_scopes(scopes) else EVENTS_READONLY_SCOPE
        return ["openid", "email", events, CALENDAR_LIST_READONLY_SCOPE]

    def granted_scopes(self, tokens: TokenSet) -> tuple[str, ...]:
        granted = set(tokens.scopes)
        if not granted & _LIST_SCOPES:
            return ()
        if granted & _WRITE_SCOPES:
            return SCOPES
        return (READ,) if granted & _READ_SCOPES else ()

    def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        code_verifier: str,
        scopes: Sequence[str],
        login_hint: str | None = None,
    ) -> str:
        return self._oauth.authorization_url(
            redirect_uri=redirect_uri,
            state=state,
            code_verifier=code_verifier,
            scopes=self.provider_scopes(scopes),
            extra={"access_type": "offline", "prompt": "consent", "login_hint": login_hint},
        )

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        return await self._oauth.exchange_code(
            code=code, redirect_uri=redirect_uri, code_verifier=code_verifier
        )

    async def refresh(self, refresh_token: str, *, scopes: Sequence[str] | None = None) -> TokenSet:
        """A new access token; the refresh token stays the same (Google does not rotate it).
        ``scopes`` are not needed: Google refreshes the grant as consented."""
        tokens = await self._oauth.refresh(refresh_token)
        if tokens.refresh_token is None:
            tokens = TokenSet(tokens.access_token, refresh_token, tokens.expires_at, tokens.scopes)
        return tokens

    async def revoke(self, token: str) -> None:
        """Revoke the grant behind ``token`` (refresh or access token); already gone is fine."""
        answer = await self._http.send(
            "POST", self._revoke_url, operation=Operation.REVOKE, data={"token": token}
        )
        if answer.status == 200:
            return
        if answer.status == 400 and parse_json_object(answer.body).get("error") == "invalid_token":
            return
        raise translate_error(answer.status, answer.headers, answer.body)

    # account -----------------------------------------------------------------------------

    async def account(self, token: TokenSource) -> Account:
        """``sub`` and ``email`` from the OpenID Connect userinfo endpoint."""
        info = await self._http.authorized_json("GET", self._userinfo_url, token, operation=Operation.ACCOUNT)
        sub, email = info.get("sub"), info.get("email")
        if not isinstance(sub, str) or not isinstance(email, str):
            raise ProviderError("google: userinfo has no sub or email (was the email scope granted?)")
        return Account(id=sub, email=email)

    async def list_calendars(self, token: TokenSource) -> list[CalendarInfo]:
        """``calendarList.list``, every page; deleted entries are left out."""
        calendars: list[CalendarInfo] = []
        params = {"maxResults": "250"}
        for _ in range(_MAX_PAGES):
            page = await self._http.authorized_json(
                "GET",
                f"{self._api_url}/users/me/calendarList",
                token,
                operation=Operation.LIST_CALENDARS,
                params=params,
            )
            calendars += [_calendar(item) for item in page.get("items") or [] if not item.get("deleted")]
            next_page = page.get("nextPageToken")
            if not next_page:
                return calendars
            params = {"maxResults": "250", "pageToken": str(next_page)}
        raise ProviderError(f"google: calendarList has more than {_MAX_PAGES} pages")

    # events ------------------------------------------------------------------------------

    #: ``maxResults`` of each events.list page during a sync (tests make it small).
    sync_page_size = event_sync.MAX_PAGE_SIZE

    def sync_events(
        self, token: TokenSource, calendar_id: str, cursor: str | None
    ) -> AsyncIterator[EventPage]:
        """Full or incremental event sync; see :mod:`chronapilot.common.providers.google.sync`."""
        return event_sync.sync_events(
            self._http, self._api_url, token, calendar_id, cursor, page_size=self.sync_page_size
        )

    # write-back (:mod:`chronapilot.common.providers.writes`) --------------------------------

    async def create_event(
        self, token: TokenSource, calendar_id: str, draft: EventDraft, *, write_id: str
    ) -> EventData:
        """events.insert with the id of ``write_id``; a retry returns the event already made."""
        return await self._writes.create(token, calendar_id, draft, write_id=write_id)

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
        """events.patch of ``draft.fields`` (of one occurrence with ``original_start``)."""
        return await self._writes.update(
            token, calendar_id, event_id, draft, if_match=if_match, original_start=original_start
        )

    async def delete_event(
        self,
        token: TokenSource,
        calendar_id: str,
        event_id: str,
        *,
        if_match: str | None = None,
        original_start: EventTime | None = None,
    ) -> None:
        """events.delete (cancels one occurrence with ``original_start``); gone already is done."""
        await self._writes.delete(
            token, calendar_id, event_id, if_match=if_match, original_start=original_start
        )


def _calendar(item: Mapping[str, Any]) -> CalendarInfo:
    return CalendarInfo(
        provider_calendar_id=str(item["id"]),
        name=str(item.get("summaryOverride") or item.get("summary") or item["id"]),
        primary=bool(item.get("primary", False)),
        read_only=item.get("accessRole") not in _WRITABLE_ROLES,
        timezone=item.get("timeZone") or None,
        color=item.get("backgroundColor") or None,
    )
