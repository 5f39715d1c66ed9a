"""The webhook gateway's Prometheus metrics (beside the shared ones of every service)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

NOTIFICATIONS = Counter(
    "chronapilot_webhook_notifications_total",
    "Notification items received, by provider and outcome: accepted (a sync request sent), "
    "folded (into a pending sync request), initial, duplicate, lifecycle, handshake; rejected: "
    "malformed, unknown, expired, forged; failed (could not enqueue, the provider retries).",
    ["provider", "outcome"],
)
ACK_SECONDS = Histogram(
    "chronapilot_webhook_ack_seconds",
    "Time from a notification's arrival to its answer.",
    ["provider"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SUBSCRIPTION_READS = Counter(
    "chronapilot_webhook_subscription_reads_total",
    "Reads of a subscription id in MongoDB by the request path (cache misses of the directory).",
    ["provider"],
)
SYNC_REQUESTS = Counter(
    "chronapilot_webhook_sync_requests_total",
    "Sync requests the gateway published: leading (first notification of a window) or "
    "trailing (notifications folded during the window).",
    ["edge"],
)
SUBSCRIPTION_ACTIONS = Counter(
    "chronapilot_subscription_actions_total",
    "Subscription work by provider, action (create, renew, delete) and outcome (ok, failed).",
    ["provider", "action", "outcome"],
)
