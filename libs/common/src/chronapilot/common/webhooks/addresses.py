"""Where a customer webhook may be sent: the one check the API runs when an endpoint is created
or its URL changed, and the dispatcher runs again before each send (a name that resolved to a
public address yesterday may resolve to ``127.0.0.1`` today).

A destination is an absolute ``https`` URL without credentials whose host is, or resolves only
to, globally routable addresses: never loopback, private (RFC 1918, unique-local), link-local
(cloud metadata services live there), shared (CGNAT), reserved, multicast or unspecified, in
IPv4 or IPv6, including IPv4 addresses wrapped in IPv6 (IPv4-mapped, 6to4, Teredo, NAT64).
``allow_private`` (development only: local test receivers) lifts both the address rule and
the ``https`` rule.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeDestination(ValueError):
    """``url`` may not receive webhooks; ``reason`` says why in a word, the message in a sentence.

    Reasons: ``malformed``, ``scheme`` (not https), ``credentials``, ``too_long``,
    ``unresolvable`` (no address for the host), ``private_address``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination (``loopback``, ``private``, ...), or None."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return blocked_reason(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-global", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def forbidden_reason(address: str) -> str | None:
    """:func:`blocked_reason` of an address literal (``"10.0.0.5"``, ``"::1"``); None for a
    public address or for a name (a name is checked on what it resolves to)."""
    literal = _literal(address)
    return None if literal is None else blocked_reason(literal)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_destination(url: str, *, allow_private: bool) -> SplitResult:
    """``url`` split, once its form is acceptable (no I/O); raises :class:`UnsafeDestination`."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeDestination("too_long", f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port out of range or not a number
    except ValueError:
        raise UnsafeDestination("malformed", "is not a valid URL") from None
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise UnsafeDestination("malformed", "must be an absolute https URL")
    if parts.scheme == "http" and not allow_private:
        raise UnsafeDestination("scheme", "must use https")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("credentials", "must not carry credentials (user:password@)")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise UnsafeDestination("malformed", "must not contain whitespace or control characters")
    return parts


async def check_destination(url: str, *, allow_private: bool, timeout_s: float = 5.0) -> list[str]:
    """The addresses ``url``'s host resolves to, once every one of them may receive webhooks
    (connect to one of these, not to a fresh lookup, to keep the check and the send on the same
    address). Raises :class:`UnsafeDestination`."""
    parts = parse_destination(url, allow_private=allow_private)
    host = parts.hostname
    assert host is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _resolve(host, port, timeout_s)
    if not allow_private:
        literal = _literal(host) is not None
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None:
                verb = "is" if literal else f"resolves to {address}, which is"
                article = "an" if reason[0] in "aeiou" else "a"
                raise UnsafeDestination(
                    "private_address",
                    f"{verb} {article} {reason} address; webhooks go to public addresses only",
                )
    return [str(a) for a in addresses]


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone (``%eth0``) is dropped
    except ValueError:
        return None


async def _resolve(host: str, port: int, timeout_s: float) -> list[IPAddress]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        async with asyncio.timeout(timeout_s):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, TimeoutError) as exc:
        raise UnsafeDestination("unresolvable", f"has a host that does not resolve ({host})") from exc
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UnsafeDestination("unresolvable", f"has a host that does not resolve ({host})")
    return found
