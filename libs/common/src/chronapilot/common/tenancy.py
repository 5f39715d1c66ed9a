"""Applications (tenants) and their API keys: what the API authenticates with and what the
operator CLI (``chronapilot apps|keys``) manages.

A key is shown once, when created, and stored only as its SHA-256; the caller presents it as
``Authorization: Bearer cpk_…``. Keys are 192 random bits, so a fast hash is the right tool
(there is nothing to brute-force).

A key works until its ``revoked_at``: unset, it works; in the past, it is revoked. A rotation
with a grace period sets ``revoked_at`` ahead, so the old key keeps working until then while
clients move to the new one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

from chronapilot.common.clock import Clock, aware
from chronapilot.common.errors import InvalidRequest, NotFound
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
    now = clock.now()
    api_key, key = _issue(live, now)
    application = Application(
        id=new_id("app"),
        name=name,
        api_keys=[api_key],
        return_url_prefixes=[validate_prefix(p) for p in return_url_prefixes],
        created_at=now,
    )
    await applications.create(application)
    return application, key


def _issue(live: bool, now: datetime) -> tuple[ApiKey, str]:
    key = new_key(live)
    return ApiKey(id=new_id("key"), hash=hash_key(key), prefix=key[:12], created_at=now), key


def key_works(api_key: ApiKey, now: datetime) -> bool:
    """Whether ``api_key`` authenticates at ``now`` (not revoked, or revoked only later)."""
    return api_key.revoked_at is None or aware(api_key.revoked_at) > now


async def application_for_key(
    applications: Applications, key: str, now: datetime | None = None
) -> Application | None:
    """The application whose working key ``key`` is (None: unknown, or revoked)."""
    application = await applications.by_key_hash(hash_key(key))
    if application is None:
        return None
    at = now or datetime.now(tz=UTC)
    live = [k for k in application.api_keys if k.hash == hash_key(key) and key_works(k, at)]
    return application if live else None


async def create_key(
    applications: Applications, application_id: str, *, live: bool, clock: Clock
) -> tuple[ApiKey, str]:
    """A new API key for the application (the key is returned once); raises :class:`NotFound`."""
    api_key, key = _issue(live, clock.now())
    if not await applications.add_key(application_id, api_key):
        raise NotFound(f"no application {application_id}")
    return api_key, key


async def revoke_key(applications: Applications, key_id: str, *, clock: Clock) -> Application:
    """Revoke the key ``key_id`` now (a key already revoked keeps its earlier time, one retiring
    after a grace period stops now); the
    application it belongs to. Raises :class:`NotFound`."""
    application = await applications.revoke_key(key_id, at=clock.now())
    if application is None:
        raise NotFound(f"no API key {key_id}")
    return application


async def rotate_keys(
    applications: Applications,
    application_id: str,
    *,
    live: bool,
    clock: Clock,
    grace: timedelta = timedelta(0),
    key_id: str | None = None,
) -> tuple[ApiKey, str, list[ApiKey]]:
    """Issue a new key and retire the old one (``key_id``) or, without it, every key that works
    now: revoked at once, or after ``grace`` (both work meanwhile). Returns the new key, its
    secret (shown once) and the retired keys as they now are. Raises :class:`NotFound`."""
    now = clock.now()
    application = await applications.by_id(application_id)
    if application is None:
        raise NotFound(f"no application {application_id}")
    old = [k for k in application.api_keys if key_works(k, now) and (key_id is None or k.id == key_id)]
    if key_id is not None and not old:
        raise NotFound(f"no working API key {key_id} in application {application_id}")
    api_key, key = _issue(live, now)
    if not await applications.add_key(application_id, api_key):
        raise NotFound(f"no application {application_id}")
    retired: list[ApiKey] = []
    for previous in old:
        updated = await applications.revoke_key(previous.id, at=now + grace)
        if updated is not None:
            retired.extend(k for k in updated.api_keys if k.id == previous.id)
    return api_key, key, retired
