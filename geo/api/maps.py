"""HTML maps (folium/Leaflet, in Chinese) and the vendored JavaScript/CSS they load.

``GET /maps/`` (district), ``/maps/community/{id}``, ``/maps/officer/{id}`` (我的楼宇) and
``/maps/editor/{community_id}`` (boundary editor) take ``?basemap=osm|tianditu|amap|none``.
Every asset is served from ``/static/...`` (``geo/static``), so the maps work on an intranet
without internet access; only base-map tiles come from outside (none with ``basemap=none``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from geo import maps
from geo.api.deps import atlas, settings
from geo.atlas import Atlas
from geo.errors import NotFound
from geo.maps import csp
from geo.settings import Settings

router = APIRouter(tags=["maps"])

BasemapQuery = Annotated[
    str, Query(description="base map: osm (default), tianditu, amap (GCJ-02) or none (offline)")
]
_STATIC_ROOT = maps.STATIC_DIR.resolve()
_STATIC_CACHE = "public, max-age=86400"  # assets are pinned: a new version is a new path
_OWN_CACHE = "no-cache"  # geo/maps.js and .css change with the pages: revalidate (ETag)


def _options(request: Request, cfg: Settings, basemap: str) -> maps.MapOptions:
    """The map options of a request (an unknown base map is `maps.OptionError`: a 422)."""
    query = f"?basemap={basemap}" if basemap != "osm" else ""
    root = request.scope.get("root_path", "")
    return maps.MapOptions(
        basemap=basemap,
        tianditu_key=getattr(cfg, "tianditu_key", None),
        static_url=f"{root}/static",
        tiles_url=f"{root}/tiles",
        api_url=root,
        extra_query=query,
        search_url=f"{root}/maps/search.json",
        data_attribution=cfg.data_attribution,
    )


async def _page(builder: Callable[..., str], *args: Any) -> HTMLResponse:
    """The page ``builder(*args)`` makes, built in a worker thread (an unknown community or
    officer is `maps.MapError`: a 404), with its Content-Security-Policy: no script but the
    vendored files and the page's own inline blocks (by hash), see `geo.maps.csp`."""
    html = await run_in_threadpool(builder, *args)
    opts = next(a for a in args if isinstance(a, maps.MapOptions))
    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": csp.policy(html, opts.basemap),
        "X-Content-Type-Options": "nosniff",
    }
    return HTMLResponse(html, headers=headers)


@router.get("/maps/", response_class=HTMLResponse, summary="District overview map (HTML)")
async def district(
    request: Request,
    current: Annotated[Atlas, Depends(atlas)],
    cfg: Annotated[Settings, Depends(settings)],
    basemap: BasemapQuery = "osm",
) -> HTMLResponse:
    """The district overview map."""
    return await _page(maps.district_map, current, _options(request, cfg, basemap))


@router.get(
    "/maps/community/{community_id}",
    response_class=HTMLResponse,
    summary="One industrial community: grids, parks, buildings, enterprises (HTML)",
)
async def community(
    request: Request,
    community_id: str,
    current: Annotated[Atlas, Depends(atlas)],
    cfg: Annotated[Settings, Depends(settings)],
    basemap: BasemapQuery = "osm",
) -> HTMLResponse:
    """The map of one industrial community."""
    opts = _options(request, cfg, basemap)
    return await _page(maps.community_map, current, community_id, opts)


@router.get(
    "/maps/officer/{officer_id}",
    response_class=HTMLResponse,
    summary="我的楼宇: an officer's buildings and their enterprises (HTML)",
)
async def officer(
    request: Request,
    officer_id: str,
    current: Annotated[Atlas, Depends(atlas)],
    cfg: Annotated[Settings, Depends(settings)],
    basemap: BasemapQuery = "osm",
) -> HTMLResponse:
    """The map of an officer's buildings (我的楼宇)."""
    return await _page(maps.officer_map, current, officer_id, _options(request, cfg, basemap))


@router.get(
    "/maps/editor/{community_id}",
    response_class=HTMLResponse,
    summary="Boundary editor of a community: draw, snap, preview, save (HTML)",
)
async def editor(
    request: Request,
    community_id: str,
    current: Annotated[Atlas, Depends(atlas)],
    cfg: Annotated[Settings, Depends(settings)],
    basemap: BasemapQuery = "osm",
) -> HTMLResponse:
    """The boundary editor of a community."""
    opts = _options(request, cfg, basemap)
    return await _page(maps.editor_map, current, community_id, opts)


@router.get("/maps/search.json", summary="The maps' search entries (district or one community)")
async def search_entries(
    current: Annotated[Atlas, Depends(atlas)],
    community: Annotated[
        str | None, Query(description="a community id; none: the district")
    ] = None,
    coords: Annotated[
        str, Query(pattern="^(wgs84|gcj02)$", description="wgs84 or gcj02")
    ] = "wgs84",
) -> JSONResponse:
    """``[kind, name, detail, pinyin, initials, lat, lon, ref]`` per searchable feature."""
    opts = maps.MapOptions(basemap="amap" if coords == "gcj02" else "none")
    data = await run_in_threadpool(maps.search_data, current, community, opts)
    return JSONResponse(data, headers={"Cache-Control": "no-cache"})


@router.get("/static/{path:path}", include_in_schema=False)
def static(path: str) -> FileResponse:
    """A vendored asset (Leaflet, plugins, geo/maps.js) from geo/static."""
    target = (_STATIC_ROOT / path).resolve()
    if not target.is_relative_to(_STATIC_ROOT) or not target.is_file():
        raise NotFound(f"no static file {path!r}")
    cache = _OWN_CACHE if target.is_relative_to(_STATIC_ROOT / "geo") else _STATIC_CACHE
    return FileResponse(target, headers={"Cache-Control": cache})
