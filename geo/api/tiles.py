"""Mapbox Vector Tiles (MVT 2.1) of every layer, and their TileJSON.

Tiles come from the request's atlas through `geo.tiles`, whose source is prepared when the
version is built (`install`, `TileCache.carry_over`), never on a first request; encoded tiles
are kept in an in-memory LRU keyed by (atlas, address, layers), so a new version — an edit —
is served at once. A tile is compressed (brotli or gzip, as the client's ``Accept-Encoding`` allows;
`geo.api.compression`) once, on first demand, and kept beside its bytes, so a cached tile is
never compressed again; a compressed tile has the weak form of the tile's ETag. When a new
version is swapped in (`carry_over`, an `AtlasHolder` hook), the cached tiles that the edit
cannot have changed — no changed feature touches them, old shape or new, at that zoom — are
carried over to the new version, so an edit re-encodes only the tiles around it. ``ETag`` is a
hash of the tile's bytes (unchanged tiles keep theirs across versions);
``If-None-Match`` answers 304 (weak comparison: ``W/"…"`` matches too).

Tiles are the same for every caller, so they carry public fields only (`geo.visibility`: no
``employees``; the atlas's shared `geo.tiles.source_for` source is the public one) and the cache
key needs no role: a token never changes a tile.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from geo import tiles
from geo.api.compression import Encoded, encoded_body, request_coding
from geo.api.deps import atlas
from geo.api.state import AtlasHolder
from geo.atlas import Atlas, keep_out_of_collector
from geo.tiles import encoding_small

router = APIRouter(tags=["tiles"])
log = logging.getLogger("geo.api")

CACHE_CONTROL = "public, max-age=60"
CACHE_BYTES = 256 * 1024 * 1024
LAYERS_HELP = f"comma-separated layers (default all): {','.join(tiles.LAYER_NAMES)}"
_ADDRESS_DOC = {
    200: {"content": {tiles.MEDIA_TYPE: {}}, "description": "the tile (MVT 2.1)"},
    204: {"description": "no feature in this tile"},
    304: {"description": "not modified (If-None-Match matched the ETag)"},
    404: {"description": "no such layer, or z/x/y outside the pyramid"},
}


Key = tuple[int, int, int, int, tuple[str, ...]]  # atlas serial, z, x, y, layers
Group = tuple[int, tuple[str, ...]]  # z, layers


Cached = Encoded  # an encoded tile, its ETag and its compressed forms (made once, kept)


def _etag(data: bytes) -> str:
    return f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'


class TileCache:
    """A thread-safe LRU of encoded tiles, bounded by total bytes."""

    def __init__(self, max_bytes: int = CACHE_BYTES, prepare: bool = True) -> None:
        self.max_bytes = max_bytes
        self.prepare = prepare  # every layer's tiles made at version build (else by first use)
        self.bytes = 0
        self._lock = threading.Lock()
        self._items: OrderedDict[Key, Cached] = OrderedDict()

    def get(self, key: Key) -> Cached | None:
        """The cached tile of ``key`` (now the most recently used), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: Key, data: bytes) -> Cached:
        """Cache ``data`` as the tile of ``key``, dropping the least recently used over the
        byte budget."""
        item = Cached(data, _etag(data))
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old.size()
            self._items[key] = item
            self.bytes += len(data)
            self._trim()
        return item

    def _trim(self) -> None:
        """Drop the least recently used tiles over the byte budget (under the lock)."""
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self.bytes -= dropped.size()
        self.bytes = max(self.bytes, 0)

    async def body(self, item: Cached, coding: str | None) -> bytes:
        """The tile ``item`` in ``coding``: compressed on first demand, then kept (counted in
        the byte budget)."""
        fresh = not item.has(coding)
        data = await encoded_body(item, coding)
        if fresh:
            with self._lock:
                self.bytes += len(data)
                self._trim()
        return data

    def __len__(self) -> int:
        return len(self._items)

    def carry_over(self, old: Atlas, new: Atlas) -> Iterator[None]:
        """Give ``new`` the cached tiles of ``old``: a tile that ``new`` encodes the same is
        carried over as is, any other is encoded again, so that requests right after the
        swap find them all. A step at a time (yields between steps; see `AtlasHolder`)."""
        groups = self._groups_of(old.serial)
        src_old, src_new = tiles.source_for(old), tiles.source_for(new)
        src_new.follow(src_old)  # unchanged geometry and fields are not made again
        if self.prepare:
            yield from src_new.prepare_all()  # the first tile of any layer finds all it needs
        yield from _prepare_layers(src_new, groups)
        stale: list[Key] = []
        for (z, names), keys in groups.items():
            stale += self._carry(keys, _unchanged(src_old, src_new, z, names, keys), new.serial)
            yield
        for name in {n for key in stale for n in key[4]}:
            yield from src_new.prepare(name)
        for key in stale:
            self.put((new.serial, *key[1:]), src_new.tile(*key[1:4], key[4]))
            yield

    def _groups_of(self, serial: int) -> dict[Group, list[Key]]:
        """The cached keys of atlas ``serial``, by zoom and layers."""
        with self._lock:
            keys = [k for k in self._items if k[0] == serial]
        groups: dict[Group, list[Key]] = {}
        for key in keys:
            groups.setdefault((key[1], key[4]), []).append(key)
        return groups

    def _carry(self, keys: list[Key], keep: np.ndarray, serial: int) -> list[Key]:
        """Cache the tiles of ``keys`` that ``keep`` marks under atlas ``serial`` too; the
        others (stale) are returned."""
        stale: list[Key] = []
        with self._lock:
            for key, ok in zip(keys, keep.tolist(), strict=True):
                item = self._items.get(key)
                if ok and item is not None:
                    self._items[(serial, *key[1:])] = item
                    self.bytes += item.size()
                elif not ok:
                    stale.append(key)
        return stale


