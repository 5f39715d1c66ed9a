"""``chronapilot credentials reseal``: re-seal every sealed value under the active key, so an old
key can be removed from ``CHRONAPILOT_ENCRYPTION_KEYS`` (docs/operations/key-rotation.md)."""

from __future__ import annotations

import argparse

from chronapilot.common.store.sealed import Resealer
from chronapilot.ops.context import Context
from chronapilot.ops.output import Answer, table


async def reseal(ctx: Context, args: argparse.Namespace) -> Answer:
    cipher = ctx.cipher()
    counts = await Resealer(await ctx.store(), cipher, dry_run=args.dry_run).reseal_all()
    failed = sum(c.failed for c in counts)
    remaining = sum(c.resealed for c in counts) if args.dry_run else 0
    verb = "to re-seal" if args.dry_run else "re-sealed"
    rows = [
        [c.collection, str(c.documents), str(c.current), str(c.resealed), str(c.conflicts), str(c.failed)]
        for c in counts
    ]
    lines = table(rows, ["COLLECTION", "DOCUMENTS", "CURRENT", verb.upper(), "RETRIED", "FAILED"])
    for c in counts:
        lines += [f"  failed: {c.collection} {failure}" for failure in c.failures]
    if failed:
        lines.append(f"{failed} documents could not be re-sealed: keep every key they need in the ring")
    elif args.dry_run:
        lines.append(
            f"{remaining} documents are not under the active key {cipher.active_key_id}"
            if remaining
            else f"everything is sealed under the active key {cipher.active_key_id}"
        )
    else:
        lines.append(
            f"everything is sealed under the active key {cipher.active_key_id}: keys no longer "
            "active can be removed once every process runs with this key active"
        )
    return Answer(
        {
            "dry_run": args.dry_run,
            "active_key_id": cipher.active_key_id,
            "collections": [c.as_dict() for c in counts],
            "failed": failed,
        },
        lines,
        ok=failed == 0,
    )


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    credentials = commands.add_parser(
        "credentials", help="sealed secrets at rest", description="Secrets sealed at rest."
    ).add_subparsers(dest="command", required=True, metavar="COMMAND")
    resealed = credentials.add_parser(
        "reseal",
        parents=[common],
        help="re-encrypt every sealed value under the active key",
        description="Re-encrypt every value sealed with the encryption key ring (provider credentials, "
        "webhook signing secrets, stored idempotent answers, consent verifiers) under the active key "
        "(CHRONAPILOT_ENCRYPTION_ACTIVE_KEY_ID, else the first key of CHRONAPILOT_ENCRYPTION_KEYS). "
        "Safe to run while services run and to run again; a concurrent write wins and is re-sealed. "
        "Exit 1 when a value could not be opened with this ring.",
    )
    resealed.add_argument(
        "--dry-run", action="store_true", help="only count what is not under the active key"
    )
    resealed.set_defaults(run=reseal)
