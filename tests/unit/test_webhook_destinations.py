"""Where a customer webhook may go: public https destinations only, whatever form the address
takes; in development, http and local receivers too."""

from __future__ import annotations

import ipaddress

import pytest

from chronapilot.common.webhooks.addresses import (
    MAX_URL_LENGTH,
    UnsafeDestination,
    blocked_reason,
    check_destination,
    parse_destination,
)


async def reason_for(url: str, *, allow_private: bool = False) -> str:
    with pytest.raises(UnsafeDestination) as caught:
        await check_destination(url, allow_private=allow_private)
    return caught.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://192.168.1.1/",
        "https://172.16.0.1/",
        "https://127.0.0.1/",
        "https://127.1/",  # short form
        "https://2130706433/",  # 127.0.0.1 as one number
        "https://0x7f.1/",  # hexadecimal
        "https://localhost:8443/",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://100.64.1.1/",  # shared address space (CGNAT)
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "https://240.0.0.1/",
        "https://[::1]/",
        "https://[::]/",
        "https://[fe80::1%25eth0]/",
        "https://[fc00::1]/",
        "https://[ff02::1]/",
        "https://[::ffff:10.0.0.5]/",  # IPv4-mapped
        "https://[::ffff:127.0.0.1]/",
        "https://[2002:c0a8:101::1]/",  # 6to4 around 192.168.1.1
        "https://[64:ff9b::a00:5]/",  # NAT64 around 10.0.0.5
    ],
)
async def test_a_local_or_private_destination_is_refused(url):
    assert await reason_for(url) == "private_address"


async def test_the_refusal_names_the_kind_of_address():
    with pytest.raises(UnsafeDestination) as caught:
        await check_destination("https://169.254.169.254/", allow_private=False)
    assert "link-local" in caught.value.message
    with pytest.raises(UnsafeDestination) as caught:
        await check_destination("https://localhost/", allow_private=False)
    assert "resolves to" in caught.value.message and "loopback" in caught.value.message


async def test_a_public_address_is_accepted_and_returned_for_the_send():
    assert await check_destination("https://93.184.216.34:8443/hooks?x=1", allow_private=False) == [
        "93.184.216.34"
    ]
    assert await check_destination("https://[2606:4700::1111]/", allow_private=False) == ["2606:4700::1111"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://93.184.216.34/hook", "scheme"),
        ("ftp://93.184.216.34/hook", "malformed"),
        ("/relative/path", "malformed"),
        ("https://", "malformed"),
        ("https://user:secret@93.184.216.34/", "credentials"),
        ("https://user@93.184.216.34/", "credentials"),
        ("https://93.184.216.34:99999/", "malformed"),
        ("https://93.184.216.34:port/", "malformed"),
        ("https://93.184.216.34/a b", "malformed"),
        ("https://93.184.216.34/" + "a" * MAX_URL_LENGTH, "too_long"),
        ("https://no-such-host.invalid/hook", "unresolvable"),
    ],
)
async def test_a_malformed_or_unresolvable_url_is_refused(url, reason):
    assert await reason_for(url) == reason


async def test_development_allows_http_and_local_receivers():
    assert await check_destination("http://localhost:4000/hooks", allow_private=True)
    assert await check_destination("https://10.0.0.5/hook", allow_private=True) == ["10.0.0.5"]
    assert await reason_for("https://u:p@localhost/", allow_private=True) == "credentials"
    assert await reason_for("https://no-such-host.invalid/", allow_private=True) == "unresolvable"


def test_parsing_needs_no_network():
    parts = parse_destination("https://Example.COM:8443/p?q=1", allow_private=False)
    assert (parts.hostname, parts.port, parts.path) == ("example.com", 8443, "/p")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("::ffff:8.8.8.8", None),
        ("127.0.0.53", "loopback"),
        ("10.1.2.3", "private"),
        ("169.254.1.1", "link-local"),
        ("239.1.1.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:192.168.0.1", "private"),
        ("2001:db8::1", "private"),  # documentation range
    ],
)
def test_each_address_is_classified(address, reason):
    assert blocked_reason(ipaddress.ip_address(address)) == reason
