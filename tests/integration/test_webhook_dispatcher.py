"""The webhook dispatcher's sender against real receivers: Standard Webhooks signatures any
library verifies, the same ``webhook-id`` on every retry, 410 and days of failures disabling an
endpoint, no head-of-line blocking, both secrets after a rotation, unsafe destinations refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chronapilot.common.runtime import RUNTIME, Runtime
from chronapilot.common.settings import ServiceSettings, Settings, WebhookSettings
from chronapilot.common.webhooks.signing import new_secret, seal
from chronapilot.devstack.processes import free_port
from chronapilot.webhook_dispatcher.app import create_app

from helpers import eventually
from webhook_harness import Receiver, add_endpoint, add_ping, receiving

pytestmark = pytest.mark.integration

APP = "app_1"


@asynccontextmanager
async def dispatcher(isolated, **webhooks: object) -> AsyncIterator[Runtime]:
    base = isolated.settings()
    options: dict[str, object] = {
        "webhook_retry_schedule": "0.2s,0.2s,0.2s",
        "webhook_poll_interval_s": 0.05,
        "webhook_allow_private_destinations": True,
        **webhooks,
    }
    settings = Settings(
        env=base.env,
        run_dir=base.run_dir,
        mongo=base.mongo,
        kafka=base.kafka,
        service=ServiceSettings(webhook_dispatcher_port=free_port(), startup_timeout_s=20),
        webhooks=WebhookSettings(**options),  # type: ignore[arg-type]
    )
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.service.webhook_dispatcher_port).start()
    try:
        yield app[RUNTIME]
    finally:
        await runner.cleanup()


def now() -> datetime:
    return datetime.now(UTC)


async def delivery(runtime: Runtime, delivery_id: str) -> dict:
    found = await runtime.repos.webhook_deliveries.of_application(APP, delivery_id)
    assert found is not None
    return found


async def test_a_delivery_is_signed_so_the_standard_library_verifies_it_and_retries_keep_its_id(isolated):
    async with dispatcher(isolated) as runtime, receiving(Receiver(answers=[500, 500, 500])) as receiver:
        endpoint_id, secret = await add_endpoint(runtime.repos, runtime.cipher, APP, receiver.url, now=now())
        delivery_id = await add_ping(runtime.repos, APP, endpoint_id, now=now())

        async def succeeded() -> bool:
            return (await delivery(runtime, delivery_id))["status"] == "succeeded"

        await eventually(succeeded, timeout_s=20)
        assert len(receiver.received) == 4
        assert {r.webhook_id for r in receiver.received} == {"msg_" + delivery_id.removeprefix("wd_")}
        payloads = receiver.payloads(secret)  # every attempt verifies
        assert payloads[0] == payloads[-1]
        assert payloads[0]["type"] == "ping" and payloads[0]["data"]["object"]["endpoint_id"] == endpoint_id
        assert len({r.body for r in receiver.received}) == 1  # the same bytes on every attempt
        first = receiver.received[0]
        assert first.headers["Content-Type"] == "application/json"
        assert first.headers["webhook-signature"].startswith("v1,")
        with pytest.raises(WebhookVerificationError):
            Webhook(new_secret()).verify(first.body, first.headers)
        done = await delivery(runtime, delivery_id)
        assert done["attempts"] == 4 and done["last_response_status"] == 200
        assert done["next_attempt_at"] is None and done["last_error"] is None


async def test_the_schedule_runs_out_and_the_delivery_fails_with_the_last_answer(isolated):
    async with dispatcher(isolated, webhook_retry_schedule="0.1s,0.1s") as runtime:
        async with receiving(Receiver(answers=[503] * 10)) as receiver:
            endpoint_id, _ = await add_endpoint(runtime.repos, runtime.cipher, APP, receiver.url, now=now())
            delivery_id = await add_ping(runtime.repos, APP, endpoint_id, now=now())

            async def failed() -> dict | None:
                found = await delivery(runtime, delivery_id)
                return found if found["status"] == "failed" else None

            done = await eventually(failed, timeout_s=20)
        assert done["attempts"] == 3 and len(receiver.received) == 3
        assert done["last_response_status"] == 503 and done["last_error"].startswith("HTTP 503: nope")
        endpoint = await runtime.repos.webhook_endpoints.of_application(APP, endpoint_id)
        assert endpoint is not None and endpoint["failing_since"] is not None and not endpoint["disabled"]


async def test_410_disables_the_endpoint_and_ends_its_other_pending_deliveries(isolated):
    async with dispatcher(isolated) as runtime, receiving(Receiver(answers=[410])) as receiver:
        endpoint_id, _ = await add_endpoint(runtime.repos, runtime.cipher, APP, receiver.url, now=now())
        first = await add_ping(runtime.repos, APP, endpoint_id, now=now())

        async def disabled() -> dict | None:
            found = await runtime.repos.webhook_endpoints.of_application(APP, endpoint_id)
            return found if found and found["disabled"] else None

        endpoint = await eventually(disabled, timeout_s=20)
        assert endpoint["disabled_reason"] == "endpoint_gone"
        gone = await delivery(runtime, first)
        assert gone["status"] == "failed" and gone["last_response_status"] == 410 and gone["attempts"] == 1
        later = await add_ping(runtime.repos, APP, endpoint_id, now=now())

        async def ended() -> bool:
            return (await delivery(runtime, later))["status"] == "failed"

        await eventually(ended, timeout_s=20)
        # ended by the poller ("endpoint_disabled") or, when it was queued while the endpoint was
        # being disabled, by the sweep of its pending deliveries ("endpoint_disabled: endpoint_gone")
        assert (await delivery(runtime, later))["last_error"].startswith("endpoint_disabled")
        assert len(receiver.received) == 1


async def test_an_endpoint_failing_past_the_disable_window_is_disabled_as_failing(isolated):
    async with dispatcher(
        isolated, webhook_disable_after_s=0.5, webhook_retry_schedule="0.3s," * 9 + "0.3s"
    ) as runtime:
        async with receiving(Receiver(answers=[500] * 100)) as receiver:
            endpoint_id, _ = await add_endpoint(runtime.repos, runtime.cipher, APP, receiver.url, now=now())
            delivery_id = await add_ping(runtime.repos, APP, endpoint_id, now=now())

            async def disabled() -> dict | None:
                found = await runtime.repos.webhook_endpoints.of_application(APP, endpoint_id)
                return found if found and found["disabled"] else None

            endpoint = await eventually(disabled, timeout_s=20)
        assert endpoint["disabled_reason"] == "failing"

        async def ended() -> bool:  # the endpoint's pending deliveries end right after
            return (await delivery(runtime, delivery_id))["status"] == "failed"

        await eventually(ended, timeout_s=20)
        assert 2 <= len(receiver.received) <= 5


async def test_a_hanging_endpoint_holds_back_no_other_delivery(isolated):
    async with (
        dispatcher(isolated, webhook_delivery_timeout_s=5) as runtime,
        receiving(Receiver(hang=True)) as stuck,
        receiving() as healthy,
    ):
        stuck_id, _ = await add_endpoint(runtime.repos, runtime.cipher, APP, stuck.url, now=now())
        healthy_id, secret = await add_endpoint(runtime.repos, runtime.cipher, APP, healthy.url, now=now())
        for _ in range(5):
            await add_ping(runtime.repos, APP, stuck_id, now=now())
        await eventually(lambda: len(stuck.received) >= 5, timeout_s=20)
        sent = [await add_ping(runtime.repos, APP, healthy_id, now=now()) for _ in range(20)]
        await eventually(lambda: len(healthy.received) == 20, timeout_s=20)
        assert {p["data"]["object"]["endpoint_id"] for p in healthy.payloads(secret)} == {healthy_id}

        async def all_succeeded() -> bool:
            return {(await delivery(runtime, d))["status"] for d in sent} == {"succeeded"}

        await eventually(all_succeeded, timeout_s=20)  # while the stuck ones still wait for an answer
        assert len(stuck.received) == 5


async def test_after_a_rotation_both_secrets_sign_until_the_old_one_expires(isolated):
    async with dispatcher(isolated) as runtime, receiving() as receiver:
        endpoint_id, old = await add_endpoint(runtime.repos, runtime.cipher, APP, receiver.url, now=now())
        new = new_secret()
        rotated = await runtime.repos.webhook_endpoints.rotate_secret(
            APP, endpoint_id, seal(runtime.cipher, endpoint_id, new), now=now(), overlap=timedelta(hours=24)
        )
        assert rotated is not None and len(rotated["secrets"]) == 2
        await add_ping(runtime.repos, APP, endpoint_id, now=now())
        await eventually(lambda: len(receiver.received) == 1, timeout_s=20)
        got = receiver.received[0]
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        assert got.verified(old) == got.verified(new)

        expired = await runtime.repos.webhook_endpoints.rotate_secret(
            APP, endpoint_id, seal(runtime.cipher, endpoint_id, new_secret()), now=now(), overlap=timedelta(0)
        )
        assert expired is not None
        await add_ping(runtime.repos, APP, endpoint_id, now=now())
        await eventually(lambda: len(receiver.received) == 2, timeout_s=20)
        assert len(receiver.received[1].headers["webhook-signature"].split(" ")) == 1
        with pytest.raises(WebhookVerificationError):
            receiver.received[1].verified(new)


async def test_private_destinations_are_refused_at_send_time_outside_development(isolated):
    async with dispatcher(isolated, webhook_allow_private_destinations=False) as runtime:
        async with receiving() as receiver:
            by_ip, _ = await add_endpoint(
                runtime.repos, runtime.cipher, APP, f"https://127.0.0.1:{receiver.port}/hooks", now=now()
            )
            by_name, _ = await add_endpoint(
                runtime.repos, runtime.cipher, APP, f"https://localhost:{receiver.port}/hooks", now=now()
            )
            plain, _ = await add_endpoint(
                runtime.repos, runtime.cipher, APP, "http://example.com/hooks", now=now()
            )
            sent = {
                name: await add_ping(runtime.repos, APP, endpoint, now=now())
                for name, endpoint in {"ip": by_ip, "name": by_name, "plain": plain}.items()
            }

            async def attempted() -> dict | None:
                found = {name: await delivery(runtime, d) for name, d in sent.items()}
                return found if all(d["attempts"] >= 1 for d in found.values()) else None

            found = await eventually(attempted, timeout_s=20)
        assert receiver.received == []
        assert "loopback" in found["ip"]["last_error"] and found["ip"]["last_error"].startswith(
            "unsafe_destination"
        )
        assert "localhost resolves to a loopback address" in found["name"]["last_error"]
        assert "must use https" in found["plain"]["last_error"]
        assert all(d["status"] == "pending" and d["last_response_status"] is None for d in found.values())
