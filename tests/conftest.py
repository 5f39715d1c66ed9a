"""The one place that starts infrastructure: once per session, on free ports.

Each test gets its own MongoDB database and Kafka topic prefix (``isolated``), so tests never
see each other's data and two test runs on one machine don't collide.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chronapilot.common.bus.admin import ensure_topics
from chronapilot.common.settings import (
    Environment,
    KafkaSettings,
    MongoSettings,
    ServiceSettings,
    Settings,
)
from chronapilot.common.store.client import Store

sys.path.insert(0, str(Path(__file__).parent))

from infrastructure import Infrastructure, session_infrastructure

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    with session_infrastructure() as infrastructure:
        yield infrastructure


class Isolated:
    """Settings (and the matching environment for child processes) private to one test."""

    def __init__(self, infra: Infrastructure, run_dir: Path) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.database = f"t_{suffix}"
        self.topic_prefix = f"t{suffix}"
        self.run_dir = run_dir
        self.infra = infra

    def settings(self, **service: object) -> Settings:
        return Settings(
            env=Environment.TEST,
            run_dir=self.run_dir,
            mongo=MongoSettings(uri=self.infra.mongodb_uri, database=self.database),
            kafka=KafkaSettings(
                bootstrap_servers=self.infra.kafka_bootstrap_servers,
                topic_prefix=self.topic_prefix,
                topic_partitions=3,
                consumer_max_attempts=3,
                consumer_backoff_s=0.05,
            ),
            service=ServiceSettings(startup_timeout_s=20, outbox_lease_s=2.0, **service),  # type: ignore[arg-type]
        )

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a child process using the same database and topics."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONAPILOT_")}
        env.update(
            MONGODB_URI=self.infra.mongodb_uri,
            KAFKA_BOOTSTRAP_SERVERS=self.infra.kafka_bootstrap_servers,
            CHRONAPILOT_ENV="test",
            CHRONAPILOT_RUN_DIR=str(self.run_dir),
            CHRONAPILOT_MONGODB_DATABASE=self.database,
            CHRONAPILOT_KAFKA_TOPIC_PREFIX=self.topic_prefix,
            CHRONAPILOT_KAFKA_TOPIC_PARTITIONS="3",
            CHRONAPILOT_KAFKA_CONSUMER_MAX_ATTEMPTS="3",
            CHRONAPILOT_KAFKA_CONSUMER_BACKOFF_S="0.05",
            CHRONAPILOT_OUTBOX_LEASE_S="2",
            # any free port for the internal listeners (several copies of a service may run)
            CHRONAPILOT_API_METRICS_PORT="0",
            CHRONAPILOT_WEBHOOK_GATEWAY_METRICS_PORT="0",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env


@pytest.fixture
def isolated(infra: Infrastructure, tmp_path: Path) -> Isolated:
    return Isolated(infra, tmp_path)


@pytest.fixture
async def store(isolated: Isolated) -> AsyncIterator[Store]:
    settings = isolated.settings()
    opened = await Store.connect(settings.mongo, budget_s=20)
    try:
        yield opened
    finally:
        await opened.client.drop_database(isolated.database)
        await opened.close()


@pytest.fixture
async def topics(isolated: Isolated) -> list[str]:
    return await ensure_topics(isolated.settings().kafka, budget_s=20)


#: The slowest files, slowest first (seconds per file in a `make test` run on 2 cores). With
#: `--dist loadfile --no-loadscope-reorder` the workers take files in this order, so the long
#: ones start at once and the short ones fill in around them instead of trailing at the end.
SLOW_FILES = (
    "tests/e2e/test_connection_lifecycle.py",  # ~240 s (12 fault scenarios)
    "tests/e2e/test_realtime.py",  # ~200 s
    "tests/e2e/test_token_health.py",  # ~150 s
    "tests/e2e/test_operator_cli.py",  # ~100 s
    "tests/integration/test_event_bus.py",  # ~70 s
    "tests/integration/test_distributions_alone.py",  # ~70 s (nine environments synced, imported)
    "tests/e2e/test_sync_mirror.py",  # ~60 s
    "tests/packaging/test_service_install_sets.py",  # ~45 s: one pip resolution, index reached
    "tests/e2e/test_sync_crash.py",  # ~40 s
    "tests/e2e/test_readme_quickstart.py",  # ~50 s (a whole `make run`)
    "tests/e2e/test_customer_webhooks.py",  # ~50 s
    "tests/integration/test_webhook_dispatcher.py",  # ~40 s
    "tests/e2e/test_realtime_mirror.py",
    "tests/e2e/test_openapi_conformance.py",
    "tests/e2e/test_sync_faults.py",
    "tests/integration/test_service_processes.py",
    "tests/e2e/test_make_run.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: index for index, path in enumerate(SLOW_FILES)}

    def key(item: pytest.Item) -> int:
        path = Path(str(item.path)).resolve().relative_to(REPO).as_posix()
        return rank.get(path, len(SLOW_FILES))

    items.sort(key=key)  # stable: the order inside a file and among the rest is kept
