"""Microsoft emulator: identity platform v2 and a Microsoft Graph subset, as one aiohttp app.

`build_app(base_url=..., seed=...)` returns the application; see `libs/sandbox/README.md`.
"""

from .app import build_app

__all__ = ["build_app"]
