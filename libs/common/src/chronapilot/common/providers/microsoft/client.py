"""Microsoft: identity platform v2 (authorization code + PKCE) and Microsoft Graph v1.0.

Endpoints come from settings: ``microsoft_login_url`` + ``microsoft_tenant`` give
``/{tenant}/oauth2/v2.0/authorize`` and ``/token``; ``microsoft_graph_url`` is Graph with
``/v1.0``. The same client talks to Entra and Graph or to the sandbox emulator.

Quirks kept here:

- ``offline_access`` is what yields a refresh token; every refresh **rotates** it: the caller
  must store the returned one, replacing the old, before using the new access token
  (learn.microsoft.com/entra/identity-platform/refresh-tokens);
- a refresh must name the scopes again, and may not ask for more than was consented: it asks
  for the connection's ChronaPilot scopes when the caller passes them; without them it asks for
  read-write and, if that was never consented (AADSTS65001), for read-only. (Graph's
  ``.default`` is not used: it means the app registration's static permissions, not what the
  user consented to dynamically);
- there is no revocation endpoint for third-party apps (``revokeSignInSessions`` would sign
  the user out of every app): :meth:`revoke` raises ``NotSupported``;
- ``/me`` ``mail`` may be null (personal accounts): the e-mail is then ``userPrincipalName``;
- errors are flat AADSTS bodies from the token endpoint (branch on ``error`` and
  ``error_codes``, never on the text) and an envelope from Graph (``{"error": {"code"}}``);
  :func:`translate_error` reads both (learn.microsoft.com/graph/errors,
  learn.microsoft.com/entra/identity-platform/reference-error-codes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from chronapilot.common.clock import Clock, SystemClock
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
    NotSupported,
    Throttled,
    Unavailable,
    retry_after_seconds,
)
from chronapilot.common.providers.http import ProviderHttp, header, parse_json_object
from chronapilot.common.providers.microsoft import sync as event_sync
from chronapilot.common.providers.microsoft.push import MicrosoftPush
from chronapilot.common.providers.microsoft.writes import MicrosoftWrites
from chronapilot.common.providers.oauth import OAuthClientConfig, OAuthCodeFlow
from chronapilot.common.providers.sync import EventData, EventPage, EventTime
from chronapilot.common.providers.telemetry import Operation
from chronapilot.common.providers.writes import EventDraft
from chronapilot.common.settings import ProviderSettings

GRAPH_RESOURCE = "https://graph.microsoft.com/"
SIGN_IN_SCOPES = ("openid", "email", "offline_access", "User.Read")
#: "The user or administrator has not consented to use the application" (scopes asked on refresh).
CONSENT_MISSING = "AADSTS65001"
#: ``error`` values of the token endpoint that mean "the user must sign in and consent again".
_REAUTH_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required"})
_MAX_PAGES = 100


def translate_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """Microsoft's answer ``status``/``headers``/``body`` as the ChronaPilot error it means."""
    payload = parse_json_object(body)
    retry_after = retry_after_seconds(header(headers, "Retry-After"))
    error = payload.get("error")
    if isinstance(error, str):
        return _identity_error(status, error, payload.get("error_codes"), retry_after)
    envelope: dict[str, Any] = error if isinstance(error, dict) else {}
    code = str(envelope.get("code") or "")
    message = f"microsoft: {status} {code or 'error'}: {envelope.get('message') or ''}"
    if status == 401:
        return InvalidCredentials(message, status=status)
    if status == 429 or (status in (503, 504) and retry_after is not None):
        return Throttled(message, status=status, retry_after=retry_after)
    if status >= 500:
        return Unavailable(message, status=status)
    if status == 410 or code.lower() in ("syncstatenotfound", "resyncrequired"):
        return CursorExpired(message, status=status)
    if status == 403:
        return ProviderError(message, status=status, reauth_required=True)
    return ProviderError(message, status=status)


