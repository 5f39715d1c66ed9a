"""The console's pages and actions: the overview, the search, one connection, the login form,
and error pages (never a stack trace)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from chronapilot.common.errors import StoreError
from chronapilot.common.logging import get_logger
from chronapilot.common.runtime import RUNTIME
from chronapilot.ops.actions import ActionResult, force_resync, retry_teardown
from chronapilot.ops.console import charts
from chronapilot.ops.console.auth import GATE, SESSION_COOKIE, authenticated, session_of, set_session_cookie
from chronapilot.ops.console.consumer_lag import LagUnavailable
from chronapilot.ops.console.state import STATE, read_fleet
from chronapilot.ops.console.views import SECURITY_HEADERS, render_page
from chronapilot.ops.story import connection_story, find_connections

log = get_logger(__name__)

CHART_HOURS = 6
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, stylesheet: bytes) -> None:
    async def css(_: web.Request) -> web.Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": "max-age=300"}
        return web.Response(body=stylesheet, content_type="text/css", charset="utf-8", headers=headers)

    app.router.add_get("/static/console.css", css)
    app.router.add_get("/", overview)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/connections", search)
    app.router.add_get("/connections/{id}", connection_page, name="connection")
    app.router.add_post("/connections/{id}/resync", resync_action)
    app.router.add_post("/connections/{id}/teardown", teardown_action)


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP errors as pages (``/metrics`` and bearer callers get plain text); anything else is
    logged and answered 500, never with its stack trace."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or request.path in ("/metrics", "/healthz", "/readyz"):
            raise
        if "Authorization" in request.headers and exc.status == 401:
            raise
        return _error(exc.status, exc.reason, exc.text or exc.reason, headers=exc.headers)
    except StoreError as exc:
        log.warning("ops.page_store_error", path=request.path, error=exc.code)
        return _error(503, "Service Unavailable", "MongoDB did not answer; try again in a moment.")
    except Exception:
        log.exception("ops.page_failed", path=request.path)
        return _error(
            500, "Internal Server Error", "The console failed to render this page; the log has why."
        )


def _error(status: int, reason: str, message: str, headers: Any = None) -> web.Response:
    response = render_page("error.html", status=status, code=status, reason=reason, message=message)
    for name in ("WWW-Authenticate", "Location"):
        if headers and name in headers:
            response.headers[name] = headers[name]
    return response


def _page(request: web.Request, template: str, **context: Any) -> web.Response:
    """Render ``template``; in an open (development) console, hand out the CSRF session."""
    gate = request.app[GATE]
    session = session_of(request)
    fresh = session is None
    session = session or gate.new_session()
    response = render_page(
        template, now=request.app[RUNTIME].clock.now(), csrf_token=gate.csrf_token(session), **context
    )
    if fresh and (gate.token is None or authenticated(request)):
        set_session_cookie(response, request, session, gate.session_ttl_s)
    return response


async def overview(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    state = request.app[STATE]
    reading = state.reading
    if reading is None:  # the gauges loop has not run yet
        reading = state.reading = await read_fleet(runtime)
    now = runtime.clock.now()
    snapshot = await runtime.repos.fleet.snapshot(
        now, poll_interval=timedelta(seconds=runtime.settings.sync.poll_interval_s)
    )
    lag = reading.lag
    samples = await runtime.repos.ops_samples.since(now - timedelta(hours=CHART_HOURS))
    in_error = await runtime.repos.fleet.in_error(limit=50)
    return _page(
        request,
        "overview.html",
        snapshot=snapshot,
        connections=sorted(snapshot.connections.items()),
        failures=sorted(snapshot.failures_last_hour.items()),
        deliveries=sorted(snapshot.deliveries.items()),
        lag=[] if isinstance(lag, LagUnavailable) else lag,
        lag_unavailable=lag.reason if isinstance(lag, LagUnavailable) else None,
        lag_at=reading.at,
        dead_letters=sorted(reading.dead_letters.items()),
        in_error=in_error,
        targets=sorted(state.targets_up.items()),
        charts=charts.series(samples),
        chart_hours=CHART_HOURS,
        poll_interval_s=runtime.settings.sync.poll_interval_s,
    )


async def search(request: web.Request) -> web.StreamResponse:
    query = request.query.get("q", "").strip()
    if not query:
        raise web.HTTPSeeOther("/")
    found = await find_connections(request.app[RUNTIME], query)
    if len(found) == 1:
        raise web.HTTPSeeOther(f"/connections/{found[0]['_id']}")
    return _page(request, "search.html", query=query, found=found)


NOTICES = {
    "requested",
    "rate_limited",
    "disconnected",
    "subscriptions_due",
    "released",
    "revocation_requested",
    "complete",
    "not_disconnected",
}


async def connection_page(request: web.Request) -> web.Response:
    story = await connection_story(request.app[RUNTIME], request.match_info["id"])
    if story is None:
        raise web.HTTPNotFound(text="No connection has that id.")
    notice = request.query.get("notice")
    message = request.query.get("message") if notice in NOTICES else None
    return _page(
        request,
        "connection.html",
        story=story,
        query=story.id,
        notice=message,
        notice_ok=request.query.get("ok") == "1",
    )


async def resync_action(request: web.Request) -> web.StreamResponse:
    return await _act(request, force_resync)


async def teardown_action(request: web.Request) -> web.StreamResponse:
    return await _act(request, retry_teardown)


async def _act(request: web.Request, action: Callable[..., Awaitable[ActionResult]]) -> web.StreamResponse:
    form = await request.post()
    gate = request.app[GATE]
    bearer = gate.token is not None and gate.bearer_ok(request)
    if not bearer and not gate.csrf_ok(request.cookies.get(SESSION_COOKIE), str(form.get("csrf_token", ""))):
        raise web.HTTPForbidden(
            text="This form is stale or was not sent by the console; reload the page and retry."
        )
    connection_id = request.match_info["id"]
    result = await action(request.app[RUNTIME], connection_id)
    if result.outcome == "not_found":
        raise web.HTTPNotFound(text="No connection has that id.")
    location = (
        request.app.router["connection"]
        .url_for(id=connection_id)
        .with_query(notice=result.outcome, message=result.message, ok="1" if result.done else "0")
    )
    raise web.HTTPSeeOther(str(location))


async def login_form(request: web.Request) -> web.Response:
    if request.app[GATE].token is None:
        raise web.HTTPSeeOther("/")
    return render_page("login.html", failed=False, query="")


async def login(request: web.Request) -> web.Response:
    gate = request.app[GATE]
    form = await request.post()
    if gate.token is None:
        raise web.HTTPSeeOther("/")
    if not gate.token_matches(str(form.get("token", ""))):
        log.warning("ops.login_refused")
        return render_page("login.html", status=401, failed=True, query="")
    response = web.HTTPSeeOther("/")
    set_session_cookie(response, request, gate.new_session(), gate.session_ttl_s)
    raise response


async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response
