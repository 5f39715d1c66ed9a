"""Where a delivery may go, checked at send time.

The API refuses unsafe endpoint URLs when they are created; the names they hold can resolve
elsewhere later (DNS rebinding). So every connection the dispatcher opens goes through
:class:`CheckingResolver`: the addresses a name resolves to *now* are checked, and the
connection is made to those checked addresses (aiohttp connects to what its resolver
returned). An address literal in the URL never reaches a resolver and is checked by
:func:`check_url`. Outside development only ``https`` to public addresses is sent to.
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from chronapilot.common.webhooks import addresses
from chronapilot.common.webhooks.addresses import forbidden_reason


class UnsafeDestination(OSError):
    """The URL or what its name resolves to is not one a webhook may be sent to."""


def check_url(url: str, *, allow_private: bool) -> None:
    """The URL's form (https, no credentials: :func:`addresses.parse_destination`) and an
    address literal in it; a name is checked by :class:`CheckingResolver` when connecting."""
    try:
        parts = addresses.parse_destination(url, allow_private=allow_private)
    except addresses.UnsafeDestination as exc:
        raise UnsafeDestination(f"the URL {exc.message}") from None
    if not allow_private and parts.hostname:
        reason = forbidden_reason(parts.hostname)
        if reason:
            raise UnsafeDestination(f"{parts.hostname} is a {reason} address")


class CheckingResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, and refuses a name that resolves to an
    address a webhook may not reach (unless private destinations are allowed)."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            for result in results:
                reason = forbidden_reason(result["host"])
                if reason:
                    raise UnsafeDestination(f"{host} resolves to a {reason} address")
        return results

    async def close(self) -> None:
        await self._inner.close()


def checked_connector(*, allow_private: bool, limit: int, **options: Any) -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(
        resolver=CheckingResolver(allow_private=allow_private), limit=limit, **options
    )
