"""``python -m chronapilot.api``: the public REST API.

``python -m chronapilot.api apps create --name NAME --return-url-prefix URL [URL …]`` creates
an application and prints its API key, once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from pydantic import ValidationError

from chronapilot.api.app import create_app
from chronapilot.common.clock import SystemClock
from chronapilot.common.errors import ChronaPilotError
from chronapilot.common.service import describe_validation_error, run_service
from chronapilot.common.settings import Environment, Settings


async def _create_app_command(args: argparse.Namespace) -> int:
    from chronapilot.common.store import Store, ensure_indexes
    from chronapilot.common.store.applications import Applications
    from chronapilot.common.tenancy import create_application

    settings = Settings()
    store = await Store.connect(settings.mongo, budget_s=settings.service.startup_timeout_s)
    try:
        await ensure_indexes(store)
        application, key = await create_application(
            Applications(store),
            name=args.name,
            return_url_prefixes=args.return_url_prefix,
            live=settings.env is Environment.PRODUCTION,
            clock=SystemClock(),
        )
    finally:
        await store.close()
    if args.json:
        print(json.dumps({"application_id": application.id, "api_key": key}))
    else:
        print(f"application {application.id} ({application.name})")
        print(f"API key (shown once, store it now): {key}")
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        run_service(
            "api",
            create_app,
            lambda settings: settings.service.api_port,
            internal_port=lambda settings: settings.service.api_metrics_port,
        )
        return 0
    parser = argparse.ArgumentParser(prog="python -m chronapilot.api")
    commands = parser.add_subparsers(dest="group", required=True)
    apps = commands.add_parser("apps", help="manage applications").add_subparsers(
        dest="command", required=True
    )
    create = apps.add_parser("create", help="create an application and print its API key")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--return-url-prefix",
        nargs="+",
        required=True,
        metavar="URL",
        help="allowed return_url prefixes (https; http only for localhost)",
    )
    create.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_create_app_command(args))
    except ValidationError as exc:
        print(f"chronapilot.api: configuration error: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    except ChronaPilotError as exc:
        print(f"chronapilot.api: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
