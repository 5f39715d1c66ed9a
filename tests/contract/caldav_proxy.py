"""A CalDAV proxy in front of Radicale that behaves like servers Radicale is not.

- ``truncate=N``: ``sync-collection`` answers carry at most N members; the rest is announced
  by ``507`` on the collection's own response with a token to continue from (RFC 6578 §3.6).
- ``sync_collection=False``: a server without sync-collection: no ``DAV:sync-token`` property,
  and the REPORT answers ``403`` with ``DAV:supported-report`` (only ``CS:getctag``/etags left).
- ``multiget_cap``: a ``calendar-multiget`` answers for the first N hrefs only, silently.
- ``vanished``: resources a ``calendar-multiget`` reports ``404`` for, as if deleted between the
  listing and the fetch (iCloud has answered so for single hrefs).
- ``home_host``: a principal's ``calendar-home-set`` names the home as an absolute URL on this
  base (iCloud's partition host, ``https://pNN-caldav.icloud.com:443/<dsid>/calendars/``).
- ``redirect_to``: every request is answered ``301`` to the same path on this base (a server
  that moved, or sends clients to another host).

Everything else is forwarded as is. ``reports`` counts the sync-collection REPORTs served.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import unquote

import aiohttp
from aiohttp import web

_FORWARDED = ("Authorization", "Depth", "Content-Type", "If-Match", "If-None-Match")
_SYNC_TOKEN_PROP = re.compile(rb"<(\w+:)?sync-token>.*?</(\w+:)?sync-token>|<(\w+:)?sync-token */>", re.S)
_TOKEN = re.compile(rb"<(?:\w+:)?sync-token>(.*?)</(?:\w+:)?sync-token>", re.S)
_HOME_SET = re.compile(rb"(calendar-home-set[^>]*>\s*<(?:\w+:)?href[^>]*>)(/[^<]*)", re.S)


@dataclass
class ProxyState:
    target: str
    truncate: int | None = None
    sync_collection: bool = True
    reports: int = 0
    #: resource paths a calendar-multiget answers 404 for (gone between listing and fetching)
    vanished: frozenset[str] = frozenset()
    #: a calendar-multiget answers for at most this many of the hrefs asked (Zoho caps silently)
    multiget_cap: int | None = None
    #: the base of the URL the principal's calendar-home-set names
    home_host: str | None = None
    #: the base every request is redirected to (301), its path kept
    redirect_to: str | None = None


async def _forward(
    http: aiohttp.ClientSession, state: ProxyState, request: web.Request, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
    url = state.target.rstrip("/") + request.path_qs
    async with http.request(request.method, url, data=body, headers=headers, allow_redirects=False) as answer:
        kept = {k: v for k, v in answer.headers.items() if k.lower() in ("etag", "content-type", "location")}
        return answer.status, kept, await answer.read()


def _truncated(body: bytes, request_path: str, offset: int, size: int, asked: str) -> bytes:
    ET.register_namespace("", "DAV:")
    root = ET.fromstring(body)
    responses = root.findall("{DAV:}response")
    final = root.find("{DAV:}sync-token")
    for response in responses:
        root.remove(response)
    chunk = responses[offset : offset + size]
    for response in chunk:
        root.insert(len(root) - 1, response)
    if offset + size < len(responses):
        marker = ET.SubElement(root, "{DAV:}response")
        ET.SubElement(marker, "{DAV:}href").text = request_path
        ET.SubElement(marker, "{DAV:}status").text = "HTTP/1.1 507 Insufficient Storage"
        ET.SubElement(ET.SubElement(marker, "{DAV:}error"), "{DAV:}number-of-matches-within-limits")
        assert final is not None
        root.remove(final)
        token = ET.SubElement(root, "{DAV:}sync-token")
        token.text = f"trunc:{offset + size}:{asked}"
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def _vanish(body: bytes, paths: frozenset[str]) -> bytes:
    ET.register_namespace("", "DAV:")
    root = ET.fromstring(body)
    for response in root.findall("{DAV:}response"):
        href = response.findtext("{DAV:}href") or ""
        if unquote(href) in paths:
            for child in list(response):
                if child.tag != "{DAV:}href":
                    response.remove(child)
            ET.SubElement(response, "{DAV:}status").text = "HTTP/1.1 404 Not Found"
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def _capped(body: bytes, cap: int) -> bytes:
    ET.register_namespace("", "DAV:")
    root = ET.fromstring(body)
    for response in root.findall("{DAV:}response")[cap:]:
        root.remove(response)
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def build_proxy(http: aiohttp.ClientSession, state: ProxyState) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if state.redirect_to is not None:
            return web.Response(
                status=301, headers={"Location": state.redirect_to.rstrip("/") + request.path_qs}
            )
        is_sync = request.method == "REPORT" and b"sync-collection" in body
        if is_sync and not state.sync_collection:
            error = b'<?xml version="1.0"?><error xmlns="DAV:"><supported-report/></error>'
            return web.Response(status=403, body=error, content_type="application/xml")
        offset, asked = 0, b""
        if is_sync:
            state.reports += 1
            match = _TOKEN.search(body)
            asked = match.group(1) if match else b""
            if asked.startswith(b"trunc:"):
                _, raw_offset, original = asked.split(b":", 2)
                offset, asked = int(raw_offset), original
                body = body.replace(match.group(1), original) if match else body
        status, headers, answer = await _forward(http, state, request, body)
        if request.method == "PROPFIND" and not state.sync_collection:
            answer = re.sub(
                rb"<(\w+:)?sync-token>.*?</(\w+:)?sync-token>|<(\w+:)?sync-token */>", b"", answer
            )
        if request.method == "PROPFIND" and state.home_host is not None:
            answer = _HOME_SET.sub(
                lambda m: m.group(1) + state.home_host.rstrip("/").encode() + m.group(2), answer
            )
        if request.method == "REPORT" and b"calendar-multiget" in body and state.vanished:
            answer = _vanish(answer, state.vanished)
        if request.method == "REPORT" and b"calendar-multiget" in body and state.multiget_cap:
            answer = _capped(answer, state.multiget_cap)
        if is_sync and status == 207 and state.truncate:
            answer = _truncated(answer, request.path, offset, state.truncate, asked.decode())
        return web.Response(status=status, body=answer, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@asynccontextmanager
async def caldav_proxy(http: aiohttp.ClientSession, state: ProxyState) -> AsyncIterator[str]:
    """Serve the proxy on a free port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    runner = web.AppRunner(build_proxy(http, state), handle_signals=False, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()
