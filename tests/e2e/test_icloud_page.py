"""The hosted iCloud page: accessible, CSRF-protected, a clear message on a wrong password,
and a limited number of attempts."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from chronapilot.common.runtime import RUNTIME

pytestmark = pytest.mark.e2e


async def open_form(browser, user_id):
    started = await browser.start("icloud", user_id, state="ic")
    async with browser.http.get(started["redirect_url"]) as page:
        html = await page.text()
        assert page.status == 200
        assert page.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    return started["redirect_url"], html, token


async def submit(browser, url, **form):
    async with browser.http.post(url, data=form, allow_redirects=False) as response:
        return response.status, await response.text(), response.headers


async def test_the_page_is_labelled_and_names_what_it_asks_for(browser):
    user_id = await browser.create_user()
    _, html, _ = await open_form(browser, user_id)
    assert '<html lang="en">' in html
    assert '<label for="email">' in html
    assert '<label for="password">' in html
    assert 'autocomplete="username"' in html
    assert 'autocomplete="current-password"' in html
    assert "app-specific password" in html


async def test_a_wrong_password_shows_the_page_again_then_attempts_run_out(browser, sandbox):
    user_id = await browser.create_user()
    url, _, token = await open_form(browser, user_id)
    email = sandbox.accounts["icloud"].email
    for attempt in range(1, 5):
        status, html, _ = await submit(
            browser, url, csrf_token=token, email=email, password="aaaa-bbbb-cccc-dddd"
        )
        assert status == 401
        assert 'role="alert"' in html
        assert "don&#39;t match" in html
        assert f"{5 - attempt} attempt" in html
        assert "aaaa-bbbb-cccc-dddd" not in html  # the password is never echoed
        assert email in html  # the e-mail is kept, so only the password is retyped
    status, _, headers = await submit(
        browser, url, csrf_token=token, email=email, password="aaaa-bbbb-cccc-dddd"
    )
    assert status == 302
    params = parse_qs(urlsplit(headers["Location"]).query)
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["ic"]
    status, _, _ = await submit(
        browser, url, csrf_token=token, email=email, password=sandbox.accounts["icloud"].password
    )
    assert status == 400  # the session is spent


@pytest.mark.parametrize(
    ("email", "says"),
    [
        ("demo:icloud@example.com", "can&#39;t contain a colon (:)"),
        ("demo icloud@example.com", "can&#39;t contain spaces"),
        ("demo\u0001icloud@example.com", "can&#39;t contain spaces"),
    ],
)
async def test_an_apple_id_that_cannot_be_one_is_refused_on_the_page_without_using_an_attempt(
    browser, api, email, says
):
    user_id = await browser.create_user()
    url, _, token = await open_form(browser, user_id)
    state = urlsplit(url).path.rsplit("/", 1)[-1]
    status, html, headers = await submit(browser, url, csrf_token=token, email=email, password="abcd-efgh")
    assert status == 400
    assert headers["Content-Type"].startswith("text/html")
    assert 'role="alert"' in html
    assert says in html
    assert "attempt" not in html  # no attempt was counted, so none is announced
    session = await api.app[RUNTIME].store.db.oauth_states.find_one({"state": state})
    assert session["attempts"] == 0 and session["used_at"] is None


async def test_a_form_without_the_csrf_token_or_cookie_is_refused(browser, sandbox):
    user_id = await browser.create_user()
    url, _, token = await open_form(browser, user_id)
    account = sandbox.accounts["icloud"]
    status, _, _ = await submit(
        browser, url, csrf_token="forged", email=account.email, password=account.password
    )
    assert status == 403
    browser.http.cookie_jar.clear()
    status, _, _ = await submit(
        browser, url, csrf_token=token, email=account.email, password=account.password
    )
    assert status == 403
    async with browser.http.get(
        f"{browser.api.url}/v1/connections?user_id={user_id}", headers=browser.api.headers()
    ) as response:
        assert (await response.json())["data"] == []


async def test_the_docs_page_and_openapi_document_are_served_without_a_cdn(browser):
    async with browser.http.get(f"{browser.api.url}/v1/openapi.json") as response:
        assert response.status == 200
        document = await response.json()
    assert document["openapi"] == "3.1.0"
    assert "/v1/connections/{id}/refresh" in document["paths"]
    assert "ConnectionObject" in document["components"]["schemas"]
    async with browser.http.get(f"{browser.api.url}/docs") as response:
        html = await response.text()
    assert response.status == 200
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", html)
    assets = re.findall(r'(?:src|data-bundle)="(/docs/assets/[^"]+)"', html)
    assert len(assets) == 2, html
    for asset in assets:
        async with browser.http.get(f"{browser.api.url}{asset}") as served:
            assert served.status == 200 and served.content_type == "text/javascript"
            assert len(await served.read()) > 1000
    async with browser.http.get(f"{browser.api.url}/docs/assets/elsewhere.js") as missing:
        assert missing.status == 404
