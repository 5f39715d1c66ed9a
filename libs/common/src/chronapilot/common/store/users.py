"""The ``users`` collection: its only reader and writer."""

from __future__ import annotations

from chronapilot.common.store.repository import Repository


class Users(Repository):
    COLLECTION = "users"
