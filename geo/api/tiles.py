"""Mapbox Vector Tiles (MVT 2.1) of every layer, and their TileJSON.

Tiles come from the request's atlas through `geo.tiles`; encoded tiles are kept in an
in-memory LRU keyed by (atlas version, address, layers), so a new version — an edit — is
served at once. ``ETag`` is derived from the same key; ``If-None-Match`` answers 304.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from geo import tiles
from geo.api.deps import atlas
from geo.atlas import Atlas

router = APIRouter(tags=["tiles"])

CACHE_CONTROL = "public, max-age=60"
CACHE_BYTES = 256 * 1024 * 1024
LAYERS_HELP = f"comma-separated layers (default all): {','.join(tiles.LAYER_NAMES)}"
_ADDRESS_DOC = {
    200: {"content": {tiles.MEDIA_TYPE: {}}, "description": "the tile (MVT 2.1)"},
    204: {"description": "no feature in this tile"},
    304: {"description": "not modified (If-None-Match matched the ETag)"},
    404: {"description": "no such layer, or z/x/y outside the pyramid"},
}


class TileCache:
    """A thread-safe LRU of encoded tiles, bounded by total bytes."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple[Any, ...], data: bytes) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= len(old)
            self._items[key] = data
            self.bytes += len(data)
            while self.bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self.bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)


def tile_cache(request: Request) -> TileCache:
    """The app's tile cache (made on first use)."""
    state = request.app.state
    cache = getattr(state, "tile_cache", None)
    if cache is None:
        cache = state.tile_cache = TileCache()
    return cache


def _layers(value: str | None) -> tuple[str, ...]:
    try:
        return tiles.normalise_layers(value)
    except tiles.TileError as exc:
        raise HTTPException(404, str(exc)) from exc


def _one_layer(name: str) -> tuple[str, ...]:
    if name not in tiles.LAYER_NAMES:
        raise HTTPException(404, tiles.unknown_layer(name))
    return (name,)


def _etag(key: tuple[Any, ...]) -> str:
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()
    return f'"v{key[0]}-{digest}"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == etag for t in header.split(","))


async def _tile(
    request: Request, current: Atlas, z: int, x: int, y: int, names: tuple[str, ...]
) -> Response:
    try:
        tiles.check_address(z, x, y)
    except tiles.TileError as exc:
        raise HTTPException(404, str(exc)) from exc
    key = (current.version, z, x, y, names)
    etag = _etag(key)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    cache = tile_cache(request)
    data = cache.get(key)
    if data is None:
        data = await run_in_threadpool(tiles.source_for(current).tile, z, x, y, names)
        cache.put(key, data)
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=tiles.MEDIA_TYPE, headers=headers)


@router.get(
    "/tiles/{z}/{x}/{y}.mvt",
    response_class=Response,
    responses=_ADDRESS_DOC,
    summary="A vector tile with several layers (default all)",
)
async def tile_layers(
    request: Request,
    current: Annotated[Atlas, Depends(atlas)],
    z: int,
    x: int,
    y: int,
    layers: Annotated[str | None, Query(description=LAYERS_HELP)] = None,
) -> Response:
    return await _tile(request, current, z, x, y, _layers(layers))


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.mvt",
    response_class=Response,
    responses=_ADDRESS_DOC,
    summary="A vector tile of one layer (the MVT layer is named as the collection)",
)
async def tile_layer(
    request: Request,
    current: Annotated[Atlas, Depends(atlas)],
    layer: str,
    z: int,
    x: int,
    y: int,
) -> Response:
    return await _tile(request, current, z, x, y, _one_layer(layer))


def _tilejson(request: Request, current: Atlas, path: str, names: tuple[str, ...]) -> Any:
    base = str(request.base_url).rstrip("/")
    return tiles.tilejson(current, f"{base}{path}", names)


@router.get("/tiles.json", summary="TileJSON 3.0.0 of several layers in one tile set")
def tilejson_layers(
    request: Request,
    current: Annotated[Atlas, Depends(atlas)],
    layers: Annotated[str | None, Query(description=LAYERS_HELP)] = None,
) -> Any:
    names = _layers(layers)
    query = f"?layers={','.join(names)}" if layers else ""
    return _tilejson(request, current, "/tiles/{z}/{x}/{y}.mvt" + query, names)


@router.get("/tiles/{layer}.json", summary="TileJSON 3.0.0 of one layer")
def tilejson_layer(request: Request, current: Annotated[Atlas, Depends(atlas)], layer: str) -> Any:
    names = _one_layer(layer)
    return _tilejson(request, current, f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt", names)
