"""``chronapilot outbox status``: what waits for the relay, since when, and who relays."""

from __future__ import annotations

import argparse

from chronapilot.common.bus.outbox import outbox_status
from chronapilot.ops.context import Context
from chronapilot.ops.output import Answer, when


async def status(ctx: Context, args: argparse.Namespace) -> Answer:
    state = await outbox_status(await ctx.store())
    now = ctx.clock.now()
    age = None if state.oldest_unsent_at is None else max(0.0, (now - state.oldest_unsent_at).total_seconds())
    leading = state.lease_expires_at is not None and state.lease_expires_at > now
    data = {
        "unsent": state.unsent,
        "oldest_unsent_at": when(state.oldest_unsent_at),
        "oldest_unsent_age_s": None if age is None else round(age, 3),
        "relay_leader": state.leader if leading else None,
        "last_leader": state.leader,
        "lease_expires_at": when(state.lease_expires_at),
    }
    lines = [
        f"unsent events: {state.unsent}"
        + ("" if age is None else f" (oldest {age:.1f} s old, since {data['oldest_unsent_at']})"),
        f"relay leader: {state.leader} (lease until {data['lease_expires_at']})"
        if leading
        else f"relay leader: none (last: {state.leader or 'never'}, "
        f"lease ran out {data['lease_expires_at'] or '-'})",
    ]
    return Answer(data, lines)


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    outbox = commands.add_parser(
        "outbox", help="the transactional outbox", description="The transactional outbox and its relay."
    ).add_subparsers(dest="command", required=True, metavar="COMMAND")
    shown = outbox.add_parser(
        "status",
        parents=[common],
        help="unsent events, the oldest one's age, the relay leader and its lease",
        description="How many events wait to be published, how old the oldest is, and which service "
        "process holds the relay lease (until when). Unsent events growing with no leader: no "
        "service process is running a relay that reaches Kafka.",
    )
    shown.set_defaults(run=status)
