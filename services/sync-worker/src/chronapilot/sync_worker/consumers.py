"""What the sync worker does with each message it consumes: sync requests."""

from __future__ import annotations

from aiohttp import web

from chronapilot.common.bus import Envelope, Handler, parse
from chronapilot.common.bus.catalogue import SyncRequested
from chronapilot.common.runtime import Runtime
from chronapilot.sync_worker.connection_sync import ConnectionSyncer

SYNCER = web.AppKey("syncer", ConnectionSyncer)


def sync_request_handler(app: web.Application) -> object:
    def make(runtime: Runtime) -> Handler:
        async def handle(envelope: Envelope) -> None:
            event = parse(envelope)
            if isinstance(event, SyncRequested):
                await app[SYNCER].handle(envelope.connection_id, event)

        return handle

    return make
