"""``chronapilot``: the operator CLI.

Reads the same settings as the services (``CHRONAPILOT_*``, ``MONGODB_URI``,
``KAFKA_BOOTSTRAP_SERVERS``). Every command prints lines for a person, or with ``--json`` one
JSON document on stdout. Exit codes: 0 done; 1 the operation failed or the object was not
found; 2 bad usage or configuration. An error is one line on stderr, never a traceback and
never a secret (an API key is printed once, by the command that creates it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn

from pydantic import ValidationError

from chronapilot.common.errors import ChronaPilotError, ConfigurationError, InvalidRequest, NotFound
from chronapilot.common.logging import configure_logging
from chronapilot.common.service import describe_validation_error
from chronapilot.common.settings import Settings
from chronapilot.ops import apps, connections, deadletters, keys, outbox, reseal
from chronapilot.ops.context import Context
from chronapilot.ops.output import Answer

PROG = "chronapilot"
USAGE, FAILED = 2, 1
Command = Callable[[Context, argparse.Namespace], Awaitable[Answer]]


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (and exit 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Operate ChronaPilot: applications and API keys, the encryption key ring, dead "
        "letters, the outbox, one connection. Uses the services' settings (CHRONAPILOT_*, MONGODB_URI, "
        "KAFKA_BOOTSTRAP_SERVERS). Exit codes: 0 done, 1 failed or not found, 2 usage or "
        "configuration error.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    commands = parser.add_subparsers(dest="group", required=True, metavar="GROUP", parser_class=_Parser)
    for area in (apps, keys, reseal, deadletters, outbox, connections):
        area.add_commands(commands, common)
    return parser


async def _run(command: Command, settings: Settings, args: argparse.Namespace) -> Answer:
    ctx = Context(settings)
    try:
        return await command(ctx, args)
    finally:
        await ctx.close()


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging("CRITICAL", "json", service="cli")  # errors are reported as one line below
    try:
        settings = Settings()
    except ValidationError as exc:
        return _fail(f"configuration error: {describe_validation_error(exc)}", USAGE)
    try:
        answer = asyncio.run(_run(args.run, settings, args))
    except (ConfigurationError, InvalidRequest) as exc:
        return _fail(
            f"{'configuration error: ' if isinstance(exc, ConfigurationError) else ''}{exc.message}", USAGE
        )
    except NotFound as exc:
        return _fail(f"not found: {exc.message}", FAILED)
    except ChronaPilotError as exc:
        return _fail(exc.message, FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001 - an operator gets one line, not a traceback
        return _fail(f"unexpected error ({type(exc).__name__}): {exc}", FAILED)
    if args.json:
        print(json.dumps(answer.data, indent=2, sort_keys=True))
    else:
        print("\n".join(answer.lines))
    return 0 if answer.ok else FAILED


if __name__ == "__main__":
    sys.exit(main())
