"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

from geo import __version__
from geo.api import (
    access_log,
    audit,
    auth,
    communities,
    compression,
    docs,
    enterprises,
    errors,
    features,
    features_edit,
    health,
    limits,
    locate,
    people,
    search,
    shedding,
    tiles,
)
from geo.api import coverage as coverage_api
from geo.api import grids as grids_api
from geo.api import maps as maps_api
from geo.api.state import AtlasHolder
from geo.atlas import keep_out_of_collector
from geo.settings import Settings
from geo.store.base import Store


def create_app(store: Store, settings: Settings | None = None) -> FastAPI:
    """An app serving ``store``: every read comes from the atlas of its latest version."""
    settings = settings or Settings()
    holder = AtlasHolder(
        store,
        settings.refresh_seconds,
        settings.publish_timeout_seconds,
        settings.heartbeat_ttl_seconds,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await holder.start()  # watch the store; record the version served (geo.store.serving)
        preparing = asyncio.create_task(tiles.prepare_served(app))  # after start, see there
        yield
        preparing.cancel()
        await holder.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="geo — industrial communities (产业社区)",
        version=__version__,
        description="Which street, industrial community, grid and micro-grid own a point or an "
        "enterprise. Coordinates in WGS84 unless `crs` says otherwise "
        "(cgcs2000, gcj02, bd09, EPSG:n).",
        dependencies=[Depends(auth.policy)],  # every route: caller, role (geo.api.auth)
        docs_url=None,  # /docs and /redoc load their assets from geo/static (geo.api.docs)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.atlas = holder
    docs.install(app)
    tiles.install(app, holder, settings.prepare_tiles)  # the tile cache, across versions
    features.install(app)  # OGC operations in /openapi.json: 400 (not 422), bbox a form array
    for module in (
        health,
        locate,
        enterprises,
        features,
        features_edit,  # OGC API – Features Part 4: POST/PUT/PATCH/DELETE/OPTIONS on items
        tiles,
        communities,
        people,
        search,
        coverage_api,
        maps_api,
        grids_api,
        auth,
        audit,
    ):
        app.include_router(module.router)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # off by default
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Content-Crs",
                "If-Match",
                "X-Request-ID",
            ],
            # a Part 4 client reads the new item's Location, its ETag, Content-Crs and Allow
            expose_headers=[
                "ETag",
                "Location",
                "Content-Crs",
                "Allow",
                "X-Request-ID",
                "WWW-Authenticate",
            ],
        )
    errors.install(app)  # GeoError → {"detail": …} with its status (geo.errors)
    shedding.install(app, settings)  # heavy requests: per client (429) and in total (503)
    limits.install(app, settings)  # body size → 413, slow requests → 503
    app.add_middleware(compression.Compression)  # br or gzip, as Accept-Encoding allows
    auth.document_security(app)  # bearer scheme and each operation's role in /openapi.json
    # added last, so outermost: every response (a 413 or 503 too) has X-Request-ID
    app.add_middleware(audit.RequestIdMiddleware)
    return app


def app_from_env() -> FastAPI:
    """The app for `geo serve` workers: store and settings from ``GEO_`` environment variables."""
    from geo.store import open_store

    # Atlas builds run beside the event loop in this process (geo.api.state): hand the GIL back
    # to the loop every millisecond instead of every 5, so requests wait less during a build.
    sys.setswitchinterval(0.001)
    access_log.install()  # no credential reaches a log (uvicorn's access log prints queries)
    settings = Settings()
    app = create_app(open_store(settings.db), settings)
    # the atlas is millions of long-lived objects: frozen now, or with the tiles prepared
    # after start (`geo.api.tiles.prepare_served`), which live as long
    keep_out_of_collector(freeze=not settings.prepare_tiles)
    return app
