"""Every index ChronaPilot needs, in one place, created at start by every service.

A query a service runs in a loop or on a hot request path must be served by one of these;
``tests/integration/test_indexes.py`` lists each such query beside the index that serves it.
Creating an index that exists is a no-op, so every process may call :func:`ensure_indexes`.

What expires is removed by the server (TTL indexes: a single date field and
``expireAfterSeconds``; documents whose field is missing or not a date are kept):
consent sessions an hour after they expire, idempotency keys when they expire (24 h), and
outbox records :data:`OUTBOX_RETENTION` after they were sent (unsent ones never), and the ops
console's chart samples after a day.
"""

from __future__ import annotations

from datetime import timedelta

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from chronapilot.common.store.client import Document, Store, translate_errors
from chronapilot.common.store.ops_samples import RETENTION as OPS_SAMPLE_RETENTION

#: How long a sent outbox record is kept (to look into what was published), then pruned.
OUTBOX_RETENTION = timedelta(days=7)

INDEXES: dict[str, list[IndexModel]] = {
    "applications": [
        IndexModel([("api_keys.hash", ASCENDING)], name="api_key_hash", unique=True, sparse=True),
    ],
    "users": [
        IndexModel([("application_id", ASCENDING), ("_id", DESCENDING)], name="by_application"),
        IndexModel([("application_id", ASCENDING), ("external_id", ASCENDING)], name="by_external_id"),
    ],
    "connections": [
        IndexModel([("application_id", ASCENDING), ("_id", DESCENDING)], name="by_application"),
        IndexModel(
            [("application_id", ASCENDING), ("user_id", ASCENDING), ("_id", DESCENDING)],
            name="by_user",
        ),
        IndexModel(
            [
                ("application_id", ASCENDING),
                ("user_id", ASCENDING),
                ("provider", ASCENDING),
                ("provider_account_id", ASCENDING),
            ],
            name="one_per_account",
            unique=True,
        ),
        IndexModel([("status", ASCENDING), ("sync_mode", ASCENDING)], name="by_status_mode"),
        IndexModel(
            [("sync_mode", ASCENDING), ("status", ASCENDING), ("next_poll_at", ASCENDING)],
            name="poll_due",
        ),
        # the schedule (polling, the realtime safety net, retries of errors): connections/store.py
        IndexModel([("status", ASCENDING), ("next_poll_at", ASCENDING)], name="sync_due"),
        # "another live connection holds this account" before revoking a shared Google grant
        IndexModel([("provider", ASCENDING), ("provider_account_id", ASCENDING)], name="by_account"),
    ],
    "connection_status_history": [
        IndexModel(
            [("connection_id", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="by_connection"
        ),
    ],
    "credentials": [
        # the token refresher's tick: one range on it (token_refresher/refresh_due.py)
        IndexModel([("access_expires_at", ASCENDING)], name="by_access_expiry"),
    ],
    "calendars": [
        IndexModel(
            [("connection_id", ASCENDING), ("provider_calendar_id", ASCENDING)],
            name="by_provider_id",
            unique=True,
        ),
        IndexModel([("application_id", ASCENDING), ("_id", DESCENDING)], name="by_application"),
    ],
    "events": [
        IndexModel(
            [
                ("connection_id", ASCENDING),
                ("provider_calendar_id", ASCENDING),
                ("provider_event_id", ASCENDING),
            ],
            name="by_provider_id",
            unique=True,
        ),
        IndexModel([("calendar_id", ASCENDING), ("start_at", ASCENDING)], name="by_calendar_start"),
        IndexModel([("calendar_id", ASCENDING), ("_id", DESCENDING)], name="by_calendar"),
        IndexModel([("calendar_id", ASCENDING), ("updated_at", ASCENDING)], name="by_calendar_updated"),
        IndexModel(
            [
                ("connection_id", ASCENDING),
                ("provider_calendar_id", ASCENDING),
                ("recurring_event_id", ASCENDING),
            ],
            name="by_series",
        ),
    ],
    "sync_state": [
        IndexModel([("connection_id", ASCENDING)], name="by_connection"),
    ],
    "webhook_subscriptions": [
        IndexModel([("expires_at", ASCENDING)], name="by_expiry"),
        IndexModel([("connection_id", ASCENDING)], name="by_connection"),
        IndexModel(
            [("connection_id", ASCENDING), ("calendar_id", ASCENDING)], name="one_per_calendar", unique=True
        ),
        IndexModel([("channels.id", ASCENDING)], name="by_channel"),
        IndexModel([("due_at", ASCENDING)], name="by_due"),
    ],
    # customer webhooks (ARCHITECTURE §9): the API lists endpoints and deliveries per application
    # and endpoint; the dispatcher finds an event's endpoints by application, claims due
    # deliveries, and a message consumed again creates nothing twice (one_per_source)
    "webhook_endpoints": [
        IndexModel([("application_id", ASCENDING), ("_id", DESCENDING)], name="by_application"),
    ],
    "webhook_deliveries": [
        IndexModel(
            [("endpoint_id", ASCENDING), ("source_id", ASCENDING)], name="one_per_source", unique=True
        ),
        IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"),
        IndexModel([("endpoint_id", ASCENDING), ("_id", DESCENDING)], name="by_endpoint"),
        IndexModel([("endpoint_id", ASCENDING), ("status", ASCENDING)], name="by_endpoint_status"),
    ],
    "oauth_states": [
        # the consent callback and the hosted page find their session by its state
        IndexModel([("state", ASCENDING)], name="by_state", unique=True),
        IndexModel([("expires_at", ASCENDING)], name="expire", expireAfterSeconds=3600),
    ],
    "idempotency_keys": [
        IndexModel([("expires_at", ASCENDING)], name="expire", expireAfterSeconds=0),
    ],
    "outbox": [
        IndexModel([("sent_at", ASCENDING), ("_id", ASCENDING)], name="unsent_in_order"),
        # partial: it holds sent records only, so no planner takes it for the relay's query
        # of unsent ones (sent_at null), which unsent_in_order serves with its order
        IndexModel(
            [("sent_at", ASCENDING)],
            name="sent_expire",
            expireAfterSeconds=int(OUTBOX_RETENTION.total_seconds()),
            partialFilterExpression={"sent_at": {"$type": "date"}},
        ),
    ],
    # the ops console's chart samples (store/ops_samples.py): read by time, gone after a day
    "ops_samples": [
        IndexModel(
            [("at", ASCENDING)], name="expire", expireAfterSeconds=int(OPS_SAMPLE_RETENTION.total_seconds())
        ),
    ],
    # dead letters (chronapilot dlq): one record per (group, message); held counts per topic and
    # group (the ops console, the chronapilot_dead_letters gauge)
    "dead_letters": [
        IndexModel(
            [("group_id", ASCENDING), ("topic", ASCENDING), ("partition", ASCENDING), ("offset", ASCENDING)],
            name="one_per_message",
            unique=True,
        ),
        IndexModel([("status", ASCENDING), ("topic", ASCENDING), ("group_id", ASCENDING)], name="by_status"),
    ],
    "leases": [
        IndexModel([("expires_at", ASCENDING)], name="by_expiry"),
    ],
}


async def ensure_indexes(target: Store | AsyncDatabase[Document]) -> None:
    """Create every index in ``target`` (an open :class:`Store`, or a database)."""
    db = target.db if isinstance(target, Store) else target
    with translate_errors():
        for collection, models in INDEXES.items():
            await db[collection].create_indexes(models)
