"""Topics are created at start by every service (creating an existing topic is a no-op)."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from chronapilot.common.bus.producer import start_with_budget
from chronapilot.common.bus.topics import Topic, topic_name
from chronapilot.common.errors import StartupError
from chronapilot.common.settings import KafkaSettings


async def ensure_topics(settings: KafkaSettings, *, budget_s: float) -> list[str]:
    """Create every topic of :class:`Topic` that is missing; return all their names."""
    names = [topic_name(settings.topic_prefix, topic) for topic in Topic]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="chronapilot-admin")
    await start_with_budget(admin, "admin", settings.bootstrap_servers, budget_s)
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, settings.topic_partitions, settings.replication_factor)
            for name in names
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process was first
                await admin.create_topics(missing)
    except KafkaError as exc:
        raise StartupError(f"cannot create Kafka topics: {exc}") from None
    finally:
        await admin.close()
    return names
