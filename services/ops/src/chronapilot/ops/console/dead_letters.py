"""Dead letters held per (original topic, consumer group).

# TODO(issue 19, merge): the CLI's ``dead_letters`` collection (one record per dead-lettered
# message) lands in parallel; until it is wired here this returns an empty mapping and the
# overview's dead-letter panel says so. This is the single place to wire it.
"""

from __future__ import annotations

from chronapilot.common.runtime import Runtime


async def dead_letter_counts(runtime: Runtime) -> dict[tuple[str, str], int]:
    """Dead letters not replayed, by (topic, group)."""
    del runtime
    return {}
