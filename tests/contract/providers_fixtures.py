"""The servers the provider contract suite runs against, and a scripted user in front of them.

- :func:`google_world` / :func:`microsoft_world`: the emulator's app built in this process on a
  socket bound to a free port (``build_app(base_url=...)``, as the sandbox launcher does), with
  ``ProviderSettings`` shaped like ``Sandbox.env()`` writes them.
- :func:`icloud_world`: a real Radicale on a free port, seeded with the demo account.
- :class:`World`: one of those, with the provider under test built by ``build_providers``, the
  demo account, what its calendars should be (read from the emulator's admin API or the seed),
  and :meth:`World.consent`, which drives the consent page over HTTP as a browser would
  (read the form, fill in e-mail and password, press Allow) and returns the redirect's query.
- :class:`Connection`: a connected account and its token source, counting forced refreshes.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit

import aiohttp
from aiohttp import web

from chronapilot.common.providers import (
    SCOPES,
    AppPassword,
    CalendarProvider,
    TokenSet,
    build_providers,
    new_code_verifier,
    new_state,
)
from chronapilot.common.settings import ProviderSettings
from chronapilot.sandbox.icloud import RadicaleConfig, RadicaleServer, seed_account
from chronapilot.sandbox.shared.consent import read_consent_form

HOST = "127.0.0.1"
REDIRECT_URI = "http://127.0.0.1:8080/v1/oauth/callback"
SEED = 20261125
TIMEOUT_S = 5.0


@dataclass
class Connection:
    """A connected account as ChronaPilot's token store would hold it."""

    provider: CalendarProvider
    tokens: TokenSet
    credentials: str | None = None
    forced_refreshes: int = 0
    #: a credential the provider refuses (an expired access token, an old password)
    refused: str = "expired.access.token"
    #: answer ``refused`` until a forced refresh, as a store holding an expired token would
    serve_refused_first: bool = False

    async def token(self, force_refresh: bool) -> str:
        """The token source: the stored access token; a refresh (stored) when forced."""
        if force_refresh:
            self.forced_refreshes += 1
            if self.credentials is None:
                assert self.tokens.refresh_token is not None
                self.tokens = await self.provider.refresh(self.tokens.refresh_token)
        if self.serve_refused_first and not force_refresh:
            return self.refused
        return self.credentials if self.credentials is not None else self.tokens.access_token


