"""Small helpers the tests share: waiting on outcomes and running child processes."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from chronapilot.devstack.processes import Child

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], *, timeout_s: float = 30.0, interval_s: float = 0.1
) -> T:
    """Await ``probe()`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s:g}s (last: {result!r})")
        await asyncio.sleep(interval_s)


def spawn_python(name: str, script: Path, env: dict[str, str], log_dir: Path) -> Child:
    return Child.start(name, [sys.executable, str(script)], env=env, log_path=log_dir / f"{name}.log")


RETURN_PREFIX = "http://localhost:4000/return/"
