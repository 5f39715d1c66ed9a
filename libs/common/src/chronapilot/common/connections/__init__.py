"""The connection's one owner: its state machine (:mod:`.lifecycle`) and the only writer of
the ``connections`` collection (:mod:`.store`)."""

from chronapilot.common.connections.lifecycle import (
    CODE_MEANINGS,
    ERROR_CODES,
    RETRYABLE,
    TRANSITIONS,
    Code,
    Transition,
)
from chronapilot.common.connections.store import HISTORY_LIMIT, Connections, retryable_error

__all__ = [
    "CODE_MEANINGS",
    "ERROR_CODES",
    "HISTORY_LIMIT",
    "RETRYABLE",
    "TRANSITIONS",
    "Code",
    "Connections",
    "Transition",
    "retryable_error",
]
