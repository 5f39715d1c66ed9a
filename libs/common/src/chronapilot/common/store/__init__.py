"""The MongoDB layer: connection, indexes, leases."""

from chronapilot.common.store.client import Document, Session, Store, translate_errors
from chronapilot.common.store.indexes import INDEXES, ensure_indexes
from chronapilot.common.store.leases import Lease

__all__ = [
    "INDEXES",
    "Document",
    "Lease",
    "Session",
    "Store",
    "ensure_indexes",
    "translate_errors",
]
