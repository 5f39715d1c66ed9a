"""``chronapilot``: the operator CLI (placeholder until the CLI lands)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("chronapilot: no commands yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
