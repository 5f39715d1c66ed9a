"""Every collection's repository, opened once per process over one :class:`Store`
(``runtime.repos``). ``connections`` has its own owner: :mod:`chronapilot.common.connections`."""

from __future__ import annotations

from dataclasses import dataclass

from chronapilot.common.store.applications import Applications
from chronapilot.common.store.calendars import Calendars
from chronapilot.common.store.client import Store
from chronapilot.common.store.credentials import Credentials
from chronapilot.common.store.dead_letters import DeadLetters
from chronapilot.common.store.events import Events
from chronapilot.common.store.fleet import Fleet
from chronapilot.common.store.idempotency_keys import IdempotencyKeys
from chronapilot.common.store.oauth_states import OAuthStates
from chronapilot.common.store.ops_samples import OpsSamples
from chronapilot.common.store.sync_state import SyncStates
from chronapilot.common.store.users import Users
from chronapilot.common.store.webhook_deliveries import WebhookDeliveries, WebhookSequences
from chronapilot.common.store.webhook_endpoints import WebhookEndpoints
from chronapilot.common.store.webhook_subscriptions import WebhookSubscriptions


@dataclass(frozen=True)
class Repositories:
    applications: Applications
    users: Users
    oauth_states: OAuthStates
    idempotency_keys: IdempotencyKeys
    calendars: Calendars
    events: Events
    sync_state: SyncStates
    credentials: Credentials
    webhook_subscriptions: WebhookSubscriptions
    webhook_endpoints: WebhookEndpoints
    webhook_deliveries: WebhookDeliveries
    webhook_sequences: WebhookSequences
    #: fleet-wide reads for operators (the ops console, the CLI)
    fleet: Fleet
    ops_samples: OpsSamples
    dead_letters: DeadLetters

    @classmethod
    def open(cls, store: Store) -> Repositories:
        return cls(
            applications=Applications(store),
            users=Users(store),
            oauth_states=OAuthStates(store),
            idempotency_keys=IdempotencyKeys(store),
            calendars=Calendars(store),
            events=Events(store),
            sync_state=SyncStates(store),
            credentials=Credentials(store),
            webhook_subscriptions=WebhookSubscriptions(store),
            webhook_endpoints=WebhookEndpoints(store),
            webhook_deliveries=WebhookDeliveries(store),
            webhook_sequences=WebhookSequences(store),
            fleet=Fleet(store),
            ops_samples=OpsSamples(store),
            dead_letters=DeadLetters(store),
        )
