"""Debian's chromium driven by Playwright, for every browser test, and where their screenshots go.

``make test`` installs the ``chromium`` package (scripts/system-deps.sh); Playwright never
downloads a browser. ``CHRONAPILOT_CHROMIUM`` points at another executable."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = os.environ.get("CHRONAPILOT_CHROMIUM", "/usr/bin/chromium")
#: Screenshots of the browser tests (git-ignored).
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.asynccontextmanager
async def launched_chromium() -> AsyncIterator[Browser]:
    """A headless chromium for the length of the block."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: `make test` installs Debian's chromium"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    """Save ``test-artifacts/<name>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
