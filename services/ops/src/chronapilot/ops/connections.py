"""``chronapilot connections inspect|resync|teardown``: one connection's story and the operator's
actions on it — the same functions as the ops console's connection page
(:mod:`chronapilot.ops.story`, :mod:`chronapilot.ops.actions`)."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import datetime
from typing import Any

from chronapilot.common.errors import NotFound
from chronapilot.ops.actions import ActionResult, force_resync, retry_teardown
from chronapilot.ops.context import Context
from chronapilot.ops.output import Answer, table, when
from chronapilot.ops.story import ConnectionStory, connection_story, find_connections


def _plain(value: Any) -> Any:
    """``value`` with every datetime as the API writes it (JSON-ready)."""
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _story_data(story: ConnectionStory) -> dict[str, Any]:
    connection = dict(story.connection)
    connection["id"] = connection.pop("_id")
    history = [{key: value for key, value in entry.items() if key != "_id"} for entry in story.history]
    data: dict[str, Any] = _plain(
        {
            "connection": connection,
            "history": history,
            "calendars": story.calendars,
            "subscriptions": story.subscriptions,
            "token_refresh": story.token,
            "credentials": story.credentials,
            "teardown": story.teardown,
            "teardown_incomplete": story.teardown_incomplete,
            "last_errors": [dataclasses.asdict(error) for error in story.last_errors],
        }
    )
    return data


def _story_lines(data: dict[str, Any]) -> list[str]:
    c = data["connection"]
    error = c.get("error") or {}
    lines = [
        f"{c['id']}  {c['provider']}  {c.get('email') or '-'}",
        f"  status: {c['status']}" + (f" ({error.get('code')}: {error.get('message')})" if error else ""),
        f"  sync mode: {c.get('sync_mode') or '-'}   last synced: {c.get('last_synced_at') or 'never'}",
        f"  application: {c.get('application_id')}   user: {c.get('user_id')}",
    ]
    token = data["token_refresh"] or {}
    lines.append(
        f"  token refresh: last {token.get('last_at') or 'never'}, next {token.get('next_at') or '-'}, "
        f"failures {token.get('consecutive_failures', 0)}"
    )
    if data["teardown_incomplete"]:
        lines.append("  teardown: unfinished (`chronapilot connections teardown` continues it)")
    lines += ["", "history (newest first):"]
    lines += table(
        [
            [
                str(h.get("at")),
                str(h.get("status")),
                str(h.get("sync_mode") or "-"),
                str(h.get("code") or "-"),
            ]
            for h in data["history"]
        ]
        or [["-", "-", "-", "-"]],
        ["at", "status", "sync_mode", "code"],
    )
    lines += ["", "calendars:"]
    lines += table(
        [
            [
                str(k["id"]),
                str(k.get("name") or "-"),
                str(k["sync_status"]),
                str(k.get("last_synced_at") or "never"),
            ]
            for k in data["calendars"]
        ]
        or [["-", "-", "-", "-"]],
        ["id", "name", "sync", "last_synced_at"],
    )
    lines += ["", "webhook subscriptions:"]
    lines += table(
        [
            [str(s["id"]), str(s.get("status")), str(s.get("expires_at") or "-"), str(s.get("attempts", 0))]
            for s in data["subscriptions"]
        ]
        or [["-", "-", "-", "-"]],
        ["id", "status", "expires_at", "attempts"],
    )
    if data["last_errors"]:
        lines += ["", "last errors:"]
        lines += [
            f"  {e['source']}: {e['code']}: {e['message']} ({e['at'] or '-'})" for e in data["last_errors"]
        ]
    return lines


async def inspect(ctx: Context, args: argparse.Namespace) -> Answer:
    runtime = await ctx.runtime()
    matches = await find_connections(runtime, args.connection)
    if not matches:
        raise NotFound(f"no connection has the id or account e-mail {args.connection!r}")
    if len(matches) > 1:
        rows = [
            [str(m["_id"]), str(m.get("provider")), str(m.get("status")), str(m.get("application_id"))]
            for m in matches
        ]
        data = {
            "matches": [{"id": r[0], "provider": r[1], "status": r[2], "application_id": r[3]} for r in rows]
        }
        lines = [f"{len(rows)} connections hold {args.connection}; inspect one by id:"]
        return Answer(data, lines + table(rows, ["id", "provider", "status", "application_id"]))
    story = await connection_story(runtime, str(matches[0]["_id"]))
    if story is None:  # disappeared between the search and the read
        raise NotFound(f"no connection has the id or account e-mail {args.connection!r}")
    data = _story_data(story)
    return Answer(data, _story_lines(data))


def _acted(connection_id: str, result: ActionResult) -> Answer:
    data = {
        "connection_id": connection_id,
        "done": result.done,
        "outcome": result.outcome,
        "message": result.message,
    }
    if result.outcome == "not_found":
        raise NotFound(f"no connection {connection_id!r}")
    return Answer(data, [result.message], ok=result.done)


async def resync(ctx: Context, args: argparse.Namespace) -> Answer:
    return _acted(args.connection_id, await force_resync(await ctx.runtime(), args.connection_id))


async def teardown(ctx: Context, args: argparse.Namespace) -> Answer:
    return _acted(args.connection_id, await retry_teardown(await ctx.runtime(), args.connection_id))


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    connections = commands.add_parser(
        "connections",
        help="one connection: its story, a resync, its teardown",
        description="Inspect one connection and act on it (the ops console's connection page).",
    ).add_subparsers(dest="command", required=True, metavar="COMMAND")
    shown = connections.add_parser(
        "inspect",
        parents=[common],
        help="status and history, calendars, subscriptions, token telemetry, last errors",
        description="Find a connection by id or by account e-mail (any case) and print its story: "
        "status and history, calendars with their sync state, webhook subscriptions, token "
        "telemetry, last errors, teardown. Never prints a token or a secret.",
    )
    shown.add_argument("connection", metavar="ID_OR_EMAIL")
    shown.set_defaults(run=inspect)
    resynced = connections.add_parser(
        "resync",
        parents=[common],
        help="request a full sync now (at most once a minute)",
        description="Request a full sync of every calendar of the connection, as the API's "
        "POST /v1/connections/{id}/refresh does (at most once a minute; exits 1 when refused).",
    )
    resynced.add_argument("connection_id", metavar="ID")
    resynced.set_defaults(run=resync)
    torn = connections.add_parser(
        "teardown",
        parents=[common],
        help="continue a disconnected connection's unfinished teardown",
        description="Continue the disconnect saga of a disconnected connection from the step it "
        "stopped at: subscriptions still held are handed back to the webhook gateway to stop; "
        "then the token refresher revokes the grant and deletes the credentials.",
    )
    torn.add_argument("connection_id", metavar="ID")
    torn.set_defaults(run=teardown)
