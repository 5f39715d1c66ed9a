"""Outlook's per-mailbox limits on Graph calls, opt-in through `/_admin/settings`.

Microsoft allows an app 4 concurrent requests and 10,000 requests per 10 minutes per mailbox;
beyond either, Graph answers `429` with `Retry-After`. Both limits are off by default so that
tests elsewhere are not throttled by surprise; set `mailbox_concurrency_limit` and/or
`mailbox_requests_per_10_minutes` to turn them on. Injected faults (the shared fault registry)
are the other way to get a 429.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Awaitable, Callable

from aiohttp import web

from .context import token_key
from .errors import graph_error
from .state import state_key

WINDOW_SECONDS = 600.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MailboxLimits:
    """In-flight and recent request counts per (app, mailbox)."""

    def __init__(self) -> None:
        self.in_flight: dict[tuple[str, str], int] = defaultdict(int)
        self.recent: dict[tuple[str, str], deque[float]] = defaultdict(deque)


limits_key = web.AppKey("microsoft_mailbox_limits", MailboxLimits)


def _throttled(message: str, retry_after: int) -> web.Response:
    return graph_error(429, "ApplicationThrottled", message, headers={"Retry-After": str(retry_after)})


@web.middleware
async def mailbox_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the limits to authenticated Graph requests (install inside `bearer_auth`)."""
    record = request.get(token_key)
    if record is None:
        return await handler(request)
    state = request.app[state_key]
    settings = state.settings
    if settings.mailbox_concurrency_limit is None and settings.mailbox_requests_per_10_minutes is None:
        return await handler(request)
    limits = request.app[limits_key]
    key = (record.client_id, record.user_id)
    now = state.clock.now()
    if settings.mailbox_requests_per_10_minutes is not None:
        recent = limits.recent[key]
        while recent and recent[0] <= now - WINDOW_SECONDS:
            recent.popleft()
        if len(recent) >= settings.mailbox_requests_per_10_minutes:
            wait = max(1, int(recent[0] + WINDOW_SECONDS - now) + 1)
            return _throttled("Application is over its MailboxRequestLimit.", wait)
        recent.append(now)
    concurrency = settings.mailbox_concurrency_limit
    if concurrency is not None and limits.in_flight[key] >= concurrency:
        return _throttled("Application is over its MailboxConcurrency limit.", 1)
    limits.in_flight[key] += 1
    try:
        return await handler(request)
    finally:
        limits.in_flight[key] -= 1
