"""Subscriptions and change notifications of the Microsoft emulator, against real HTTP receivers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_microsoft_harness import Emulator, Receiver, running_emulator, running_receiver


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with running_emulator() as emu:
        yield emu


@pytest.fixture
async def token(emulator: Emulator) -> str:
    return str((await emulator.sign_in())["access_token"])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as rec:
        yield rec


def _in(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _subscription(receiver: Receiver, resource: str = "me/events", **extra: Any) -> dict[str, Any]:
    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": f"{receiver.url}/notify",
        "lifecycleNotificationUrl": f"{receiver.url}/lifecycle",
        "resource": resource,
        "expirationDateTime": _in(60),
        "clientState": "secret-client-state",
        "latestSupportedTlsVersion": "v1_2",
        **extra,
    }


def _event(subject: str) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": "2026-05-04T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-05-04T09:30:00", "timeZone": "UTC"},
    }


async def test_creation_runs_the_handshake_and_answers_201(
    emulator: Emulator, token: str, receiver: Receiver
) -> None:
    status, sub, _ = await emulator.graph("POST", "/subscriptions", token, _subscription(receiver))
    assert status == 201, sub
    assert len(receiver.handshakes) == 2  # notificationUrl and lifecycleNotificationUrl
    assert receiver.handshakes[0].startswith("Validation: ")
    for key in (
        "id",
        "resource",
        "applicationId",
        "changeType",
        "clientState",
        "notificationUrl",
        "lifecycleNotificationUrl",
        "expirationDateTime",
        "creatorId",
        "includeResourceData",
        "latestSupportedTlsVersion",
        "encryptionCertificate",
        "encryptionCertificateId",
        "notificationQueryOptions",
        "notificationUrlAppId",
    ):
        assert key in sub
    assert sub["changeType"] == "created,updated,deleted"
    assert sub["clientState"] == "secret-client-state"


async def test_a_change_reaches_the_receiver_with_the_reference_body(
    emulator: Emulator, token: str, receiver: Receiver
) -> None:
    _, sub, _ = await emulator.graph("POST", "/subscriptions", token, _subscription(receiver))
    _, me, _ = await emulator.graph("GET", "/me", token)
    _, created, _ = await emulator.graph("POST", "/me/events", token, _event("Notify me"))
    body = await receiver.next()
    assert receiver.content_types[0] == "application/json"
    assert list(body) == ["value"]
    assert len(body["value"]) == 1
    item = body["value"][0]
    resource = f"Users/{me['id']}/Events/{created['id']}"
    assert item == {
        "subscriptionId": sub["id"],
        "subscriptionExpirationDateTime": item["subscriptionExpirationDateTime"],
        "changeType": "created",
        "resource": resource,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": resource,
            "@odata.etag": created["@odata.etag"],
            "id": created["id"],
        },
        "clientState": "secret-client-state",
        "tenantId": emulator.state.tenant_id,
    }
    assert item["subscriptionExpirationDateTime"].endswith("+00:00")
    await emulator.graph("PATCH", f"/me/events/{created['id']}", token, {"subject": "Changed"})
    await emulator.graph("DELETE", f"/me/events/{created['id']}", token)
    kinds = [(await receiver.next())["value"][0]["changeType"] for _ in range(2)]
    assert kinds == ["updated", "deleted"]


async def test_a_calendar_subscription_ignores_other_calendars(
    emulator: Emulator, token: str, receiver: Receiver
) -> None:
    _, cals, _ = await emulator.graph("GET", "/me/calendars", token)
    work = next(c["id"] for c in cals["value"] if c["name"] == "Work")
    status, _, _ = await emulator.graph(
        "POST",
        "/subscriptions",
        token,
        _subscription(receiver, f"me/calendars/{work}/events", changeType="created"),
    )
    assert status == 201
    await emulator.graph("POST", "/me/events", token, _event("default calendar"))
    _, mine, _ = await emulator.graph("POST", f"/me/calendars/{work}/events", token, _event("work calendar"))
    body = await receiver.next()
    assert body["value"][0]["resourceData"]["id"] == mine["id"]
    await emulator.admin("POST", "notifications/drain")
    assert receiver.notifications.empty()


@pytest.mark.parametrize("mode", ["wrong-body", "status-500", "json"])
async def test_a_receiver_that_answers_wrongly_is_refused(emulator: Emulator, token: str, mode: str) -> None:
    async with running_receiver(mode) as bad:
        status, body, _ = await emulator.graph("POST", "/subscriptions", token, _subscription(bad))
    assert status == 400
    assert body["error"]["code"] == "ValidationError"
    assert body["error"]["message"].startswith("Subscription validation request failed.")
    assert emulator.state.subscriptions == {}


async def test_a_receiver_that_does_not_answer_in_time_is_refused(emulator: Emulator, token: str) -> None:
    await emulator.admin("PATCH", "settings", {"validation_timeout_seconds": 0.3})
    async with running_receiver("silent") as slow:
        status, body, _ = await emulator.graph("POST", "/subscriptions", token, _subscription(slow))
    assert status == 400
    assert body["error"] == {
        **body["error"],
        "code": "InvalidRequest",
        "message": "Subscription validation request timed out.",
    }


async def test_the_maximum_expiration_is_enforced_and_configurable(
    emulator: Emulator, token: str, receiver: Receiver
) -> None:
    status, body, _ = await emulator.graph(
        "POST", "/subscriptions", token, _subscription(receiver, expirationDateTime=_in(10080 + 5))
    )
    assert status == 400
    assert body["error"]["code"] == "ExtensionError"
    assert body["error"]["message"] == "Subscription expiration can only be 10080 minutes in the future."
    await emulator.admin("PATCH", "settings", {"max_subscription_seconds": 30})
    status, body, _ = await emulator.graph(
        "POST", "/subscriptions", token, _subscription(receiver, expirationDateTime=_in(1))
    )
    assert status == 400
    assert body["error"]["code"] == "ExtensionError"
    status, _, _ = await emulator.graph(
        "POST", "/subscriptions", token, _subscription(receiver, expirationDateTime=_in(0.3))
    )
    assert status == 201


async def test_patch_renews_and_delete_removes(emulator: Emulator, token: str, receiver: Receiver) -> None:
    _, sub, _ = await emulator.graph("POST", "/subscriptions", token, _subscription(receiver))
    later = _in(120)
    status, renewed, _ = await emulator.graph(
        "PATCH", f"/subscriptions/{sub['id']}", token, {"expirationDateTime": later}
    )
    assert status == 200
    assert renewed["expirationDateTime"] == later
    status, listing, _ = await emulator.graph("GET", "/subscriptions", token)
    assert [s["id"] for s in listing["value"]] == [sub["id"]]
    status, _, _ = await emulator.graph("POST", f"/subscriptions/{sub['id']}/reauthorize", token)
    assert status == 204
    status, _, _ = await emulator.graph("DELETE", f"/subscriptions/{sub['id']}", token)
    assert status == 204
    status, body, _ = await emulator.graph("DELETE", f"/subscriptions/{sub['id']}", token)
    assert status == 404
    assert body["error"]["code"] == "ErrorItemNotFound"
    await emulator.graph("POST", "/me/events", token, _event("nobody listens"))
    await emulator.admin("POST", "notifications/drain")
    assert receiver.notifications.empty()


async def test_an_expired_subscription_stays_silent(
    emulator: Emulator, token: str, receiver: Receiver
) -> None:
    await emulator.graph("POST", "/subscriptions", token, _subscription(receiver, expirationDateTime=_in(5)))
    await emulator.admin("POST", "clock/advance", {"seconds": 301})
    await emulator.graph("POST", "/me/events", token, _event("too late"))
    await emulator.admin("POST", "notifications/drain")
    assert receiver.notifications.empty()
    _, listing, _ = await emulator.graph("GET", "/subscriptions", token)
    assert listing["value"] == []


@pytest.mark.parametrize("event", ["reauthorizationRequired", "missed", "subscriptionRemoved"])
async def test_lifecycle_notifications_reach_the_lifecycle_url(
    emulator: Emulator, token: str, receiver: Receiver, event: str
) -> None:
    _, sub, _ = await emulator.graph("POST", "/subscriptions", token, _subscription(receiver))
    await emulator.admin("POST", f"subscriptions/{sub['id']}/lifecycle", {"lifecycleEvent": event})
    body = await receiver.next()
    assert body["value"][0] == {
        "lifecycleEvent": event,
        "subscriptionId": sub["id"],
        "subscriptionExpirationDateTime": body["value"][0]["subscriptionExpirationDateTime"],
        "clientState": "secret-client-state",
        "tenantId": emulator.state.tenant_id,
    }
    status, _, _ = await emulator.graph("GET", f"/subscriptions/{sub['id']}", token)
    assert status == (404 if event == "subscriptionRemoved" else 200)


async def test_revoking_a_grant_can_remove_its_subscriptions(
    emulator: Emulator, token: str, receiver: Receiver
) -> None:
    await emulator.graph("POST", "/subscriptions", token, _subscription(receiver))
    result = await emulator.admin(
        "POST",
        "grants/revoke",
        {"user": "demo.microsoft@sandbox.chronapilot.dev", "remove_subscriptions": True},
    )
    assert result["subscriptions_removed"] == 1
    assert (await receiver.next())["value"][0]["lifecycleEvent"] == "subscriptionRemoved"


async def test_notification_faults_drop_and_duplicate(
    emulator: Emulator, token: str, receiver: Receiver
) -> None:
    await emulator.graph("POST", "/subscriptions", token, _subscription(receiver, changeType="created"))
    await emulator.admin("POST", "faults/notifications", {"mode": "drop", "times": 1})
    await emulator.graph("POST", "/me/events", token, _event("dropped"))
    await emulator.admin("POST", "faults/notifications", {"mode": "duplicate", "times": 1})
    _, twice, _ = await emulator.graph("POST", "/me/events", token, _event("twice"))
    first, second = await receiver.next(), await receiver.next()
    assert first == second
    assert first["value"][0]["resourceData"]["id"] == twice["id"]
    await emulator.admin("POST", "notifications/drain")
    assert receiver.notifications.empty()
    counters = await emulator.admin("GET", "counters")
    assert counters["notifications_dropped"] == 1
    assert counters["notifications_sent"] == 2


async def test_notifications_are_sent_after_the_write_answers(
    emulator: Emulator, token: str, receiver: Receiver
) -> None:
    await emulator.graph("POST", "/subscriptions", token, _subscription(receiver))
    await emulator.admin("POST", "faults/notifications", {"mode": "reorder", "times": 1})
    _, a, _ = await emulator.graph("POST", "/me/events", token, _event("a"))
    _, b, _ = await emulator.graph("POST", "/me/events", token, _event("b"))
    ids = [(await receiver.next())["value"][0]["resourceData"]["id"] for _ in range(2)]
    assert ids == [b["id"], a["id"]]


async def test_reauthorization_is_required_when_the_authorizing_token_expires(
    emulator: Emulator, token: str, receiver: Receiver
) -> None:
    _, sub, _ = await emulator.graph(
        "POST", "/subscriptions", token, _subscription(receiver, expirationDateTime=_in(180))
    )
    await emulator.admin("POST", "clock/advance", {"seconds": 3601})
    body = await receiver.next()
    assert body["value"][0]["lifecycleEvent"] == "reauthorizationRequired"
    assert body["value"][0]["subscriptionId"] == sub["id"]
    fresh = (await emulator.sign_in())["access_token"]
    status, _, _ = await emulator.graph("POST", f"/subscriptions/{sub['id']}/reauthorize", fresh)
    assert status == 204
    await emulator.admin("POST", "clock/advance", {"seconds": 60})
    await emulator.admin("POST", "notifications/drain")
    assert receiver.notifications.empty()


async def test_batched_notifications_carry_several_items_for_several_subscriptions(
    emulator: Emulator, token: str, receiver: Receiver
) -> None:
    await emulator.admin("PATCH", "settings", {"notification_batch_seconds": 0.2})
    _, first, _ = await emulator.graph(
        "POST", "/subscriptions", token, _subscription(receiver, changeType="created")
    )
    _, second, _ = await emulator.graph(
        "POST", "/subscriptions", token, _subscription(receiver, changeType="created")
    )
    _, created, _ = await emulator.graph("POST", "/me/events", token, _event("batched"))
    body = await receiver.next()
    assert sorted(item["subscriptionId"] for item in body["value"]) == sorted([first["id"], second["id"]])
    assert {item["resourceData"]["id"] for item in body["value"]} == {created["id"]}


async def test_a_5xx_answer_makes_graph_retry_the_notification(
    emulator: Emulator, token: str, receiver: Receiver
) -> None:
    await emulator.graph("POST", "/subscriptions", token, _subscription(receiver, changeType="created"))
    receiver.failures_to_serve = 2
    _, created, _ = await emulator.graph("POST", "/me/events", token, _event("retried"))
    body = await receiver.next()
    assert body["value"][0]["resourceData"]["id"] == created["id"]
    counters = await emulator.admin("GET", "counters")
    assert counters["notifications_sent"] == 3
