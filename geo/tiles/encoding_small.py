"""The MVT encoder of a tile: shapely geometry taken apart and quantised with a handful of
shapely and numpy calls, then encoded by the compiled loops of `geo.tiles.kernels`. The same
bytes as the vectorised `geo.tiles.encoding` (tested), without its fixed cost of some hundred
numpy calls a layer, which is most of a tile of a few features (a tile PostGIS makes in
0.1 ms), and quicker at every size measured (up to a z10 tile of 7,000 points); that one
encodes each zoom's features when a version is built (`geo.tiles.drawn`).

numba is imported with the first tile, not with the server (`geo serve` starts without it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely
from numpy.typing import NDArray

from geo.tiles.encoding import _TYPE, _explode, _quantise, _varint
from geo.tiles.tile_math import EXTENT, tile_bounds

if TYPE_CHECKING:
    from geo.tiles.attributes import Attributes

Geometry = tuple[NDArray[np.uint8], NDArray[np.int64]]  # bytes, (start, end) per feature


def _simple(geoms: NDArray[np.object_], feat: NDArray[np.int64], type_ids: tuple[int, ...]):
    """`geo.tiles.encoding._explode`, quicker when every geometry is a simple part (an empty
    one draws nothing either way) or a multi-part or collection of them (taken apart once)."""
    wanted = set(type_ids)
    if set(shapely.get_type_id(geoms).tolist()) <= wanted:
        return geoms, feat
    parts, ix = shapely.get_parts(geoms, return_index=True)  # multi-parts and collections
    if set(shapely.get_type_id(parts).tolist()) <= wanted:
        return parts, feat[ix]
    return _explode(geoms, feat, type_ids)


def _rings_of(polys: NDArray[np.object_]) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """The rings of polygons, each's exterior first, and the polygon of each (three calls
    quicker than `shapely.get_rings` with its index when no polygon has holes)."""
    if not shapely.get_num_interior_rings(polys).any():
        return shapely.get_exterior_ring(polys), np.arange(len(polys))
    return shapely.get_rings(polys, return_index=True)


def _points(geoms: NDArray[np.object_], bounds, extent: int):
    """Tile coordinates (x, y) of every point of ``geoms`` and the index of its geometry."""
    xy, at = shapely.get_coordinates(geoms, return_index=True)
    tx, ty = _quantise(xy, bounds, extent)
    return tx, ty, at.astype(np.int64)


def geometry(kind: str, geoms: NDArray[np.object_], bounds, extent: int) -> Geometry:
    """The ``geometry`` field's bytes of each of ``geoms`` (Web Mercator, clipped to the
    buffered tile ``bounds``): the bytes and each one's (start, end) in them; start = end
    where it draws nothing."""
    from geo.tiles import kernels

    n = len(geoms)
    feat = np.arange(n)
    if kind == "point":
        pts, pfeat = _simple(geoms, feat, (0,))
        tx, ty, at = _points(pts, bounds, extent)
        return kernels.point_geometry(tx, ty, pfeat[at].astype(np.int64), n)
    if kind == "polygon":
        polys, pfeat = _simple(geoms, feat, (3,))
        rings, rpoly = _rings_of(polys)
        tx, ty, at = _points(rings, bounds, extent)
        return kernels.ring_geometry(tx, ty, at, rpoly.astype(np.int64), pfeat.astype(np.int64), n)
    lines, lfeat = _simple(geoms, feat, (1, 2))
    tx, ty, at = _points(lines, bounds, extent)
    return kernels.line_geometry(tx, ty, at, lfeat.astype(np.int64), n)


def encode_layer_small(
    name: str,
    kind: str,
    geoms: NDArray[np.object_],
    bounds: tuple[float, float, float, float],
    fids: NDArray[np.int64],
    attrs: Attributes,
    rows: NDArray[np.int64],
    extent: int,
) -> bytes:
    """`geo.tiles.encoding.encode_layer`, compiled: the same bytes."""
    return layer_of(name, kind, geometry(kind, geoms, bounds, extent), fids, attrs, rows, extent)


def layer_of(
    name: str,
    kind: str,
    drawn: Geometry,
    fids: NDArray[np.int64],
    attrs: Attributes,
    rows: NDArray[np.int64],
    extent: int,
) -> bytes:
    """The ``Layer`` message of features whose geometry bytes are ``drawn`` (`geometry`): the
    feature at position i has id ``fids[i]`` and attribute row ``rows[i]``; b"" when none
    draws."""
    from geo.tiles import kernels

    raw_name = name.encode()
    head = b"\x78\x02\x0a" + _varint(len(raw_name)) + raw_name
    out = kernels.layer(
        np.frombuffer(head, dtype=np.uint8),
        _TYPE[kind],
        np.asarray(fids, dtype=np.int64),
        attrs.codes[rows],
        drawn[0],
        drawn[1],
        np.frombuffer(attrs.key_bytes, dtype=np.uint8),
        attrs.values.buf,
        attrs.values.off,
        np.frombuffer(b"\x28" + _varint(extent), dtype=np.uint8),
    )
    return out.tobytes()


def load() -> None:
    """Load the compiled loops (the first time on a machine: compile them, about 10 s) by
    encoding a tile of each kind as a tile of the data would be, so that no request waits for
    them (`geo serve` runs this in a thread once it answers, `geo.api.tiles.prepare_served`)."""
    import pandas as pd

    from geo.tiles.attributes import build_attributes
    from geo.tiles.drawn import draw

    attrs = build_attributes(pd.DataFrame({"name": ["甲"], "count": [1]}))
    z, x, y = 16, 54_700, 26_940
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    w = maxx - minx
    shapes = {
        "point": shapely.Point(minx + w / 3, miny + w / 3),
        "line": shapely.LineString([(minx + w / 4, miny + w / 4), (maxx - w / 4, maxy - w / 3)]),
        "polygon": shapely.box(minx + w / 4, miny + w / 4, maxx - w / 4, maxy - w / 4),
    }
    one, first = np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    for kind, shape in shapes.items():
        geoms = np.array([shape])
        encode_layer_small("load", kind, geoms, (minx, miny, maxx, maxy), one, attrs, first, EXTENT)
        if kind != "point":  # a feature as a version build prepares it, sent whole
            cut = geometry(kind, geoms[:0], (minx, miny, maxx, maxy), EXTENT)
            drawn = draw(kind, geoms, z, EXTENT).geometry(
                first, np.ones(1, dtype=bool), x * EXTENT, y * EXTENT, cut
            )
            layer_of("load", kind, drawn, one, attrs, first, EXTENT)
