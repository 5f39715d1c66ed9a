"""What a CLI command works with: the settings, a clock, and MongoDB and Kafka opened on first
use (a command that needs no broker never waits for one)."""

from __future__ import annotations

import contextlib

from chronapilot.common.bus.producer import EventProducer
from chronapilot.common.clock import Clock, SystemClock
from chronapilot.common.crypto import TokenCipher
from chronapilot.common.runtime import Runtime, open_runtime
from chronapilot.common.settings import Environment, Settings
from chronapilot.common.store import Store
from chronapilot.common.store.repositories import Repositories


class Context:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self._stack = contextlib.AsyncExitStack()
        self._store: Store | None = None
        self._producer: EventProducer | None = None
        self._runtime: Runtime | None = None

    @property
    def live(self) -> bool:
        """Whether new API keys are live keys (``cpk_live_``: production) or test keys."""
        return self.settings.env is Environment.PRODUCTION

    @property
    def budget_s(self) -> float:
        """How long to retry an unreachable MongoDB or Kafka before giving up: an operator at a
        terminal wants an answer, not a service's start-up patience."""
        return min(self.settings.service.startup_timeout_s, max(self.settings.mongo.timeout_s, 5.0))

    def cipher(self) -> TokenCipher:
        return TokenCipher.from_settings(self.settings)

    async def store(self) -> Store:
        if self._store is None:
            self._store = await Store.connect(self.settings.mongo, budget_s=self.budget_s)
            self._stack.push_async_callback(self._store.close)  # indexes: the services create them
        return self._store

    async def repos(self) -> Repositories:
        return Repositories.open(await self.store())

    async def producer(self) -> EventProducer:
        if self._producer is None:
            producer = EventProducer(self.settings.kafka, client_id="chronapilot-cli")
            await producer.start(budget_s=self.budget_s)
            self._producer = producer
            self._stack.push_async_callback(producer.stop)
        return self._producer

    async def runtime(self) -> Runtime:
        """The services' whole runtime (what a connection's story and actions run on), started with
        the CLI's shorter patience for an unreachable MongoDB or Kafka."""
        if self._runtime is None:
            service = self.settings.service.model_copy(update={"startup_timeout_s": self.budget_s})
            settings = self.settings.model_copy(update={"service": service})
            self._runtime = await self._stack.enter_async_context(open_runtime(settings, "cli"))
        return self._runtime

    async def close(self) -> None:
        await self._stack.aclose()
