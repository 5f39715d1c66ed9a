"""``/v1/webhook_endpoints`` and ``/v1/webhook_deliveries`` over HTTP against the embedded
MongoDB-protocol server and Kafka-protocol broker: an API in this process, two applications."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from chronapilot.api.app import create_app
from chronapilot.common.clock import SystemClock
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.settings import Environment
from chronapilot.common.store.webhook_endpoints import live_secrets
from chronapilot.common.tenancy import create_application
from chronapilot.common.webhooks import EVENT_TYPES
from chronapilot.common.webhooks.signing import unseal
from chronapilot.devstack.processes import free_port

#: A public address given literally: no DNS lookup in the test.
PUBLIC_URL = "https://93.184.216.34/hooks"


@dataclass
class Client:
    http: aiohttp.ClientSession
    base: str
    key: str
    application_id: str

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> tuple[int, Any, Any]:
        sent = {"Authorization": f"Bearer {key or self.key}", **(headers or {})}
        async with self.http.request(method, self.base + path, headers=sent, **kw) as response:
            return response.status, await response.json(), response.headers

    async def create(self, **body: Any) -> dict[str, Any]:
        status, created, _ = await self.call(
            "POST", "/v1/webhook_endpoints", json={"url": PUBLIC_URL, "enabled_events": ["*"], **body}
        )
        assert status == 201, created
        return dict(created)


@dataclass
class Running:
    app: web.Application
    first: Client
    second: Client

    @property
    def db(self) -> Any:
        return self.app[RUNTIME].store.db


@asynccontextmanager
async def running_api(isolated, env: Environment) -> AsyncIterator[Running]:
    port = free_port()
    settings = isolated.settings(api_port=port).model_copy(update={"env": env})
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        clients = []
        async with aiohttp.ClientSession() as http:
            for name in ("first", "second"):
                application, key = await create_application(
                    app[RUNTIME].repos.applications,
                    name=name,
                    return_url_prefixes=[],
                    live=False,
                    clock=SystemClock(),
                )
                clients.append(Client(http, f"http://127.0.0.1:{port}", key, application.id))
            yield Running(app, clients[0], clients[1])
    finally:
        await runner.cleanup()


@pytest.fixture
async def api(isolated) -> AsyncIterator[Running]:
    async with running_api(isolated, Environment.TEST) as running:
        yield running


def assert_error(status: int, body: Any, expected: int, code: str, param: str | None = None) -> None:
    assert status == expected, body
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    if param is not None:
        assert body["error"]["param"] == param, body


# -- create, read, update, delete -------------------------------------------------------------


async def test_an_endpoint_is_created_with_a_secret_shown_only_once(api):
    client = api.first
    created = await client.create(
        enabled_events=["event.created", "connection.updated"], description="orders"
    )
    assert created["id"].startswith("we_") and created["object"] == "webhook_endpoint"
    assert created["url"] == PUBLIC_URL
    assert created["enabled_events"] == ["event.created", "connection.updated"]
    assert (created["description"], created["disabled"], created["disabled_reason"]) == (
        "orders",
        False,
        None,
    )
    assert created["secret"].startswith("whsec_")
    assert created["created_at"].endswith("Z") and created["updated_at"] == created["created_at"]

    status, fetched, _ = await client.call("GET", f"/v1/webhook_endpoints/{created['id']}")
    assert status == 200
    assert "secret" not in fetched
    assert fetched == {k: v for k, v in created.items() if k != "secret"}
    status, listed, _ = await client.call("GET", "/v1/webhook_endpoints")
    assert status == 200 and all("secret" not in e for e in listed["data"])

    stored = await api.db.webhook_endpoints.find_one({"_id": created["id"]})
    sealed = stored["secrets"][0]["secret"]
    assert created["secret"] not in str(stored)  # sealed, never in the clear
    assert unseal(api.app[RUNTIME].cipher, created["id"], sealed) == created["secret"]
    assert (await api.db.applications.find_one({"_id": client.application_id}))["webhook_endpoint_count"] == 1


async def test_endpoints_are_listed_newest_first_in_pages(api):
    ids = [(await api.first.create())["id"] for _ in range(5)]
    status, first_page, _ = await api.first.call("GET", "/v1/webhook_endpoints", params={"limit": 3})
    assert status == 200
    assert first_page["object"] == "list" and first_page["url"] == "/v1/webhook_endpoints"
    assert [e["id"] for e in first_page["data"]] == ids[::-1][:3] and first_page["has_more"]
    _, rest, _ = await api.first.call(
        "GET", "/v1/webhook_endpoints", params={"limit": 3, "starting_after": ids[2]}
    )
    assert [e["id"] for e in rest["data"]] == [ids[1], ids[0]] and not rest["has_more"]


async def test_an_update_changes_only_the_fields_given(api):
    created = await api.first.create(enabled_events=["event.created"], description="old")
    path = f"/v1/webhook_endpoints/{created['id']}"
    status, updated, _ = await api.first.call(
        "PATCH", path, json={"enabled_events": ["calendar.removed", "calendar.removed"], "disabled": True}
    )
    assert status == 200, updated
    assert updated["enabled_events"] == ["calendar.removed"]
    assert updated["disabled"] is True and updated["description"] == "old" and updated["url"] == PUBLIC_URL
    assert updated["updated_at"] >= created["updated_at"] and "secret" not in updated

    status, updated, _ = await api.first.call(
        "PATCH", path, json={"description": None, "disabled": False, "url": "https://93.184.216.35/v2"}
    )
    assert status == 200, updated
    assert (updated["description"], updated["disabled"], updated["url"]) == (
        None,
        False,
        "https://93.184.216.35/v2",
    )

    status, body, _ = await api.first.call("PATCH", path, json={"url": None})
    assert_error(status, body, 400, "parameter_invalid", "url")
    status, body, _ = await api.first.call("PATCH", path, json={"url": "https://10.0.0.5/hook"})
    assert_error(status, body, 400, "url_not_public", "url")
    status, body, _ = await api.first.call("PATCH", path, json={"secret": "whsec_mine"})
    assert_error(status, body, 400, "parameter_unknown", "secret")


async def test_a_deleted_endpoint_is_gone_its_slot_freed_and_its_pending_deliveries_cancelled(api):
    created = await api.first.create()
    path = f"/v1/webhook_endpoints/{created['id']}"
    status, delivery, _ = await api.first.call("POST", f"{path}/test")
    assert status == 202

    status, deleted, _ = await api.first.call("DELETE", path)
    assert status == 200
    assert deleted["id"] == created["id"] and "secret" not in deleted
    status, body, _ = await api.first.call("GET", path)
    assert_error(status, body, 404, "resource_missing")
    status, body, _ = await api.first.call("DELETE", path)
    assert_error(status, body, 404, "resource_missing")
    assert (await api.db.applications.find_one({"_id": api.first.application_id}))[
        "webhook_endpoint_count"
    ] == 0

    stored = await api.db.webhook_deliveries.find_one({"_id": delivery["id"]})
    assert stored["status"] == "cancelled" and stored["next_attempt_at"] is None
    status, body, _ = await api.first.call("POST", f"/v1/webhook_deliveries/{delivery['id']}/retry")
    assert_error(status, body, 409, "webhook_delivery_cancelled")


# -- secrets ----------------------------------------------------------------------------------


async def test_a_rotated_secret_signs_alongside_the_old_one_for_the_overlap(api):
    created = await api.first.create()
    status, rotated, _ = await api.first.call("POST", f"/v1/webhook_endpoints/{created['id']}/rotate_secret")
    assert status == 200, rotated
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["id"] == created["id"]

    stored = await api.db.webhook_endpoints.find_one({"_id": created["id"]})
    now = api.app[RUNTIME].clock.now()
    cipher = api.app[RUNTIME].cipher
    live = [unseal(cipher, created["id"], s["secret"]) for s in live_secrets(stored, now)]
    assert live == [rotated["secret"], created["secret"]]
    overlap = api.app[RUNTIME].settings.webhooks.webhook_secret_overlap_s
    old_expiry = stored["secrets"][1]["expires_at"]
    assert abs((old_expiry - now).total_seconds() - overlap) < 60
    status, fetched, _ = await api.first.call("GET", f"/v1/webhook_endpoints/{created['id']}")
    assert "secret" not in fetched


# -- tenancy and idempotency ------------------------------------------------------------------


async def test_another_applications_endpoints_and_deliveries_are_not_found(api):
    theirs = await api.second.create()
    path = f"/v1/webhook_endpoints/{theirs['id']}"
    _, delivery, _ = await api.second.call("POST", f"{path}/test")
    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", {"description": "mine now"}),
        ("DELETE", "", None),
        ("POST", "/rotate_secret", None),
        ("POST", "/test", None),
        ("GET", "/deliveries", None),
    ]:
        status, answer, _ = await api.first.call(method, path + suffix, json=body)
        assert_error(status, answer, 404, "resource_missing")
    status, answer, _ = await api.first.call("POST", f"/v1/webhook_deliveries/{delivery['id']}/retry")
    assert_error(status, answer, 404, "resource_missing")
    status, listed, _ = await api.first.call("GET", "/v1/webhook_endpoints")
    assert listed["data"] == []
    status, still, _ = await api.second.call("GET", path)
    assert status == 200 and still["description"] is None


async def test_a_create_retried_with_its_idempotency_key_answers_the_first_result(api):
    headers = {"Idempotency-Key": "create-hook-1"}
    body = {"url": PUBLIC_URL, "enabled_events": ["event.updated"]}
    status, first, _ = await api.first.call("POST", "/v1/webhook_endpoints", json=body, headers=headers)
    assert status == 201
    status, again, replayed = await api.first.call(
        "POST", "/v1/webhook_endpoints", json=body, headers=headers
    )
    assert status == 201 and again == first and replayed["Idempotent-Replayed"] == "true"
    assert await api.db.webhook_endpoints.count_documents({"application_id": api.first.application_id}) == 1
    kept = await api.db.idempotency_keys.find_one({"_id": f"{api.first.application_id}:create-hook-1"})
    assert kept is not None and first["secret"] not in str(kept)  # the stored answer is sealed
    status, error, _ = await api.first.call(
        "POST", "/v1/webhook_endpoints", json={**body, "description": "other"}, headers=headers
    )
    assert_error(status, error, 400, "idempotency_key_reused")


# -- deliveries -------------------------------------------------------------------------------


async def test_a_test_ping_queues_a_pending_delivery_due_now(api):
    created = await api.first.create()
    status, delivery, _ = await api.first.call("POST", f"/v1/webhook_endpoints/{created['id']}/test")
    assert status == 202, delivery
    assert delivery["id"].startswith("wd_") and delivery["object"] == "webhook_delivery"
    assert delivery["webhook_id"] == "msg_" + delivery["id"].removeprefix("wd_")
    assert (delivery["event_type"], delivery["status"], delivery["attempts"]) == ("ping", "pending", 0)
    assert delivery["endpoint_id"] == created["id"] and delivery["next_attempt_at"] == delivery["created_at"]
    payload = delivery["payload"]
    assert payload["type"] == "ping" and payload["timestamp"].endswith("Z")
    assert payload["data"] == {
        "object": {"object": "ping", "endpoint_id": created["id"]},
        "updated_at": payload["timestamp"],
        "sequence": 0,
    }
    stored = await api.db.webhook_deliveries.find_one({"_id": delivery["id"]})
    assert stored["status"] == "pending" and stored["connection_id"] is None
    assert stored["next_attempt_at"] <= api.app[RUNTIME].clock.now()
    assert stored["source_id"].startswith("ping/")

    await api.first.call("PATCH", f"/v1/webhook_endpoints/{created['id']}", json={"disabled": True})
    status, body, _ = await api.first.call("POST", f"/v1/webhook_endpoints/{created['id']}/test")
    assert_error(status, body, 409, "webhook_endpoint_disabled")


async def test_deliveries_are_listed_newest_first_filtered_by_status_and_retried(api):
    created = await api.first.create()
    other = await api.first.create()
    path = f"/v1/webhook_endpoints/{created['id']}"
    ids = [(await api.first.call("POST", f"{path}/test"))[1]["id"] for _ in range(3)]
    await api.first.call("POST", f"/v1/webhook_endpoints/{other['id']}/test")
    failed = ids[0]
    await api.db.webhook_deliveries.update_one(
        {"_id": failed},
        {
            "$set": {
                "status": "failed",
                "next_attempt_at": None,
                "last_response_status": 500,
                "last_error": "HTTP 500",
            },
            "$inc": {"attempts": 8},
        },
    )

    status, listed, _ = await api.first.call("GET", f"{path}/deliveries")
    assert status == 200
    assert [d["id"] for d in listed["data"]] == ids[::-1] and listed["url"] == f"{path}/deliveries"
    _, page, _ = await api.first.call("GET", f"{path}/deliveries", params={"limit": 2})
    assert [d["id"] for d in page["data"]] == ids[::-1][:2] and page["has_more"]
    _, only_failed, _ = await api.first.call("GET", f"{path}/deliveries", params={"status": "failed"})
    [shown] = only_failed["data"]
    assert shown["id"] == failed and shown["next_attempt_at"] is None
    assert (shown["attempts"], shown["last_response_status"], shown["last_error"]) == (8, 500, "HTTP 500")
    status, body, _ = await api.first.call("GET", f"{path}/deliveries", params={"status": "lost"})
    assert_error(status, body, 400, "parameter_invalid", "status")

    status, retried, _ = await api.first.call("POST", f"/v1/webhook_deliveries/{failed}/retry")
    assert status == 202, retried
    assert retried["id"] == failed and retried["status"] == "pending" and retried["next_attempt_at"]
    assert retried["webhook_id"] == shown["webhook_id"] and retried["attempts"] == 8
    _, still_failed, _ = await api.first.call("GET", f"{path}/deliveries", params={"status": "failed"})
    assert still_failed["data"] == []
    status, body, _ = await api.first.call("POST", f"/v1/webhook_deliveries/wd_{'0' * 26}/retry")
    assert_error(status, body, 404, "resource_missing")
    status, body, _ = await api.first.call("POST", "/v1/webhook_deliveries/we_nope/retry")
    assert_error(status, body, 400, "parameter_invalid", "id")


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "param", "in_message"),
    [
        ({"url": "http://93.184.216.34/hook"}, "parameter_invalid", "url", "https"),
        ({"url": "http://localhost:4000/hook"}, "parameter_invalid", "url", "https"),
        ({"url": "https://10.0.0.5/hook"}, "url_not_public", "url", "private"),
        ({"url": "https://192.168.1.1/"}, "url_not_public", "url", "private"),
        ({"url": "https://localhost/hook"}, "url_not_public", "url", "loopback"),
        ({"url": "https://[::ffff:127.0.0.1]/"}, "url_not_public", "url", "loopback"),
        ({"url": "https://169.254.169.254/latest"}, "url_not_public", "url", "link-local"),
        ({"url": "https://no-such-host.invalid/hook"}, "url_unresolvable", "url", "resolve"),
        ({"url": "https://user:pass@93.184.216.34/"}, "parameter_invalid", "url", "credentials"),
        ({"url": "/hooks"}, "parameter_invalid", "url", "absolute"),
        ({"url": "https://93.184.216.34/" + "a" * 2048}, "parameter_invalid", "url", "2048"),
        ({"enabled_events": ["event.exploded"]}, "parameter_invalid", "enabled_events", "event.exploded"),
        ({"enabled_events": ["ping"]}, "parameter_invalid", "enabled_events", "ping"),
        ({"enabled_events": []}, "parameter_invalid", "enabled_events", "at least 1"),
        ({"enabled_events": None}, "parameter_invalid", "enabled_events", None),
        ({"description": "d" * 501}, "parameter_invalid", "description", "500"),
        ({"colour": "red"}, "parameter_unknown", "colour", None),
    ],
)
async def test_a_bad_endpoint_is_refused_with_the_error_envelope(api, body, code, param, in_message):
    full = {"url": PUBLIC_URL, "enabled_events": ["*"], **body}
    status, answer, _ = await api.first.call("POST", "/v1/webhook_endpoints", json=full)
    assert_error(status, answer, 400, code, param)
    if in_message:
        assert in_message in answer["error"]["message"], answer
    assert await api.db.webhook_endpoints.count_documents({}) == 0


async def test_every_public_event_type_may_be_subscribed(api):
    created = await api.first.create(enabled_events=list(EVENT_TYPES))
    assert created["enabled_events"] == list(EVENT_TYPES)
    assert (await api.first.create(enabled_events=["event.created", "*"]))["enabled_events"] == ["*"]


async def test_development_accepts_local_http_receivers(isolated):
    async with running_api(isolated, Environment.DEVELOPMENT) as dev:
        created = await dev.first.create(url="http://localhost:4000/hooks")
        assert created["url"] == "http://localhost:4000/hooks"
        created = await dev.first.create(url="https://10.0.0.5/hook")
        assert created["url"] == "https://10.0.0.5/hook"


# -- the cap ----------------------------------------------------------------------------------


async def test_an_application_holds_at_most_the_cap_even_when_creating_concurrently(api):
    cap = api.app[RUNTIME].settings.webhooks.webhook_max_endpoints
    assert cap == 100

    async def create_one(_: int) -> tuple[int, Any]:
        status, body, _headers = await api.first.call(
            "POST", "/v1/webhook_endpoints", json={"url": PUBLIC_URL, "enabled_events": ["*"]}
        )
        return status, body

    answers: list[tuple[int, Any]] = []
    for batch in range(6):  # 300 creations, 50 at a time
        answers += await asyncio.gather(*map(create_one, range(batch * 50, batch * 50 + 50)))
    created = [body for status, body in answers if status == 201]
    refused = [(status, body) for status, body in answers if status != 201]
    assert len(created) == cap
    assert len(refused) == 300 - cap
    for status, body in refused:
        assert_error(status, body, 400, "webhook_endpoint_limit")
        assert str(cap) in body["error"]["message"]
    assert await api.db.webhook_endpoints.count_documents({"application_id": api.first.application_id}) == cap
    assert (await api.db.applications.find_one({"_id": api.first.application_id}))[
        "webhook_endpoint_count"
    ] == cap

    status, listed, _ = await api.first.call("GET", "/v1/webhook_endpoints", params={"limit": 100})
    assert len(listed["data"]) == cap and not listed["has_more"]
    # the other application is not affected, and a deletion frees a place
    await api.second.create()
    status, _deleted, _ = await api.first.call("DELETE", f"/v1/webhook_endpoints/{created[0]['id']}")
    assert status == 200
    assert (await create_one(0))[0] == 201
    assert (await create_one(0))[0] == 400
