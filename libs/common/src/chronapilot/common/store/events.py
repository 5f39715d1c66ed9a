"""The ``events`` collection: its only reader and writer."""

from __future__ import annotations

from chronapilot.common.store.repository import Repository


class Events(Repository):
    COLLECTION = "events"
