"""From ChronaPilot's internal events to deliveries: the consumer handler.

For one internal message: its public events (:func:`~chronapilot.common.webhooks.public.public_events`,
each carrying the object as the REST API shows it now), and for each, one delivery per enabled
endpoint of the object's application that takes its type. The deliveries are persisted before
the handler returns (so before the message's offset is committed) with a ``source_id`` of the
message id and the public event's index: a message consumed again creates nothing twice. They
are created leased to this process and handed to the :class:`~.sender.Sender` at once, so the
first attempt does not wait for a poll.

Each public event about a connection takes the connection's next ``sequence`` number (shared by
its deliveries to every endpoint); with ``updated_at`` it lets a receiver order what it gets and
drop what is stale.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from chronapilot.common.bus import Envelope, Handler
from chronapilot.common.bus.catalogue import MirrorCalendarsChanged, MirrorEventsChanged
from chronapilot.common.clock import isoformat_z
from chronapilot.common.runtime import Runtime
from chronapilot.common.store import Document
from chronapilot.common.store.webhook_deliveries import new_delivery
from chronapilot.common.webhooks import PublicEvent
from chronapilot.common.webhooks.public import public_events
from chronapilot.webhook_dispatcher.sender import Sender
from chronapilot.webhook_dispatcher.telemetry import CREATED

#: Internal events that carry their application: skipped at once when it has no endpoint.
_MIRROR_TYPES = {MirrorEventsChanged.TYPE, MirrorCalendarsChanged.TYPE}


def fanout_handler(runtime: Runtime, sender: Sender) -> Handler:
    repos = runtime.repos

    async def handle(envelope: Envelope) -> None:
        if envelope.type in _MIRROR_TYPES:
            application_id = envelope.data.get("application_id")
            if isinstance(application_id, str) and not await repos.webhook_endpoints.any_enabled(
                application_id
            ):
                return  # nobody to tell: spare rendering the objects
        told = await public_events(envelope, repos, runtime.connections)
        if not told:
            return
        subscribed: dict[tuple[str, str], list[Document]] = {}
        targets: list[tuple[int, PublicEvent, list[Document]]] = []
        for index, event in enumerate(told):
            key = (event.application_id, event.type)
            if key not in subscribed:
                subscribed[key] = await repos.webhook_endpoints.subscribed(*key)
            if subscribed[key]:
                targets.append((index, event, subscribed[key]))
        if not targets:
            return
        sequences = await _sequences([event for _, event, _ in targets], runtime)
        now = runtime.clock.now()
        lease_until = now + timedelta(seconds=runtime.settings.webhooks.lease_s)
        deliveries: list[Document] = []
        endpoints: dict[str, Document] = {}
        for (index, event, chosen), sequence in zip(targets, sequences, strict=True):
            payload = payload_of(event, sequence)
            for endpoint in chosen:
                endpoints[endpoint["_id"]] = endpoint
                deliveries.append(
                    new_delivery(
                        application_id=event.application_id,
                        endpoint_id=endpoint["_id"],
                        event_type=event.type,
                        connection_id=event.connection_id,
                        payload=payload,
                        source_id=f"{envelope.id}/{index}",
                        now=now,
                        next_attempt_at=lease_until,
                    )
                )
            CREATED.labels(event.type).inc(len(chosen))
        # as many as this process has room for are leased to it and sent at once; the rest are
        # due now, for whichever dispatcher has room (not left to wait out a lease)
        for overflow in deliveries[sender.room :]:
            overflow["next_attempt_at"] = now
        created = await repos.webhook_deliveries.create_many(deliveries)
        sender.submit([d for d in created if d["next_attempt_at"] == lease_until], endpoints)

    return handle


async def _sequences(events: list[PublicEvent], runtime: Runtime) -> list[int]:
    """Each event's sequence number: the next of its connection's (0 without a connection)."""
    counts = Counter(e.connection_id for e in events if e.connection_id)
    next_of = {
        connection_id: await runtime.repos.webhook_sequences.take(connection_id, count)
        for connection_id, count in counts.items()
    }
    numbers: list[int] = []
    for event in events:
        if event.connection_id is None:
            numbers.append(0)
        else:
            numbers.append(next_of[event.connection_id])
            next_of[event.connection_id] += 1
    return numbers


def payload_of(event: PublicEvent, sequence: int) -> dict[str, Any]:
    """The webhook body: ``{type, timestamp, data: {object, previous?, updated_at, sequence}}``."""
    data: dict[str, Any] = {"object": event.object}
    if event.previous is not None:
        data["previous"] = event.previous
    data["updated_at"] = isoformat_z(event.updated_at or event.occurred_at)
    data["sequence"] = sequence
    return {"type": event.type, "timestamp": isoformat_z(event.occurred_at), "data": data}
