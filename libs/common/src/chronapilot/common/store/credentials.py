"""The ``credentials`` collection: its only reader and writer."""

from __future__ import annotations

from chronapilot.common.store.repository import Repository


class Credentials(Repository):
    COLLECTION = "credentials"
