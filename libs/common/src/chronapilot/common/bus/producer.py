"""Publishing to Kafka: ``acks=all``, no idempotent producer (the embedded broker has none).

Every message is keyed by connection id, so one connection's events keep their order.
"""

from __future__ import annotations

from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from chronapilot.common.backoff import Backoff, retry_until
from chronapilot.common.bus.envelope import Envelope
from chronapilot.common.errors import BusError, StartupError
from chronapilot.common.logging import get_logger
from chronapilot.common.settings import KafkaSettings

log = get_logger(__name__)


class _Startable(Protocol):
    async def start(self) -> None: ...


async def start_with_budget(component: _Startable, name: str, servers: str, budget_s: float) -> None:
    """``await component.start()``, retried for ``budget_s``; :class:`StartupError` past it."""

    async def start() -> None:
        await component.start()

    def retry(exc: BaseException, delay: float) -> None:
        log.warning(
            "kafka.unreachable", component=name, servers=servers, error=str(exc), retry_in_s=round(delay, 2)
        )

    try:
        await retry_until(
            start,
            deadline_s=budget_s,
            backoff=Backoff(base_s=0.25, cap_s=5.0),
            should_retry=lambda exc: isinstance(exc, KafkaError | OSError),
            on_retry=retry,
        )
    except (KafkaError, OSError) as exc:
        raise StartupError(
            f"cannot reach Kafka at {servers} after {budget_s:g}s: {type(exc).__name__}"
        ) from None


class EventProducer:
    def __init__(self, settings: KafkaSettings, *, client_id: str, linger_ms: int = 2) -> None:
        """``linger_ms``: how long a send waits for others to share its batch (0: a caller that
        waits for every acknowledgement, such as the webhook gateway's request path)."""
        self._servers = settings.bootstrap_servers
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=False,
            linger_ms=linger_ms,
            request_timeout_ms=15000,
        )

    async def start(self, *, budget_s: float) -> None:
        await start_with_budget(self._producer, "producer", self._servers, budget_s)

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, topic: str, envelope: Envelope) -> None:
        await self.publish_many([(topic, envelope)])

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        """Send one message and wait until the broker has it (all in-sync replicas)."""
        try:
            await self._producer.send_and_wait(topic, value, key=key, headers=headers)
        except KafkaError as exc:
            raise BusError(f"publish to {topic} failed: {exc}") from exc

    async def publish_many(self, items: list[tuple[str, Envelope]]) -> None:
        """Publish ``(topic, envelope)`` pairs pipelined, in order; wait until all are stored."""
        try:
            pending = [
                await self._producer.send(
                    topic,
                    envelope.to_bytes(),
                    key=envelope.key,
                    headers=[("type", envelope.type.encode()), ("version", str(envelope.version).encode())],
                )
                for topic, envelope in items
            ]
            for future in pending:
                await future
        except KafkaError as exc:
            raise BusError(f"publish failed: {exc}") from exc

    async def ping(self) -> bool:
        """True when the broker answers a metadata request."""
        try:
            await self._producer.client.fetch_all_metadata()
        except (KafkaError, OSError):
            return False
        return True