@dataclass
class World:
    """A running provider (emulator or Radicale) and the ChronaPilot provider pointed at it."""

    name: str
    base_url: str
    settings: ProviderSettings
    http: aiohttp.ClientSession
    email: str
    password: str
    #: provider calendar id -> name, as the emulator or the seed says
    calendars: dict[str, str]
    primary: str | None
    account_id: str = ""
    #: the user removes the app's access at the provider (None: not possible there)
    remove_grant: Callable[[], Awaitable[Any]] | None = None

    @staticmethod
    def canonical(url_or_id: str) -> str:
        """Ids compared as the server means them (CalDAV servers differ in escaping ``@``)."""
        return unquote(url_or_id)

    def same_id(self, left: str, right: str) -> bool:
        return self.canonical(left) == self.canonical(right)

    @property
    def provider(self) -> CalendarProvider:
        return build_providers(self.settings, self.http)[self.name]

    def provider_at(self, url: str, *, timeout_s: float) -> CalendarProvider:
        """The provider with every endpoint moved to ``url`` and a short timeout."""
        endpoints = {name: url for name in ProviderSettings.model_fields if name.endswith("_url")}
        settings = self.settings.model_copy(update={**endpoints, "http_timeout_s": timeout_s})
        return build_providers(settings, self.http)[self.name]

    async def consent(
        self, url: str, *, decision: str = "allow", password: str | None = None, untick: Sequence[str] = ()
    ) -> dict[str, str]:
        """Open ``url``, submit the consent form, return the redirect's query parameters."""
        async with self.http.get(url, allow_redirects=False) as page:
            assert page.status == 200, await page.text()
            form = read_consent_form(await page.text())
        body = form.submission(decision, email=self.email, password=password or self.password, untick=untick)
        async with self.http.post(urljoin(url, form.action), data=body, allow_redirects=False) as answer:
            assert answer.status in (302, 303), await answer.text()
            location = answer.headers["Location"]
        assert location.startswith(REDIRECT_URI), location
        return dict(parse_qsl(urlsplit(location).query))

    async def connect(self, scopes: Sequence[str] = SCOPES) -> Connection:
        """A full consent to ChronaPilot ``scopes``: authorization URL, consent page, code exchange."""
        provider = self.provider
        if not provider.capabilities.oauth:
            tokens = TokenSet("", None, None, ())
            connection = Connection(
                provider, tokens, credentials=AppPassword(self.email, self.password).token()
            )
            connection.refused = AppPassword(self.email, "an-old-password").token()
            return connection
        state, verifier = new_state(), new_code_verifier()
        url = provider.authorization_url(
            redirect_uri=REDIRECT_URI, state=state, code_verifier=verifier, scopes=scopes
        )
        query = await self.consent(url)
        assert query.get("state") == state
        tokens = await provider.exchange_code(
            code=query["code"], redirect_uri=REDIRECT_URI, code_verifier=verifier
        )
        return Connection(provider, tokens)

    async def call_admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self.http.request(method, f"{self.base_url}/_admin/{path}", json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json() if response.content_type == "application/json" else None


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def _serving(build: Callable[[str], web.Application]) -> AsyncIterator[str]:
    """Serve the app ``build(base_url)`` on a free port; yield its base URL."""
    sock = _bound_socket()
    base_url = f"http://{HOST}:{sock.getsockname()[1]}"
    runner = web.AppRunner(build(base_url), handle_signals=False, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield base_url
    finally:
        await runner.cleanup()


@asynccontextmanager
async def google_world(http: aiohttp.ClientSession) -> AsyncIterator[World]:
    from chronapilot.sandbox.google import (
        DEMO_EMAIL,
        DEMO_PASSWORD,
        SANDBOX_CLIENT_ID,
        SANDBOX_CLIENT_SECRET,
        build_app,
    )

    async with _serving(lambda base: build_app(base_url=base, seed=SEED)) as base:
        settings = ProviderSettings(
            google_client_id=SANDBOX_CLIENT_ID,
            google_client_secret=SANDBOX_CLIENT_SECRET,
            google_auth_url=f"{base}/o/oauth2/v2/auth",
            google_token_url=f"{base}/token",
            google_revoke_url=f"{base}/revoke",
            google_userinfo_url=f"{base}/v1/userinfo",
            google_api_url=f"{base}/calendar/v3",
            http_timeout_s=TIMEOUT_S,
        )
        world = World("google", base, settings, http, DEMO_EMAIL, DEMO_PASSWORD, {}, DEMO_EMAIL)
        users = await world.call_admin("GET", "users")
        account = next(user for user in users if user["email"] == DEMO_EMAIL)
        world.calendars = {cal["id"]: cal["summary"] for cal in account["calendars"]}
        world.account_id = account["sub"]
        world.remove_grant = lambda: world.call_admin("POST", "grants/revoke", {"email": DEMO_EMAIL})
        yield world


@asynccontextmanager
async def microsoft_world(http: aiohttp.ClientSession) -> AsyncIterator[World]:
    from chronapilot.sandbox.microsoft import build_app
    from chronapilot.sandbox.microsoft.seed import (
        DEMO_EMAIL,
        DEMO_PASSWORD,
        SANDBOX_CLIENT_ID,
        SANDBOX_CLIENT_SECRET,
    )

    async with _serving(
        lambda base: build_app(base_url=base, seed=SEED, redirect_uris=[REDIRECT_URI])
    ) as base:
        settings = ProviderSettings(
            microsoft_client_id=SANDBOX_CLIENT_ID,
            microsoft_client_secret=SANDBOX_CLIENT_SECRET,
            microsoft_login_url=base,
            microsoft_graph_url=f"{base}/v1.0",
            http_timeout_s=TIMEOUT_S,
        )
        world = World("microsoft", base, settings, http, DEMO_EMAIL, DEMO_PASSWORD, {}, None)
        calendars = await world.call_admin("GET", f"users/{DEMO_EMAIL}/calendars")
        world.calendars = {cal["id"]: cal["name"] for cal in calendars}
        world.primary = next(cal["id"] for cal in calendars if cal["isDefaultCalendar"])
        users = await world.call_admin("GET", "users")
        world.account_id = next(user["id"] for user in users if user["email"] == DEMO_EMAIL)
        world.remove_grant = lambda: world.call_admin("POST", "grants/revoke", {"user": DEMO_EMAIL})
        yield world


@asynccontextmanager
async def icloud_world(http: aiohttp.ClientSession) -> AsyncIterator[World]:
    async with RadicaleServer(RadicaleConfig(host=HOST, port=0, auth_delay=0.0)) as server:
        account = await seed_account(server, seed=SEED, anchor=date(2026, 11, 23))
        settings = ProviderSettings(icloud_caldav_url=server.url.rstrip("/"), http_timeout_s=TIMEOUT_S)
        names = {calendar.slug: calendar for calendar in account.dataset.calendars}
        calendars = {
            unquote(url): names[slug].display_name
            for slug, url in account.calendar_urls.items()
            if names[slug].component == "VEVENT"
        }
        world = World(
            "icloud", server.url, settings, http, account.email, account.app_password, calendars, None
        )
        world.account_id = unquote(account.principal_url)
        yield world


@contextmanager
def silent_server() -> Iterator[str]:
    """A URL whose server accepts connections and never answers (a hung provider)."""
    sock = _bound_socket()
    try:
        yield f"http://{HOST}:{sock.getsockname()[1]}"
    finally:
        sock.close()
