"""Wall-clock time for an emulator, movable forward by the admin API.

``SandboxClock().now()`` returns seconds since the epoch (float), like :func:`time.time`, plus
an offset that :meth:`SandboxClock.advance` increases. Emulators read time only through it, so a
test can let codes, access tokens, channels or subscriptions expire without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SandboxClock:
    """Epoch seconds from ``source`` (default :func:`time.time`) plus an adjustable offset."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0

    def now(self) -> float:
        """Current time in seconds since the epoch."""
        return self._source() + self._offset

    def now_ms(self) -> int:
        """Current time in whole milliseconds since the epoch."""
        return int(self.now() * 1000)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset += seconds

    @property
    def offset(self) -> float:
        """Seconds added to the source clock so far."""
        return self._offset
