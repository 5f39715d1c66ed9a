"""The parts of one running Google emulator, shared by its handlers through ``request.app[EMULATOR]``."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from chronapilot.sandbox.google.event_writes import EventWriter
from chronapilot.sandbox.google.grants import Authority
from chronapilot.sandbox.google.id_tokens import IdTokenSigner
from chronapilot.sandbox.google.push import Channels
from chronapilot.sandbox.google.store import GoogleStore
from chronapilot.sandbox.shared.clock import SandboxClock
from chronapilot.sandbox.shared.counters import RequestCounters
from chronapilot.sandbox.shared.delivery import NotificationDispatcher
from chronapilot.sandbox.shared.faults import FaultRegistry


@dataclass
class GoogleEmulator:
    """State and services of one emulator instance."""

    base_url: str
    store: GoogleStore
    clock: SandboxClock
    signer: IdTokenSigner
    authority: Authority
    writer: EventWriter
    channels: Channels
    dispatcher: NotificationDispatcher
    faults: FaultRegistry
    counters: RequestCounters

    @property
    def issuer(self) -> str:
        """The OpenID Connect issuer: the emulator's own base URL."""
        return self.base_url


EMULATOR = web.AppKey("google_emulator", GoogleEmulator)
