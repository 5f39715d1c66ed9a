"""The gateway's subscription documents on a real MongoDB-protocol server: a claim that fails for
a transient reason is due again soon, not only when its lease runs out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chronapilot.common.clock import FixedClock
from chronapilot.common.store.webhook_subscriptions import WebhookSubscriptions
from chronapilot.webhook_gateway.records import SubscriptionRecords

LEASE_S = 60.0


async def test_a_transient_failure_makes_the_claim_due_again_at_the_retry_time(store) -> None:
    clock = FixedClock(datetime(2027, 1, 4, 9, 0, tzinfo=UTC))
    mine = SubscriptionRecords(WebhookSubscriptions(store), clock=clock, owner="gateway-a", lease_s=LEASE_S)
    other = SubscriptionRecords(WebhookSubscriptions(store), clock=clock, owner="gateway-b", lease_s=LEASE_S)
    await mine.ensure("con_1", "google", ["cal-1"])
    (claimed,) = await mine.claim_due(10)
    assert await other.claim_due(10) == []  # leased to the first gateway

    await mine.retry_soon(claimed.id, clock.now() + timedelta(seconds=2))

    clock.advance(timedelta(seconds=1))
    assert await other.claim_due(10) == []  # not before its retry time
    clock.advance(timedelta(seconds=1))
    (again,) = await other.claim_due(10)  # long before the first lease (60 s) ran out
    assert again.id == claimed.id


async def test_a_retry_never_postpones_work_already_due_sooner_nor_shortens_another_owners_lease(
    store,
) -> None:
    clock = FixedClock(datetime(2027, 1, 4, 9, 0, tzinfo=UTC))
    mine = SubscriptionRecords(WebhookSubscriptions(store), clock=clock, owner="gateway-a", lease_s=LEASE_S)
    other = SubscriptionRecords(WebhookSubscriptions(store), clock=clock, owner="gateway-b", lease_s=LEASE_S)
    await mine.ensure("con_1", "google", ["cal-1"])
    (claimed,) = await other.claim_due(10)  # the other gateway holds it

    await mine.retry_soon(claimed.id, clock.now() + timedelta(seconds=30))

    doc = await store.db.webhook_subscriptions.find_one({"_id": claimed.id})
    assert doc["due_at"].replace(tzinfo=UTC) == clock.now()  # due now stays due now
    assert doc["lease_owner"] == "gateway-b"  # its lease is not ours to shorten
    assert doc["lease_until"].replace(tzinfo=UTC) == clock.now() + timedelta(seconds=LEASE_S)
