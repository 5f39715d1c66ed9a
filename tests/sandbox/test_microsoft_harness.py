"""Harness for the Microsoft emulator tests (no tests here): a running server, a webhook receiver,
a signed-in client.

Everything here talks HTTP to real servers: the emulator on a free port, a receiver that answers
Graph's validation handshake (correctly or, on purpose, wrongly) and records notifications, and
authlib's OAuth client driving the consent page like a browser.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import httpx
from aiohttp import test_utils, web
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from chronapilot.sandbox.microsoft import build_app
from chronapilot.sandbox.microsoft.seed import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
)
from chronapilot.sandbox.microsoft.state import MicrosoftState, state_key
from chronapilot.sandbox.shared.consent import read_consent_form

REDIRECT_URI = "http://127.0.0.1:9/callback"
SCOPES = "offline_access openid email User.Read Calendars.ReadWrite"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Emulator:
    base_url: str
    state: MicrosoftState
    http: aiohttp.ClientSession

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.base_url}/_admin/{path}", json=body) as response:
            assert response.status < 300, f"{method} {path}: {response.status} {await response.text()}"
            return await response.json() if response.status != 204 else None

    async def graph(
        self, method: str, path: str, token: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        url = path if path.startswith("http") else f"{self.base_url}/v1.0{path}"
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        async with self.http.request(method, url, json=body, headers=all_headers) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None, response.headers

    def oauth_client(self, **kwargs: Any) -> AsyncOAuth2Client:
        options: dict[str, Any] = {
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "redirect_uri": REDIRECT_URI,
            "scope": SCOPES,
            "code_challenge_method": "S256",
            **kwargs,
        }
        return AsyncOAuth2Client(**options)

    async def sign_in(
        self,
        *,
        email: str = DEMO_EMAIL,
        password: str = DEMO_PASSWORD,
        scope: str = SCOPES,
        tenant: str = "common",
    ) -> dict[str, Any]:
        """The whole code flow with PKCE, as a browser and a web app would do it."""
        async with self.oauth_client(scope=scope) as client:
            location, verifier = await self.consent(
                client, "allow", email=email, password=password, tenant=tenant
            )
            token: dict[str, Any] = await client.fetch_token(
                f"{self.base_url}/{tenant}/oauth2/v2.0/token",
                authorization_response=location,
                code_verifier=verifier,
            )
            return token

    async def consent(
        self,
        client: AsyncOAuth2Client,
        decision: str,
        *,
        email: str = DEMO_EMAIL,
        password: str = DEMO_PASSWORD,
        tenant: str = "common",
    ) -> tuple[str, str]:
        """Open the consent page, click `decision`; returns (redirect Location, code verifier)."""
        verifier = generate_token(48)
        url, _ = client.create_authorization_url(
            f"{self.base_url}/{tenant}/oauth2/v2.0/authorize", code_verifier=verifier
        )
        async with httpx.AsyncClient() as browser:
            page = await browser.get(url)
            assert page.status_code == 200, page.text
            form = read_consent_form(page.text)
            action = str(httpx.URL(url).join(form.action))
            body = urlencode(form.submission(decision, email=email, password=password))
            answer = await browser.post(
                action, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"], verifier


@asynccontextmanager
async def running_emulator(**kwargs: Any) -> AsyncIterator[Emulator]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    kwargs.setdefault("seed", 7)
    kwargs.setdefault("redirect_uris", [REDIRECT_URI])
    app = build_app(base_url=base_url, **kwargs)
    server = test_utils.TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Emulator(base_url, app[state_key], http)
    finally:
        await server.close()


@dataclass
class Receiver:
    """A webhook endpoint: answers validation handshakes per `mode`, records notifications."""

    mode: str = "echo"  # echo | wrong-body | status-500 | json | silent
    url: str = ""
    handshakes: list[str] = field(default_factory=list)
    notifications: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    raw_bodies: list[bytes] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    failures_to_serve: int = 0  # answer this many notifications with 503 first

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("validationToken")
        if token is not None:
            self.handshakes.append(token)
            if self.mode == "silent":
                await asyncio.sleep(5)  # on purpose: answers after the emulator gave up waiting
            if self.mode == "wrong-body":
                return web.Response(text=token + "x", content_type="text/plain")
            if self.mode == "status-500":
                return web.Response(status=500)
            if self.mode == "json":
                return web.json_response({"validationToken": token})
            return web.Response(text=token, content_type="text/plain")
        body = await request.read()
        if self.failures_to_serve > 0:
            self.failures_to_serve -= 1
            return web.Response(status=503)
        self.raw_bodies.append(body)
        self.content_types.append(request.content_type)
        await self.notifications.put(json.loads(body))
        return web.Response(status=202)

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.notifications.get(), timeout)


@asynccontextmanager
async def running_receiver(mode: str = "echo") -> AsyncIterator[Receiver]:
    receiver = Receiver(mode)
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receiver.handle)
    port = free_port()
    server = test_utils.TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    receiver.url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await server.close()


# helpers shared by the test modules ---------------------------------------------------------


WINDOW = "startDateTime=2020-01-01T00:00:00Z&endDateTime=2035-01-01T00:00:00Z"


async def calendar_id(emulator: Emulator, token: str, name: str) -> str:
    _, body, _ = await emulator.graph("GET", "/me/calendars", token)
    return next(c["id"] for c in body["value"] if c["name"] == name)


async def full_delta_round(
    emulator: Emulator, token: str, url: str, page: int = 5
) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink; returns (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        status, body, headers = await emulator.graph(
            "GET", url, token, headers={"Prefer": f"odata.maxpagesize={page}"}
        )
        assert status == 200, body
        assert headers["Preference-Applied"] == f"odata.maxpagesize={page}"
        assert len(body["value"]) <= page
        assert not ("@odata.nextLink" in body and "@odata.deltaLink" in body)
        items += body["value"]
        pages += 1
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]
        assert "$skiptoken=" in url


def timed_event(subject: str, day: str = "2026-03-02", tz: str = "Europe/Berlin") -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"{day}T09:00:00", "timeZone": tz},
        "end": {"dateTime": f"{day}T10:00:00", "timeZone": tz},
    }


async def token_error(
    emu: Emulator, form: dict[str, str], tenant: str = "common"
) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emu.base_url}/{tenant}/oauth2/v2.0/token", data=form)
    return response.status_code, response.json()


def assert_aadsts(body: dict[str, Any], error: str, code: int) -> None:
    assert body["error"] == error
    assert body["error_description"].startswith(f"AADSTS{code}:")
    assert body["error_codes"] == [code]
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert body[key]


async def authorization_code(emu: Emulator, **kwargs: Any) -> tuple[str, str]:
    async with emu.oauth_client() as client:
        location, verifier = await emu.consent(client, "allow", **kwargs)
    return parse_qs(urlsplit(location).query)["code"][0], verifier


def code_form(code: str, verifier: str, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "scope": "Calendars.ReadWrite offline_access",
    }


def refresh_form(refresh_token: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "refresh_token": refresh_token,
    }
