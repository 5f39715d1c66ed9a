"""Test harness for the Google emulator, and generic pieces any emulator test can use.

:func:`serve_app` starts an app built for its own base URL on a free port;
:class:`WebhookReceiver` is an HTTP server that records every request (headers and body) and
answers with a chosen status, optionally holding answers until the test opens a gate;
:class:`GoogleSandbox` is a running Google emulator plus a client for its admin API, its
Calendar API and its consent page (driven like a browser, with authlib's OAuth client).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
from aiohttp import web
from authlib.integrations.httpx_client import AsyncOAuth2Client

from chronapilot.sandbox.google import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    build_app,
)
from chronapilot.sandbox.google.emulator import EMULATOR, GoogleEmulator
from chronapilot.sandbox.shared.consent import read_consent_form

GOOGLE_REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"
PRIMARY = f"/calendars/{quote(DEMO_EMAIL)}/events"
GOOGLE_SCOPES = "openid email https://www.googleapis.com/auth/calendar"


@dataclass
class RunningServer:
    """An app served on 127.0.0.1 at ``base_url``."""

    base_url: str
    app: web.Application
    runner: web.AppRunner


async def serve_app(build: Callable[[str], web.Application]) -> RunningServer:
    """Bind a free port, build the app for that base URL, serve it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = build(base_url)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return RunningServer(base_url, app, runner)


@dataclass
class ReceivedRequest:
    """One request the webhook receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """Records requests; answers ``status`` once ``gate`` (if any) is set."""

    url: str = ""
    status: int = 200
    gate: asyncio.Event | None = None
    received: list[ReceivedRequest] = field(default_factory=list)
    _queue: asyncio.Queue[ReceivedRequest] = field(default_factory=asyncio.Queue)

    async def handle(self, request: web.Request) -> web.Response:
        received = ReceivedRequest(request.method, request.path, dict(request.headers), await request.read())
        self.received.append(received)
        self._queue.put_nowait(received)
        if self.gate is not None:
            await self.gate.wait()
        return web.Response(status=self.status)

    async def next(self, timeout: float = 5.0) -> ReceivedRequest:
        """The next request not yet taken (waits for it)."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    def pending(self) -> int:
        """Requests received but not yet taken with :meth:`next`."""
        return self._queue.qsize()


async def start_webhook_receiver() -> tuple[WebhookReceiver, RunningServer]:
    """A receiver listening at ``receiver.url``; clean it up with ``server.runner.cleanup()``."""
    receiver = WebhookReceiver()

    def build(base_url: str) -> web.Application:
        receiver.url = f"{base_url}/hooks/notify"
        app = web.Application()
        app.router.add_post("/hooks/notify", receiver.handle)
        return app

    return receiver, await serve_app(build)


async def start_google(**options: Any) -> tuple[GoogleSandbox, RunningServer]:
    """A Google emulator (``build_app(**options)``, seed 7 by default) and an HTTP session.

    Close ``sandbox.http`` and clean up ``server.runner`` when done.
    """
    options.setdefault("seed", 7)
    server = await serve_app(lambda base_url: build_app(base_url=base_url, **options))
    return GoogleSandbox(server.base_url, server.app, aiohttp.ClientSession()), server


@dataclass
class ApiAnswer:
    """Status, parsed JSON body (None if empty) and headers of an API call."""

    status: int
    body: Any
    headers: Any


@dataclass
class GoogleSandbox:
    """A running Google emulator and the ways a test talks to it."""

    base_url: str
    app: web.Application
    http: aiohttp.ClientSession

    @property
    def emulator(self) -> GoogleEmulator:
        return self.app[EMULATOR]

    async def admin(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        async with self.http.request(method, f"{self.base_url}/_admin/{path}", json=body) as response:
            text = await response.text()
            if expect is not None:
                assert response.status == expect, f"{method} {path}: {response.status} {text}"
            else:
                assert response.status < 300, f"{method} {path}: {response.status} {text}"
            return json.loads(text) if text else None

    async def api(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiAnswer:
        all_headers = {"Authorization": f"Bearer {token}"} if token else {}
        all_headers.update(headers or {})
        url = f"{self.base_url}/calendar/v3{path}"
        async with self.http.request(method, url, json=body, params=params, headers=all_headers) as response:
            text = await response.text()
            return ApiAnswer(response.status, json.loads(text) if text else None, response.headers)

    def oauth_client(self, **kwargs: Any) -> AsyncOAuth2Client:
        options: dict[str, Any] = {
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "redirect_uri": GOOGLE_REDIRECT_URI,
            "scope": GOOGLE_SCOPES,
            "code_challenge_method": "S256",
            **kwargs,
        }
        return AsyncOAuth2Client(**options)

    async def consent(
        self,
        authorization_url: str,
        *,
        decision: str = "allow",
        email: str = DEMO_EMAIL,
        password: str = DEMO_PASSWORD,
        untick: tuple[str, ...] = (),
    ) -> dict[str, str]:
        """Open the consent page like a browser, submit it, return the redirect's query."""
        async with self.http.get(authorization_url, allow_redirects=False) as page:
            assert page.status == 200, await page.text()
            form = read_consent_form(await page.text())
        body = form.submission(decision, email=email, password=password, untick=untick)
        action = f"{self.base_url}{form.action}"
        async with self.http.post(action, data=body, allow_redirects=False) as answer:
            assert answer.status == 302, await answer.text()
            location = answer.headers["Location"]
        assert location.startswith(GOOGLE_REDIRECT_URI)
        return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}

    async def sign_in(self, **authorize_params: str) -> dict[str, Any]:
        """The whole code flow with PKCE through authlib; the token response."""
        async with self.oauth_client() as client:
            verifier = "v" * 20 + "PKCE-verifier-for-the-google-sandbox-tests"
            params = {"access_type": "offline", **authorize_params}
            url, state = client.create_authorization_url(
                f"{self.base_url}/o/oauth2/v2/auth", code_verifier=verifier, **params
            )
            answer = await self.consent(url)
            assert answer["state"] == state
            token: dict[str, Any] = await client.fetch_token(
                f"{self.base_url}/token", code=answer["code"], code_verifier=verifier
            )
            return token

    async def drain(self) -> None:
        await self.admin("POST", "notifications/drain")


async def list_all(
    google: GoogleSandbox, token: str, path: str = PRIMARY, **params: str
) -> tuple[list[Any], str]:
    """Every page of events.list; the items and the nextSyncToken."""
    items: list[Any] = []
    query = dict(params)
    while True:
        answer = await google.api("GET", path, token, params=query)
        assert answer.status == 200, answer.body
        items += answer.body["items"]
        if "nextPageToken" not in answer.body:
            return items, answer.body.get("nextSyncToken", "")
        assert "nextSyncToken" not in answer.body
        query["pageToken"] = answer.body["nextPageToken"]


def timed(local: str, zone: str = "Europe/Berlin") -> dict[str, str]:
    return {"dateTime": local, "timeZone": zone}
