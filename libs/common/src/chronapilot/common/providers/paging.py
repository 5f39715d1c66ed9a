"""Read-ahead for page streams: the next page is requested while the caller handles this one.

A sync is a loop of "fetch a page from the provider, write it to the mirror". Run one after the
other, the time is the sum of both; with :func:`read_ahead` the next request is in flight while
the caller writes, so a sync runs at the pace of the slower side. At most one page is held
ahead, and an error of the read-ahead surfaces where that page would have been yielded (an
error on the first page, a dead cursor for instance, still comes before anything is yielded).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import TypeVar

T = TypeVar("T")


async def read_ahead(pages: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    """The items of ``pages``, fetching each next one while the caller handles the current."""
    pending: asyncio.Future[T] = asyncio.ensure_future(anext(pages))
    try:
        while True:
            try:
                page = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(pages))
            yield page
    finally:
        if not pending.done():
            pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
            await pending  # retrieve its outcome: an abandoned read-ahead must not warn
        await pages.aclose()
