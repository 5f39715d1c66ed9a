"""``make run``: the whole of ChronaPilot on one machine.

Starts, in order: the embedded Kafka-protocol broker and MongoDB-protocol server (unless
``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URI`` point elsewhere), the provider sandbox (for
every provider without real credentials configured), and the five services; waits until
every ``/readyz`` answers; writes ``<run dir>/demo.env``; prints the URLs. SIGINT or SIGTERM
stops everything in reverse order, leaving no process behind.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from chronapilot.common.settings import Settings
from chronapilot.devstack.embedded import Embedded, start_embedded
from chronapilot.devstack.processes import Child, die_with_parent

#: The banner's name column: the longest process name (``webhook-dispatcher``) and a space.
BANNER_WIDTH = 18

SERVICES: dict[str, str] = {
    "api": "chronapilot.api",
    "webhook-gateway": "chronapilot.webhook_gateway",
    "sync-worker": "chronapilot.sync_worker",
    "token-refresher": "chronapilot.token_refresher",
    "webhook-dispatcher": "chronapilot.webhook_dispatcher",
    "ops": "chronapilot.ops",
}


class DevstackSettings(BaseSettings):
    """Settings of ``make run`` itself (the services read theirs from :class:`Settings`)."""

    model_config = SettingsConfigDict(env_prefix="CHRONAPILOT_", extra="ignore")

    embedded_kafka_port: int = Field(default=9092, description="Port of the embedded broker.")
    embedded_mongodb_port: int = Field(default=27017, description="Port of the embedded MongoDB.")
    sandbox: bool = Field(
        default=True,
        description="Start the provider sandbox for providers without real credentials.",
    )
    sandbox_google_port: int = Field(default=8090, description="Google emulator port.")
    sandbox_microsoft_port: int = Field(default=8091, description="Microsoft emulator port.")
    sandbox_radicale_port: int = Field(default=5232, description="Radicale (iCloud stand-in) port.")
    ready_timeout_s: float = Field(default=60.0, description="How long to wait for every /readyz.")


@dataclass
class Stack:
    settings: Settings
    dev: DevstackSettings
    run_dir: Path
    embedded: Embedded | None = None
    sandbox: Child | None = None
    services: dict[str, Child] = field(default_factory=dict)
    service_env: dict[str, str] = field(default_factory=dict)
    sandbox_env: dict[str, str] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    def ports(self) -> dict[str, int]:
        service = self.settings.service
        return {
            "api": service.api_port,
            "webhook-gateway": service.webhook_gateway_port,
            "sync-worker": service.sync_worker_port,
            "token-refresher": service.token_refresher_port,
            "webhook-dispatcher": service.webhook_dispatcher_port,
            "ops": service.ops_port,
        }

    def internal_ports(self) -> dict[str, int]:
        """Where each service serves ``/metrics`` (the public API and gateway: their internal
        listener; the workers: their own port)."""
        service = self.settings.service
        return {
            **self.ports(),
            "api": service.api_metrics_port,
            "webhook-gateway": service.webhook_gateway_metrics_port,
        }

    # -- start ----------------------------------------------------------------------------

    def start(self) -> None:
        host = self.settings.service.host
        self.run_dir.mkdir(parents=True, exist_ok=True)
        say(f"starting infrastructure (logs in {self.log_dir})")
        self.embedded = start_embedded(
            host=host,
            kafka_port=self.dev.embedded_kafka_port,
            mongodb_port=self.dev.embedded_mongodb_port,
            mongodb_storage=self.run_dir / "mongodb",
            log_dir=self.log_dir,
            existing_kafka=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
            existing_mongodb=os.environ.get("MONGODB_URI"),
        )
        self._start_sandbox()
        self.service_env = {
            **os.environ,
            **self.sandbox_env,
            "KAFKA_BOOTSTRAP_SERVERS": str(self.embedded.kafka_bootstrap_servers),
            "MONGODB_URI": str(self.embedded.mongodb_uri),
            "CHRONAPILOT_RUN_DIR": str(self.run_dir.resolve()),
            "PYTHONUNBUFFERED": "1",
        }
        for name, module in SERVICES.items():
            self.services[name] = Child.start(
                name,
                [sys.executable, "-m", module],
                env=self.service_env,
                log_path=self.log_dir / f"{name}.log",
            )
        self._wait_ready()

    def _sandbox_providers(self) -> list[str]:
        if not self.dev.sandbox:
            return []
        missing = []
        if not os.environ.get("CHRONAPILOT_GOOGLE_CLIENT_ID"):
            missing.append("google")
        if not os.environ.get("CHRONAPILOT_MICROSOFT_CLIENT_ID"):
            missing.append("microsoft")
        if not os.environ.get("CHRONAPILOT_ICLOUD_CALDAV_URL"):
            missing.append("icloud")
        return missing

    def _start_sandbox(self) -> None:
        providers = self._sandbox_providers()
        if not providers:
            return
        env_file = self.run_dir / "sandbox.env"
        env_file.unlink(missing_ok=True)
        say(f"starting the provider sandbox for {', '.join(providers)}")
        self.sandbox = Child.start(
            "sandbox",
            [
                sys.executable,
                "-m",
                "chronapilot.sandbox",
                "--host",
                self.settings.service.host,
                "--google-port",
                str(self.dev.sandbox_google_port),
                "--microsoft-port",
                str(self.dev.sandbox_microsoft_port),
                "--radicale-port",
                str(self.dev.sandbox_radicale_port),
                "--data-dir",
                str(self.run_dir / "sandbox"),
                "--state-file-dir",
                str(self.run_dir / "sandbox"),
                "--providers",
                ",".join(providers),
                "--write-env",
                str(env_file),
            ],
            log_path=self.log_dir / "sandbox.log",
        )
        deadline = time.monotonic() + self.dev.ready_timeout_s
        while not env_file.exists():
            if not self.sandbox.alive():
                raise RuntimeError(f"the sandbox exited:\n{self.sandbox.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError("the sandbox did not become ready")
            time.sleep(0.1)
        self.sandbox_env = read_env_file(env_file)

    def _wait_ready(self) -> None:
        host = self.settings.service.host
        deadline = time.monotonic() + self.dev.ready_timeout_s
        pending = {
            (name, port): name
            for ports in (self.ports(), self.internal_ports())
            for name, port in ports.items()
        }
        while pending:
            for name, port in list(pending):
                child = self.services[name]
                if not child.alive():
                    raise RuntimeError(f"{name} exited with code {child.process.returncode}:\n{child.tail()}")
                if ready(f"http://{host}:{port}/readyz"):
                    del pending[name, port]
            if pending and time.monotonic() > deadline:
                raise TimeoutError(
                    f"not ready after {self.dev.ready_timeout_s:g}s: "
                    f"{', '.join(sorted(set(pending.values())))} (see {self.log_dir})"
                )
            time.sleep(0.1)

    # -- describe -------------------------------------------------------------------------

    def urls(self) -> dict[str, str]:
        host = self.settings.service.host
        return {name: f"http://{host}:{port}" for name, port in self.ports().items()}

    def metrics_urls(self) -> dict[str, str]:
        host = self.settings.service.host
        return {name: f"http://{host}:{port}/metrics" for name, port in self.internal_ports().items()}

    def write_demo_env(self, extra: dict[str, str] | None = None) -> Path:
        urls = self.urls()
        values = {
            "CHRONAPILOT_API_URL": urls["api"],
            "CHRONAPILOT_WEBHOOK_GATEWAY_URL": urls["webhook-gateway"],
            "CHRONAPILOT_SYNC_WORKER_URL": urls["sync-worker"],
            "CHRONAPILOT_TOKEN_REFRESHER_URL": urls["token-refresher"],
            "CHRONAPILOT_WEBHOOK_DISPATCHER_URL": urls["webhook-dispatcher"],
            "CHRONAPILOT_OPS_URL": urls["ops"],
            "KAFKA_BOOTSTRAP_SERVERS": self.service_env["KAFKA_BOOTSTRAP_SERVERS"],
            "MONGODB_URI": self.service_env["MONGODB_URI"],
            **self.sandbox_env,
            **(extra or {}),
        }
        path = self.run_dir / "demo.env"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            "# Written by `make run`. Demo credentials for the local stack only.\n"
            + "".join(f"{key}={value}\n" for key, value in values.items())
        )
        tmp.chmod(0o600)
        tmp.replace(path)
        return path

    # -- stop -----------------------------------------------------------------------------

    def stop(self) -> None:
        for child in reversed(list(self.services.values())):
            child.stop(self.settings.service.shutdown_timeout_s + 5)
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.embedded is not None:
            self.embedded.stop()

    def dead_child(self) -> Child | None:
        children = [*self.services.values(), *([self.sandbox] if self.sandbox else [])]
        children += self.embedded.children if self.embedded else []
        return next((child for child in children if not child.alive()), None)


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def try_commands(demo_env: Path) -> list[str]:
    """The banner's first commands, ready to paste into bash: the key is expanded by the shell
    (double quotes) from the sourced demo.env, never printed."""
    shown = demo_env.relative_to(Path.cwd()) if demo_env.is_relative_to(Path.cwd()) else demo_env
    return [
        f"source {shlex.quote(str(shown))}",
        'curl -s -H "Authorization: Bearer $CHRONAPILOT_DEMO_API_KEY" "$CHRONAPILOT_API_URL/v1/connections"',
    ]


def say(message: str) -> None:
    print(f"chronapilot: {message}", flush=True)


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def run() -> int:
    """Run the stack until SIGINT/SIGTERM; the exit code of ``make run``."""
    die_with_parent()  # if `make` is killed, we are told too
    settings = Settings()
    stack = Stack(settings=settings, dev=DevstackSettings(), run_dir=settings.run_dir)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    started = time.monotonic()
    try:
        stack.start()
        from chronapilot.devstack.demo import create_demo_data

        demo_env = stack.write_demo_env(create_demo_data(stack))
        say(f"ready in {time.monotonic() - started:.1f}s")
        for name, url in stack.urls().items():
            say(f"  {name:<{BANNER_WIDTH}} {url}")
        say(f"  {'API reference':<{BANNER_WIDTH}} {stack.urls()['api']}/docs")
        say(f"  {'ops console':<{BANNER_WIDTH}} {stack.urls()['ops']}/")
        say("metrics (Prometheus, internal ports only):")
        for name, url in stack.metrics_urls().items():
            say(f"  {name:<{BANNER_WIDTH}} {url}")
        say(f"demo credentials in {demo_env}; in another terminal, try:")
        for line in try_commands(demo_env):
            say(f"  {line}")
        say("stop with Ctrl-C")
        while (dead := stack.dead_child()) is None:
            time.sleep(0.5)
        say(f"{dead.name} exited unexpectedly (code {dead.process.returncode}); stopping")
        print(dead.tail(), file=sys.stderr)
        return 1
    except _Stop as stop:
        say(f"{stop}: stopping")
        return 0
    except (RuntimeError, TimeoutError, OSError) as exc:
        say(f"failed: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        say("stopped")
