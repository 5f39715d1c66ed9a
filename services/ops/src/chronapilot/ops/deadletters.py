"""``chronapilot dlq``: the messages consumer groups gave up on: list, show, replay to the group
that failed (:mod:`chronapilot.common.bus.replay`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from chronapilot.common.bus.replay import replay_dead_letters
from chronapilot.common.bus.topics import Topic, topic_name
from chronapilot.common.errors import NotFound
from chronapilot.common.store import Document
from chronapilot.common.store.dead_letters import STATUSES
from chronapilot.ops.context import Context
from chronapilot.ops.output import Answer, table, when


def _topic(ctx: Context, text: str | None) -> str | None:
    """A topic as the broker names it: ``sync.requests.v1`` gets the configured prefix."""
    if text is None:
        return None
    prefix = ctx.settings.kafka.topic_prefix
    logical = {t.value: t for t in Topic}
    return topic_name(prefix, logical[text]) if text in logical else text


def render(letter: Document, *, with_value: bool = False) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "id": letter["_id"],
        "status": letter["status"],
        "topic": letter["topic"],
        "group_id": letter["group_id"],
        "partition": letter["partition"],
        "offset": letter["offset"],
        "key": letter.get("key"),
        "event_type": letter.get("event_type"),
        "envelope_id": letter.get("envelope_id"),
        "error_type": letter.get("error_type"),
        "error_message": letter.get("error_message"),
        "attempts": letter.get("attempts"),
        "replays": letter.get("replays", 0),
        "failed_at": when(letter.get("failed_at")),
        "replayed_at": when(letter.get("replayed_at")),
    }
    if with_value:
        value = letter.get("value", "")
        try:
            rendered["message"] = json.loads(value)
        except ValueError:
            rendered["message"] = value
    return rendered


async def list_(ctx: Context, args: argparse.Namespace) -> Answer:
    repos = await ctx.repos()
    letters = await repos.dead_letters.listed(
        topic=_topic(ctx, args.topic), group_id=args.group, status=args.status, limit=args.limit
    )
    data = [render(letter) for letter in letters]
    rows = [
        [
            d["id"],
            d["status"],
            d["topic"],
            d["group_id"],
            d["event_type"] or "",
            d["error_type"] or "",
            d["failed_at"],
        ]
        for d in data
    ]
    lines = (
        table(rows, ["ID", "STATUS", "TOPIC", "GROUP", "TYPE", "ERROR", "FAILED AT"])
        if rows
        else ["no dead letters"]
    )
    return Answer({"object": "list", "data": data}, lines)


async def show(ctx: Context, args: argparse.Namespace) -> Answer:
    repos = await ctx.repos()
    letter = await repos.dead_letters.get(args.letter_id)
    if letter is None:
        raise NotFound(f"no dead letter {args.letter_id}")
    data = render(letter, with_value=True)
    lines = [f"{name}: {value}" for name, value in data.items() if name != "message"]
    lines += ["message:", json.dumps(data["message"], indent=2)]
    return Answer(data, lines)


async def replay(ctx: Context, args: argparse.Namespace) -> Answer:
    repos = await ctx.repos()
    letter_ids = list(args.letter_ids)
    if args.all:
        letter_ids += await repos.dead_letters.held_of(args.group, topic=_topic(ctx, args.topic))
    if not letter_ids:
        return Answer({"group_id": args.group, "replays": []}, [f"nothing held for group {args.group}"])
    outcomes = await replay_dead_letters(
        repos.dead_letters,
        await ctx.producer(),
        letter_ids=letter_ids,
        group_id=args.group,
        topic_prefix=ctx.settings.kafka.topic_prefix,
        clock=ctx.clock,
    )
    data = [{"id": o.letter_id, "outcome": o.outcome.value, "detail": o.detail} for o in outcomes]
    lines = [
        f"{o.letter_id}: replayed to {args.group}"
        if o.ok
        else f"{o.letter_id}: not replayed ({o.outcome.value}: {o.detail})"
        for o in outcomes
    ]
    return Answer({"group_id": args.group, "replays": data}, lines, ok=all(o.ok for o in outcomes))


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    dlq = commands.add_parser(
        "dlq",
        help="dead letters: list, show, replay",
        description="Messages a consumer group gave up on after bounded retries, held for an operator.",
    ).add_subparsers(dest="command", required=True, metavar="COMMAND")
    listed = dlq.add_parser(
        "list",
        parents=[common],
        help="list dead letters, newest first",
        description="List dead letters, newest first.",
    )
    listed.add_argument("--topic", help="only this topic (e.g. sync.requests.v1, or its full name)")
    listed.add_argument("--group", help="only this consumer group")
    listed.add_argument("--status", choices=STATUSES, help="only this status")
    listed.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listed.set_defaults(run=list_)
    shown = dlq.add_parser(
        "show",
        parents=[common],
        help="show one dead letter with its message and error",
        description="Show one dead letter: where it came from, the error, and the message itself.",
    )
    shown.add_argument("letter_id", metavar="ID", help="the dead letter (dlq_…)")
    shown.set_defaults(run=show)
    replayed = dlq.add_parser(
        "replay",
        parents=[common],
        help="replay dead letters to the consumer group that failed on them",
        description="Send held dead letters back to the consumer group that failed on them (and to no "
        "other group reading the same topic). Fix the cause first. The group's services handle the "
        "message with their normal handler; `dlq list` then shows it replayed, or held again with "
        "the new error. Exit 1 when any could not be replayed.",
    )
    replayed.add_argument("letter_ids", nargs="*", metavar="ID", help="dead letters to replay (dlq_…)")
    replayed.add_argument(
        "--group", required=True, help="the consumer group that failed (must match each letter)"
    )
    replayed.add_argument("--all", action="store_true", help="also every letter the group holds (of --topic)")
    replayed.add_argument("--topic", help="with --all: only this topic")
    replayed.set_defaults(run=replay)