def _prepare_layers(src: tiles.TileSource, groups: dict[Group, list[Key]]) -> Iterator[None]:
    """Make the new source's layers at the cached zooms, one step per layer and zoom."""
    for name in {n for _, names in groups for n in names}:
        src.attribute_hashes(name)
        yield
        for z in {z for z, names in groups if name in names}:
            src.layer(name, z)
            yield


def _unchanged(
    src_old: tiles.TileSource,
    src_new: tiles.TileSource,
    z: int,
    names: tuple[str, ...],
    keys: list[Key],
) -> np.ndarray:
    """Which of the tiles ``keys`` (zoom ``z``, layers ``names``) no changed feature touches."""
    x = np.array([k[2] for k in keys], dtype=np.int64)
    y = np.array([k[3] for k in keys], dtype=np.int64)
    keep = np.ones(len(keys), dtype=bool)
    for name in names:
        boxes = src_new.changed_boxes(src_old, name, z)
        if boxes is None:
            return np.zeros(len(keys), dtype=bool)
        keep &= ~tiles.tiles_touching(boxes, z, x, y)
    return keep


def install(app: FastAPI, holder: AtlasHolder, prepare: bool = True) -> None:
    """Give the app its tile cache and, on every new version, prepare its tiles (encoded
    attributes, per-zoom geometry: `tiles.TileSource.prepare_all`) before it is served and
    carry unchanged cached tiles over. The version served at start is prepared by
    `prepare_served`, after the server is ready. Without ``prepare`` (``GEO_PREPARE_TILES=0``)
    each layer is made by its first tile instead: the same bytes."""
    app.state.tile_cache = cache = TileCache(prepare=prepare)
    holder.on_swap.append(cache.carry_over)


async def prepare_served(app: FastAPI) -> None:
    """Prepare the tiles of the version served at start, a step per turn of the event loop
    (the app's lifespan runs this once the server answers): `geo serve` is ready without
    waiting for them, and a tile asked meanwhile makes what its own layer needs."""
    if not app.state.tile_cache.prepare:
        return
    try:
        await asyncio.to_thread(encoding_small.load)  # (a thread: its first compile takes 10 s)
        for _ in tiles.source_for(app.state.atlas.current()).prepare_all():
            await asyncio.sleep(0)  # let waiting requests run between steps
    except Exception:  # tiles are then made by their first request: slower, still right
        log.exception("preparing the tiles of the version served failed")
    keep_out_of_collector()  # what was prepared lives as long as the atlas


def tiles_prepared(app: FastAPI) -> bool:
    """Whether the first tile of any layer of the served version finds all it needs."""
    return tiles.source_for(app.state.atlas.current()).prepared()


def tile_cache(request: Request) -> TileCache:
    """The app's tile cache."""
    return request.app.state.tile_cache


def _one_layer(name: str) -> tuple[str, ...]:
    """``(name,)`` for a layer that exists (404 otherwise)."""
    if name not in tiles.LAYER_NAMES:
        raise tiles.TileError(tiles.unknown_layer(name))
    return (name,)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == etag for t in header.split(","))


async def _tile(
    request: Request, current: Atlas, z: int, x: int, y: int, names: tuple[str, ...]
) -> Response:
    tiles.check_address(z, x, y)  # a TileError (404) outside the pyramid
    key = (current.serial, z, x, y, names)
    cache = tile_cache(request)
    item = cache.get(key)
    if item is None:
        data = await run_in_threadpool(tiles.source_for(current).tile, z, x, y, names)
        item = cache.put(key, data)
    coding = request_coding(request.scope)
    headers = {**item.headers(coding), "Cache-Control": CACHE_CONTROL}
    if _matches(request.headers.get("if-none-match"), item.etag):
        headers.pop("Content-Encoding", None)
        return Response(status_code=304, headers=headers)
    if not item.data:
        return Response(status_code=204, headers=headers)
    body = await cache.body(item, coding)
    return Response(body, media_type=tiles.MEDIA_TYPE, headers=headers)


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
    """The tile z/x/y with the layers asked for (all by default)."""
    return await _tile(request, current, z, x, y, tiles.normalise_layers(layers))


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
    """The tile z/x/y of one layer."""
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
    """TileJSON of the layers asked for (all by default), as one tile set."""
    names = tiles.normalise_layers(layers)
    query = f"?layers={','.join(names)}" if layers else ""
    return _tilejson(request, current, "/tiles/{z}/{x}/{y}.mvt" + query, names)


@router.get("/tiles/{layer}.json", summary="TileJSON 3.0.0 of one layer")
def tilejson_layer(request: Request, current: Annotated[Atlas, Depends(atlas)], layer: str) -> Any:
    """TileJSON of one layer."""
    names = _one_layer(layer)
    return _tilejson(request, current, f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt", names)
