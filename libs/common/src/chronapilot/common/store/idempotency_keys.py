"""The ``idempotency_keys`` collection: its only reader and writer."""

from __future__ import annotations

from chronapilot.common.store.repository import Repository


class IdempotencyKeys(Repository):
    COLLECTION = "idempotency_keys"
