"""``python -m chronapilot.devstack run``: the local stack behind ``make run``."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from chronapilot.common.service import describe_validation_error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chronapilot.devstack")
    parser.add_argument("command", choices=["run"], help="run: everything up until Ctrl-C")
    parser.parse_args(argv)
    from chronapilot.devstack.stack import run

    try:
        return run()
    except ValidationError as exc:
        print(f"chronapilot: configuration error: {describe_validation_error(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
