"""`python -m chronapilot.sandbox` and the `Sandbox` API: start, readiness, env file, clean stop.

The emulators are started whenever their packages provide `build_app`; until then these tests
exercise the launcher with Radicale alone.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import aiohttp
import pytest
from caldav import aio

from chronapilot.sandbox.launcher import Sandbox, SandboxConfig, read_dotenv

READY_TIMEOUT_S = 60.0
ANCHOR = date(2026, 11, 23)


def available_providers() -> tuple[str, ...]:
    present = []
    for provider in ("google", "microsoft"):
        try:
            module = importlib.import_module(f"chronapilot.sandbox.{provider}")
        except ImportError:
            continue
        if hasattr(module, "build_app"):
            present.append(provider)
    return (*present, "icloud")


PROVIDERS = available_providers()


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is `pid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry.name))
    return found


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, what: str, process: subprocess.Popen[str], timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"the sandbox exited ({process.returncode}) before {what}:\n{output}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def expected_emulator_statuses() -> dict[str, int]:
    expected = {}
    if "google" in PROVIDERS:
        expected |= {"google consent page": 200, "google calendarList": 401, "google userinfo": 401}
    if "microsoft" in PROVIDERS:
        expected |= {"microsoft consent page": 200, "microsoft /me": 401}
    return expected


async def emulator_endpoint_statuses(env: dict[str, str]) -> dict[str, int]:
    """What the env file's URLs answer: consent pages for the sandbox clients, 401s without a token."""
    pkce = {"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
    requests: dict[str, tuple[str, dict[str, str]]] = {}
    if "google" in PROVIDERS:
        consent = {
            "client_id": env["CHRONAPILOT_GOOGLE_CLIENT_ID"],
            "redirect_uri": "http://127.0.0.1:8080/v1/oauth/google/callback",
            "response_type": "code",
            "scope": "openid email https://www.googleapis.com/auth/calendar",
            "state": "launcher-test",
            **pkce,
        }
        requests |= {
            "google consent page": (env["CHRONAPILOT_GOOGLE_AUTH_URL"], consent),
            "google calendarList": (env["CHRONAPILOT_GOOGLE_API_URL"] + "/users/me/calendarList", {}),
            "google userinfo": (env["CHRONAPILOT_GOOGLE_USERINFO_URL"], {}),
        }
    if "microsoft" in PROVIDERS:
        consent = {
            "client_id": env["CHRONAPILOT_MICROSOFT_CLIENT_ID"],
            "redirect_uri": "http://127.0.0.1:8080/v1/oauth/microsoft/callback",
            "response_type": "code",
            "scope": "openid offline_access Calendars.Read",
            "state": "launcher-test",
            **pkce,
        }
        requests |= {
            "microsoft consent page": (
                env["CHRONAPILOT_MICROSOFT_LOGIN_URL"] + "/common/oauth2/v2.0/authorize",
                consent,
            ),
            "microsoft /me": (env["CHRONAPILOT_MICROSOFT_GRAPH_URL"] + "/me", {}),
        }
    statuses = {}
    async with aiohttp.ClientSession() as session:
        for name, (url, params) in requests.items():
            async with session.get(url, params=params, allow_redirects=False) as response:
                statuses[name] = response.status
    return statuses


def start_cli(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    env_file = tmp_path / "sandbox.env"
    command = [
        sys.executable,
        "-m",
        "chronapilot.sandbox",
        "--google-port",
        "0",
        "--microsoft-port",
        "0",
        "--radicale-port",
        "0",
        "--seed",
        "7",
        "--anchor",
        ANCHOR.isoformat(),
        "--providers",
        ",".join(PROVIDERS),
        "--write-env",
        str(env_file),
        *extra,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, env_file


async def test_the_cli_starts_writes_the_env_file_and_stops_on_sigterm_leaving_no_child(
    tmp_path: Path,
) -> None:
    process, env_file = start_cli(tmp_path, "--data-dir", str(tmp_path / "data"))
    try:
        await asyncio.to_thread(wait_for, env_file.exists, "the env file", process)
        env = read_dotenv(env_file.read_text().splitlines())
        children = children_of(process.pid)

        assert oct(env_file.stat().st_mode & 0o777) == oct(0o600)
        assert env["CHRONAPILOT_DEMO_ICLOUD_EMAIL"] == "demo.icloud@sandbox.chronapilot.dev"
        assert env["CHRONAPILOT_ICLOUD_CALDAV_URL"].startswith("http://127.0.0.1:")
        async with aio.AsyncDAVClient(
            url=env["CHRONAPILOT_ICLOUD_CALDAV_URL"],
            username=env["CHRONAPILOT_DEMO_ICLOUD_EMAIL"],
            password=env["CHRONAPILOT_DEMO_ICLOUD_APP_PASSWORD"],
        ) as client:
            calendars = await (await client.get_principal()).get_calendars()
            assert len(calendars) == 3
        assert await emulator_endpoint_statuses(env) == expected_emulator_statuses()
        assert len(children) == 1  # Radicale; the emulators run in the launcher's own process

        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(process.communicate, timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, output
    assert "sandbox stopped" in output
    for child in children:
        assert not is_running(child), f"child {child} outlived the sandbox"


async def test_sigint_stops_the_sandbox_too(tmp_path: Path) -> None:
    process, env_file = start_cli(tmp_path)
    try:
        await asyncio.to_thread(wait_for, env_file.exists, "the env file", process)
        children = children_of(process.pid)
        process.send_signal(signal.SIGINT)
        await asyncio.to_thread(process.wait, timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert children
    assert not any(is_running(child) for child in children)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
async def test_radicale_does_not_outlive_a_killed_launcher(tmp_path: Path) -> None:
    process, env_file = start_cli(tmp_path, "--providers", "icloud", "--data-dir", str(tmp_path / "data"))
    try:
        await asyncio.to_thread(wait_for, env_file.exists, "the env file", process)
        children = children_of(process.pid)
        process.kill()
        await asyncio.to_thread(process.wait, timeout=30)
        deadline = time.monotonic() + 10
        while any(is_running(child) for child in children) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert children
    assert not any(is_running(child) for child in children)


def test_an_unknown_provider_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chronapilot.sandbox", "--providers", "yahoo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "providers" in result.stderr


async def test_the_api_exposes_urls_accounts_and_the_env_mapping(tmp_path: Path) -> None:
    config = SandboxConfig(
        google_port=0, microsoft_port=0, radicale_port=0, seed=11, anchor=ANCHOR, providers=PROVIDERS
    )
    async with Sandbox(config) as sandbox:
        assert set(sandbox.urls) == set(PROVIDERS)
        assert set(sandbox.accounts) == set(PROVIDERS)
        icloud = sandbox.accounts["icloud"]
        env = sandbox.env()
        assert env["CHRONAPILOT_DEMO_ICLOUD_APP_PASSWORD"] == icloud.password
        sandbox.write_env(tmp_path / "demo.env")
        assert read_dotenv((tmp_path / "demo.env").read_text().splitlines()) == env
        radicale_pid = sandbox.radicale.pid if sandbox.radicale else None
        for url in sandbox.urls.values():
            async with (
                aiohttp.ClientSession() as session,
                session.get(url, allow_redirects=False) as response,
            ):
                assert response.status < 500

    assert radicale_pid is not None
    assert not is_running(radicale_pid)


@pytest.mark.skipif("microsoft" not in PROVIDERS, reason="the Microsoft emulator is not there yet")
async def test_redirect_uris_are_registered_with_the_sandbox_oauth_clients() -> None:
    callback = "http://127.0.0.1:18080/oauth/microsoft/callback"
    config = SandboxConfig(microsoft_port=0, seed=1, providers=("microsoft",), redirect_uris=(callback,))
    async with Sandbox(config) as sandbox, aiohttp.ClientSession() as session:
        env = sandbox.env()
        params = {
            "client_id": env["CHRONAPILOT_MICROSOFT_CLIENT_ID"],
            "response_type": "code",
            "scope": "openid offline_access Calendars.Read",
            "state": "launcher-test",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
        authorize = env["CHRONAPILOT_MICROSOFT_LOGIN_URL"] + "/common/oauth2/v2.0/authorize"
        async with session.get(authorize, params=params | {"redirect_uri": callback}) as registered:
            assert registered.status == 200
        elsewhere = "http://127.0.0.1:18081/oauth/microsoft/callback"
        async with session.get(authorize, params=params | {"redirect_uri": elsewhere}) as unregistered:
            assert unregistered.status != 200


async def test_the_same_seed_gives_the_same_demo_passwords() -> None:
    config = SandboxConfig(radicale_port=0, seed=5, anchor=ANCHOR, providers=("icloud",))
    async with Sandbox(config) as first:
        password = first.accounts["icloud"].password
    async with Sandbox(config) as second:
        assert second.accounts["icloud"].password == password
    assert first.env() == {}


async def test_a_port_in_use_fails_the_start_and_leaves_nothing_running() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = SandboxConfig(radicale_port=busy.getsockname()[1], providers=("icloud",))
        before = set(children_of(os.getpid()))

        with pytest.raises(RuntimeError, match="Radicale"):
            async with Sandbox(config):
                pass

        assert set(children_of(os.getpid())) <= before
