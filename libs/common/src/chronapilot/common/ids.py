"""Prefixed, time-sortable, unguessable identifiers: ``con_01jd7x…``.

An id is ``<prefix>_`` followed by 26 characters of Crockford base32 (lower case): 48 bits of
milliseconds since the epoch, then 80 random bits from :mod:`secrets`. Ids made later sort
after ids made earlier (to the millisecond), and an id cannot be guessed from another.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from typing import Final

_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"
_BODY_LENGTH: Final = 26

_ID_PATTERN: Final = re.compile(rf"^([a-z]{{2,5}})_[{_ALPHABET}]{{{_BODY_LENGTH}}}$")


_last_value = 0
_lock = threading.Lock()


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    """A new id with ``prefix`` (``"con"`` → ``con_…``).

    Within one process ids are strictly increasing even inside one millisecond (the random
    part is incremented), so sorting by id is creation order.
    """
    global _last_value
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    value = (millis & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
    if now_ms is None:
        with _lock:
            if value <= _last_value:
                value = _last_value + 1
            _last_value = value
    chars = []
    for _ in range(_BODY_LENGTH):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


def id_pattern(prefix: str) -> str:
    """The regular expression of a well-formed id with ``prefix``, exactly what
    :func:`is_valid_id` accepts (for JSON Schemas and the OpenAPI document)."""
    return rf"^{prefix}_[{_ALPHABET}]{{{_BODY_LENGTH}}}$"


def is_valid_id(value: str, prefix: str) -> bool:
    """True when ``value`` is a well-formed id with ``prefix``."""
    match = _ID_PATTERN.match(value)
    return bool(match) and match is not None and match.group(1) == prefix


def id_timestamp_ms(value: str) -> int:
    """The creation time (ms since the epoch) encoded in an id."""
    number = 0
    for char in value.partition("_")[2]:
        number = number * 32 + _ALPHABET.index(char)
    return number >> 80
