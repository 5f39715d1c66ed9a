"""Applications (tenants) and their API keys.

A key is shown once, when created, and stored only as its SHA-256; the caller presents it as
``Authorization: Bearer cpk_…``. Keys are 192 random bits, so a fast hash is the right tool
(there is nothing to brute-force).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from urllib.parse import unquote, urlsplit

from chronapilot.common.clock import Clock
from chronapilot.common.errors import InvalidRequest
from chronapilot.common.ids import new_id
from chronapilot.common.models import ApiKey, Application
from chronapilot.common.store.applications import Applications


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(live: bool) -> str:
    return f"cpk_{'live' if live else 'test'}_{secrets.token_urlsafe(24)}"


_SEGMENT_SEPARATORS = re.compile(r"[/\\]")  # browsers read "\\" as "/" in http(s) URLs
_DOT_SEGMENTS = frozenset({".", ".."})


def has_dot_segments(path: str) -> bool:
    """True when ``path`` has a ``.`` or ``..`` segment, also percent-encoded (``%2e%2e``, or
    encoded again) or separated by ``%2f`` or a backslash: a browser or server resolves those
    (``/cb/../../other`` is ``/other``), so a path prefix check passed by the text would not
    hold for where the browser goes."""
    decoded = path
    for _ in range(4):  # %2e, %252e, …: decoded until it stops changing
        again = unquote(decoded)
        if again == decoded:
            break
        decoded = again
    return any(segment in _DOT_SEGMENTS for segment in _SEGMENT_SEPARATORS.split(decoded))


def validate_prefix(prefix: str) -> str:
    parts = urlsplit(prefix)
    local = parts.hostname in {"localhost", "127.0.0.1", "::1"}
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise InvalidRequest(
            f"return URL prefix must be https (http only for localhost): {prefix}", param="return_url_prefix"
        )
    if (
        not parts.netloc
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
        or has_dot_segments(parts.path)
    ):
        raise InvalidRequest(
            f"return URL prefix must be scheme://host[:port]/path (no . or .. segments): {prefix}",
            param="return_url_prefix",
        )
    return prefix


async def create_application(
    applications: Applications,
    *,
    name: str,
    return_url_prefixes: list[str],
    live: bool,
    clock: Clock,
) -> tuple[Application, str]:
    """Create an application with one API key; return it and the key (shown once)."""
    key = new_key(live)
    now = clock.now()
    application = Application(
        id=new_id("app"),
        name=name,
        api_keys=[ApiKey(id=new_id("key"), hash=hash_key(key), prefix=key[:12], created_at=now)],
        return_url_prefixes=[validate_prefix(p) for p in return_url_prefixes],
        created_at=now,
    )
    await applications.create(application)
    return application, key


async def application_for_key(applications: Applications, key: str) -> Application | None:
    application = await applications.by_key_hash(hash_key(key))
    if application is None:
        return None
    live = [k for k in application.api_keys if k.hash == hash_key(key) and k.revoked_at is None]
    return application if live else None
