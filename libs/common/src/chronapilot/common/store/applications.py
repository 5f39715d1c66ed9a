"""The ``applications`` collection: its only reader and writer."""

from __future__ import annotations

from chronapilot.common.store.repository import Repository


class Applications(Repository):
    COLLECTION = "applications"
