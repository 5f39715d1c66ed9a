"""/docs in a real browser (Debian's chromium, driven by Playwright): Scalar's reference renders
the API's own OpenAPI document under the page's strict Content-Security-Policy, with no console
error, no CSP violation and no request to another origin, and its try-it sends
``GET /v1/connections`` to the API with a real API key and shows the 200 answer.
Screenshots go to ``test-artifacts/docs-*.png``."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from browser_harness import shot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# Recorded by the page itself: every CSP violation the browser reports.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


async def test_docs_render_and_try_it_lists_connections(chromium, browser):
    page = await chromium.new_page(viewport={"width": 1400, "height": 900})
    await page.add_init_script(RECORD_VIOLATIONS)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    origins: set[str] = set()
    page.on("request", lambda r: origins.add("{0.scheme}://{0.netloc}".format(urlsplit(r.url))))

    response = await page.goto(f"{browser.api.url}/docs")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp and "connect-src 'self'" in csp
    assert "unsafe-eval" not in csp and "http" not in csp
    sidebar = page.get_by_text("Connections", exact=True).first
    await sidebar.wait_for(timeout=30_000)
    for tag in ("Users", "Mirror", "Write-back", "Webhooks"):
        assert await page.get_by_text(tag, exact=True).count(), tag
    await shot(page, "docs-reference", full_page=False)

    await page.get_by_placeholder("Token").first.fill(browser.api.key)
    await sidebar.click()
    await page.get_by_text("List connections").first.click()
    operation = page.locator("[id$='GET/v1/connections']").first
    await operation.get_by_role("button", name="Test Request").click()
    async with page.expect_request(lambda r: urlsplit(r.url).path == "/v1/connections") as sent:
        await page.get_by_role("button", name="Send").first.click()
    request = await sent.value
    assert request.url.startswith(f"{browser.api.url}/v1/connections")
    assert request.headers["authorization"] == f"Bearer {browser.api.key}"
    answer = await request.response()
    assert answer is not None and answer.status == 200
    assert (await answer.json())["object"] == "list"
    await page.get_by_text("200 OK").first.wait_for()
    await shot(page, "docs-try-it", full_page=False)
    assert errors == []
    assert await page.evaluate("window.__violations") == []
    assert origins <= {browser.api.url, "data:"}, origins
