"""Composition root of the Google emulator: :func:`build_app`."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

from chronapilot.sandbox.google import admin, calendar_api, discovery, event_page, oauth
from chronapilot.sandbox.google.demo_data import seed_demo_account
from chronapilot.sandbox.google.emulator import EMULATOR, GoogleEmulator
from chronapilot.sandbox.google.errors import OAuthError, api_error_response, injected_failure
from chronapilot.sandbox.google.event_writes import EventWriter
from chronapilot.sandbox.google.grants import Authority
from chronapilot.sandbox.google.id_tokens import IdTokenSigner
from chronapilot.sandbox.google.push import Channels
from chronapilot.sandbox.google.store import Change, GoogleStore, OAuthClient
from chronapilot.sandbox.shared.admin_routes import shared_admin_routes
from chronapilot.sandbox.shared.clock import SandboxClock
from chronapilot.sandbox.shared.counters import RequestCounters, counting_middleware
from chronapilot.sandbox.shared.delivery import NotificationDispatcher
from chronapilot.sandbox.shared.faults import FaultRegistry, fault_middleware
from chronapilot.sandbox.shared.state_file import StateFileSaver, load_state

SANDBOX_CLIENT_ID = "1038712355017-chronapilotsandbox.apps.googleusercontent.com"
SANDBOX_CLIENT_SECRET = "GOCSPX-chronapilot-sandbox-secret"
STATE_FORMAT = 1


def render_injected_failure(request: web.Request, status: int) -> web.StreamResponse:
    """An injected failure in the shape of the route's real errors."""
    if request.path.startswith(calendar_api.API_PREFIX):
        return api_error_response(injected_failure(status))
    error = "temporarily_unavailable" if status in (429, 503) else "server_error"
    return OAuthError(status, error, "Service unavailable, please try again later").response()


def _initial_store(state_file: pathlib.Path | None) -> tuple[GoogleStore, dict[str, Any]]:
    saved = load_state(state_file) if state_file is not None else None
    if saved is None:
        return GoogleStore(), {}
    if saved.get("format") != STATE_FORMAT:
        raise ValueError(f"{state_file}: not a Google emulator state file of format {STATE_FORMAT}")
    return GoogleStore.from_json(saved["store"]), saved.get("channels", {})


def _ensure_client(
    store: GoogleStore, client_id: str, client_secret: str, redirect_uris: Sequence[str]
) -> None:
    client = store.clients.get(client_id)
    if client is None:
        store.clients = {client_id: OAuthClient(client_id, client_secret, redirect_uris=list(redirect_uris))}
    else:
        client.client_secret = client_secret
        client.redirect_uris = sorted(set(client.redirect_uris) | set(redirect_uris))


def build_app(
    *,
    base_url: str,
    access_token_ttl: int = 3600,
    state_file: pathlib.Path | None = None,
    seed: int | None = None,
    client_id: str = SANDBOX_CLIENT_ID,
    client_secret: str = SANDBOX_CLIENT_SECRET,
    redirect_uris: Sequence[str] = (),
    clock: SandboxClock | None = None,
) -> web.Application:
    """The Google emulator as an aiohttp application.

    ``base_url`` is the emulator's own public URL (discovery document, resource URIs, issuer).
    ``seed`` creates the deterministic demo account (ignored when ``state_file`` already holds
    state). ``client_id``/``client_secret``/``redirect_uris`` configure the sandbox OAuth client
    (loopback redirect URIs are always accepted; see the README).
    """
    base_url = base_url.rstrip("/")
    clock = clock or SandboxClock()
    store, saved_channels = _initial_store(state_file)
    fresh = not store.accounts
    _ensure_client(store, client_id, client_secret, redirect_uris)
    signer = IdTokenSigner()
    faults = FaultRegistry()
    counters = RequestCounters()
    dispatcher = NotificationDispatcher(faults, counters)
    emulator = GoogleEmulator(
        base_url=base_url,
        store=store,
        clock=clock,
        signer=signer,
        authority=Authority(store, clock, signer, issuer=base_url, access_token_ttl=access_token_ttl),
        writer=EventWriter(store, clock, base_url),
        channels=Channels(clock, dispatcher, base_url),
        dispatcher=dispatcher,
        faults=faults,
        counters=counters,
    )
    emulator.channels.restore(saved_channels)
    if seed is not None and fresh:
        seed_demo_account(store, emulator.writer, seed)
    app = web.Application(
        middlewares=[
            counting_middleware(counters),
            fault_middleware(faults, render_injected_failure),
            calendar_api.api_errors,
            admin.admin_errors,
        ]
    )
    app[EMULATOR] = emulator
    app.add_routes(discovery.routes)
    app.add_routes(oauth.routes)
    app.add_routes(calendar_api.routes)
    app.add_routes(event_page.routes)
    app.add_routes(admin.routes)
    app.add_routes(shared_admin_routes(admin.ADMIN_PREFIX, faults, counters, clock))
    app.cleanup_ctx.append(_lifecycle(emulator, state_file))
    return app


def _lifecycle(emulator: GoogleEmulator, state_file: pathlib.Path | None) -> Any:
    async def run(app: web.Application) -> AsyncIterator[None]:
        await emulator.dispatcher.start()
        saver = StateFileSaver(state_file, lambda: snapshot(emulator)) if state_file is not None else None

        def on_change(change: Change) -> None:
            emulator.channels.announce(change)
            if saver is not None:
                saver.mark_changed()

        emulator.store.listeners.append(on_change)
        if saver is not None:
            saver.mark_changed()
        yield
        emulator.store.listeners.remove(on_change)
        if saver is not None:
            await saver.flush()
        await emulator.dispatcher.close()

    return run


def snapshot(emulator: GoogleEmulator) -> dict[str, Any]:
    """Everything the state file keeps."""
    return {
        "format": STATE_FORMAT,
        "store": emulator.store.to_json(),
        "channels": emulator.channels.to_json(),
    }
