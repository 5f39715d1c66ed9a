"""Google emulator: OAuth 2.0 + OpenID Connect and a Calendar API v3 subset, as one aiohttp app.

Entry point: :func:`build_app`. The sandbox OAuth client (``SANDBOX_CLIENT_ID`` /
``SANDBOX_CLIENT_SECRET``, overridable through ``build_app``) and, with a seed, the demo account
(``DEMO_EMAIL`` / ``DEMO_PASSWORD``) exist from the start. See ``libs/sandbox/README.md``
("Google emulator") for what it covers and where it is simpler than Google.
"""

from chronapilot.sandbox.google.app import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, build_app
from chronapilot.sandbox.google.demo_data import DEMO_EMAIL, DEMO_PASSWORD

__all__ = ["DEMO_EMAIL", "DEMO_PASSWORD", "SANDBOX_CLIENT_ID", "SANDBOX_CLIENT_SECRET", "build_app"]
