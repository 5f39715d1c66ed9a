"""Read-ahead of sync pages: the next page is in flight while the caller handles the current one,
errors surface where their page would have been, and an abandoned stream stops cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from chronapilot.common.providers import CursorExpired
from chronapilot.common.providers.paging import read_ahead


async def test_the_next_page_is_fetched_while_the_caller_handles_this_one() -> None:
    log: list[str] = []

    async def pages() -> AsyncGenerator[int, None]:
        for n in range(3):
            log.append(f"fetch {n}")
            await asyncio.sleep(0)
            yield n

    async for page in read_ahead(pages()):
        await asyncio.sleep(0.01)  # the caller writes the page
        log.append(f"handled {page}")

    assert log == ["fetch 0", "fetch 1", "handled 0", "fetch 2", "handled 1", "handled 2"]


async def test_an_error_on_the_first_page_comes_before_anything_is_yielded() -> None:
    async def pages() -> AsyncGenerator[int, None]:
        raise CursorExpired("gone")
        yield 0  # pragma: no cover

    stream = read_ahead(pages())

    with pytest.raises(CursorExpired):
        await anext(stream)


async def test_an_error_of_a_later_page_surfaces_after_the_pages_before_it() -> None:
    async def pages() -> AsyncGenerator[int, None]:
        yield 1
        raise RuntimeError("page 2 failed")

    seen: list[int] = []

    async def consume() -> None:
        async for page in read_ahead(pages()):
            seen.append(page)

    with pytest.raises(RuntimeError, match="page 2"):
        await consume()
    assert seen == [1]


async def test_an_abandoned_stream_cancels_its_read_ahead_and_closes_the_source() -> None:
    started, closed = asyncio.Event(), asyncio.Event()

    async def pages() -> AsyncGenerator[int, None]:
        try:
            yield 1
            started.set()
            await asyncio.sleep(60)  # a slow second page
            yield 2  # pragma: no cover
        finally:
            closed.set()

    stream = read_ahead(pages())
    assert await anext(stream) == 1
    await started.wait()
    await stream.aclose()

    assert closed.is_set()
