"""Composition root of the Microsoft emulator: `build_app(...)` wires state, routes, middlewares."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from chronapilot.sandbox.shared.clock import SandboxClock
from chronapilot.sandbox.shared.counters import RequestCounters, counting_middleware
from chronapilot.sandbox.shared.delivery import NotificationDispatcher
from chronapilot.sandbox.shared.faults import FaultRegistry, fault_middleware
from chronapilot.sandbox.shared.state_file import StateFileSaver, load_state

from . import admin, context, discovery, graph, identity, subscriptions, throttling, views
from .delta import DeltaEngine
from .errors import render_fault
from .grants import Identity
from .notifications import notify_change, watch_subscriptions
from .seed import register_sandbox_app, seed_demo
from .state import MicrosoftState, Settings, state_key
from .store import Store

SANDBOX_TENANT_ID = "4f6d2c8e-1b3a-4e5f-9a7c-2d8b6e0f1a3c"


def build_app(
    *,
    base_url: str,
    access_token_ttl: int = 3600,
    state_file: pathlib.Path | None = None,
    seed: int | None = None,
    max_subscription_minutes: int = 10080,
    redirect_uris: Sequence[str] | None = None,
    clock: SandboxClock | None = None,
) -> web.Application:
    """The Microsoft emulator (identity platform v2 + a Graph subset) as an aiohttp app.

    `base_url` is where clients reach it (links, discovery); `seed` adds the demo account;
    `state_file` keeps state across restarts (loaded if present, saved after changes);
    `redirect_uris` replaces the sandbox app's default redirect URIs.
    """
    clock = clock or SandboxClock()
    faults = FaultRegistry()
    counters = RequestCounters()
    state = MicrosoftState(
        base_url=base_url.rstrip("/"),
        store=Store(seed),
        identity=Identity(SANDBOX_TENANT_ID, access_token_ttl),
        clock=clock,
        faults=faults,
        counters=counters,
        dispatcher=NotificationDispatcher(
            faults, counters, attempts=4, backoff_seconds=0.2, reorder_hold_seconds=3.0
        ),
        settings=Settings(max_subscription_seconds=max_subscription_minutes * 60.0),
        tenant_id=SANDBOX_TENANT_ID,
    )
    state.store.now = state.now
    saved = load_state(state_file) if state_file is not None else None
    if saved is not None:
        state.restore(saved)
    else:
        register_sandbox_app(state, list(redirect_uris) if redirect_uris is not None else None)
        if seed is not None:
            seed_demo(state)
    if state_file is not None:
        state.saver = StateFileSaver(state_file, state.snapshot)
    state.store.listeners.append(lambda change: notify_change(state, change))

    app = web.Application(
        middlewares=[
            counting_middleware(counters),
            fault_middleware(faults, render_fault),
            context.graph_failures,
            context.bearer_auth,
            throttling.mailbox_limits,
        ]
    )
    app[state_key] = state
    app[views.delta_key] = DeltaEngine(state)
    app[throttling.limits_key] = throttling.MailboxLimits()
    app.add_routes(admin.routes(state))
    app.add_routes(discovery.routes())
    app.add_routes(identity.routes())
    app.add_routes(graph.routes())
    app.add_routes(views.routes())
    app.add_routes(subscriptions.routes())
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[state_key]
    await state.dispatcher.start()
    watcher = asyncio.create_task(watch_subscriptions(state))
    if state.saver is not None and not state.saver.path.exists():
        state.changed()  # write the fresh (seeded) state now, so a restart finds the same data
    yield
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    await state.dispatcher.close()
    if state.saver is not None:
        await state.saver.flush()
