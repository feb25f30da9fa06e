"""The API's documentation pages, Swagger UI (``/docs``) and ReDoc (``/redoc``), with their
JavaScript and CSS served from the package (``geo/static``), not a CDN: they work on an
intranet without internet access.

Vendored from npm at pinned versions, each with its licence beside it:
``swagger-ui-dist`` 5.35.0 (``swagger-ui-bundle.js``, ``swagger-ui.css``, the favicon; Apache
2.0) and ``redoc`` 2.5.4 (``redoc.standalone.js``; MIT). ReDoc is served without Google Fonts.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

SWAGGER_UI = "swagger-ui-5.35.0"
REDOC = "redoc-2.5.4"


def install(app: FastAPI) -> None:
    """Add ``/docs`` and ``/redoc`` (the app is made with ``docs_url=None, redoc_url=None``)."""

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        static = f"{root}/static/{SWAGGER_UI}"
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — Swagger UI",
            swagger_js_url=f"{static}/swagger-ui-bundle.js",
            swagger_css_url=f"{static}/swagger-ui.css",
            swagger_favicon_url=f"{static}/favicon-32x32.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{root}/static/{REDOC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}/static/{SWAGGER_UI}/favicon-32x32.png",
            with_google_fonts=False,
        )
