"""The operator CLI, ``chronapilot``, run as a process against the API, a sync worker, the
provider sandbox and the embedded MongoDB-protocol server and Kafka-protocol broker: dead
letters replayed to the group that failed, the encryption key rotated under live connections,
applications and API keys, and its errors."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY
from pydantic import SecretStr

from chronapilot.common.bus import ConsumerRunner, Envelope, Topic
from chronapilot.common.bus.catalogue import SyncKind, SyncReason, SyncRequested
from chronapilot.common.crypto import TokenCipher, generate_key_ring_text, load_or_create_dev_keys
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.settings import CryptoSettings, SyncSettings, parse_key_ring
from chronapilot.common.store.dead_letters import DeadLetters
from chronapilot.common.store.sealed import SEALED, ResealCount, Resealer
from chronapilot.common.store.webhook_endpoints import live_secrets
from chronapilot.common.webhooks.signing import unseal
from chronapilot.sync_worker.app import GROUP_SUFFIX
from chronapilot.sync_worker.app import create_app as create_worker

from api_harness import running_service, running_worker
from helpers import eventually

CLI = [sys.executable, "-m", "chronapilot.ops.cli"]
PUBLIC_URL = "https://93.184.216.34/hooks"  # an address given literally: no DNS lookup


async def cli(env: dict[str, str], *args: str, timeout_s: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def cli_json(env: dict[str, str], *args: str) -> Any:
    code, out, err = await cli(env, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("chronapilot") and "Traceback" not in err


async def status_with(http, api, key: str) -> int:
    async with http.get(f"{api.url}/v1/connections", headers={"Authorization": f"Bearer {key}"}) as response:
        return response.status


async def request_sync(api, connection_id: str) -> Envelope:
    event = SyncRequested(mode=SyncKind.FULL, reason=SyncReason.MANUAL)
    return await api.app[RUNTIME].emit(None, event, connection_id=connection_id)


async def last_synced(api, connection_id: str) -> datetime | None:
    connection = await api.app[RUNTIME].connections.get(connection_id)
    assert connection is not None
    return connection["last_synced_at"]


def replays_skipped(group: str) -> float:
    return REGISTRY.get_sample_value("chronapilot_replays_total", {"group": group, "outcome": "skipped"}) or 0


async def test_a_poison_sync_request_is_dead_lettered_then_replayed_to_the_failed_group_only(
    isolated, api, browser
):
    env = isolated.env()
    runtime = api.app[RUNTIME]
    db = runtime.store.db
    worker_group = f"{isolated.topic_prefix}.{GROUP_SUFFIX}"
    observer_group = f"observer-{uuid.uuid4().hex[:8]}"
    observed: list[str] = []

    async def observe(envelope: Envelope) -> None:
        observed.append(envelope.id)

    observer = ConsumerRunner(
        kafka=api.settings.kafka,
        group_id=observer_group,
        topics=[Topic.SYNC_REQUESTS],
        handler=observe,
        producer=runtime.producer,
        dead_letters=DeadLetters(runtime.store),
    )
    await observer.start(budget_s=20)
    observing = asyncio.create_task(observer.run())
    try:
        async with running_worker(api):
            connection_id = await browser.link_and_sync("google")
            # the data condition: a connection document that lost its provider (a bad migration)
            await db.connections.update_one(
                {"_id": connection_id}, {"$rename": {"provider": "lost_provider"}}
            )
            poison = await request_sync(api, connection_id)

            async def held() -> list[dict[str, Any]]:
                listed = await cli_json(env, "dlq", "list", "--group", worker_group, "--status", "held")
                return [d for d in listed["data"] if d["envelope_id"] == poison.id]

            [letter] = await eventually(held, timeout_s=60)
            assert letter["topic"] == f"{isolated.topic_prefix}.{Topic.SYNC_REQUESTS.value}"
            assert letter["event_type"] == "sync.requested" and letter["attempts"] == 3
            shown = await cli_json(env, "dlq", "show", letter["id"])
            assert shown["message"]["id"] == poison.id and shown["error_type"] == "KeyError"
            await eventually(lambda: poison.id in observed)

            # the cause is fixed, then the message is replayed to the worker's group only
            await db.connections.update_one(
                {"_id": connection_id}, {"$rename": {"lost_provider": "provider"}}
            )
            before = await last_synced(api, connection_id)
            skipped_before = replays_skipped(observer_group)
            replayed = await cli_json(env, "dlq", "replay", letter["id"], "--group", worker_group)
            assert replayed["replays"] == [{"id": letter["id"], "outcome": "published", "detail": ""}]

            async def handled() -> bool:
                shown = await cli_json(env, "dlq", "show", letter["id"])
                synced = await last_synced(api, connection_id)
                return shown["status"] == "replayed" and synced is not None and synced > before

            await eventually(handled, timeout_s=60)
            # the observer read the replay too (a positive marker), and did not handle it again
            await eventually(lambda: replays_skipped(observer_group) > skipped_before, timeout_s=30)
            assert observed.count(poison.id) == 1

            code, out, _ = await cli(env, "dlq", "replay", letter["id"], "--group", worker_group, "--json")
            assert code == 1 and json.loads(out)["replays"][0]["outcome"] == "not_held"
            code, out, _ = await cli(env, "dlq", "replay", letter["id"], "--group", observer_group, "--json")
            assert code == 1 and json.loads(out)["replays"][0]["outcome"] == "other_group"
            remaining = await cli_json(env, "dlq", "list", "--status", "held")
            assert remaining["data"] == []
    finally:
        await observer.stop(timeout_s=5)
        observing.cancel()


async def test_the_key_ring_rotates_under_live_connections_and_every_connection_still_syncs(
    isolated, api, browser, http
):
    runtime = api.app[RUNTIME]
    db = runtime.store.db
    async with running_worker(api):
        connections = [await browser.link_and_sync(p) for p in ("google", "microsoft", "icloud")]
    async with http.post(
        f"{api.url}/v1/webhook_endpoints",
        json={"url": PUBLIC_URL, "enabled_events": ["*"]},
        headers={**api.headers(), "Idempotency-Key": "endpoint-1"},
    ) as response:
        assert response.status == 201, await response.text()
        endpoint = await response.json()

    # key A (the ring the stack runs with) stays readable; B is added and made active
    old_key = load_or_create_dev_keys(isolated.run_dir)
    new_ring = generate_key_ring_text("k2")
    both = ",".join([new_ring, *(f"{kid}:{base64.b64encode(k).decode()}" for kid, k in old_key.items())])
    env = isolated.env(CHRONAPILOT_ENCRYPTION_KEYS=both, CHRONAPILOT_ENCRYPTION_ACTIVE_KEY_ID="k2")

    dry = await cli_json(env, "credentials", "reseal", "--dry-run")
    counted = {c["collection"]: c for c in dry["collections"]}
    assert counted["credentials"]["resealed"] == len(connections)
    assert counted["webhook_endpoints"]["resealed"] == 1
    assert counted["idempotency_keys"]["resealed"] == 1
    assert counted["oauth_states"]["resealed"] >= 2  # the Google and Microsoft consent sessions
    done = await cli_json(env, "credentials", "reseal")
    assert done["failed"] == 0 and done["active_key_id"] == "k2"
    assert {c["collection"]: c["resealed"] for c in done["collections"]} == {
        name: c["resealed"] for name, c in counted.items()
    }
    again = await cli_json(env, "credentials", "reseal", "--dry-run")
    assert all(c["resealed"] == 0 and c["failed"] == 0 for c in again["collections"])

    # the ring without A opens everything
    only_new = TokenCipher(parse_key_ring(new_ring.split(":", 1)[0] + ":" + new_ring.split(":", 1)[1]))
    for stored in await db.credentials.find({}).to_list():
        sealed = [stored[f] for f in ("access_token", "refresh_token", "password") if stored.get(f)]
        assert sealed
        for value in sealed:
            assert only_new.key_id_of(value) == "k2"
            only_new.decrypt(value, associated_data=stored["_id"])
    raw_endpoint = await db.webhook_endpoints.find_one({"_id": endpoint["id"]})
    [secret] = live_secrets(raw_endpoint, datetime.now(UTC))
    assert unseal(only_new, endpoint["id"], secret["secret"]) == endpoint["secret"]
    [answer] = await db.idempotency_keys.find({}).to_list()
    assert json.loads(only_new.decrypt(answer["body"], associated_data=answer["_id"]))["id"] == endpoint["id"]

    # a sync worker that holds only the new key syncs every connection
    crypto = CryptoSettings(encryption_keys=SecretStr(new_ring))
    sync = SyncSettings(polling_enabled=False, backoff_s=0.05)
    async with running_service(api, create_worker, "sync_worker_port", sync=sync, crypto=crypto):
        before = {c: await last_synced(api, c) for c in connections}
        for connection_id in connections:
            await request_sync(api, connection_id)

        async def all_synced() -> bool:
            for connection_id in connections:
                connection = await runtime.connections.get(connection_id)
                assert connection is not None
                if connection["status"] != "active" or connection["last_synced_at"] <= before[connection_id]:
                    return False
            return True

        await eventually(all_synced, timeout_s=90)


async def test_a_reseal_that_races_a_token_refresh_keeps_the_refreshed_token(isolated, api, browser):
    runtime = api.app[RUNTIME]
    async with running_worker(api):
        connection_id = await browser.link_and_sync("google")
    old = runtime.cipher  # the stack's ring: A active
    ring = {
        "k2": parse_key_ring(generate_key_ring_text("k2"))["k2"],
        **load_or_create_dev_keys(isolated.run_dir),
    }
    cipher = TokenCipher(ring, "k2")
    spec = next(s for s in SEALED if s.name == "credentials")
    read = await runtime.store.db.credentials.find_one({"_id": connection_id}, spec.projection())
    snapshot = await runtime.store.db.credentials.find_one({"_id": connection_id})

    # a refresher still on the old settings stores new tokens after the re-seal read the document
    stored = await runtime.repos.credentials.store_refreshed(
        connection_id,
        version=snapshot["version"],
        access_token=old.encrypt("refreshed-access-token", associated_data=connection_id),
        refresh_token=snapshot["refresh_token"],
        access_expires_at=snapshot["access_expires_at"],
        scopes=None,
        now=datetime.now(UTC),
    )
    assert stored
    count = ResealCount("credentials")
    await Resealer(runtime.store, cipher).reseal_document(spec, read, count)
    assert (count.conflicts, count.resealed, count.failed) == (1, 1, 0)
    after = await runtime.store.db.credentials.find_one({"_id": connection_id})
    assert cipher.key_id_of(after["access_token"]) == "k2"
    assert cipher.decrypt(after["access_token"], associated_data=connection_id) == "refreshed-access-token"
    assert after["version"] == snapshot["version"] + 1  # the re-seal moved no version


async def test_an_operator_manages_applications_and_api_keys(isolated, api, http):
    env = isolated.env()
    created = await cli_json(
        env, "apps", "create", "--name", "Acme", "--return-url-prefix", "https://acme.example/cb/"
    )
    app_id, first = created["application_id"], created["api_key"]
    first_id = created["application"]["api_keys"][0]["id"]
    assert await status_with(http, api, first) == 200

    listed = await cli_json(env, "apps", "list")
    [mine] = [a for a in listed["data"] if a["id"] == app_id]
    assert [(k["id"], k["status"]) for k in mine["api_keys"]] == [(first_id, "active")]
    assert first not in json.dumps(listed)  # a key is shown once, at creation

    second = await cli_json(env, "keys", "create", app_id)
    assert await status_with(http, api, second["api_key"]) == 200
    revoked = await cli_json(env, "keys", "revoke", second["key"]["id"])
    assert revoked["key"]["status"] == "revoked"

    async def refused(key: str) -> bool:
        return await status_with(http, api, key) == 401

    await eventually(lambda: refused(second["api_key"]), timeout_s=20)
    assert await status_with(http, api, first) == 200

    graced = await cli_json(env, "keys", "rotate", app_id, "--grace", "1h")
    assert [(k["id"], k["status"]) for k in graced["retired"]] == [(first_id, "retiring")]
    assert await status_with(http, api, graced["api_key"]) == 200
    assert await status_with(http, api, first) == 200  # still working during the grace period

    rotated = await cli_json(env, "keys", "rotate", app_id)
    assert {k["id"] for k in rotated["retired"]} == {first_id, graced["key"]["id"]}
    assert all(k["status"] == "revoked" for k in rotated["retired"])
    await eventually(lambda: refused(first), timeout_s=20)
    await eventually(lambda: refused(graced["api_key"]), timeout_s=20)
    assert await status_with(http, api, rotated["api_key"]) == 200

    code, out, err = await cli(env, "keys", "rotate", app_id)
    assert code == 0 and "shown once" in out and err == ""


async def test_cli_errors_are_one_line_with_an_exit_code_that_says_what_went_wrong(isolated, store):
    env = isolated.env()
    not_found = (
        ("dlq", "show", "dlq_missing"),
        ("keys", "revoke", "key_missing"),
        ("keys", "create", "app_x"),
    )
    usage = (("frobnicate",), ("dlq", "replay", "dlq_1"), ("keys", "rotate", "app_x", "--grace", "soon"), ())
    answers = await asyncio.gather(*(cli(env, *args) for args in (*not_found, *usage)))
    for args, (code, out, err) in zip((*not_found, *usage), answers, strict=True):
        assert (code, out) == (1 if args in not_found else 2, "") and one_line(err), (args, err)
        assert args not in not_found or "not found" in err

    code, _, err = await cli({**env, "MONGODB_URI": "not a uri"})
    assert code == 2
    code, _, err = await cli({**env, "MONGODB_URI": "not a uri"}, "outbox", "status")
    assert code == 2 and one_line(err) and "MONGODB_URI" in err
    unreachable = {**env, "MONGODB_URI": "mongodb://127.0.0.1:9/?directConnection=true"}
    code, _, err = await cli(
        {
            **unreachable,
            "CHRONAPILOT_MONGODB_TIMEOUT_S": "0.5",
            "CHRONAPILOT_MONGODB_OPERATION_TIMEOUT_S": "1",
        },
        "outbox",
        "status",
    )
    assert code == 1 and one_line(err) and "cannot reach MongoDB" in err

    assert await cli_json(env, "dlq", "list") == {"object": "list", "data": []}
    status = await cli_json(env, "outbox", "status")
    assert status["unsent"] == 0 and status["oldest_unsent_at"] is None
    code, out, err = await cli(env, "--help")
    assert code == 0 and "credentials" in out and "dlq" in out


async def test_an_operator_inspects_a_connection_by_e_mail_and_resyncs_it(isolated, api, browser):
    env = isolated.env()
    async with running_worker(api):
        connection_id = await browser.link_and_sync("google")
        connection = await api.app[RUNTIME].connections.get(connection_id)
        assert connection is not None
        email = connection["email"]

        story = await cli_json(env, "connections", "inspect", email.upper())  # any case
        assert story["connection"]["id"] == connection_id
        assert story["connection"]["status"] == "active" and story["connection"]["provider"] == "google"
        assert [entry["status"] for entry in story["history"]] == ["active"]
        assert story["calendars"] and all(c["sync_status"] == "ok" for c in story["calendars"])
        assert story["credentials"]["held"] is True and story["teardown_incomplete"] is False
        text = json.dumps(story)
        assert "refresh_token" not in text and "access_token" not in text  # never a secret
        code, out, _ = await cli(env, "connections", "inspect", connection_id)
        assert code == 0 and connection_id in out and "history (newest first):" in out

        before = await last_synced(api, connection_id)
        assert await cli_json(env, "connections", "resync", connection_id) == {
            "connection_id": connection_id,
            "done": True,
            "outcome": "requested",
            "message": "A full sync was requested.",
        }

        async def synced_again() -> bool:
            after = await last_synced(api, connection_id)
            return after is not None and before is not None and after > before

        await eventually(synced_again, timeout_s=60)
        code, out, _ = await cli(env, "connections", "resync", connection_id, "--json")
        assert code == 1 and json.loads(out)["outcome"] == "rate_limited"  # once a minute
        code, out, _ = await cli(env, "connections", "teardown", connection_id, "--json")
        assert code == 1 and json.loads(out)["outcome"] == "not_disconnected"

    code, out, err = await cli(env, "connections", "inspect", "nobody@example.com")
    assert code == 1 and out == "" and one_line(err) and "not found" in err
    code, _, err = await cli(env, "connections", "resync", "con_00000000000000000000000000")
    assert code == 1 and one_line(err)
