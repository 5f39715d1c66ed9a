"""The one bounded exponential backoff: attempts, cap, full jitter."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """``delay(n)`` for attempt ``n`` (0-based): uniform in [base·2ⁿ/2, base·2ⁿ], capped."""

    base_s: float = 0.2
    cap_s: float = 30.0
    attempts: int = 5

    def delay(self, attempt: int, *, retry_after: float | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * (2**attempt))
        jittered = random.uniform(ceiling / 2, ceiling)
        return max(jittered, retry_after or 0.0)


async def retry_until(
    operation: Callable[[], Awaitable[T]],
    *,
    deadline_s: float,
    backoff: Backoff,
    should_retry: Callable[[BaseException], bool],
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Run ``operation`` until it succeeds or ``deadline_s`` has passed; re-raise the last error."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + deadline_s
    attempt = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not should_retry(exc):
                raise
            delay = min(backoff.delay(attempt), max(0.0, give_up_at - loop.time()))
            if delay <= 0:
                raise
            if on_retry is not None:
                on_retry(exc, delay)
            await asyncio.sleep(delay)
            attempt += 1


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    should_retry: Callable[[Exception], bool],
    retry_after: Callable[[Exception], float | None] = lambda _: None,
    on_retry: Callable[[Exception, int, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run ``operation`` up to ``backoff.attempts`` times: a failure ``should_retry`` accepts
    is tried again after ``backoff.delay`` (at least its ``retry_after``); any other failure,
    and the last, is re-raised. ``on_retry(error, attempt, delay)`` is told before each wait."""
    attempt = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            attempt += 1
            if attempt >= backoff.attempts or not should_retry(exc):
                raise
            delay = backoff.delay(attempt - 1, retry_after=retry_after(exc))
            if on_retry is not None:
                on_retry(exc, attempt, delay)
            await sleep(delay)
