"""The README's quickstart, run as written: its first block (``make run``) on free ports, every
later ``sh`` block pasted into one bash session (the "second terminal"), and the browser step
done in Debian's chromium by clicking, as a newcomer would. The README cannot rot unnoticed."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from chronapilot.devstack.processes import free_port

from browser_harness import launched_chromium, shot

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.browser]
PORTS = (
    "API",
    "WEBHOOK_GATEWAY",
    "SYNC_WORKER",
    "TOKEN_REFRESHER",
    "WEBHOOK_DISPATCHER",
    "OPS",
    "API_METRICS",
    "WEBHOOK_GATEWAY_METRICS",
    "EMBEDDED_KAFKA",
    "EMBEDDED_MONGODB",
    "SANDBOX_GOOGLE",
    "SANDBOX_MICROSOFT",
    "SANDBOX_RADICALE",
)


def quickstart_blocks() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- quickstart:begin", 1)[1].split("<!-- quickstart:end -->", 1)[0]
    return [block.strip() for block in re.findall(r"^```sh\n(.*?)^```$", section, re.S | re.M)]


class Terminal:
    """One bash session: each block is pasted in turn, its output read up to a marker."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def open(cls, cwd: Path, env: dict[str, str]) -> Terminal:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "--noprofile",
            "--norc",
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(process)

    async def paste(self, block: str, timeout: float = 90) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        marker = f"__block_done_{time.monotonic_ns()}__"
        self.process.stdin.write(f'{block}\necho "{marker} $?"\n'.encode())
        await self.process.stdin.drain()
        lines: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.process.stdout.readline()).decode()
                assert line, f"bash ended while running:\n{block}\n{''.join(lines)}"
                if line.startswith(marker):
                    assert line.split()[1] == "0", f"{block}\n{''.join(lines)}"
                    return "".join(lines)
                lines.append(line)

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


def start_make_run(block: str, home: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """The first block, ``make run``, from the repository, on free ports, its state in home/.run."""
    assert block == "make run", block
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHRONAPILOT_") and k not in {"MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS"}
    }
    env |= {f"CHRONAPILOT_{name}_PORT": str(free_port()) for name in PORTS}
    env["CHRONAPILOT_RUN_DIR"] = str(home / ".run")
    log_path = home / "make-run.log"
    with log_path.open("wb") as log:
        make = subprocess.Popen(
            ["bash", "-c", block],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return make, log_path


async def consent_in_the_browser(url: str, password: str) -> str:
    """Open the printed URL, type the printed password, click Allow; the return page's id."""
    async with launched_chromium() as browser:
        page = await browser.new_page()
        await page.goto(url)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Allow").click()
        await page.wait_for_url("**/demo/return?**")
        await shot(page, "quickstart-returned", full_page=False)
        return await page.locator("#param-connection_id").inner_text()


async def test_the_readme_quickstart_works_as_written(tmp_path):
    blocks = quickstart_blocks()
    assert len(blocks) == 6, blocks
    make, log_path = start_make_run(blocks[0], tmp_path)
    terminal = None
    try:
        started = time.monotonic()
        while "ready in" not in log_path.read_text():
            assert make.poll() is None, log_path.read_text()
            assert time.monotonic() - started < 90, log_path.read_text()
            await asyncio.sleep(0.2)
        shell_env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONAPILOT_")}
        terminal = await Terminal.open(tmp_path, shell_env)

        printed = await terminal.paste(blocks[1])
        url = next(line for line in printed.splitlines() if line.startswith("http"))
        password = printed.split("password: ", 1)[1].strip()
        assert password, printed
        connection_id = await consent_in_the_browser(url, password)

        shown = await terminal.paste(blocks[2])
        assert f'"id": "{connection_id}"' in shown and '"status": "active"' in shown, shown
        await terminal.paste(blocks[3])
        arrived = await terminal.paste(blocks[4], timeout=60)
        assert '"title": "Coffee with Ada, ' in arrived, arrived
        assert (await terminal.paste(blocks[5])).strip() == "disconnected"
        print(f"quickstart ran in {time.monotonic() - started:.1f}s")
    finally:
        if terminal is not None:
            await terminal.close()
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGTERM)
            try:
                make.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(make.pid, signal.SIGKILL)