def _identity_error(status: int, error: str, codes: object, retry_after: float | None) -> ProviderError:
    first = codes[0] if isinstance(codes, list) and codes and isinstance(codes[0], int) else None
    aadsts = f"AADSTS{first}" if first is not None else None
    message = f"microsoft: {error}" + (f" ({aadsts})" if aadsts else "")
    if error in _REAUTH_ERRORS:
        return InvalidGrant(message, status=status, provider_code=aadsts or error)
    if status == 429 or (status == 503 and retry_after is not None):
        return Throttled(message, status=status, retry_after=retry_after)
    if status >= 500 or error == "temporarily_unavailable":
        return Unavailable(message, status=status, retry_after=retry_after)
    return ProviderError(message, status=status)


def _short_scope(scope: str) -> str:
    return scope[len(GRAPH_RESOURCE) :] if scope.lower().startswith(GRAPH_RESOURCE) else scope


class MicrosoftProvider:
    """Outlook calendars through Graph, behind the ``CalendarProvider`` protocol."""

    name = "microsoft"
    capabilities = Capabilities(
        oauth=True, revocation=False, window_roll=event_sync.WINDOW_ROLL, series_as_instances=True
    )
    #: No app-password sign-in: consent is OAuth.
    password_sign_in = None

    def __init__(
        self, settings: ProviderSettings, session: aiohttp.ClientSession, *, clock: Clock | None = None
    ) -> None:
        #: "now" of a full sync's window (the service's clock: tests move it)
        self._clock = clock or SystemClock()
        if not settings.microsoft_client_id or settings.microsoft_client_secret is None:
            raise ConfigurationError(
                "CHRONAPILOT_MICROSOFT_CLIENT_ID and CHRONAPILOT_MICROSOFT_CLIENT_SECRET are required"
            )
        self._http = ProviderHttp(
            session, timeout_s=settings.http_timeout_s, translate=translate_error, provider=self.name
        )
        identity = f"{settings.microsoft_login_url}/{settings.microsoft_tenant}/oauth2/v2.0"
        self._oauth = OAuthCodeFlow(
            OAuthClientConfig(
                client_id=settings.microsoft_client_id,
                client_secret=settings.microsoft_client_secret.get_secret_value(),
                authorization_endpoint=f"{identity}/authorize",
                token_endpoint=f"{identity}/token",
            ),
            self._http,
        )
        self._graph_url = settings.microsoft_graph_url
        self._graph_origin = urlsplit(settings.microsoft_graph_url)[:2]
        #: Graph subscriptions (:mod:`chronapilot.common.providers.microsoft.push`).
        self.push = MicrosoftPush(self._http, self._graph_url)
        self._writes = MicrosoftWrites(
            self._http, self._graph_url, translate=translate_error, same_origin=self._same_origin
        )

    # consent -----------------------------------------------------------------------------

    def provider_scopes(self, scopes: Sequence[str]) -> list[str]:
        calendars = "Calendars.ReadWrite" if WRITE in check_scopes(scopes) else "Calendars.Read"
        return [*SIGN_IN_SCOPES, calendars]

    def granted_scopes(self, tokens: TokenSet) -> tuple[str, ...]:
        granted = {_short_scope(scope).lower() for scope in tokens.scopes}
        if "calendars.readwrite" in granted:
            return SCOPES
        return (READ,) if "calendars.read" in granted else ()

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
            extra={"response_mode": "query", "login_hint": login_hint},
        )

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        return await self._oauth.exchange_code(
            code=code, redirect_uri=redirect_uri, code_verifier=code_verifier
        )

    async def refresh(self, refresh_token: str, *, scopes: Sequence[str] | None = None) -> TokenSet:
        """A new access token **and a new refresh token**: store it, replacing ``refresh_token``."""
        if scopes is not None:
            return await self._oauth.refresh(refresh_token, scopes=self._refresh_scopes(scopes))
        try:
            return await self._oauth.refresh(refresh_token, scopes=self._refresh_scopes(SCOPES))
        except InvalidGrant as exc:
            if exc.provider_code != CONSENT_MISSING:
                raise
        return await self._oauth.refresh(refresh_token, scopes=self._refresh_scopes([READ]))

    def _refresh_scopes(self, scopes: Sequence[str]) -> list[str]:
        return [scope for scope in self.provider_scopes(scopes) if scope not in ("openid", "email")]

    async def revoke(self, token: str) -> None:
        raise NotSupported(
            "microsoft: no token revocation for third-party apps; the user removes the app's "
            "consent in their account settings"
        )

    # account -----------------------------------------------------------------------------

    async def account(self, token: TokenSource) -> Account:
        """``GET /me``: ``id``, and ``mail`` or else ``userPrincipalName``."""
        me = await self._http.authorized_json(
            "GET", f"{self._graph_url}/me", token, operation=Operation.ACCOUNT
        )
        email = me.get("mail") or me.get("userPrincipalName")
        if not isinstance(me.get("id"), str) or not isinstance(email, str):
            raise ProviderError("microsoft: /me has no id or e-mail")
        return Account(id=str(me["id"]), email=email)

    async def list_calendars(self, token: TokenSource) -> list[CalendarInfo]:
        """``GET /me/calendars``, following ``@odata.nextLink`` to the end."""
        calendars: list[CalendarInfo] = []
        url = f"{self._graph_url}/me/calendars"
        for _ in range(_MAX_PAGES):
            page = await self._http.authorized_json("GET", url, token, operation=Operation.LIST_CALENDARS)
            calendars += [_calendar(item) for item in page.get("value") or []]
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return calendars
            url = self._same_origin(str(next_link))
        raise ProviderError(f"microsoft: /me/calendars has more than {_MAX_PAGES} pages")

    # events ------------------------------------------------------------------------------

    #: ``odata.maxpagesize`` of each delta page during a sync (tests make it small).
    sync_page_size = event_sync.MAX_PAGE_SIZE
    #: How far back and ahead of now a full sync's calendar view reaches.
    sync_window = (event_sync.WINDOW_PAST, event_sync.WINDOW_FUTURE)

    def sync_events(
        self, token: TokenSource, calendar_id: str, cursor: str | None
    ) -> AsyncIterator[EventPage]:
        """Full or incremental event sync; see :mod:`chronapilot.common.providers.microsoft.sync`."""
        return event_sync.sync_events(
            self._http,
            self._graph_url,
            token,
            calendar_id,
            cursor,
            same_origin=self._same_origin,
            page_size=self.sync_page_size,
            window=self.sync_window,
            now=self._clock.now(),
        )

    # write-back (EventWrites; see chronapilot.common.providers.microsoft.writes) --------------

    async def create_event(
        self, token: TokenSource, calendar_id: str, draft: EventDraft, *, write_id: str
    ) -> EventData:
        """``POST /me/calendars/{id}/events`` with ``transactionId`` = ``write_id``, or the event an
        earlier attempt with ``write_id`` created."""
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
        """``PATCH /me/events/{id}`` (of the occurrence at ``original_start``: an exception)."""
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
        """``DELETE /me/events/{id}`` (cancels the occurrence at ``original_start``)."""
        await self._writes.delete(
            token, calendar_id, event_id, if_match=if_match, original_start=original_start
        )

    def _same_origin(self, link: str) -> str:
        """``link`` if it points at Graph: a bearer token is never sent anywhere else."""
        if urlsplit(link)[:2] != self._graph_origin:
            raise ProviderError("microsoft: a paging link points outside Graph")
        return link


def _calendar(item: Mapping[str, Any]) -> CalendarInfo:
    return CalendarInfo(
        provider_calendar_id=str(item["id"]),
        name=str(item.get("name") or item["id"]),
        primary=bool(item.get("isDefaultCalendar", False)),
        read_only=not item.get("canEdit", True),
        timezone=None,
        color=item.get("hexColor") or None,
    )
