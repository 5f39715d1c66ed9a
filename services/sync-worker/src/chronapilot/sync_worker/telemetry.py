"""The sync worker's numbers: how long syncs take, what they write, why they fail.

Labels are the provider's name (``google``, ``microsoft``, ``icloud``), the sync's
:class:`~chronapilot.common.bus.catalogue.SyncKind` (``full``, ``incremental``: what was asked
for; a calendar whose cursor died runs a full sync inside an incremental one) and a connection
error code (:class:`~chronapilot.common.models.connection.Code`: ``sync_failed``,
``reauth_required``).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SYNC_SECONDS = Histogram(
    "chronapilot_sync_seconds",
    "Time one connection's sync took (every calendar, retries included), whatever its outcome.",
    ["provider", "kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
EVENTS_WRITTEN = Counter(
    "chronapilot_sync_events_written_total",
    "Events a sync wrote to the mirror (upserted or marked deleted), by provider.",
    ["provider"],
)
SYNC_FAILURES = Counter(
    "chronapilot_sync_failures_total",
    "Syncs that failed, by provider and the connection error code they left.",
    ["provider", "code"],
)
