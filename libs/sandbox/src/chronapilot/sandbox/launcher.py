"""The whole provider sandbox in one process: the Google and Microsoft emulators and Radicale.

`Sandbox` is the programmatic entry (the dev stack and tests use it; `python -m
chronapilot.sandbox` wraps it):

    async with Sandbox(SandboxConfig(google_port=0, microsoft_port=0, radicale_port=0)) as sandbox:
        sandbox.urls["icloud"]          # each started provider's base URL
        sandbox.accounts["icloud"]      # DemoAccount(provider, email, password)
        sandbox.env()                   # provider settings + CHRONAPILOT_DEMO_* sign-ins
        sandbox.write_env(path)

The emulators are aiohttp applications served in this process on sockets bound before the apps
are built (port 0 = a free port, no race); Radicale is a child process. Every started piece is
stopped on exit, in reverse order, even when starting a later one failed.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from aiohttp import web

from chronapilot.sandbox.icloud import (
    ICloudAccount,
    RadicaleConfig,
    RadicaleServer,
    seed_account,
    week_anchor,
)

PROVIDERS = ("google", "microsoft", "icloud")


@dataclass(frozen=True)
class SandboxConfig:
    """What to start and where. A port of 0 picks a free one.

    `data_dir` keeps Radicale's collections and users file (None: a temporary directory removed
    on stop). `state_file_dir` keeps each emulator's JSON state (`google.json`,
    `microsoft.json`; None: memory only). `seed` makes the demo data and passwords reproducible
    (None: a random seed per start). `anchor` is the Monday the iCloud demo events are built
    around (None: this week's). `redirect_uris` are registered for the emulators' sandbox OAuth
    clients (empty: each emulator's defaults, which cover ChronaPilot's API on port 8080).
    """

    host: str = "127.0.0.1"
    google_port: int = 8090
    microsoft_port: int = 8091
    radicale_port: int = 5232
    data_dir: Path | None = None
    state_file_dir: Path | None = None
    seed: int | None = None
    access_token_ttl: int = 3600
    providers: tuple[str, ...] = PROVIDERS
    anchor: date | None = None
    redirect_uris: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.providers) - set(PROVIDERS)
        if unknown or not self.providers:
            raise ValueError(f"providers must be a non-empty subset of {PROVIDERS}, not {self.providers}")


@dataclass(frozen=True)
class DemoAccount:
    """A seeded account's sign-in: the consent page's e-mail and password, or the Apple ID and app
    password typed into ChronaPilot."""

    provider: str
    email: str
    password: str


@dataclass(frozen=True)
class OAuthClient:
    """The sandbox OAuth client ChronaPilot is registered as on an emulator."""

    client_id: str
    client_secret: str


@dataclass
class _Emulator:
    provider: str
    base_url: str
    app: web.Application
    runner: web.AppRunner
    client: OAuthClient
    account: DemoAccount


@dataclass
class Sandbox:
    """The started sandbox; `async with Sandbox(config) as sandbox:` starts and stops everything."""

    config: SandboxConfig = field(default_factory=SandboxConfig)
    seed: int = field(init=False, default=0)
    radicale: RadicaleServer | None = field(init=False, default=None)
    icloud_account: ICloudAccount | None = field(init=False, default=None)
    _emulators: dict[str, _Emulator] = field(init=False, default_factory=dict)
    _started: bool = field(init=False, default=False)

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
        if self._started:
            raise RuntimeError("the sandbox is already started")
        self._started = True
        config = self.config
        self.seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
        try:
            if "google" in config.providers:
                await self._start_emulator("google", config.google_port)
            if "microsoft" in config.providers:
                await self._start_emulator("microsoft", config.microsoft_port)
            if "icloud" in config.providers:
                await self._start_radicale()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop whatever runs, in reverse order of starting. Idempotent."""
        self.icloud_account = None
        if self.radicale is not None:
            radicale, self.radicale = self.radicale, None
            await radicale.stop()
        for provider in reversed(list(self._emulators)):
            await self._emulators.pop(provider).runner.cleanup()
        self._started = False

    @property
    def urls(self) -> dict[str, str]:
        """Each started provider's base URL: the emulators' origins, Radicale's root (with `/`)."""
        urls = {provider: emulator.base_url for provider, emulator in self._emulators.items()}
        if self.radicale is not None:
            urls["icloud"] = self.radicale.url
        return urls

    @property
    def accounts(self) -> dict[str, DemoAccount]:
        """Each started provider's demo account."""
        accounts = {provider: emulator.account for provider, emulator in self._emulators.items()}
        if self.icloud_account is not None:
            accounts["icloud"] = DemoAccount(
                "icloud", self.icloud_account.email, self.icloud_account.app_password
            )
        return accounts

    @property
    def oauth_clients(self) -> dict[str, OAuthClient]:
        return {provider: emulator.client for provider, emulator in self._emulators.items()}

    def app(self, provider: str) -> web.Application:
        """A running emulator's application (its admin API is also reachable over HTTP)."""
        return self._emulators[provider].app

    def env(self) -> dict[str, str]:
        """ChronaPilot's provider settings pointing at the sandbox, plus the demo sign-ins.

        URL shapes are those of `chronapilot.common.settings.ProviderSettings`: full endpoint
        URLs for Google's OAuth endpoints, the Calendar API base with `/calendar/v3`, the
        Microsoft login host (the tenant is a separate setting), Graph with `/v1.0`, and the
        CalDAV server root.
        """
        env: dict[str, str] = {}
        if google := self._emulators.get("google"):
            env |= {
                "CHRONAPILOT_GOOGLE_CLIENT_ID": google.client.client_id,
                "CHRONAPILOT_GOOGLE_CLIENT_SECRET": google.client.client_secret,
                "CHRONAPILOT_GOOGLE_AUTH_URL": f"{google.base_url}/o/oauth2/v2/auth",
                "CHRONAPILOT_GOOGLE_TOKEN_URL": f"{google.base_url}/token",
                "CHRONAPILOT_GOOGLE_REVOKE_URL": f"{google.base_url}/revoke",
                "CHRONAPILOT_GOOGLE_USERINFO_URL": f"{google.base_url}/v1/userinfo",
                "CHRONAPILOT_GOOGLE_API_URL": f"{google.base_url}/calendar/v3",
                # not a setting: where a person changes the demo calendars as their owner would
                "CHRONAPILOT_DEMO_GOOGLE_ADMIN_URL": f"{google.base_url}/_admin",
            }
        if microsoft := self._emulators.get("microsoft"):
            env |= {
                "CHRONAPILOT_MICROSOFT_CLIENT_ID": microsoft.client.client_id,
                "CHRONAPILOT_MICROSOFT_CLIENT_SECRET": microsoft.client.client_secret,
                "CHRONAPILOT_MICROSOFT_LOGIN_URL": microsoft.base_url,
                "CHRONAPILOT_MICROSOFT_GRAPH_URL": f"{microsoft.base_url}/v1.0",
            }
        if self.radicale is not None:
            env["CHRONAPILOT_ICLOUD_CALDAV_URL"] = self.radicale.url.rstrip("/")
        for provider, account in self.accounts.items():
            secret_name = "APP_PASSWORD" if provider == "icloud" else "PASSWORD"
            env[f"CHRONAPILOT_DEMO_{provider.upper()}_EMAIL"] = account.email
            env[f"CHRONAPILOT_DEMO_{provider.upper()}_{secret_name}"] = account.password
        return env

    def write_env(self, path: Path) -> None:
        """Write `env()` as a dotenv file, atomically and readable by the owner only."""
        write_dotenv(path, self.env(), header=f"ChronaPilot sandbox (seed {self.seed}); secrets inside.")

    async def _start_emulator(self, provider: str, port: int) -> None:
        sock = _bound_socket(self.config.host, port)
        try:
            base_url = f"http://{_url_host(self.config.host)}:{sock.getsockname()[1]}"
            app, client, account = _build_emulator(provider, self.config, base_url=base_url, seed=self.seed)
            runner = web.AppRunner(app, handle_signals=False, access_log=None)
            await runner.setup()
        except BaseException:
            sock.close()
            raise
        self._emulators[provider] = _Emulator(provider, base_url, app, runner, client, account)
        await web.SockSite(runner, sock).start()

    async def _start_radicale(self) -> None:
        config = self.config
        radicale_config = RadicaleConfig(
            host=config.host, port=config.radicale_port, data_dir=config.data_dir
        )
        self.radicale = RadicaleServer(radicale_config)
        await self.radicale.start()
        anchor = config.anchor or week_anchor(datetime.now(UTC).date())
        self.icloud_account = await seed_account(self.radicale, seed=self.seed, anchor=anchor)


def write_dotenv(path: Path, values: dict[str, str], *, header: str = "") -> None:
    """`KEY=value` lines (values are single-quoted when they need it), replaced atomically."""
    lines = [f"# {line}\n" for line in header.splitlines()]
    lines += [f"{key}={_dotenv_value(value)}\n" for key, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_dotenv(lines: Iterable[str]) -> dict[str, str]:
    """The inverse of `write_dotenv`, for tests and scripts."""
    values: dict[str, str] = {}
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.rstrip("\n").partition("=")
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            values[key.strip()] = value
    return values


def _dotenv_value(value: str) -> str:
    if "'" in value or "\n" in value:
        raise ValueError(f"cannot write {value!r} to a dotenv file")
    plain = all(c.isalnum() or c in "-_.:/@+,%" for c in value)
    return value if plain else f"'{value}'"


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _state_file(config: SandboxConfig, provider: str) -> Path | None:
    return config.state_file_dir / f"{provider}.json" if config.state_file_dir is not None else None


def _build_emulator(
    provider: str, config: SandboxConfig, *, base_url: str, seed: int
) -> tuple[web.Application, OAuthClient, DemoAccount]:
    """Build one emulator's app; return it with its sandbox OAuth client and its demo account.

    Imported here, not at the top: a sandbox started for iCloud alone does not load them.
    """
    state_file = _state_file(config, provider)
    if provider == "google":
        from chronapilot.sandbox import google

        app = google.build_app(
            base_url=base_url,
            access_token_ttl=config.access_token_ttl,
            state_file=state_file,
            seed=seed,
            redirect_uris=config.redirect_uris,
        )
        client = OAuthClient(google.SANDBOX_CLIENT_ID, google.SANDBOX_CLIENT_SECRET)
        return app, client, DemoAccount("google", google.DEMO_EMAIL, google.DEMO_PASSWORD)
    if provider == "microsoft":
        from chronapilot.sandbox import microsoft
        from chronapilot.sandbox.microsoft import seed as microsoft_seed

        app = microsoft.build_app(
            base_url=base_url,
            access_token_ttl=config.access_token_ttl,
            state_file=state_file,
            seed=seed,
            redirect_uris=list(config.redirect_uris) or None,
        )
        client = OAuthClient(microsoft_seed.SANDBOX_CLIENT_ID, microsoft_seed.SANDBOX_CLIENT_SECRET)
        account = DemoAccount("microsoft", microsoft_seed.DEMO_EMAIL, microsoft_seed.DEMO_PASSWORD)
        return app, client, account
    raise NotImplementedError(provider)
