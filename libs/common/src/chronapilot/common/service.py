"""Running a service process: settings, logging, the aiohttp app (and the internal listener of a
public one), and a clean exit.

Bad configuration or an unreachable dependency ends the process with one clear line on
stderr and a non-zero exit (2: configuration, 1: start-up), never a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import NoReturn

from aiohttp import web
from pydantic import ValidationError

from chronapilot.common.errors import ConfigurationError, StartupError
from chronapilot.common.health import add_internal_listener
from chronapilot.common.logging import configure_logging, get_logger
from chronapilot.common.settings import Settings


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every bad setting (by its environment variable) and why."""
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "settings"
        location = {"uri": "MONGODB_URI", "bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS"}.get(
            location, location
        )
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{location}: {message}")
    return "; ".join(problems)


def run_service(
    name: str,
    create_app: Callable[[Settings], web.Application],
    port: Callable[[Settings], int],
    internal_port: Callable[[Settings], int] | None = None,
) -> None:
    """``python -m chronapilot.<name>``: build, serve until SIGTERM/SIGINT, exit cleanly. A public
    service names its ``internal_port``: ``/metrics``, ``/healthz`` and ``/readyz`` are served
    there too, on the same host."""
    prog = f"chronapilot.{name}"
    try:
        settings = Settings()
    except ValidationError as exc:
        _fail(prog, f"configuration error: {describe_validation_error(exc)}", 2)
    configure_logging(settings.log.log_level, settings.log.log_format, service=name)
    log = get_logger(prog)
    try:
        app = create_app(settings)
        if internal_port is not None:
            add_internal_listener(app, settings.service.host, internal_port(settings))
        log.info(
            "service.starting",
            port=port(settings),
            **({"internal_port": internal_port(settings)} if internal_port is not None else {}),
        )
        web.run_app(
            app,
            host=settings.service.host,
            port=port(settings),
            print=None,
            shutdown_timeout=settings.service.shutdown_timeout_s,
            access_log=logging.getLogger("aiohttp.access"),
            handle_signals=True,
        )
    except ConfigurationError as exc:
        _fail(prog, f"configuration error: {exc}", 2)
    except StartupError as exc:
        _fail(prog, f"start-up failed: {exc}", 1)
    except OSError as exc:
        _fail(
            prog,
            f"start-up failed: cannot listen on {settings.service.host}:{port(settings)}: "
            f"{exc.strerror or exc}",
            1,
        )
    except KeyboardInterrupt:
        pass
    log.info("service.stopped")


def _fail(prog: str, message: str, code: int) -> NoReturn:
    print(f"{prog}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)
