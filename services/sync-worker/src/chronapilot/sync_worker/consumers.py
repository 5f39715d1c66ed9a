"""What the sync worker does with each message it consumes."""

from __future__ import annotations

from chronapilot.common.bus import Envelope, Handler, parse
from chronapilot.common.bus.catalogue import SyncRequested
from chronapilot.common.logging import get_logger
from chronapilot.common.runtime import Runtime

log = get_logger(__name__)


def sync_request_handler(runtime: Runtime) -> Handler:
    async def handle(envelope: Envelope) -> None:
        event = parse(envelope)
        if isinstance(event, SyncRequested):
            log.info("sync.requested", mode=event.mode, reason=event.reason, calendar_id=event.calendar_id)

    return handle
