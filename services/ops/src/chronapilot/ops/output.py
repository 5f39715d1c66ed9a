"""What a CLI command answers: one JSON document (``--json``) or lines for a person, and whether
it succeeded (the exit code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chronapilot.common.clock import isoformat_z


@dataclass
class Answer:
    """``data`` is printed with ``--json``, ``lines`` without; ``ok`` False exits 1."""

    data: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    ok: bool = True


def when(value: datetime | None) -> str | None:
    """A datetime as the API writes it (ISO 8601, UTC, ``Z``); None stays None."""
    return None if value is None else isoformat_z(value)


def table(rows: list[list[str]], headers: list[str]) -> list[str]:
    """``rows`` under ``headers``, in aligned columns."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
