"""One emulator instance's state and its pieces, reachable from handlers as `request.app[state_key]`."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from chronapilot.sandbox.shared.clock import SandboxClock
from chronapilot.sandbox.shared.counters import RequestCounters
from chronapilot.sandbox.shared.delivery import NotificationDispatcher
from chronapilot.sandbox.shared.faults import FaultRegistry
from chronapilot.sandbox.shared.state_file import StateFileSaver

from .grants import Identity
from .store import Calendar, Store, StoredEvent, User

TENANT_ALIASES = ("common", "organizations", "consumers")
SANDBOX_DOMAIN = "sandbox.chronapilot.dev"


@dataclass
class Subscription:
    id: str
    user_id: str
    client_id: str
    resource: str
    calendar_id: str | None  # None: every calendar of the user (`me/events`)
    change_types: list[str]
    notification_url: str
    lifecycle_notification_url: str | None
    client_state: str | None
    expiration: float  # epoch seconds
    latest_supported_tls_version: str = "v1_2"
    include_resource_data: bool = False
    notification_url_app_id: str | None = None
    authorized_until: float = 0.0  # expiry of the access token that last authorized it
    reauthorization_sent: bool = False


@dataclass
class Settings:
    """What the admin API may change at run time."""

    max_subscription_seconds: float = 10080 * 60.0
    validation_timeout_seconds: float = 10.0
    mailbox_concurrency_limit: int | None = None  # Outlook: 4
    mailbox_requests_per_10_minutes: int | None = None  # Outlook: 10,000
    notification_batch_seconds: float = 0.0  # 0: one item per POST
    delta_quirks: bool = False  # empty first pages with a nextLink, replayed changes


@dataclass
class MicrosoftState:
    base_url: str
    store: Store
    identity: Identity
    clock: SandboxClock
    faults: FaultRegistry
    counters: RequestCounters
    dispatcher: NotificationDispatcher
    settings: Settings
    tenant_id: str
    token_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    saver: StateFileSaver | None = None
    # Notification items waiting to share one POST per URL (`notification_batch_seconds` > 0).
    batches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    def known_tenant(self, tenant: str) -> bool:
        return tenant.lower() in (*TENANT_ALIASES, self.tenant_id, SANDBOX_DOMAIN)

    def issuer(self, tenant: str) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    def changed(self) -> None:
        if self.saver is not None:
            self.saver.mark_changed()

    # state file ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        store = self.store
        return {
            "version": 1,
            "tenant_id": self.tenant_id,
            "token_secret": self.token_secret.hex(),
            "seq": store.seq,
            "settings": asdict(self.settings),
            "users": [asdict(u) for u in store.users.values()],
            "calendars": [asdict(c) for c in store.calendars.values()],
            "events": [asdict(e) for e in store.events.values()],
            "identity": self.identity.snapshot(),
            "subscriptions": [asdict(s) for s in self.subscriptions.values()],
        }

    def restore(self, data: dict[str, Any]) -> None:
        store = self.store
        self.tenant_id = data["tenant_id"]
        self.token_secret = bytes.fromhex(data["token_secret"])
        store.seq = int(data["seq"])
        self.settings = Settings(**data.get("settings", {}))
        store.users = {u["id"]: User(**u) for u in data["users"]}
        store.calendars = {}
        for raw in data["calendars"]:
            raw = dict(raw)
            raw["log_entries"] = [tuple(entry) for entry in raw.get("log_entries", [])]
            store.calendars[raw["id"]] = Calendar(**raw)
        store.events = {e["id"]: StoredEvent(**e) for e in data["events"]}
        store.reindex()
        self.identity.restore(data["identity"])
        self.subscriptions = {s["id"]: Subscription(**s) for s in data.get("subscriptions", [])}


state_key = web.AppKey("microsoft_state", MicrosoftState)
