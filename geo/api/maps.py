"""HTML maps (folium/Leaflet, in Chinese) and the vendored JavaScript/CSS they load.

``GET /maps/`` (district), ``/maps/community/{id}``, ``/maps/officer/{id}`` (我的楼宇) and
``/maps/editor/{community_id}`` (boundary editor) take ``?basemap=osm|tianditu|amap|none``.
Every asset is served from ``/static/...`` (``geo/static``), so the maps work on an intranet
without internet access; only base-map tiles come from outside (none with ``basemap=none``).
A static file is read once and kept with its compressed forms (brotli or gzip, each made once:
`geo.api.compression.Encoded`); its ``ETag`` is a hash of its bytes and ``If-None-Match``
answers 304. A ``Range`` request gets the file's identity bytes (``FileResponse``).
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from geo import maps
from geo.api import search as search_api
from geo.api.compression import Encoded, compressible, encoded_body, request_coding
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
        search_url=f"{root}/search",  # the search box asks GET /search as the user types
        data_attribution=cfg.data_attribution,
    )


_PAGES: OrderedDict[tuple[Any, ...], tuple[Encoded, str]] = OrderedDict()
_PAGES_MAX = 32  # pages kept (per process): the district, communities, recent officers
_PAGES_LOCK = threading.Lock()


def _built(builder: Callable[..., str], args: tuple[Any, ...]) -> tuple[Encoded, str]:
    """The page ``builder(*args)`` and its CSP, built once per atlas version and options (the
    same atlas and options always make the same page) and kept with its compressed forms."""
    key = (builder.__name__, *(a.serial if isinstance(a, Atlas) else a for a in args))
    with _PAGES_LOCK:
        hit = _PAGES.get(key)
        if hit is not None:
            _PAGES.move_to_end(key)
            return hit
    html = builder(*args)
    opts = next(a for a in args if isinstance(a, maps.MapOptions))
    data = html.encode("utf-8")
    etag = f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'
    page = (Encoded(data, etag, best=True), csp.policy(html, opts.basemap))
    with _PAGES_LOCK:
        _PAGES[key] = page
        while len(_PAGES) > _PAGES_MAX:
            _PAGES.popitem(last=False)
    return page


_WARMING: set[asyncio.Task[Any]] = set()


def _warm_search(current: Atlas) -> None:
    """Build the search index of ``current`` in the background (once per atlas): the page's
    search box will ask ``GET /search`` soon, and should not wait for the index then."""
    task = asyncio.get_running_loop().create_task(run_in_threadpool(search_api.places, current))
    _WARMING.add(task)
    task.add_done_callback(lambda t: (_WARMING.discard(t), t.cancelled() or t.exception()))


async def _page(request: Request, builder: Callable[..., str], *args: Any) -> Response:
    """The page ``builder(*args)`` makes, built in a worker thread (an unknown community or
    officer is `maps.MapError`: a 404), with its Content-Security-Policy: no script but the
    vendored files and the page's own inline blocks (by hash), see `geo.maps.csp`. Kept per
    atlas version, compressed once; ``If-None-Match`` answers 304."""
    if builder in (maps.district_map, maps.community_map):  # pages with a search box
        _warm_search(args[0])
    item, policy = await run_in_threadpool(_built, builder, args)
    coding = request_coding(request.scope)
    headers = {
        **item.headers(coding),
        "Cache-Control": "no-cache",
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
    }
    if _etag_matches(request.headers.get("if-none-match"), item.etag):
        headers.pop("Content-Encoding", None)
        return Response(status_code=304, headers=headers)
    body = await encoded_body(item, coding)
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


@router.get("/maps/", response_class=HTMLResponse, summary="District overview map (HTML)")
async def district(
    request: Request,
    current: Annotated[Atlas, Depends(atlas)],
    cfg: Annotated[Settings, Depends(settings)],
    basemap: BasemapQuery = "osm",
) -> Response:
    """The district overview map."""
    return await _page(request, maps.district_map, current, _options(request, cfg, basemap))


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
) -> Response:
    """The map of one industrial community."""
    opts = _options(request, cfg, basemap)
    return await _page(request, maps.community_map, current, community_id, opts)


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
) -> Response:
    """The map of an officer's buildings (我的楼宇)."""
    opts = _options(request, cfg, basemap)
    return await _page(request, maps.officer_map, current, officer_id, opts)


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
) -> Response:
    """The boundary editor of a community."""
    opts = _options(request, cfg, basemap)
    return await _page(request, maps.editor_map, current, community_id, opts)


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


_FILES: dict[Path, tuple[tuple[int, int], Encoded]] = {}  # path -> (mtime, size), the file
_FILES_LOCK = threading.Lock()


def _static_file(target: Path) -> Encoded:
    """The file ``target`` with its ETag (a hash of its bytes), read again when it changed."""
    st = target.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    with _FILES_LOCK:
        hit = _FILES.get(target)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    data = target.read_bytes()
    item = Encoded(data, f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"', best=True)
    with _FILES_LOCK:
        _FILES[target] = (stamp, item)
    return item


def _etag_matches(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110)."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


@router.get("/static/{path:path}", include_in_schema=False)
async def static(request: Request, path: str) -> Response:
    """A vendored asset (Leaflet, plugins, geo/maps.js, Swagger UI) from geo/static."""
    target = (_STATIC_ROOT / path).resolve()
    if not target.is_relative_to(_STATIC_ROOT) or not target.is_file():
        raise NotFound(f"no static file {path!r}")
    cache = _OWN_CACHE if target.is_relative_to(_STATIC_ROOT / "geo") else _STATIC_CACHE
    item = await run_in_threadpool(_static_file, target)
    if request.headers.get("range"):  # the identity bytes, as FileResponse cuts them
        return FileResponse(target, headers={"Cache-Control": cache, "ETag": item.etag})
    media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    packable = compressible(media)
    coding = request_coding(request.scope) if packable else None
    headers = {**item.headers(coding), "Cache-Control": cache}
    if not packable:
        del headers["Vary"]
    if _etag_matches(request.headers.get("if-none-match"), item.etag):
        headers.pop("Content-Encoding", None)
        return Response(status_code=304, headers=headers)
    if media.startswith("text/") or media == "application/javascript":
        media += "; charset=utf-8"
    return Response(await encoded_body(item, coding), media_type=media, headers=headers)
