"""The API's documentation page, /docs: Swagger UI served by yibao itself.

Its script and style sheet are vendored from the npm package
``swagger-ui-dist`` into ``static/`` (``make api-assets`` refreshes them),
as htmx is for the web pages: nothing is fetched from a public CDN, so the
page works on a network without the Internet and cannot be changed by a
third party. The page has no inline script (``docs-init.js`` starts the
UI), so it runs under a Content-Security-Policy that allows scripts only
from yibao itself.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
ASSETS = "/docs/assets"

# data: images are the icons inside swagger-ui.css; the "Try it out" calls
# go to this server only.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

PAGE = f"""<!DOCTYPE html>
<html lang="zh-Hans">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>yibao 医保卡服务 API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{ASSETS}/docs-init.js" data-openapi-url="/api/v1/openapi.json"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve /docs and its assets (FastAPI's own /docs and /redoc load from a CDN)."""
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="api-docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(
            PAGE,
            headers={
                "Content-Security-Policy": POLICY,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )
