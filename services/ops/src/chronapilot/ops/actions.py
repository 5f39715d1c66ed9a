"""What an operator may do to one connection (the console's buttons, the CLI's commands).

- :func:`force_resync`: the API's own resync path (:mod:`chronapilot.common.resync`), with its
  once-a-minute limit.
- :func:`retry_teardown`: push a disconnected connection's unfinished disconnect saga on from
  the step it stopped at, through the saga's own mechanism (ARCHITECTURE §8): subscription
  records still held are made due for the gateway to stop; released subscriptions without a
  revocation are announced again (``connection.subscriptions_released``) for the token
  refresher, which revokes the grant and deletes the credentials. Each step is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass

from chronapilot.common.bus.catalogue import ConnectionSubscriptionsReleased
from chronapilot.common.logging import get_logger
from chronapilot.common.models import ConnectionStatus
from chronapilot.common.resync import ResyncRefused, ResyncRequested, request_resync
from chronapilot.common.runtime import Runtime

log = get_logger(__name__)


@dataclass(frozen=True)
class ActionResult:
    """``done``: whether something was started; ``outcome``: a stable word; ``message``: for people."""

    done: bool
    outcome: str
    message: str


async def force_resync(runtime: Runtime, connection_id: str) -> ActionResult:
    outcome = await request_resync(
        runtime.store, runtime.connections, runtime.outbox, runtime.clock, connection_id
    )
    if isinstance(outcome, ResyncRequested):
        log.info("ops.resync_requested", connection_id=connection_id)
        return ActionResult(True, "requested", "A full sync was requested.")
    return _refused(outcome)


def _refused(outcome: ResyncRefused) -> ActionResult:
    messages = {
        "not_found": "No such connection.",
        "disconnected": "The connection is disconnected; it is never synced again.",
        "rate_limited": f"A resync was requested less than a minute ago; retry in {outcome.retry_in_s}s.",
    }
    return ActionResult(False, outcome.reason, messages[outcome.reason])


async def retry_teardown(runtime: Runtime, connection_id: str) -> ActionResult:
    connection = await runtime.connections.get(connection_id)
    if connection is None:
        return ActionResult(False, "not_found", "No such connection.")
    if connection["status"] != ConnectionStatus.DISCONNECTED:
        return ActionResult(False, "not_disconnected", "Only a disconnected connection has a teardown.")
    if connection.get("revoked_at") is not None:
        return ActionResult(
            False, "complete", "The teardown is complete (grant revoked, credentials deleted)."
        )
    if await runtime.repos.webhook_subscriptions.exist_for(connection_id):
        await runtime.repos.webhook_subscriptions.mark_all_deleting(connection_id, now=runtime.clock.now())
        outcome = ActionResult(
            True,
            "subscriptions_due",
            "Its webhook subscriptions are due for the gateway to stop; revocation follows.",
        )
    elif (connection.get("teardown") or {}).get("subscriptions_released_at") is None:
        await runtime.connections.subscriptions_released(connection_id, stopped=0, failed=[])
        outcome = ActionResult(True, "released", "No subscription is left; the token refresher revokes next.")
    else:
        released = ConnectionSubscriptionsReleased(stopped=0, failed=0)
        await runtime.emit(None, released, connection_id=connection_id)
        outcome = ActionResult(True, "revocation_requested", "The token refresher was asked to revoke again.")
    log.info("ops.teardown_retried", connection_id=connection_id, outcome=outcome.outcome)
    return outcome
