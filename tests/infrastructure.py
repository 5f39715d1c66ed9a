"""Where the test suite's Kafka and MongoDB come from, started once per session.

1. ``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URI`` set: use them, start nothing.
2. Else, when a Docker engine answers: testcontainers (Apache Kafka, a MongoDB replica set).
3. Else: the embedded servers (Tansu, SecantusDB) as processes on free ports, with
   temporary storage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from chronapilot.devstack.embedded import start_embedded
from chronapilot.devstack.processes import free_port


@dataclass(frozen=True)
class Infrastructure:
    kafka_bootstrap_servers: str
    mongodb_uri: str
    kind: str


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@contextmanager
def _containers() -> Iterator[Infrastructure]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    with ExitStack() as stack:
        kafka = stack.enter_context(KafkaContainer("apache/kafka:3.9.0").with_kraft())
        mongo = MongoDbContainer("mongo:7.0").with_command("--replSet rs0 --bind_ip_all")
        mongo.username = mongo.password = None  # type: ignore[assignment]
        stack.enter_context(mongo)
        mongo.exec(
            [
                "mongosh",
                "--quiet",
                "--eval",
                "rs.initiate({_id:'rs0',members:[{_id:0,host:'localhost:27017'}]})",
            ]
        )
        host, port = mongo.get_container_host_ip(), mongo.get_exposed_port(27017)
        yield Infrastructure(
            kafka_bootstrap_servers=kafka.get_bootstrap_server(),
            mongodb_uri=f"mongodb://{host}:{port}/?directConnection=true",
            kind="testcontainers",
        )


@contextmanager
def session_infrastructure() -> Iterator[Infrastructure]:
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URI")
    if kafka and mongo:
        yield Infrastructure(kafka, mongo, "external")
        return
    if docker_engine_answers():
        with _containers() as infra:
            yield infra
        return
    embedded = start_embedded(
        host="127.0.0.1",
        kafka_port=free_port(),
        mongodb_port=free_port(),
        mongodb_storage=None,
        log_dir=None,
        existing_kafka=kafka,
        existing_mongodb=mongo,
        test_commands=True,  # failpoints (configureFailPoint) for the store's timeout test
    )
    try:
        assert embedded.kafka_bootstrap_servers and embedded.mongodb_uri
        yield Infrastructure(embedded.kafka_bootstrap_servers, embedded.mongodb_uri, "embedded")
    finally:
        embedded.stop()
