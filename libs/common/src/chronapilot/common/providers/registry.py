"""Provider name → implementation: the only place that branches on the name.

:func:`build_providers` is called once by a service's composition root with the settings and
the service's shared ``aiohttp.ClientSession``; everything else receives the mapping (or one
provider from it) and reads ``provider.capabilities`` and its components (``provider.push``).
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from chronapilot.common.clock import Clock
from chronapilot.common.providers.base import CalendarProvider
from chronapilot.common.providers.google.client import GoogleProvider
from chronapilot.common.providers.icloud.caldav import ICloudProvider
from chronapilot.common.providers.microsoft.client import MicrosoftProvider
from chronapilot.common.settings import ProviderSettings

#: Every provider ChronaPilot knows, in the order the API lists them.
PROVIDER_NAMES = ("google", "microsoft", "icloud")

#: A process's providers by name: built once, read-only, shared by all its parts.
Providers = Mapping[str, CalendarProvider]


def build_providers(
    settings: ProviderSettings, http: aiohttp.ClientSession, *, clock: Clock | None = None
) -> dict[str, CalendarProvider]:
    """The configured providers by name (``clock``: the service's, for windows relative to now).

    Google and Microsoft are present only when their OAuth client id and secret are set (an
    unconfigured provider is absent, not broken); iCloud needs no client and is always present.
    """
    providers: dict[str, CalendarProvider] = {}
    if settings.google_client_id and settings.google_client_secret is not None:
        providers["google"] = GoogleProvider(settings, http)
    if settings.microsoft_client_id and settings.microsoft_client_secret is not None:
        providers["microsoft"] = MicrosoftProvider(settings, http, clock=clock)
    providers["icloud"] = ICloudProvider(settings, http)
    return providers
