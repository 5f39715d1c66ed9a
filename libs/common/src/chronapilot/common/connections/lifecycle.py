"""The connection's state machine: its states, the reasons it is in one, and every allowed
transition (from, to, trigger, who may cause it).

The table is the contract the README's "Connection lifecycle" section documents; the
repository (:mod:`chronapilot.common.connections.store`) refuses any write it does not allow,
by making each write conditional on the current state in the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from chronapilot.common.models import Code as Code
from chronapilot.common.models import ConnectionStatus
from chronapilot.common.models.connection import CODE_MEANINGS as CODE_MEANINGS
from chronapilot.common.models.connection import ERROR_CODES as ERROR_CODES

ACTIVE = ConnectionStatus.ACTIVE.value
ERROR = ConnectionStatus.ERROR.value
DISCONNECTED = ConnectionStatus.DISCONNECTED.value


#: Error codes the schedule heals by itself (everything but ``reauth_required``).
RETRYABLE: frozenset[str] = frozenset({Code.TOKEN_REFRESH_FAILED, Code.SYNC_FAILED})


@dataclass(frozen=True)
class Transition:
    name: str
    sources: tuple[str, ...]  # "new" for a connection that does not exist yet
    target: str
    trigger: str
    actor: str


TRANSITIONS: tuple[Transition, ...] = (
    Transition("activate", ("new",), ACTIVE, "consent callback / iCloud form accepted", "api"),
    Transition(
        "relink", (ACTIVE, ERROR, DISCONNECTED), ACTIVE, "consent again for the same provider account", "api"
    ),
    Transition("disconnect", (ACTIVE, ERROR), DISCONNECTED, "`DELETE /v1/connections/{id}`", "api"),
    Transition(
        "reauth_required",
        (ACTIVE, ERROR),
        ERROR,
        "refresh `invalid_grant`; 401 after a forced refresh; Graph 403 on the account; CalDAV 401",
        "token-refresher, sync-worker, webhook-gateway",
    ),
    Transition(
        "token_refresh_failed",
        (ACTIVE,),
        ERROR,
        "transient refresh failures reached `CHRONAPILOT_TOKEN_FAILURE_THRESHOLD`",
        "token-refresher",
    ),
    Transition(
        "sync_failed",
        (ACTIVE, ERROR),
        ERROR,
        "a sync failed after its retries (an `error` keeps a `reauth_required` code)",
        "sync-worker",
    ),
    Transition(
        "recovered",
        (ERROR,),
        ACTIVE,
        "a successful sync or token refresh while the error is retryable",
        "sync-worker, token-refresher",
    ),
    Transition(
        "sync_mode",
        (ACTIVE, ERROR),
        "(same)",
        "subscriptions cover every synced calendar (`realtime`) or not (`polling`)",
        "webhook-gateway",
    ),
)


def transition_table_markdown() -> str:
    """The table as the README shows it (a test keeps the README in step)."""
    rows = ["| transition | from | to | trigger | caused by |", "| --- | --- | --- | --- | --- |"]
    for t in TRANSITIONS:
        sources = ", ".join(f"`{s}`" if s != "new" else "(new)" for s in t.sources)
        target = f"`{t.target}`" if not t.target.startswith("(") else t.target
        rows.append(f"| `{t.name}` | {sources} | {target} | {t.trigger} | {t.actor} |")
    return "\n".join(rows)


def codes_markdown() -> str:
    rows = ["| code | meaning |", "| --- | --- |"]
    rows += [f"| `{code.value}` | {meaning} |" for code, meaning in CODE_MEANINGS.items()]
    return "\n".join(rows)
