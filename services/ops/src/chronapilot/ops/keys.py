"""``chronapilot keys``: create, revoke and rotate an application's API keys.

``rotate`` issues a new key and retires the old one(s). Without ``--grace`` the old key stops
working at once: a rotation is most often done because a key may have leaked, and an operator
who wants overlap asks for it (``--grace 24h``: both keys work for a day, then the old one
stops by itself). ``revoke`` always stops a key now, a retiring one included.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

from chronapilot.common.tenancy import create_key, revoke_key, rotate_keys
from chronapilot.ops.apps import key_lines, render_key
from chronapilot.ops.context import Context
from chronapilot.ops.output import Answer

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``7d`` (or plain seconds) as a duration; argparse's type."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 15m, 24h, 7d)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


async def create(ctx: Context, args: argparse.Namespace) -> Answer:
    repos = await ctx.repos()
    api_key, key = await create_key(repos.applications, args.application_id, live=ctx.live, clock=ctx.clock)
    return Answer(
        {"application_id": args.application_id, "key": render_key(api_key, ctx.clock.now()), "api_key": key},
        [f"API key {api_key.id} for {args.application_id} (shown once, store it now): {key}"],
    )


async def revoke(ctx: Context, args: argparse.Namespace) -> Answer:
    repos = await ctx.repos()
    application = await revoke_key(repos.applications, args.key_id, clock=ctx.clock)
    now = ctx.clock.now()
    revoked = next(k for k in application.api_keys if k.id == args.key_id)
    rendered = render_key(revoked, now)
    return Answer(
        {"application_id": application.id, "key": rendered},
        [f"API key {revoked.id} of {application.id} revoked at {rendered['revoked_at']}"],
    )


async def rotate(ctx: Context, args: argparse.Namespace) -> Answer:
    repos = await ctx.repos()
    api_key, key, retired = await rotate_keys(
        repos.applications,
        args.application_id,
        live=ctx.live,
        clock=ctx.clock,
        grace=args.grace,
        key_id=args.key,
    )
    now = ctx.clock.now()
    old = [render_key(k, now) for k in retired]
    lines = [f"new API key {api_key.id} for {args.application_id} (shown once, store it now): {key}"]
    if old:
        stops = "now" if not args.grace else f"at the end of the grace period ({args.grace})"
        lines += [f"old keys stop working {stops}:", *("    " + line for line in key_lines(old))]
    else:
        lines.append("no working key to retire")
    return Answer(
        {
            "application_id": args.application_id,
            "key": render_key(api_key, now),
            "api_key": key,
            "retired": old,
        },
        lines,
    )


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    keys = commands.add_parser(
        "keys", help="create, revoke and rotate API keys", description="An application's API keys."
    ).add_subparsers(dest="command", required=True, metavar="COMMAND")
    created = keys.add_parser(
        "create",
        parents=[common],
        help="add an API key to an application (printed once)",
        description="Add an API key to an application; the application's other keys keep working.",
    )
    created.add_argument("application_id", metavar="APP_ID", help="the application (app_…)")
    created.set_defaults(run=create)
    revoked = keys.add_parser(
        "revoke",
        parents=[common],
        help="stop an API key now",
        description="Revoke an API key at once (its id: key_…, from `chronapilot apps list`). Requests "
        "with it are refused with 401 within a few seconds (the API caches a key for 5 s).",
    )
    revoked.add_argument("key_id", metavar="KEY_ID", help="the key's id (key_…)")
    revoked.set_defaults(run=revoke)
    rotated = keys.add_parser(
        "rotate",
        parents=[common],
        help="issue a new API key and retire the old one (now, or after --grace)",
        description="Issue a new API key (printed once) and retire the application's working keys "
        "(or only --key). Without --grace the old keys stop at once; with --grace they keep "
        "working for that long, so clients can switch, then stop by themselves.",
    )
    rotated.add_argument("application_id", metavar="APP_ID", help="the application (app_…)")
    rotated.add_argument("--key", metavar="KEY_ID", help="retire only this key (default: every working key)")
    rotated.add_argument(
        "--grace",
        type=duration,
        default=timedelta(0),
        metavar="DURATION",
        help="keep the old key working this long (e.g. 15m, 24h, 7d; default 0: stop it now)",
    )
    rotated.set_defaults(run=rotate)
