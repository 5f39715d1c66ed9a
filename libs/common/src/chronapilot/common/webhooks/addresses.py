"""Which network addresses a customer webhook may be sent to: public unicast ones only.

Loopback, private (RFC 1918, unique-local), link-local, carrier-grade NAT, multicast,
reserved and unspecified addresses are refused, in IPv4 and IPv6, including IPv4 addresses
inside IPv6 (mapped, 6to4, NAT64 well-known prefix), so a webhook cannot be aimed at the
network ChronaPilot runs in.
"""

from __future__ import annotations

import ipaddress

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def forbidden_reason(address: str) -> str | None:
    """Why ``address`` (an IP address literal) may not be sent to, or None (also None when
    ``address`` is not an IP address literal: a name is checked on what it resolves to)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return forbidden_reason(str(embedded))
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "shared (carrier-grade NAT)"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None
