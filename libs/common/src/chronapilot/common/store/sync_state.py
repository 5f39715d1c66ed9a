"""The ``sync_state`` collection: its only reader and writer."""

from __future__ import annotations

from chronapilot.common.store.repository import Repository


class SyncStates(Repository):
    COLLECTION = "sync_state"
