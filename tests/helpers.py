"""Small helpers the tests share: waiting on outcomes and running child processes."""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar, cast

from chronapilot.devstack.processes import Child

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T] | T], *, timeout_s: float = 30.0, interval_s: float = 0.1
) -> T:
    """Call ``probe()`` (a coroutine function or a plain one) until it returns something
    truthy, and return that; fail after ``timeout_s``.

    Every assertion on something another task, process, consumer or server produces waits
    through this (never a bare ``assert`` made once, never a ``sleep`` "long enough"). To assert
    that something does *not* happen, first wait here for a positive marker proving the system
    had its chance (a later event handled, a consumer caught up), then assert the absence."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return cast(T, result)
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s:g}s (last: {result!r})")
        await asyncio.sleep(interval_s)  # the poll interval


def spawn_python(name: str, script: Path, env: dict[str, str], log_dir: Path) -> Child:
    return Child.start(name, [sys.executable, str(script)], env=env, log_path=log_dir / f"{name}.log")


RETURN_PREFIX = "http://localhost:4000/return/"
