"""The ``webhook_subscriptions`` collection: its only reader and writer."""

from __future__ import annotations

from chronapilot.common.store.repository import Repository


class WebhookSubscriptions(Repository):
    COLLECTION = "webhook_subscriptions"
