"""structlog set-up: JSON lines on stdout, context ids bound, secrets redacted.

Every log line, ChronaPilot's own and those of the libraries (aiohttp's access log, aiokafka,
pymongo), goes through the same processor chain, so :func:`redact_secrets` sees all of it.
Bind per-request or per-message context with :func:`bind_context` (``request_id``,
``connection_id``, …); it is carried by ``contextvars`` across awaits.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"

#: Keys whose values are secrets wherever they appear (matched case-insensitively, as a whole
#: key or as a ``_``/``-`` separated part of one: ``refresh_token``, ``X-Api-Key``, ``clientState``).
_SECRET_KEY = re.compile(
    r"(^|[_\-.])("
    r"access[_\-]?token|refresh[_\-]?token|id[_\-]?token|token|tokens|secret|client[_\-]?secret|"
    r"password|passwd|app[_\-]?password|api[_\-]?key|apikey|authorization|cookie|set[_\-]?cookie|"
    r"code|auth[_\-]?code|code[_\-]?verifier|client[_\-]?state|clientstate|validation[_\-]?token|"
    r"encryption[_\-]?keys|private[_\-]?key|ciphertext|x[_\-]goog[_\-]channel[_\-]token"
    r")$",
    re.IGNORECASE,
)

#: Secrets embedded in free text (query strings, headers rendered as text, JSON fragments),
#: each with its replacement.
_SECRET_IN_TEXT: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+"), rf"\1 {REDACTED}"),
    (
        re.compile(
            r"(?i)\b((?:access_token|refresh_token|id_token|code|code_verifier|client_secret|"
            r"password|api_key|apikey|token|validationToken|clientState)=)[^&\s\"']+"
        ),
        rf"\1{REDACTED}",
    ),
    (
        re.compile(
            r"(?i)(\"(?:access_token|refresh_token|id_token|code|client_secret|password|api_key|"
            r"token|clientState|authorization)\"\s*:\s*\")[^\"]*"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"\bcpk_[A-Za-z0-9_\-]{8,}"), REDACTED),
]


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


def redact_text(text: str) -> str:
    """Mask secrets inside a free-text string (URLs, rendered headers, JSON fragments)."""
    for pattern, replacement in _SECRET_IN_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _redact_item(key: object, value: Any) -> Any:
    if _is_secret_key(key) and value not in (None, ""):
        return REDACTED
    return redact(value)


def redact(value: Any) -> Any:
    """Return ``value`` with every secret masked, recursing into mappings and sequences."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: _redact_item(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item) for item in value]
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets in every key and value of the event."""
    return {key: _redact_item(key, value) for key, value in event_dict.items()}


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]


def configure_logging(level: str = "INFO", fmt: str = "json", service: str | None = None) -> None:
    """Route structlog and the standard library's logging through one redacting chain."""
    renderer: Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "pymongo"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    structlog.contextvars.clear_contextvars()
    if service:
        structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A logger; bind context with :func:`bind_context` rather than passing ids around."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


@contextmanager
def bind_context(**ids: Any) -> Iterator[None]:
    """Bind ``request_id``, ``connection_id``, … for the duration of the block."""
    tokens = structlog.contextvars.bind_contextvars(**ids)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
