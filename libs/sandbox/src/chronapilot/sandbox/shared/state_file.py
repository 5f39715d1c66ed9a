"""The emulators' optional JSON state file.

API:

- :func:`load_state` returns the parsed JSON of a state file, or ``None`` if it does not exist.
- :func:`save_state_atomically` writes JSON to a temporary file beside the target, fsyncs it and
  renames it over the target, so a reader never sees a half-written file.
- :class:`StateFileSaver` saves ``snapshot()`` after changes: ``mark_changed()`` schedules one
  save ``delay_seconds`` later (changes in between are coalesced), ``await flush()`` saves now if
  anything is pending (call it on shutdown). The snapshot is taken on the event loop; the
  serialisation and write run in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def load_state(path: Path) -> Any | None:
    """The JSON stored at ``path``, or None when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return json.loads(text)


def save_state_atomically(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, separators=(",", ":"))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class StateFileSaver:
    """Debounced save-on-change of an emulator's state."""

    def __init__(self, path: Path, snapshot: Callable[[], Any], *, delay_seconds: float = 0.5) -> None:
        self.path = path
        self._snapshot = snapshot
        self._delay_seconds = delay_seconds
        self._pending: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()

    def mark_changed(self) -> None:
        """Schedule a save (no-op if one is already scheduled)."""
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(self._delay_seconds, self._start_write)

    def _start_write(self) -> None:
        self._pending = None
        data = self._snapshot()
        write = asyncio.to_thread(save_state_atomically, self.path, data)
        task = asyncio.get_running_loop().create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def flush(self) -> None:
        """Save now if a save is pending, and wait for writes in flight."""
        if self._pending is not None:
            self._pending.cancel()
            self._start_write()
        if self._writes:
            await asyncio.gather(*list(self._writes))
