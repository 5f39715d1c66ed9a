"""``chronapilot apps``: create and list applications (tenants) and see their API keys."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from chronapilot.common.models import ApiKey, Application
from chronapilot.common.tenancy import create_application, key_works
from chronapilot.ops.context import Context
from chronapilot.ops.output import Answer, table, when


def key_state(api_key: ApiKey, now: datetime) -> str:
    """``active``, ``retiring`` (revoked at a time still ahead: a rotation's grace) or ``revoked``."""
    if api_key.revoked_at is None:
        return "active"
    return "retiring" if key_works(api_key, now) else "revoked"


def render_key(api_key: ApiKey, now: datetime) -> dict[str, Any]:
    """An API key as the operator sees it: never its secret (only its first characters)."""
    return {
        "id": api_key.id,
        "prefix": api_key.prefix,
        "status": key_state(api_key, now),
        "created_at": when(api_key.created_at),
        "revoked_at": when(api_key.revoked_at),
    }


def render_application(application: Application, now: datetime) -> dict[str, Any]:
    return {
        "id": application.id,
        "name": application.name,
        "created_at": when(application.created_at),
        "return_url_prefixes": application.return_url_prefixes,
        "api_keys": [render_key(k, now) for k in application.api_keys],
    }


def key_lines(keys: list[dict[str, Any]]) -> list[str]:
    rows = [
        [k["id"], k["prefix"] + "…", k["status"], k["created_at"] or "", k["revoked_at"] or ""] for k in keys
    ]
    return table(rows, ["KEY", "PREFIX", "STATUS", "CREATED", "REVOKED AT"])


async def create(ctx: Context, args: argparse.Namespace) -> Answer:
    repos = await ctx.repos()
    application, key = await create_application(
        repos.applications,
        name=args.name,
        return_url_prefixes=args.return_url_prefix,
        live=ctx.live,
        clock=ctx.clock,
    )
    now = ctx.clock.now()
    rendered = render_application(application, now)
    return Answer(
        {"application_id": application.id, "application": rendered, "api_key": key},
        [
            f"application {application.id} ({application.name}) created",
            f"API key {application.api_keys[0].id} (shown once, store it now): {key}",
        ],
    )


async def list_(ctx: Context, args: argparse.Namespace) -> Answer:
    repos = await ctx.repos()
    now = ctx.clock.now()
    applications = await repos.applications.all(limit=args.limit)
    data = [render_application(a, now) for a in applications]
    lines: list[str] = []
    for app in data:
        working = sum(1 for k in app["api_keys"] if k["status"] != "revoked")
        lines.append(f"{app['id']}  {app['name']}  (created {app['created_at']}, {working} working keys)")
        lines += ["    " + line for line in key_lines(app["api_keys"])]
    return Answer({"object": "list", "data": data}, lines or ["no applications"])


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    apps = commands.add_parser(
        "apps", help="create and list applications (tenants)", description="Applications (tenants)."
    ).add_subparsers(dest="command", required=True, metavar="COMMAND")
    created = apps.add_parser(
        "create",
        parents=[common],
        help="create an application and print its first API key (shown once)",
        description="Create an application with one API key. The key is printed once: store it now "
        "(ChronaPilot keeps only its hash).",
    )
    created.add_argument("--name", required=True, help="the application's name")
    created.add_argument(
        "--return-url-prefix",
        nargs="+",
        required=True,
        metavar="URL",
        help="where consent may send users back (https; http only for localhost)",
    )
    created.set_defaults(run=create)
    listed = apps.add_parser(
        "list",
        parents=[common],
        help="list applications and their API keys (ids and prefixes, never the keys)",
        description="List applications, newest first, with their API keys' ids, prefixes and states "
        "(active, retiring: revoked at a time still ahead, revoked).",
    )
    listed.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listed.set_defaults(run=list_)
