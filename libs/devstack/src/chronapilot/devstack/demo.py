"""Demo data for ``make run``: what ``demo.env`` lists beyond URLs and sandbox accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chronapilot.devstack.stack import Stack


def create_demo_data(stack: Stack) -> dict[str, str]:
    """Extra ``demo.env`` entries. The API's demo application arrives with the API itself."""
    return {}
