"""HTTP for the providers' JSON APIs: one timeout per call, one forced refresh after a 401.

:class:`ProviderHttp` wraps the shared ``aiohttp.ClientSession``. Every call has a total timeout
(``ProviderSettings.http_timeout_s``); timeouts and connection failures become ``Unavailable``;
a status outside ``ok`` goes through the provider's translation function
(``(status, headers, body) -> ProviderError``). :meth:`ProviderHttp.authorized_json` asks the
token source for a token, and after a 401 asks once more with ``force_refresh=True`` and
retries once.

Log lines carry method, host, path, status and duration: never a query string, a header or a
body, so no token, code or password can reach them. Every request is counted in
``chronapilot_provider_requests_total`` under the caller's
:class:`~chronapilot.common.providers.telemetry.Operation` and the outcome its status (or its
failure) means (:mod:`~chronapilot.common.providers.telemetry`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from chronapilot.common.errors import ProviderError
from chronapilot.common.logging import get_logger
from chronapilot.common.providers.base import TokenSource
from chronapilot.common.providers.errors import Unavailable
from chronapilot.common.providers.telemetry import Operation, observe_call

#: ``(status, headers, body) -> error``: one per provider, in its client module.
Translate = Callable[[int, Mapping[str, str], bytes], ProviderError]

log = get_logger(__name__)


@dataclass(frozen=True)
class Answer:
    """A provider's answer, read in full."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (an empty body is ``{}``); anything else is a ``ProviderError``."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except ValueError:
            raise ProviderError(
                "the provider answered with a body that is not JSON", status=self.status
            ) from None
        if not isinstance(value, dict):
            raise ProviderError("the provider answered with JSON that is not an object", status=self.status)
        return value


def parse_json_object(body: bytes) -> dict[str, Any]:
    """``body`` as a JSON object, or ``{}`` when it is not one (error bodies are not trusted)."""
    try:
        value = json.loads(body) if body.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class ProviderHttp:
    """The provider clients' HTTP: timeouts, error translation, the 401 rule."""

    def __init__(
        self, session: aiohttp.ClientSession, *, timeout_s: float, translate: Translate, provider: str
    ) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._translate = translate
        self._provider = provider

    async def send(
        self,
        method: str,
        url: str,
        *,
        operation: Operation,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One request for ``operation``, read in full; transport failures and timeouts raise
        ``Unavailable``."""
        started = time.monotonic()
        target = urlsplit(url)
        try:
            with observe_call(self._provider, operation) as call:
                async with self._session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers={"Accept": "application/json", **(headers or {})},
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    body = await response.read()
                    answer = Answer(response.status, dict(response.headers), body)
                failure = (
                    self._translate(answer.status, answer.headers, body) if answer.status >= 400 else None
                )
                call.answered(answer.status, failure)
        except TimeoutError:
            raise Unavailable(f"{self._provider}: {method} {target.path} timed out") from None
        except aiohttp.ClientError as exc:
            raise Unavailable(
                f"{self._provider}: {method} {target.path} failed: {type(exc).__name__}"
            ) from None
        log.debug(
            "provider_call",
            provider=self._provider,
            method=method,
            host=target.netloc,
            path=target.path,
            status=answer.status,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return answer

    def check(self, answer: Answer, ok: Collection[int]) -> Answer:
        """``answer`` if its status is in ``ok``; else the translated error is raised."""
        if answer.status not in ok:
            raise self._translate(answer.status, answer.headers, answer.body)
        return answer

    async def form(
        self,
        url: str,
        data: Mapping[str, str] | str,
        *,
        operation: Operation,
        ok: Collection[int] = (200,),
    ) -> Answer:
        """POST a form (token, revocation endpoints); ``data`` may be already encoded."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if isinstance(data, str) else None
        return self.check(await self.send("POST", url, operation=operation, data=data, headers=headers), ok)

    async def authorized_json(
        self,
        method: str,
        url: str,
        token: TokenSource,
        *,
        operation: Operation,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Collection[int] = (200,),
    ) -> dict[str, Any]:
        """A bearer-authenticated call, checked against ``ok``; its JSON object."""
        answer = await self.authorized(
            method, url, token, operation=operation, params=params, headers=headers
        )
        return self.check(answer, ok).json()

    async def authorized(
        self,
        method: str,
        url: str,
        token: TokenSource,
        *,
        operation: Operation,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Answer:
        """A bearer-authenticated call (``body`` sent as JSON), unchecked; after a 401, one
        forced refresh and one retry."""
        sent = {**(headers or {})}
        data = None
        if body is not None:
            sent["Content-Type"] = "application/json"
            data = json.dumps(body, separators=(",", ":"))
        answer = await self._bearer(method, url, operation, await token(False), params, sent, data)
        if answer.status == 401:
            answer = await self._bearer(method, url, operation, await token(True), params, sent, data)
        return answer

    async def _bearer(
        self,
        method: str,
        url: str,
        operation: Operation,
        access_token: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        data: str | None,
    ) -> Answer:
        return await self.send(
            method,
            url,
            operation=operation,
            params=params,
            data=data,
            headers={**headers, "Authorization": f"Bearer {access_token}"},
        )


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
