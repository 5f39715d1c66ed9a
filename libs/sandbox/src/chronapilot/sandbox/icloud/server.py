"""Radicale as a real subprocess: the CalDAV server that stands in for iCloud.

`RadicaleServer` starts `python -m radicale` with no configuration file, htpasswd logins and a
storage folder, waits until it answers HTTP, and stops it with SIGTERM, then SIGKILL after a
grace period, always reaping the process. Radicale's log goes to `radicale.log` in the data
directory; the tail of it is part of the error when Radicale fails to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp

from chronapilot.sandbox.icloud.users import UsersFile

_START_TIMEOUT_S = 20.0
_STOP_GRACE_S = 5.0
_PORT_ATTEMPTS = 3


class RadicaleStartError(RuntimeError):
    """Radicale exited or did not answer before the start timeout."""


@dataclass(frozen=True)
class RadicaleConfig:
    """Where Radicale listens and keeps its data.

    `port=0` picks a free port. `data_dir=None` uses a temporary directory removed on stop;
    a given `data_dir` keeps `collections/` and `users` across runs. `auth_delay` is Radicale's
    delay before answering a failed login (its default, 1 s, is kept for realism).
    """

    host: str = "127.0.0.1"
    port: int = 5232
    data_dir: Path | None = None
    auth_delay: float = 1.0


class RadicaleServer:
    """One Radicale process; usable as `async with RadicaleServer(config) as server:`."""

    def __init__(self, config: RadicaleConfig) -> None:
        self.config = config
        self._process: asyncio.subprocess.Process | None = None
        self._port: int | None = None
        self._data_dir: Path | None = None
        self._owns_data_dir = False

    @property
    def url(self) -> str:
        """The server root with a trailing slash, e.g. `http://127.0.0.1:5232/`: a client's start URL."""
        if self._port is None:
            raise RuntimeError("Radicale is not running")
        return f"http://{_url_host(self.config.host)}:{self._port}/"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("Radicale is not running")
        return self._port

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise RuntimeError("Radicale is not running")
        return self._data_dir

    @property
    def users(self) -> UsersFile:
        """The users file; changes take effect on Radicale's next request."""
        return UsersFile(self.data_dir / "users")

    @property
    def log_file(self) -> Path:
        return self.data_dir / "radicale.log"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start Radicale and return once it answers HTTP; raise `RadicaleStartError` if it cannot."""
        if self._process is not None:
            raise RuntimeError("Radicale is already running")
        if self.config.data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="chronapilot-radicale-"))
            self._owns_data_dir = True
        else:
            self._data_dir = self.config.data_dir
            self._data_dir.mkdir(parents=True, exist_ok=True)
        self.users.ensure_exists()
        attempts = _PORT_ATTEMPTS if self.config.port == 0 else 1
        try:
            for attempt in range(1, attempts + 1):
                port = self.config.port or _free_port(self.config.host)
                try:
                    await self._spawn_and_wait(port)
                    return
                except RadicaleStartError:
                    # A port picked free may be taken by someone else before Radicale binds it.
                    if attempt == attempts:
                        raise
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; always reap. Idempotent."""
        process, self._process = self._process, None
        self._port = None
        if process is not None:
            await _terminate(process)
        if self._owns_data_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
        self._data_dir = None
        self._owns_data_dir = False

    async def _spawn_and_wait(self, port: int) -> None:
        data_dir = self.data_dir
        command = [
            sys.executable,
            "-m",
            "radicale",
            "--config",
            "",
            "--server-hosts",
            f"{_url_host(self.config.host)}:{port}",
            "--storage-filesystem-folder",
            str(data_dir / "collections"),
            "--auth-type",
            "htpasswd",
            "--auth-htpasswd-filename",
            str(data_dir / "users"),
            "--auth-htpasswd-encryption",
            "sha512",
            "--auth-delay",
            str(self.config.auth_delay),
        ]
        with self.log_file.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent_hook(),
            )
        self._process = process
        try:
            await _wait_until_answering(process, f"http://{_url_host(self.config.host)}:{port}/")
        except RadicaleStartError as error:
            self._process = None
            await _terminate(process)
            raise RadicaleStartError(f"{error}\n--- radicale.log (tail) ---\n{self._log_tail()}") from None
        self._port = port

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


async def _wait_until_answering(process: asyncio.subprocess.Process, url: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RadicaleStartError(f"Radicale exited with status {process.returncode}")
            try:
                async with session.get(url + ".well-known/caldav", allow_redirects=False) as response:
                    if response.status < 500:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout=0.05)
    raise RadicaleStartError(f"Radicale did not answer on {url} within {_START_TIMEOUT_S:.0f} s")


async def _terminate(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=_STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    await process.wait()


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM Radicale if the sandbox dies without stopping it.

    libc is loaded here, in the parent: only the `prctl` call itself runs in the forked child.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook
