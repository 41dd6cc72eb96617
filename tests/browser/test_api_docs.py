"""/docs in a real browser with no way out: Swagger UI's assets come from
yibao itself, the page runs under its Content-Security-Policy, and it shows
the API (issue 14)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

# the real uvicorn server and Chromium of the web pages' browser tests
from tests.browser.test_web_pages import browser, live  # noqa: F401


def test_docs_render_from_yibao_alone_under_the_content_security_policy(browser, live):  # noqa: F811
    base = live[0]
    context = browser.new_context(locale="zh-CN")
    context.set_default_timeout(15_000)
    asked: list[str] = []
    refused: list[str] = []

    def only_yibao(route: Any) -> None:
        # an offline network: anything not on this server is never reached
        url = route.request.url
        asked.append(url)
        if url.startswith(base + "/") or url.startswith("data:"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_yibao)
    page = context.new_page()
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    response = page.goto(f"{base}/docs")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .info .title")
    assert "yibao" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector('[data-path="/api/v1/persons/{account_no}"]')
    outside = [u for u in asked if not (u.startswith(base + "/") or u.startswith("data:"))]
    assert outside == [], outside
    assert {urlsplit(u).path for u in asked} >= {
        "/docs",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/docs/assets/docs-init.js",
        "/api/v1/openapi.json",
    }
    assert refused == [], refused
    context.close()
