"""A PMTiles v3 archive of an atlas: every non-empty tile of the data's bounds, gzip-compressed."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from pathlib import Path

from geo import visibility
from geo.atlas import Atlas
from geo.tiles.source import source_for, tilejson
from geo.tiles.tile_math import MAXZOOM, MINZOOM, TileError, normalise_layers, tiles_covering


def write_pmtiles(
    atlas: Atlas,
    path: str | Path,
    minzoom: int = 10,
    maxzoom: int = 16,
    layers: Sequence[str] | str | None = None,
    progress: Callable[[int, int], None] | None = None,
    role: str = visibility.PUBLIC,
) -> dict[str, int]:
    """Write a PMTiles v3 archive of ``layers`` (default all) for z = minzoom..maxzoom.

    Tiles cover the bounds of the data; empty tiles are left out. Tiles are gzip-compressed
    MVT. The tiles carry the fields ``role`` may see (`geo.visibility`; default public, as the
    service's tiles). ``progress(done, total)`` is called as tiles are made. Returns
    ``{"tiles": written, "candidates": total, "bytes": file size}``.
    """
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import Writer

    if not MINZOOM <= minzoom <= maxzoom <= MAXZOOM:
        raise TileError(f"zooms must satisfy {MINZOOM} <= minzoom <= maxzoom <= {MAXZOOM}")
    src = source_for(atlas, role)
    names = normalise_layers(layers)
    w, s, e, n = src.bounds(names)
    candidates = sorted(
        (zxy_to_tileid(z, x, y), z, x, y)
        for z, x, y in tiles_covering((w, s, e, n), range(minzoom, maxzoom + 1))
    )
    total = len(candidates)
    written = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        writer = Writer(f)
        for done, (tid, z, x, y) in enumerate(candidates, 1):
            data = src.tile(z, x, y, names)
            if data:
                writer.write_tile(tid, gzip.compress(data, mtime=0))
                written += 1
            if progress is not None:
                progress(done, total)
        if written == 0:
            raise TileError("no tile has any feature: nothing to write")
        meta = tilejson(atlas, "", names, minzoom, maxzoom, source=src)
        metadata = {k: v for k, v in meta.items() if k not in ("tiles", "tilejson")}
        header = {
            "tile_type": TileType.MVT,
            "tile_compression": Compression.GZIP,
            "min_lon_e7": int(w * 1e7),
            "min_lat_e7": int(s * 1e7),
            "max_lon_e7": int(e * 1e7),
            "max_lat_e7": int(n * 1e7),
            "center_zoom": int(meta["center"][2]),
            "center_lon_e7": int(meta["center"][0] * 1e7),
            "center_lat_e7": int(meta["center"][1] * 1e7),
        }
        writer.finalize(header, metadata)
    tmp.replace(path)
    return {"tiles": written, "candidates": total, "bytes": path.stat().st_size}
