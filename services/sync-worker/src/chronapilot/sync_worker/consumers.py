"""What the sync worker does with each message it consumes: sync requests."""

from __future__ import annotations

from chronapilot.common.bus import Envelope, Handler, parse
from chronapilot.common.bus.catalogue import SyncRequested
from chronapilot.common.runtime import Runtime
from chronapilot.sync_worker.connection_sync import ConnectionSyncer


def sync_request_handler(runtime: Runtime) -> Handler:
    syncer = ConnectionSyncer(runtime, runtime.providers, runtime.tokens)

    async def handle(envelope: Envelope) -> None:
        event = parse(envelope)
        if isinstance(event, SyncRequested):
            await syncer.handle(envelope.connection_id, event)

    return handle
