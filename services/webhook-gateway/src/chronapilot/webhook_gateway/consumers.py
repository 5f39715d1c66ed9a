"""What the gateway does with the events it consumes (``connections.v1``, ``subscriptions.v1``):
hand them to the subscription lifecycle. Handlers are idempotent: each only marks
subscriptions due; the scheduler does the provider work."""

from __future__ import annotations

from chronapilot.common.bus import Envelope, Handler
from chronapilot.common.bus.catalogue import (
    ConnectionActivated,
    ConnectionDisconnected,
    ConnectionStatusChanged,
    SubscriptionLifecycleNotified,
    UnknownEvent,
    parse,
)
from chronapilot.common.logging import get_logger
from chronapilot.common.models import ConnectionStatus
from chronapilot.webhook_gateway.subscriptions import SubscriptionKeeper

log = get_logger(__name__)


def lifecycle_handler(keeper: SubscriptionKeeper) -> Handler:
    async def handle(envelope: Envelope) -> None:
        try:
            event = parse(envelope)
        except UnknownEvent:
            log.debug("event.ignored", type=envelope.type)
            return
        connection_id = envelope.connection_id
        if isinstance(event, ConnectionActivated):
            await keeper.cover(connection_id)
        elif isinstance(event, ConnectionStatusChanged):
            if event.status == ConnectionStatus.ACTIVE and event.previous_status != ConnectionStatus.ACTIVE:
                await keeper.cover(connection_id)
        elif isinstance(event, ConnectionDisconnected):
            await keeper.release(connection_id)
        elif isinstance(event, SubscriptionLifecycleNotified):
            await keeper.lifecycle_notified(event)

    return handle
