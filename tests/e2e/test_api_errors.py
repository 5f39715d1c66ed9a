"""Bad input anywhere gets the error envelope with the right 4xx, a code and the param."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from chronapilot.api.idempotency import fingerprint
from chronapilot.common.runtime import RUNTIME

from api_harness import start_api

pytestmark = pytest.mark.e2e


async def call(browser, method, path, *, headers=None, **kwargs):
    headers = browser.api.headers() if headers is None else headers
    async with browser.http.request(method, browser.api.url + path, headers=headers, **kwargs) as response:
        body = await response.json()
        return response.status, body, response.headers


def assert_error(status, body, expected_status, code, param=None):
    assert status == expected_status, body
    assert set(body) == {"error"}
    assert body["error"]["code"] == code, body
    assert body["error"]["type"]
    assert body["error"]["message"]
    if param is not None:
        assert body["error"]["param"] == param


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "param"),
    [
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "json_invalid", None),
        ({"data": b"[1, 2]", "headers": {"Content-Type": "application/json"}}, 400, "json_invalid", None),
        (
            {"data": b"provider=google", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            415,
            "content_type_invalid",
            None,
        ),
        (
            {"json": {"provider": "yahoo", "user_id": "usr_" + "0" * 26, "return_url": "https://x/"}},
            400,
            "parameter_invalid",
            "provider",
        ),
        (
            {"json": {"provider": "google", "user_id": 42, "return_url": "https://x/"}},
            400,
            "parameter_invalid",
            "user_id",
        ),
        ({"json": {"provider": "google", "return_url": "https://x/"}}, 400, "parameter_missing", "user_id"),
        (
            {
                "json": {
                    "provider": "google",
                    "user_id": "usr_" + "0" * 26,
                    "return_url": "https://x/",
                    "colour": "red",
                }
            },
            400,
            "parameter_unknown",
            "colour",
        ),
        (
            {
                "json": {
                    "provider": "google",
                    "user_id": "usr_" + "0" * 26,
                    "return_url": "https://x/",
                    "scopes": ["calendar.delete"],
                }
            },
            400,
            "parameter_invalid",
            "scopes.0",
        ),
        (
            {"json": {"provider": "google", "user_id": "usr_" + "0" * 26, "return_url": "x" * 5000}},
            400,
            "parameter_invalid",
            "return_url",
        ),
        (
            {"data": b'{"a": "' + b"x" * 70_000 + b'"}', "headers": {"Content-Type": "application/json"}},
            413,
            "body_too_large",
            None,
        ),
    ],
)
async def test_bad_bodies_get_the_envelope(browser, kwargs, status, code, param):
    headers = {**browser.api.headers(), **kwargs.pop("headers", {})}
    got_status, body, _ = await call(browser, "POST", "/v1/connections/start", headers=headers, **kwargs)
    assert_error(got_status, body, status, code, param)


@pytest.mark.parametrize(
    ("path", "status", "code", "param"),
    [
        ("/v1/connections/not-an-id", 400, "parameter_invalid", "id"),
        ("/v1/connections/usr_" + "0" * 26, 400, "parameter_invalid", "id"),
        ("/v1/connections/con_" + "0" * 26, 404, "resource_missing", "id"),
        ("/v1/users/usr_" + "0" * 26, 404, "resource_missing", "id"),
        ("/v1/connections?limit=0", 400, "parameter_invalid", "limit"),
        ("/v1/connections?limit=abc", 400, "parameter_invalid", "limit"),
        ("/v1/connections?provider=yahoo", 400, "parameter_invalid", "provider"),
        ("/v1/connections?status=asleep", 400, "parameter_invalid", "status"),
        ("/v1/connections?colour=red", 400, "parameter_unknown", "colour"),
        ("/v1/connections?limit=1&limit=2", 400, "parameter_invalid", "limit"),
        ("/v1/connections/con_" + "0" * 26 + "?expand[]=events", 400, "parameter_invalid", None),
        ("/v1/nothing-here", 404, "route_not_found", None),
    ],
)
async def test_bad_paths_and_queries_get_the_envelope(browser, path, status, code, param):
    got_status, body, _ = await call(browser, "GET", path)
    assert_error(got_status, body, status, code, param)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "api_key_missing"),
        ({"Authorization": "Bearer cpk_test_wrong"}, "api_key_invalid"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "api_key_invalid"),
        ({"Authorization": "Bearer "}, "api_key_invalid"),
    ],
)
async def test_a_missing_or_wrong_api_key_is_401(browser, headers, code):
    status, body, response_headers = await call(browser, "GET", "/v1/connections", headers=headers)
    assert_error(status, body, 401, code)
    assert body["error"]["type"] == "authentication_error"
    assert response_headers["WWW-Authenticate"] == "Bearer"


async def test_a_wrong_method_is_405_in_the_envelope(browser):
    status, body, headers = await call(browser, "PUT", "/v1/connections")
    assert_error(status, body, 405, "method_not_allowed")
    assert headers["Allow"] == "GET"


@pytest.mark.parametrize("method", ["OPTIONS", "GET", "DELETE"])
async def test_a_405_allows_the_methods_of_the_path_asked_not_of_a_template_it_also_fits(browser, method):
    # /v1/connections/start also fits /v1/connections/{id} (GET, DELETE): those are not its methods
    status, body, headers = await call(browser, method, "/v1/connections/start")
    assert_error(status, body, 405, "method_not_allowed")
    assert headers["Allow"] == "POST"


@pytest.mark.parametrize("key", ["", "café", "a\tb", "x" * 256])
async def test_an_idempotency_key_outside_1_to_255_visible_ascii_characters_is_400(browser, key):
    headers = {**browser.api.headers(), "Idempotency-Key": key}
    status, body, _ = await call(browser, "POST", "/v1/users", headers=headers, json={})
    assert_error(status, body, 400, "parameter_invalid", "Idempotency-Key")


async def test_users_are_created_listed_and_paginated_newest_first(browser):
    ids = [await browser.create_user(f"ext-{n}") for n in range(5)]
    status, first, _ = await call(browser, "GET", "/v1/users?limit=2")
    assert status == 200
    assert first["object"] == "list"
    assert first["url"] == "/v1/users"
    assert [u["id"] for u in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    _, second, _ = await call(browser, "GET", f"/v1/users?limit=2&starting_after={ids[3]}")
    assert [u["id"] for u in second["data"]] == [ids[2], ids[1]]
    _, back, _ = await call(browser, "GET", f"/v1/users?limit=2&ending_before={ids[2]}")
    assert [u["id"] for u in back["data"]] == [ids[4], ids[3]]
    _, by_external, _ = await call(browser, "GET", "/v1/users?external_id=ext-3")
    assert [u["id"] for u in by_external["data"]] == [ids[3]]


async def test_an_idempotency_key_replays_the_first_answer(browser):
    headers = {**browser.api.headers(), "Idempotency-Key": "create-user-1"}
    first = await call(browser, "POST", "/v1/users", headers=headers, json={"external_id": "a"})
    second = await call(browser, "POST", "/v1/users", headers=headers, json={"external_id": "a"})
    assert first[0] == second[0] == 201
    assert first[1] == second[1]
    assert second[2]["Idempotent-Replayed"] == "true"
    other = await call(browser, "POST", "/v1/users", headers=headers, json={"external_id": "b"})
    assert_error(other[0], other[1], 400, "idempotency_key_reused", "Idempotency-Key")


@pytest.mark.parametrize("written_by", ["locking", "pre-lock"])
async def test_a_request_that_died_holding_its_idempotency_key_is_retried_once_its_lock_runs_out(
    browser, written_by
):
    """The record a crashed request leaves behind (the process died before answering; written
    by this version, or by one before the lock): the same request is refused with 409 while the
    lock holds, and runs once it has run out."""
    api = browser.api
    db = api.app[RUNTIME].store.db
    body = json.dumps({"external_id": "crashed"}).encode()
    headers = {**api.headers(), "Idempotency-Key": "k-crash", "Content-Type": "application/json"}
    record_id = f"{api.application_id}:k-crash"
    now = datetime.now(UTC)
    left_behind = {
        "_id": record_id,
        "fingerprint": fingerprint("POST", "/v1/users", body),
        "status": None,
        "body": None,
        "created_at": now,
        "expires_at": now + timedelta(hours=24),
    }
    if written_by == "locking":
        left_behind |= {"owner": "a-process-that-died", "locked_until": now + timedelta(seconds=60)}
    await db.idempotency_keys.insert_one(left_behind)

    status, error, answered = await call(browser, "POST", "/v1/users", headers=headers, data=body)
    assert_error(status, error, 409, "idempotency_request_in_progress")
    assert 50 <= int(answered["Retry-After"]) <= 60
    assert await db.users.count_documents({"external_id": "crashed"}) == 0

    # the lock runs out: moved into the past rather than waited for
    past = now - timedelta(seconds=61)
    lock_field = "locked_until" if written_by == "locking" else "created_at"
    await db.idempotency_keys.update_one({"_id": record_id}, {"$set": {lock_field: past}})
    first = await call(browser, "POST", "/v1/users", headers=headers, data=body)
    assert first[0] == 201, first[1]
    replay = await call(browser, "POST", "/v1/users", headers=headers, data=body)
    assert (replay[0], replay[1]) == (201, first[1])
    assert replay[2]["Idempotent-Replayed"] == "true"
    assert await db.users.count_documents({"external_id": "crashed"}) == 1
    stored = await db.idempotency_keys.find_one({"_id": record_id})
    assert stored["status"] == 201 and stored["owner"] != "a-process-that-died"


async def test_refresh_is_202_then_429_with_retry_after_and_409_once_disconnected(browser):
    user_id = await browser.create_user()
    connection_id = (await browser.connect("google", user_id))["connection_id"][0]
    path = f"/v1/connections/{connection_id}/refresh"
    status, body, _ = await call(browser, "POST", path)
    assert status == 202
    assert body["id"] == connection_id
    status, body, headers = await call(browser, "POST", path)
    assert_error(status, body, 429, "rate_limited")
    assert 1 <= int(headers["Retry-After"]) <= 60
    await call(browser, "DELETE", f"/v1/connections/{connection_id}")
    status, body, _ = await call(browser, "POST", path)
    assert_error(status, body, 409, "connection_disconnected")


async def test_the_refresh_rate_limit_holds_across_api_processes(browser, isolated, sandbox):
    user_id = await browser.create_user()
    connection_id = (await browser.connect("microsoft", user_id))["connection_id"][0]
    runner, second_api = await start_api(isolated, sandbox)
    try:
        urls = [browser.api.url, second_api.url] * 5

        async def hit(url):
            async with browser.http.post(
                f"{url}/v1/connections/{connection_id}/refresh", headers=browser.api.headers()
            ) as response:
                return response.status

        statuses = await asyncio.gather(*(hit(u) for u in urls))
    finally:
        await runner.cleanup()
    assert sorted(statuses) == [202] + [429] * 9
    db = browser.api.app[RUNTIME].store.db
    manual = await db.outbox.count_documents(
        {"envelope.connection_id": connection_id, "envelope.data.reason": "manual"}
    )
    assert manual == 1


async def test_a_request_line_over_the_http_servers_limit_is_the_documented_plain_text_400(browser):
    url = f"{browser.api.url}/v1/connections?starting_after={'x' * 9000}"
    async with browser.http.get(url, headers=browser.api.headers()) as response:
        assert response.status == 400
        assert response.content_type == "text/plain"
    async with browser.http.get(f"{browser.api.url}/v1/openapi.json") as response:
        document = await response.json()
    documented = document["paths"]["/v1/connections"]["get"]["responses"]["400"]
    assert set(documented["content"]) == {"application/json", "text/plain"}
    assert "8,190 bytes" in documented["description"]
